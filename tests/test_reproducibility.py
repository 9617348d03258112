"""Same config and seeds, same numbers, whoever runs them (docs/reliability.md).

The cached digits backbone must not depend on which run filled the cache first, a tiny
run trained twice must match exactly, and a sweep point must not depend on ``--jobs``.
"""

from __future__ import annotations

import json

import pytest
import torch

from bmxlib.config import load_config
from bmxlib.engine import fit
from bmxlib.pretrain import backbone_cache_path, pretrained_digits_backbone
from tests.conftest import TINY


def _build_backbone_in(cache, monkeypatch, *, global_seed: int, threads: int):
    monkeypatch.setenv("BMXLIB_CACHE", str(cache))
    torch.manual_seed(global_seed)  # whatever ran before: another seed, another config
    torch.rand(17)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        state = pretrained_digits_backbone(width=8, seed=0)
    finally:
        torch.set_num_threads(old)
    return state, backbone_cache_path(width=8, seed=0).read_bytes()


def test_backbone_cache_is_bit_identical_whoever_builds_it(tmp_path, monkeypatch):
    first, first_file = _build_backbone_in(tmp_path / "a", monkeypatch, global_seed=1, threads=2)
    second, second_file = _build_backbone_in(tmp_path / "b", monkeypatch, global_seed=12345,
                                             threads=1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert first_file == second_file
    assert not list((tmp_path / "a").glob(".*"))  # no temporaries left beside the cache


def test_backbone_leaves_the_callers_random_state_and_threads_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("BMXLIB_CACHE", str(tmp_path))
    torch.manual_seed(7)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    pretrained_digits_backbone(width=8, seed=3)  # a cache miss: it trains
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads


def test_cache_key_holds_what_determines_the_backbone():
    paths = {backbone_cache_path(width=8, seed=0), backbone_cache_path(width=16, seed=0),
             backbone_cache_path(width=8, seed=1)}
    assert len(paths) == 3


def _metrics_and_weights(run_dir):
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in metrics:  # wall-clock fields differ between any two runs
        for key in ("seconds", "train_seconds", "images_per_s"):
            record.pop(key)
        # the run directory's size holds those timings as text ("1.5" vs "1.51")
        record.pop("run_dir_bytes", None)
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    return metrics, state


@pytest.mark.parametrize("method", ["bce", "balancemix"])
def test_the_same_config_trained_twice_matches_exactly(tmp_path, method):
    common = [*TINY, f"out_dir={tmp_path}", f"method={method}", "noise=mislabel",
              "noise_rate=0.4", "pretrained=digits"]
    a = fit(load_config(None, [*common, "name=a"]))
    b = fit(load_config(None, [*common, "name=b"]))
    metrics_a, weights_a = _metrics_and_weights(a)
    metrics_b, weights_b = _metrics_and_weights(b)
    assert metrics_a == metrics_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_every_run_records_what_determines_its_numbers(tmp_path):
    run_dir = fit(load_config(None, [*TINY, f"out_dir={tmp_path}", "name=p"]))
    info = json.loads((run_dir / "provenance.json").read_text())
    assert info["torch"] == torch.__version__ and info["torch_threads"] == 1
    for key in ("numpy", "python", "cpu", "cpu_capability", "device", "sklearn"):
        assert info[key], key
    cached = info["cached_inputs"]
    assert set(cached) == {"dataset", "digits_backbone"}
    assert all(len(entry["sha256"]) == 16 for entry in cached.values())


def test_a_sweep_point_does_not_depend_on_jobs(tmp_path):
    # no `threads` in the sweep: the point's thread count must still not follow --jobs
    fixed = "\n".join(f"  {item.split('=')[0]}: {item.split('=')[1]}" for item in TINY
                      if not item.startswith(("threads", "epochs=")))
    grid = "grid:\n  method: [bce, mixup]\n"
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}\n  epochs: 1\n{grid}")
    from bmxlib.sweep import run_sweep

    one = run_sweep(path, name="jobs1", jobs=1)
    two = run_sweep(path, name="jobs2", jobs=2)
    for point in ("method=bce", "method=mixup"):
        metrics_one, weights_one = _metrics_and_weights(one / point)
        metrics_two, weights_two = _metrics_and_weights(two / point)
        assert metrics_one == metrics_two
        assert all(torch.equal(weights_one[k], weights_two[k]) for k in weights_one)
        threads = [json.loads((d / point / "provenance.json").read_text())["torch_threads"]
                   for d in (one, two)]
        assert threads == [1, 1]
