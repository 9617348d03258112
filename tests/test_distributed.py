"""Multi-process training with torchrun and the gloo backend on the CPU (docs/method.md §1.1, §7).

Two processes train a tiny BalanceMix on digits-lt. Checked: every rank holds the same
global F, hence the same sampling probabilities and the same 2K GMM parameters; the
minority sampler splits one global draw sequence between the ranks; DDP keeps the
weights equal; and ``python -m bmxlib.train`` under torchrun writes one complete run
directory (rank 0 only). ROS, co-teaching (with its DDP-wrapped peer) and the T-estimator
(with its held-out validation set) get the same checks: identical draws, selections,
transition matrices and weights on both ranks, and as many steps per epoch as the
learning-rate schedule was sized for.

This file is also the worker script: torchrun runs it with ``--worker OUT_DIR``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TINY = ["n_train=200", "n_test=100", "width=8", "batch_size=32", "epochs=2", "warmup_epochs=1",
        "progress=false", "threads=1", "device=cpu", "pretrained=none", "noise=mislabel",
        "noise_rate=0.4", "diagnostics_every=1"]
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={_free_port()}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def rank_files(tmp_path_factory):
    """Run the worker below under torchrun; one .npz per rank."""
    out = tmp_path_factory.mktemp("ddp")
    _torchrun(str(Path(__file__).resolve()), "--worker", str(out))
    files = [out / f"rank{r}.npz" for r in (0, 1)]
    assert all(f.is_file() for f in files)
    return [dict(np.load(f)) for f in files]


@pytest.mark.parametrize(
    "key",
    ["probabilities_1", "probabilities_2", "gmm_means_2", "gmm_variances_2", "gmm_weights_2",
     "presence_2", "state_2", "weight_2", "weights_checksum", "ros_global_draws",
     "ros_weights", "coteaching_keep_model", "coteaching_keep_peer", "coteaching_weights",
     "coteaching_peer_weights", "t_estimator_transition", "t_estimator_weights"],
    ids=str,
)
def test_ranks_agree(rank_files, key):
    # same global F on both ranks -> identical sampler, mixtures and managed labels
    first, second = rank_files
    np.testing.assert_array_equal(first[key], second[key])


def test_probabilities_and_mixtures_are_real(rank_files):
    record = rank_files[0]
    assert record["probabilities_2"].shape == (200,)
    assert np.isclose(record["probabilities_2"].sum(), 1.0)
    assert record["probabilities_2"].std() > 0  # not uniform: the pass did happen
    assert record["gmm_means_2"].shape == (10, 2, 2)
    assert np.isfinite(record["gmm_means_2"]).any()


@pytest.mark.parametrize("method", ["ros", "coteaching", "t_estimator"])
def test_every_rank_takes_the_steps_the_schedule_expects(rank_files, method):
    for record in rank_files:
        assert record[f"{method}_steps_match"].all()


def test_ros_draws_one_global_sequence_split_between_ranks(rank_files):
    first, second = rank_files
    np.testing.assert_array_equal(first["ros_my_draws"], first["ros_global_draws"][0::2])
    np.testing.assert_array_equal(second["ros_my_draws"], first["ros_global_draws"][1::2])
    assert not np.array_equal(first["ros_my_draws"], second["ros_my_draws"])


def test_minority_draws_are_split_not_duplicated(rank_files):
    first, second = rank_files
    global_sequence = first["global_draws"]
    np.testing.assert_array_equal(global_sequence, second["global_draws"])
    np.testing.assert_array_equal(first["my_draws"], global_sequence[0::2])
    np.testing.assert_array_equal(second["my_draws"], global_sequence[1::2])


def test_torchrun_train_writes_one_complete_run_dir(tmp_path):
    done = _torchrun("-m", "bmxlib.train", "--config", "configs/digits_balancemix.yaml",
                     *TINY, f"out_dir={tmp_path}", "name=ddp")
    run_dir = tmp_path / "ddp"
    for name in ("config.yaml", "labels.npz", "dataset.json", "metrics.jsonl", "summary.json",
                 "checkpoints/last.pt", "diagnostics/epoch_001.npz", "diagnostics/epoch_002.npz"):
        assert (run_dir / name).is_file(), name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # written once, by rank 0 only
    assert "labels_clean" in records[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]
    assert "run written to" in done.stdout


# ------------------------------------------------------------------------------------
# the worker (runs in each torchrun process)
# ------------------------------------------------------------------------------------
def _worker(out_dir: str) -> None:
    import torch

    from bmxlib import distributed as dist
    from bmxlib.config import load_config
    from bmxlib.experiment import build
    from bmxlib.steps import EngineContext, open_epoch, seed_epoch, train_one_epoch

    dist.init()
    assert dist.world_size() == 2
    config = load_config(ROOT / "configs" / "digits_balancemix.yaml",
                         [*TINY, f"out_dir={out_dir}", "name=worker"])
    setup = build(config)
    record: dict[str, np.ndarray] = {}
    for epoch in (1, 2):
        seed_epoch(config.seed, epoch)
        train_one_epoch(setup, epoch)
        diagnostics = setup.method.end_of_epoch(EngineContext(setup, epoch, False)).diagnostics
        record[f"probabilities_{epoch}"] = setup.method.probabilities.cpu().numpy()
        record[f"presence_{epoch}"] = diagnostics["presence_confidence"]
        for key in ("gmm_means", "gmm_variances", "gmm_weights"):
            record[f"{key}_{epoch}"] = diagnostics[key]
    record["state_2"] = setup.method.managed.state.cpu().numpy()
    record["weight_2"] = setup.method.managed.weight.cpu().numpy()
    minority = open_epoch(setup, 3).minority  # the sampler of the next epoch, new p
    record["global_draws"] = minority.global_indices().numpy()
    record["my_draws"] = np.array(list(minority))
    params = torch.cat([p.detach().flatten() for p in setup.model.parameters()])
    record["weights_checksum"] = params.double().sum().reshape(1).numpy()
    record.update(_other_methods(out_dir))
    np.savez(Path(out_dir) / f"rank{dist.rank()}.npz", **record)
    dist.barrier()


def _checksum(module) -> np.ndarray:
    import torch

    return torch.cat([p.detach().flatten() for p in module.parameters()]).double().sum() \
        .reshape(1).numpy()


def _other_methods(out_dir: str) -> dict[str, np.ndarray]:
    """ROS, co-teaching and T-estimator under DDP: what every rank must agree on."""
    from bmxlib.config import load_config
    from bmxlib.distributed import unwrap
    from bmxlib.experiment import build
    from bmxlib.steps import EngineContext, open_epoch, seed_epoch, train_one_epoch

    record: dict[str, np.ndarray] = {}
    for method in ("ros", "coteaching", "t_estimator"):
        config = load_config(ROOT / "configs" / "digits_balancemix.yaml",
                             [*TINY, f"out_dir={out_dir}", f"name={method}",
                              f"method={method}"])
        setup = build(config)
        steps = []
        for epoch in (1, 2):
            seed_epoch(config.seed, epoch)
            first, second, _, _ = open_epoch(setup, epoch)
            steps += [len(first), len(second)]
            train_one_epoch(setup, epoch)
            setup.method.end_of_epoch(EngineContext(setup, epoch, False))
        # every rank takes as many steps as the schedule was sized for
        record[f"{method}_steps_match"] = np.array([s == setup.steps_per_epoch for s in steps])
        record[f"{method}_weights"] = _checksum(setup.model)
        if method == "ros":
            first = open_epoch(setup, 3).first
            record["ros_global_draws"] = first.sampler.global_indices().numpy()
            record["ros_my_draws"] = np.array(list(first.sampler))
        if method == "coteaching":
            record["coteaching_keep_model"] = setup.method.keep_for_model.cpu().numpy()
            record["coteaching_keep_peer"] = setup.method.keep_for_peer.cpu().numpy()
            record["coteaching_peer_weights"] = _checksum(unwrap(setup.method.peer))
        if method == "t_estimator":
            record["t_estimator_transition"] = setup.method.transition.cpu().numpy()
    return record


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker(sys.argv[sys.argv.index("--worker") + 1])
