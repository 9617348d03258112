"""Odd but legitimate inputs that used to fail, and bad ones that need the environment
(PATH, BMXLIB_CACHE, signals) and so are not catalogue entries: each one line, named."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bmxlib import cli
from bmxlib.data import load_dataset
from bmxlib.data.manifest import ManifestDataset
from tests.conftest import TINY
from tests.test_data_real import make_manifest

ROOT = Path(__file__).resolve().parents[1]


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if line.startswith("bmx: error:")]


@contextlib.contextmanager
def _stopped_at_the_end(process: subprocess.Popen) -> Iterator[None]:
    """Kill ``process``'s group (a session of its own) whatever the test's outcome: a sweep
    left behind by a failed test trained on beside the rest of the suite."""
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _default_sigint() -> None:
    """preexec_fn: a shell's background job (nohup … &) starts with SIGINT ignored, and
    Python keeps an inherited SIG_IGN: restore it, so that the test's Ctrl-C arrives."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(paths: list[Path], *, timeout: float) -> None:
    """Until every one of ``paths`` exists (the runs have trained), or ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths) and time.monotonic() < deadline:
        time.sleep(0.05)


def _stderr_once_stopped(process: subprocess.Popen, *, timeout: float) -> str:
    """The stderr of ``process`` after it exits; if it has not within ``timeout`` s, fail
    with every process's Python stacks (the sweep's workers dump theirs on SIGUSR1,
    ``launchers``; the sweep, run under ``-X faulthandler``, on SIGABRT)."""
    import psutil

    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.send_signal(signal.SIGUSR1)
        time.sleep(2)
        process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        err = process.communicate()[1]
        pytest.fail(f"still running {timeout:.0f} s after the signal; its stacks:\n{err[-8000:]}")


def test_a_manifest_written_by_excel_with_a_bom_loads(tmp_path):
    root = make_manifest(tmp_path / "mine", tmp_path / "elsewhere" / "c.png")
    text = (root / "train.csv").read_text()
    (root / "train.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # what Excel writes
    (root / "classes.txt").write_bytes(b"\xef\xbb\xbf" + (root / "classes.txt").read_bytes())
    dataset = ManifestDataset(root, "train")
    assert dataset.class_names == ["cat", "dog", "bird"]
    assert dataset.labels.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_manifest_paths_outside_the_root_need_the_flag(tmp_path):
    root = make_manifest(tmp_path / "mine", tmp_path / "elsewhere" / "c.png")
    (root / "train.csv").write_text("path,labels\n../elsewhere/c.png,cat\n")
    import pytest

    with pytest.raises(ValueError, match="leads outside"):
        ManifestDataset(root, "train")
    assert len(ManifestDataset(root, "train", allow_outside_root=True)) == 1


def test_bmxlib_cache_naming_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("BMXLIB_CACHE", str(tmp_path / "cache"))
    code = cli.main(["train", "--config", str(ROOT / "configs/digits_bce.yaml"), *TINY,
                     f"out_dir={tmp_path / 'runs'}"])
    assert code == 2
    (error,) = _errors(capsys)
    assert "BMXLIB_CACHE" in error and "not a directory" in error


def test_slurm_without_srun_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no srun on it
    path = tmp_path / "sweep.yaml"
    path.write_text(f"out_dir: {tmp_path / 'out'}\ngrid:\n  seed: [0, 1]\n")
    assert cli.main(["sweep", "--config", str(path), "--launcher", "slurm"]) == 2
    (error,) = _errors(capsys)
    assert "no SLURM here: srun not found; use --launcher local" in error
    assert not (tmp_path / "out").exists()  # no sweep.json left behind


def test_a_large_grid_runs_when_max_points_allows_it(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"out_dir: {tmp_path / 'out'}\ngrid:\n  seed: [0, 1, 2]\n")
    assert cli.main(["sweep", "--config", str(path), "--max-points", "2"]) == 2
    assert "3 points, more than 2" in _errors(capsys)[0]


def test_overrides_are_accepted_after_flags(tmp_path):
    args = cli.parse_args(cli.build_parser(), ["train", "--overwrite", "epochs=3",
                                               "--config", "x.yaml", "lr=0.1"])
    assert args.overwrite and args.config == "x.yaml"
    assert args.overrides == ["epochs=3", "lr=0.1"]
    args = cli.parse_args(cli.build_parser(), ["sweep", "--jobs", "2", "--config", "s.yaml",
                                               "epochs=1"])
    assert args.overrides == ["epochs=1"] and args.jobs == 2


def test_sigterm_during_a_sweep_says_to_rerun_it_and_exits_143(tmp_path):
    fixed = "".join(f"  {item.replace('=', ': ')}\n" for item in TINY
                    if not item.startswith("epochs="))
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}  epochs: 50\n"
                    "grid:\n  seed: [0]\n")
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "bmxlib.cli",
                                "sweep", "--config", str(path)], env=_subprocess_env(),
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    with _stopped_at_the_end(process):
        _wait_for([tmp_path / "out" / "s" / "seed=0" / "metrics.jsonl"], timeout=120)
        process.send_signal(signal.SIGTERM)
        err = _stderr_once_stopped(process, timeout=60)
    assert process.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last == f"bmx: terminated; continue with the same command: bmx sweep --config {path}"


def test_ctrl_c_during_a_parallel_sweep_leaves_no_leaked_semaphores(tmp_path):
    """Ctrl-C reaches the sweep and its workers (one process group). The workers were
    killed by SIGTERM before their exit handlers ran, and Python's resource tracker warned
    "There appear to be 2 leaked semaphore objects" (each worker's tqdm lock)."""
    fixed = "".join(f"  {item.replace('=', ': ')}\n" for item in TINY
                    if not item.startswith("epochs="))
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}  epochs: 200\n"
                    "  pretrained: none\ngrid:\n  seed: [0, 1]\n")
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "bmxlib.cli",
                                "sweep", "--config", str(path), "--jobs", "2"],
                               env=_subprocess_env(), stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=_default_sigint)
    with _stopped_at_the_end(process):
        _wait_for([tmp_path / "out" / "s" / f"seed={seed}" / "metrics.jsonl" for seed in (0, 1)],
                  timeout=180)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        err = _stderr_once_stopped(process, timeout=120)
    assert process.returncode == -signal.SIGINT, err  # cli.console; a shell shows 130
    assert "leaked semaphore" not in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("bmx: interrupted; continue with the same")


def test_ctrl_c_stops_a_shell_loop_of_bmx_commands(tmp_path):
    """`for seed in 0 1; do bmx train ...; done`: Ctrl-C stopped only the running command
    and bash started the next, since bmx exited with status 130; bash stops a loop only
    after a command that SIGINT ended."""
    overrides = [item for item in TINY if not item.startswith("epochs=")]
    train = shlex.join([sys.executable, "-m", "bmxlib.cli", "train", "--config",
                        str(ROOT / "configs/digits_bce.yaml"), f"out_dir={tmp_path}",
                        "epochs=200", "pretrained=none", *overrides])
    script = f'for seed in 0 1; do {train} name=seed$seed seed=$seed; echo "next" >&2; done'
    process = subprocess.Popen(["bash", "-c", script], env=_subprocess_env(),
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=_default_sigint)
    with _stopped_at_the_end(process):
        metrics = tmp_path / "seed0" / "metrics.jsonl"
        _wait_for([metrics], timeout=120)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        err = _stderr_once_stopped(process, timeout=60)
    assert metrics.exists(), err
    assert process.returncode == -signal.SIGINT and "next" not in err, err
    assert not (tmp_path / "seed1").exists()
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last == f"bmx: interrupted; continue with bmx train --resume {tmp_path / 'seed0'}"


def test_ctrl_c_while_the_parser_is_built_prints_one_line(monkeypatch, capsys):
    """A Ctrl-C in a command's first tenth of a second printed a traceback."""

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["tables", "--help"]) == cli.INTERRUPTED
    assert capsys.readouterr().err == ("bmx: interrupted before the command started "
                                       "(nothing was written)\n")


def test_ctrl_c_while_a_sweep_imports_says_to_rerun_the_command(tmp_path, monkeypatch, capsys):
    """A Ctrl-C in the seconds `bmx sweep` imports torch said only 'bmx: interrupted'."""

    class Interrupting:  # the import of bmxlib.launchers is where the Ctrl-C lands
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "bmxlib.launchers":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "bmxlib.launchers", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    argv = ["sweep", "--config", str(ROOT / "configs/digits_paper.yaml"), f"out_dir={tmp_path}"]
    assert cli.main(argv) == cli.INTERRUPTED
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"bmx: interrupted; continue with the same command: bmx {shlex.join(argv)}"


def test_ctrl_c_before_the_run_exists_says_to_rerun_the_command(tmp_path, monkeypatch, capsys):
    """The hint was `bmx train --resume RUN`, which fails: no run existed yet."""
    import bmxlib.engine as engine

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "fit", interrupted)
    argv = ["train", "--config", str(ROOT / "configs/digits_bce.yaml"), f"out_dir={tmp_path}"]
    assert cli.main(argv) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--resume" not in last and "nothing was written" in last and argv[-1] in last


def test_ctrl_c_while_the_config_is_read_says_nothing_was_written(monkeypatch, capsys):
    """Interrupted before the run directory was known, `bmx train` said only 'interrupted'."""
    import bmxlib.config as config

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(config, "load_config", interrupted)
    argv = ["train", "--config", str(ROOT / "configs/digits_bce.yaml")]
    assert cli.main(argv) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"bmx: interrupted; continue with the same command (nothing was written): " \
                   f"bmx train --config {argv[-1]}"


def test_resume_of_dot_and_out_dir_of_tilde(tmp_path, monkeypatch, balancemix_run):
    """`--resume .` named the run '' ; `out_dir: ~/x` made a folder named `~`."""
    import bmxlib.engine as engine
    from bmxlib.config import load_config
    from bmxlib.sweep import plan_sweep

    seen = []
    monkeypatch.setattr(engine, "fit", lambda config, **kwargs: seen.append(config))
    monkeypatch.chdir(balancemix_run)
    assert cli.main(["train", "--resume", "."]) == 0
    assert seen[0].name == balancemix_run.name
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config(str(ROOT / "configs/digits_bce.yaml"), ["out_dir=~/runs"])
    assert config.out_dir == str(tmp_path / "runs")
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nout_dir: ~/sweeps\ngrid:\n  seed: [0]\n")
    assert plan_sweep(sweep)[0] == tmp_path / "sweeps" / "s"


# --- load_dataset at the public boundary: options checked before any work ---------------
@pytest.mark.parametrize("name", ["digits-lt", "glyphs-coco"])
@pytest.mark.parametrize("seed", [-1, 2**32, "a", None, True, 1.5],
                         ids=["negative", "beyond-32-bits", "text", "none", "bool", "float"])
def test_a_generated_dataset_names_a_bad_seed(name, seed):
    # used to escape as scikit-learn's message about train_test_split's random_state, or
    # as int()'s TypeError
    with pytest.raises(ValueError, match=f"{name} option seed must be an integer in"):
        load_dataset(name, "train", seed=seed)


def test_numpy_integers_are_sizes_and_seeds():
    # a size read from an array or a config parsed by NumPy used to be refused
    data = load_dataset("digits-lt", "train", seed=np.int64(0), n_train=np.int64(40),
                        n_test=np.int32(30))
    assert len(data) == 40 and data.labels.shape == (40, 10)
    assert np.array_equal(data.labels, load_dataset("digits-lt", "train", seed=0, n_train=40,
                                                    n_test=30).labels)


@pytest.mark.parametrize("name, options", [
    ("digits-lt", {}), ("glyphs-coco", {}), ("coco", {"root": "."}), ("voc", {"root": "."}),
    ("manifest", {"root": "."}),
])
def test_an_unknown_option_is_named_with_the_datasets_options(name, options):
    # used to be a TypeError about GeneratedDataset / FileListDataset.__init__
    with pytest.raises(ValueError, match=rf"dataset '{name}' has no option 'colour'; "
                                         r"its options: .*transform"):
        load_dataset(name, "train", colour="red", **options)


# --- the public equations (SPEC §6) on legitimate arrays torch cannot take as they are ---
def _scores_and_labels():
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 5)) < 0.3).astype(np.uint8)
    labels[0] = 1  # every class has a positive
    return rng.random((40, 5)), labels


@pytest.mark.parametrize("view", [
    pytest.param(lambda a: a[::-1], id="reversed-rows"),
    pytest.param(lambda a: a[:, ::-1], id="reversed-columns"),
    pytest.param(lambda a: a.astype(a.dtype.newbyteorder(">")), id="big-endian"),
])
def test_equations_take_reversed_and_byte_swapped_arrays(view):
    import torch

    from bmxlib import gmm, metrics, sampling

    scores, labels = _scores_and_labels()
    odd_scores, odd_labels = view(scores), view(labels)
    same_scores, same_labels = np.array(odd_scores, dtype=float), np.array(odd_labels,
                                                                           dtype=np.uint8)
    np.testing.assert_array_equal(metrics.average_precision(odd_scores, odd_labels),
                                  metrics.average_precision(same_scores, same_labels))
    torch.testing.assert_close(gmm.clean_probability(odd_scores, odd_labels),
                               gmm.clean_probability(same_scores, same_labels))
    torch.testing.assert_close(sampling.minority_probabilities(odd_scores, odd_labels),
                               sampling.minority_probabilities(same_scores, same_labels))


@pytest.mark.parametrize("view, shares", [
    pytest.param(lambda a: a, True, id="native"),
    pytest.param(lambda a: a[:, 1:], True, id="column-slice"),
    pytest.param(lambda a: a[::-1], False, id="reversed-rows"),
    pytest.param(lambda a: a.astype(a.dtype.newbyteorder(">")), False, id="big-endian"),
])
def test_tensor_from_numpy_copies_only_what_torch_refuses(view, shares):
    from bmxlib.arrays import tensor_from_numpy

    array = view(np.arange(12, dtype=np.float32).reshape(3, 4))
    tensor = tensor_from_numpy(array)
    np.testing.assert_array_equal(tensor.numpy(), array)
    assert np.shares_memory(tensor.numpy(), array) is shares


def test_gmm_takes_losses_that_require_grad():
    """Per-label losses computed from live logits carry a graph; p_G takes none."""
    import torch

    from bmxlib import gmm

    scores, labels = _scores_and_labels()
    losses = torch.tensor(scores, dtype=torch.float32, requires_grad=True)
    p_clean = gmm.clean_probability(losses, torch.from_numpy(labels))
    assert not p_clean.requires_grad
    torch.testing.assert_close(p_clean, gmm.clean_probability(losses.detach(),
                                                               torch.from_numpy(labels)))


def test_numpy_scalars_as_options():
    import torch

    from bmxlib import gmm, mixing

    scores, labels = _scores_and_labels()
    torch.testing.assert_close(
        gmm.clean_probability(scores, labels, max_iter=np.int64(10), tol=np.float32(1e-2),
                              reg_covar=np.float64(5e-4)),
        gmm.clean_probability(scores, labels))
    x, y = torch.rand(4, 3), torch.rand(4, 2)
    draws = [mixing.minority_mix(x, y, x.flip(0), y.flip(0), alpha=alpha,
                                 generator=torch.Generator().manual_seed(0))[2]
             for alpha in (np.float32(4.0), 4.0)]
    torch.testing.assert_close(draws[0], draws[1])
    with pytest.raises(ValueError, match="max_iter"):
        gmm.clean_probability(scores, labels, max_iter=True)
    with pytest.raises(ValueError, match="tol"):
        gmm.clean_probability(scores, labels, tol="0.01")


def test_equations_take_bfloat16_and_wide_unsigned_labels():
    import torch

    from bmxlib import metrics, noise, sampling, stats

    scores, labels = _scores_and_labels()
    for odd in (torch.from_numpy(labels).bfloat16(), labels.astype(np.uint16),
                torch.from_numpy(labels.astype(np.uint32))):
        np.testing.assert_array_equal(metrics.average_precision(torch.tensor(scores), odd),
                                      metrics.average_precision(scores, labels))
        np.testing.assert_array_equal(noise.inject(odd, "flip", 0.2, seed=3)[0],
                                      noise.inject(labels, "flip", 0.2, seed=3)[0])
        np.testing.assert_array_equal(stats.imbalance(odd)["positives"],
                                      stats.imbalance(labels)["positives"])
        torch.testing.assert_close(sampling.minority_probabilities(scores, odd),
                                   sampling.minority_probabilities(scores, labels))


def test_average_precision_of_integer_scores_beyond_float64():
    """2**62 and 2**62 + 1 are one float64; their order must still count."""
    from sklearn.metrics import average_precision_score

    from bmxlib import metrics

    big = np.array([2**62, 2**62 + 1, 2**62 + 1, -(2**62)], dtype=np.int64)
    targets = np.array([0, 1, 0, 1])
    assert metrics.average_precision(big, targets)[0] == pytest.approx(
        average_precision_score(targets, big.astype(object).tolist()))
    assert metrics.average_precision(big, targets)[0] == pytest.approx(
        metrics.average_precision(np.array([2, 3, 3, 0]), targets)[0])


def test_complex_scores_are_refused():
    import torch

    from bmxlib import metrics

    with pytest.raises(TypeError, match="scores must have a real dtype"):
        metrics.average_precision(torch.tensor([[1 + 5j], [2 - 9j]]), torch.tensor([[1], [0]]))


def test_output_into_a_closed_pipe_ends_quietly():
    """`bmx tables SWEEP | head -4` printed "bmx: error: [Errno 32] Broken pipe" and exit
    status 2: BrokenPipeError is an OSError, which the one-line error caught first."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before bmx writes (as `head` once it has enough)
    process = subprocess.run([sys.executable, "-m", "bmxlib.cli", "config", "--list"],
                             stdout=write_end, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    os.close(write_end)
    assert (process.returncode, process.stderr) == (0, "")
