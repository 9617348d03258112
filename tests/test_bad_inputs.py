"""The bad-input catalogue (docs/reliability.md): every entry is one line on stderr naming
the offending key, file or value, exit status 2, no traceback, and the existing run in
the same folder is left exactly as it was.

Entries cover config files, command-line arguments, dataset files (COCO, VOC, manifest,
images), run directories (truncated metrics, foreign or empty checkpoints, edited
configs) and report inputs. Each builds its own bad input under a fresh folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from bmxlib import cli, runs
from tests.conftest import TINY
from tests.test_data_real import make_coco, make_manifest, make_voc

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = [*TINY, "epochs=2"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny BalanceMix run; entries that need a run directory copy it."""
    out = tmp_path_factory.mktemp("finished")
    assert cli.main(["train", "--config", str(ROOT / "configs/digits_balancemix.yaml"),
                     *TINY_ARGS, f"out_dir={out}", "name=bm"]) == 0
    return out / "bm"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _config(tmp: Path, text: str) -> list[str]:
    path = tmp / "bad.yaml"
    path.write_text(text)
    return ["train", "--config", str(path), f"out_dir={tmp / 'runs'}"]


def _train(*overrides: str):
    return lambda tmp, run: ["train", "--config", str(ROOT / "configs/digits_bce.yaml"),
                             *TINY_ARGS, f"out_dir={tmp / 'runs'}", *overrides]


def _copied_run(tmp: Path, run: Path) -> Path:
    target = tmp / "copy" / "bm"
    shutil.copytree(run, target)
    return target


def _resume_after(change, *, finished: bool = False):
    """Resume a copy of the finished run after ``change``; unless ``finished``, the copy
    first loses summary.json — a run killed after its last checkpoint, which resume checks
    (a finished run has nothing to resume: only its metrics are checked)."""
    def make(tmp: Path, run: Path) -> list[str]:
        target = _copied_run(tmp, run)
        if not finished:
            (target / runs.SUMMARY_FILE).unlink()
        change(target, tmp)
        return ["train", "--resume", str(target)]
    return make


def _truncate_metrics(target: Path, tmp: Path) -> None:
    lines = (target / "metrics.jsonl").read_text().splitlines()
    (target / "metrics.jsonl").write_text(lines[-1] + "\n")  # epoch 1 lost


def _empty_checkpoint(target: Path, tmp: Path) -> None:
    runs.checkpoint_path(target).write_bytes(b"")


def _foreign_checkpoint(target: Path, tmp: Path) -> None:
    assert cli.main(["train", "--config", str(ROOT / "configs/digits_bce.yaml"), *TINY_ARGS,
                     f"out_dir={tmp / 'other'}", "name=bce"]) == 0
    shutil.copyfile(runs.checkpoint_path(tmp / "other" / "bce"), runs.checkpoint_path(target))


def _edited_config(target: Path, tmp: Path) -> None:
    config = yaml.safe_load(runs.config_path(target).read_text())
    config.update(method="bce", mixup=False)  # a consistent edit: only resume can tell
    runs.config_path(target).write_text(yaml.safe_dump(config))


def _changed_width(target: Path, tmp: Path) -> None:
    config = yaml.safe_load(runs.config_path(target).read_text())
    state_path = runs.checkpoint_path(target)
    import torch

    state = torch.load(state_path, weights_only=True)
    state["config"]["width"] = config["width"] = 4  # both agree; the weights do not fit
    torch.save(state, state_path)
    runs.config_path(target).write_text(yaml.safe_dump(config))


def _real(tmp: Path, dataset: str, root: Path) -> list[str]:
    config = tmp / "real.yaml"
    config.write_text(f"name: real\ndataset: {dataset}\n")
    return ["train", "--config", str(config), f"out_dir={tmp / 'runs'}", *TINY_ARGS,
            f"data_root={root}", "image_size=32"]


def _coco(tmp: Path, breaker) -> list[str]:
    root = make_coco(tmp / "coco")
    breaker(root)
    return _real(tmp, "coco", root)


def _voc(tmp: Path, breaker) -> list[str]:
    root = make_voc(tmp / "VOCdevkit")
    breaker(root)
    return _real(tmp, "voc", root)


def _manifest(tmp: Path, breaker) -> list[str]:
    root = make_manifest(tmp / "mine", tmp / "elsewhere" / "c.png")
    breaker(root)
    return _real(tmp, "manifest", root)


def _edit_coco(edit):
    """A breaker that edits the train annotations as a mapping."""
    def breaker(root: Path) -> None:
        path = root / "annotations" / "instances_train2014.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return breaker


def _corrupt_jpeg(root: Path) -> None:
    path = root / "train2014" / "a.jpg"
    path.write_bytes(path.read_bytes()[:40])  # truncated mid-file


def _sweep(tmp: Path, text: str) -> list[str]:
    path = tmp / "sweep.yaml"
    path.write_text(text)
    return ["sweep", "--config", str(path)]


def _tiny_sweep(text: str):
    """A sweep whose 'fixed' or 'grid' is ``text``, in tmp with a tiny base (if it ran)."""
    return lambda tmp, run: _sweep(tmp, f"out_dir: {tmp / 'o'}\nbase: {{epochs: 1, "
                                        "n_train: 64, n_test: 32, width: 8, progress: false, "
                                        f"pretrained: none}}\n{text}")


ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}' if prev else '1'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi")) + "epochs: *i\n"


def _fifo(tmp: Path) -> list[str]:
    import os

    os.mkfifo(tmp / "pipe.yaml")
    return ["train", "--config", str(tmp / "pipe.yaml")]


def _not_a_run(tmp: Path, run: Path) -> list[str]:
    (tmp / "runs" / "X").mkdir(parents=True)
    (tmp / "runs" / "X" / "notes.txt").write_text("mine")
    return [*_train("name=X")(tmp, run), "--overwrite"]


def _report_bad_config(tmp: Path, run: Path) -> list[str]:
    target = _copied_run(tmp, run)
    text = runs.config_path(target).read_text().replace("epochs: 2", "epochs: two")
    runs.config_path(target).write_text(text)
    return ["report", str(target), "--out", str(tmp / "report")]


def _report_after(change):
    """Report on a copy of the finished run after ``change`` breaks one of its files."""
    def make(tmp: Path, run: Path) -> list[str]:
        target = _copied_run(tmp, run)
        change(target)
        return ["report", str(target), "--out", str(tmp / "report")]
    return make


def _fake_sweep(tmp: Path) -> Path:
    (tmp / "s").mkdir()
    (tmp / "s" / runs.SWEEP_FILE).write_text('{"source": "s.yaml", "points": []}')
    return tmp / "s"


CATALOGUE = {
    # --- config files -------------------------------------------------------------------
    "empty-config": (lambda tmp, run: _config(tmp, "\n"), "is empty"),
    "yaml-syntax": (lambda tmp, run: _config(tmp, "epochs: [1, 2\n"), "not valid YAML"),
    "yaml-not-mapping": (lambda tmp, run: _config(tmp, "- 1\n- 2\n"), "mapping"),
    "unknown-key-in-file": (lambda tmp, run: _config(tmp, "epochz: 3\n"), "'epochz'"),
    "config-is-a-directory": (lambda tmp, run: ["train", "--config", str(tmp)], "directory"),
    "missing-config": (lambda tmp, run: ["train", "--config", str(tmp / "no.yaml")], "no.yaml"),
    "wrong-type-in-file": (lambda tmp, run: _config(tmp, "epochs: three\n"), "'epochs'"),
    "lr-out-of-range": (_train("lr=-1"), "'lr'"),
    "image-too-small-for-small-cnn": (_train("image_size=7"), "'image_size'"),
    "unknown-method": (_train("method=magic"), "'method'"),
    "rate-for-missing-noise": (_train("noise=missing", "noise_rate=0.3"), "'noise_rate'"),
    "mislabel-without-rate": (_train("noise=mislabel", "noise_rate=0"), "'noise_rate'"),
    "digits-backbone-on-photos": (_train("dataset=manifest", "data_root=.",
                                         "pretrained=digits"), "'pretrained'"),
    "mixup-against-the-paper-protocol": (_train("method=asl", "mixup=false"), "'mixup'"),
    "balancemix-without-mixing": (_train("method=balancemix", "protocol=custom",
                                         "mixup=false"), "'mixup'"),
    "t-estimator-without-warm-up": (_train("method=t_estimator", "warmup_epochs=0"),
                                    "'warmup_epochs'"),
    "warm-up-longer-than-the-run": (_train("method=coteaching", "warmup_epochs=3"),
                                    "'warmup_epochs': 3 exceeds epochs 2"),
    "diverging-hyperparameters": (_train("lr=10", "momentum=1", "weight_decay=1"),
                                  "diverged at epoch 1"),
    "yaml-alias-bomb": (lambda tmp, run: _config(tmp, ALIAS_BOMB), "expands to more than"),
    "yaml-duplicate-key": (lambda tmp, run: _config(tmp, "epochs: 1\nlr: 0.1\nepochs: 2\n"),
                           "'epochs' is given twice"),
    "config-is-a-fifo": (lambda tmp, run: _fifo(tmp), "not a regular file"),
    "config-is-dev-zero": (lambda tmp, run: ["train", "--config", "/dev/zero"], "/dev/zero"),
    "seed-beyond-32-bits": (_train(f"seed={2**70}"), "'seed'"),
    "name-with-nul": (lambda tmp, run: _config(tmp, 'name: "a\\0b"\n'), "'name'"),
    "n-train-beyond-memory": (_train("n_train=1000000000"), "n_train"),
    "glyphs-coco-beyond-memory": (_train("dataset=glyphs-coco", "pretrained=glyphs",
                                         "n_test=2000", "n_train=1000000000"),
                                  "glyphs-coco n_train"),
    "weights-path-a-directory": (_train("arch=resnet18", "pretrained=imagenet",
                                        "weights_path=/tmp"), "is a directory"),
    "overwrite-a-folder-that-is-not-a-run": (_not_a_run, "not a bmxlib run"),
    "junk-weights-file": (lambda tmp, run: (tmp / "w.pth").write_bytes(b"junk") and _train(
        "arch=resnet18", "pretrained=imagenet", f"weights_path={tmp / 'w.pth'}")(tmp, run),
        "w.pth"),
    # --- command-line arguments ---------------------------------------------------------
    "override-without-equals": (_train("epochs"), "key=value"),
    "voc-year-not-a-release": (_train("voc_year=2010"), "'voc_year': 2010 is not one of"),
    "tab-in-run-name": (_train("name=a\tb"), "'name'"),
    "unknown-override": (_train("colour=red"), "'colour'"),
    "jobs-not-an-int": (lambda tmp, run: ["sweep", "--config", "x.yaml", "--jobs", "abc"],
                        "--jobs"),
    "jobs-zero": (lambda tmp, run: ["sweep", "--config",
                                    str(ROOT / "configs/demo.yaml"), "--jobs", "0",
                                    f"out_dir={tmp}"], "--jobs"),
    "unknown-benchmark": (lambda tmp, run: ["bench", "--only", "nope"], "'nope'"),
    "no-benchmark-named": (lambda tmp, run: ["bench", "--only", " , "], "--only names no"),
    "bench-out-in-a-missing-folder": (lambda tmp, run: [
        "bench", "--quick", "--only", "gmm", "--out", str(tmp / "no" / "b.json")], "--out"),
    "data-stats-without-root": (lambda tmp, run: ["data", "stats", "voc"],
                                "bmx data stats voc needs --root"),
    "data-stats-root-for-generated-data": (lambda tmp, run: [
        "data", "stats", "digits-lt", "--root", str(tmp)], "--root"),
    "train-without-config": (lambda tmp, run: ["train"], "--config"),
    "overrides-with-resume": (lambda tmp, run: ["train", "--resume", str(run), "epochs=9"],
                              "overrides"),
    "unknown-command": (lambda tmp, run: ["trian"], "trian"),
    "unknown-dataset": (lambda tmp, run: ["data", "stats", "imagenet"], "imagenet"),
    # --- dataset files ------------------------------------------------------------------
    "coco-bad-json": (lambda tmp, run: _coco(tmp, lambda r: (
        r / "annotations" / "instances_train2014.json").write_text("{nope")),
        "instances_train2014.json"),
    "coco-missing-image": (lambda tmp, run: _coco(tmp, lambda r: (
        r / "train2014" / "c.png").unlink()), "c.png"),
    "corrupt-jpeg": (lambda tmp, run: _coco(tmp, _corrupt_jpeg), "a.jpg"),
    # COCO files that mislabelled silently or escaped as tracebacks (issue: data loss)
    "coco-duplicate-image-id": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d["images"][2].update(id=30))), "images.id 30 appears twice"),
    "coco-duplicate-category-id": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d["categories"].append({"id": 18, "name": "wolf"}))),
        "categories.id 18 appears twice"),
    "coco-duplicate-category-name": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d["categories"].append({"id": 19, "name": "dog"}))),
        "categories.name 'dog' appears twice"),
    "coco-string-image-id": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d["images"][0].update(id="30"))), "images[0].id must be an integer"),
    "coco-images-a-dict": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d.update(images={"30": "c.png"}))), "'images' must be a list"),
    "coco-image-without-file-name": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d["images"][1].pop("file_name"))), "images[1].file_name"),
    "coco-annotation-unknown-category": (lambda tmp, run: _coco(tmp, _edit_coco(
        lambda d: d["annotations"][0].update(category_id=99))),
        "category_id: unknown category id 99"),
    "voc-unknown-class": (lambda tmp, run: _voc(tmp, lambda r: (
        r / "VOC2007" / "Annotations" / "000001.xml").write_text(
        (r / "VOC2007" / "Annotations" / "000001.xml").read_text().replace("dog", "dragon"))),
        "dragon"),
    "voc-missing-imageset": (lambda tmp, run: _voc(tmp, lambda r: (
        r / "VOC2007" / "ImageSets" / "Main" / "trainval.txt").unlink()), "trainval.txt"),
    "manifest-unknown-label": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "train.csv").write_text("path,labels\nimg/a.png,cat;unicorn\n")), "unicorn"),
    "manifest-missing-image": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "train.csv").write_text("path,labels\nimg/gone.png,cat\n")), "gone.png"),
    "manifest-path-outside-its-root": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "train.csv").write_text("path,labels\n../../../etc/passwd,cat\n")),
        "manifest_allow_outside_root"),
    "manifest-classes-latin-1": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "classes.txt").write_bytes("cat\ncaf\xe9\n".encode("latin-1"))), "classes.txt"),
    "manifest-csv-latin-1": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "train.csv").write_bytes("path,labels\nimg/a.png,caf\xe9\n".encode("latin-1"))),
        "train.csv: not UTF-8 text"),
    "manifest-labels-separated-by-commas": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "train.csv").write_text("path,labels\nimg/a.png,cat,dog\n")), "separate labels"),
    "manifest-png-not-an-image": (lambda tmp, run: _manifest(tmp, lambda r: (
        r / "img" / "a.png").write_text("not a png")), "a.png"),
    # --- run directories ----------------------------------------------------------------
    "resume-missing-dir": (lambda tmp, run: ["train", "--resume", str(tmp / "never")],
                           "never"),
    "resume-truncated-metrics": (_resume_after(_truncate_metrics), "metrics.jsonl"),
    "resume-finished-run-with-truncated-metrics": (
        _resume_after(_truncate_metrics, finished=True), "of the finished run holds epochs"),
    "resume-empty-checkpoint": (_resume_after(_empty_checkpoint), "corrupt"),
    "resume-foreign-checkpoint": (_resume_after(_foreign_checkpoint), "cannot be resumed"),
    "resume-edited-config": (_resume_after(_edited_config), "method"),
    "resume-weights-that-do-not-fit": (_resume_after(_changed_width), "does not fit"),
    "train-over-an-existing-run": (lambda tmp, run: ["train", "--config",
                                                     str(ROOT / "configs/digits_balancemix.yaml"),
                                                     *TINY_ARGS, f"out_dir={run.parent}",
                                                     "name=bm"], "already exists"),
    # --- sweeps and reports -------------------------------------------------------------
    "sweep-fixed-a-list": (lambda tmp, run: _sweep(tmp, "fixed: [1, 2]\ngrid:\n  seed: [0]\n"),
                           "'fixed'"),
    "sweep-fixed-an-empty-list": (_tiny_sweep("fixed: []\ngrid:\n  seed: [0]\n"), "'fixed'"),
    "sweep-grid-a-number": (_tiny_sweep("grid: 0\n"), "'grid'"),
    "sweep-grid-an-empty-list": (_tiny_sweep("grid: []\n"), "'grid'"),
    "sweep-unknown-key": (lambda tmp, run: _sweep(tmp, "grid: {}\nfixd: {}\n"), "'fixd'"),
    "sweep-given-a-training-config": (lambda tmp, run: _sweep(tmp, "method: bce\nepochs: 2\n"),
                                      "a training config, not a sweep file"),
    "train-given-a-sweep-file": (lambda tmp, run: _config(tmp, "grid:\n  seed: [0, 1]\n"),
                                 "a sweep file (it has a 'grid'); run it with: bmx sweep"),
    "sweep-name-climbs-out": (lambda tmp, run: _sweep(
        tmp, f"name: '..'\nout_dir: {tmp / 'o'}\ngrid:\n  seed: [0]\n"), "sweep name '..'"),
    "sweep-out-dir-a-list": (lambda tmp, run: _sweep(tmp, "out_dir: [a]\ngrid:\n  seed: [0]\n"),
                             "'out_dir'"),
    "sweep-into-a-run-directory": (lambda tmp, run: _sweep(
        tmp, f"name: {run.name}\nout_dir: {run.parent}\ngrid:\n  seed: [0]\n"),
        "no sweep directory"),
    "sweep-name-in-the-grid": (lambda tmp, run: _sweep(tmp, "grid:\n  name: [a, b]\n"),
                               "'name' is where the sweep writes"),
    "sweep-out-dir-in-fixed": (lambda tmp, run: _sweep(
        tmp, f"fixed:\n  out_dir: {tmp}\ngrid:\n  seed: [0]\n"), "'out_dir' is where"),
    "resume-with-config": (lambda tmp, run: ["train", "--resume", str(run), "--config",
                                             str(tmp / "x.yaml")], "--config does not go"),
    "resume-with-overwrite": (lambda tmp, run: ["train", "--resume", str(run), "--overwrite"],
                              "--overwrite does not go"),
    "sweep-empty-axis": (lambda tmp, run: _sweep(tmp, "grid:\n  lr: []\n"), "'lr'"),
    "sweep-names-collide": (lambda tmp, run: _sweep(
        tmp, "grid:\n  variant:\n    - {label: 'lr 0.01', method: bce}\n"
             "    - {label: 'lr/0.01', method: balancemix}\n"), "'lr/0.01'"),
    "sweep-too-many-points": (lambda tmp, run: _sweep(
        tmp, "grid:\n" + "".join(f"  {key}: {list(range(30))}\n"
                                 for key in ("seed", "data_seed", "noise_seed"))),
        "--max-points"),
    "resume-a-sweep-directory": (lambda tmp, run: ["train", "--resume", str(_fake_sweep(tmp))],
                                 "same bmx sweep command"),
    "report-bad-saved-config": (_report_bad_config, "'epochs'"),
    # files of a finished run that used to fail inside the notebooks, a line per notebook
    "report-metrics-line-cut-short": (_report_after(lambda r: (r / "metrics.jsonl").write_text(
        (r / "metrics.jsonl").read_text() + '{"epoch": 3, "ma')), "line 3 is not valid JSON"),
    "report-metrics-emptied": (_report_after(lambda r: (r / "metrics.jsonl").write_text("")),
                               "metrics.jsonl of the finished run holds epochs []"),
    "report-metrics-binary": (_report_after(lambda r: (r / "metrics.jsonl").write_bytes(
        b"\xa1\xff\x00")), "metrics.jsonl is not UTF-8 text"),
    "report-summary-corrupt": (_report_after(lambda r: (r / runs.SUMMARY_FILE).write_text("{")),
                               "summary.json is not valid JSON"),
    "report-labels-corrupt": (_report_after(lambda r: (r / runs.LABELS_FILE).write_bytes(
        b"PK\x03\x04 not a zip")), "labels.npz is not a readable .npz file"),
    "report-config-truncated": (_report_after(lambda r: runs.config_path(r).write_text(
        "name: bm\nout_dir: runs\n")), "config.yaml lacks 'method' (truncated?)"),
    "resume-without-labels": (_resume_after(lambda t, tmp: (t / runs.LABELS_FILE).unlink()),
                              "labels.npz is missing"),
    "resume-with-corrupt-labels": (_resume_after(lambda t, tmp: (t / runs.LABELS_FILE)
                                                 .write_bytes(b"junk")), "labels.npz is not"),
    "out-dir-is-a-file": (lambda tmp, run: (tmp / "f").write_text("x") and _train(
        f"out_dir={tmp / 'f' / 'runs'}")(tmp, run), "is a file, not a folder"),
    # procfs takes no new file, even from root: refused before any data is built (it was
    # refused after pretraining with a bare "[Errno 2] No such file or directory: '/proc/x'")
    "out-dir-the-file-system-refuses": (_train("out_dir=/proc/bmxlib-test"),
                                        "cannot write in /proc for the run directory"),
    "report-out-the-file-system-refuses": (lambda tmp, run: [
        "report", str(run), "--out", "/proc/bmxlib-test"], "cannot create the report folder"),
    "report-missing-dir": (lambda tmp, run: ["report", str(tmp / "gone")], "gone"),
    "report-not-a-run": (lambda tmp, run: ["report", str(tmp)], "neither a run"),
    "report-out-inside-the-run": (lambda tmp, run: [
        "report", str(run), "--out", str(run / "report")], "lies in the directory reported on"),
    "report-out-is-a-file": (lambda tmp, run: (tmp / "f").write_text("x") and [
        "report", str(run), "--out", str(tmp / "f")], "f"),
}


@pytest.mark.parametrize("entry", sorted(CATALOGUE), ids=sorted(CATALOGUE))
def test_bad_input_is_one_line_and_exit_2(entry, tmp_path, finished, capsys):
    make, needle = CATALOGUE[entry]
    before = _digest(finished)
    argv = make(tmp_path, finished)
    capsys.readouterr()
    code = cli.main(argv)
    assert code == 2, f"exit {code}"
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("bmx: error:")]
    assert len(errors) == 1, err
    assert needle in errors[0], errors[0]
    assert "Traceback" not in "\n".join(err)
    assert _digest(finished) == before  # the existing run is untouched


def test_imagenet_weights_that_cannot_be_fetched_are_one_line(tmp_path, monkeypatch, capsys):
    # an offline machine: the download fails (it printed a RuntimeError traceback)
    from urllib.error import URLError

    from torchvision.models import WeightsEnum

    def offline(self, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    code = cli.main(_train("arch=resnet18", "pretrained=imagenet")(tmp_path, None))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("bmx: error: could not fetch ImageNet weights for resnet18")
    assert "weights_path" in err[0]


def test_the_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 30


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="is empty"):
        cli.main(["--debug", *_config(tmp_path, "\n")])


def test_a_dataloader_worker_error_is_one_line():
    class WorkerError(ValueError):
        pass

    message = ("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most "
               "recent call last):\n  File \"x.py\", line 1, in f\n    raise ValueError(...)\n"
               "ValueError: coco image /data/x.jpg: cannot decode")
    assert cli.one_line(WorkerError(message)) == "coco image /data/x.jpg: cannot decode"
    assert json.dumps(cli.one_line(WorkerError(message)))  # plain text
