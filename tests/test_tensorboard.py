"""TensorBoard event files: every run writes its per-epoch scalars and the sampler's
histogram under runs/<name>/tb/, and they read back as what metrics.jsonl holds."""

from __future__ import annotations

import pytest

from bmxlib import runs
from bmxlib.engine import fit

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(runs.tensorboard_dir(run_dir)))
    accumulator.Reload()
    return accumulator


def test_event_files_hold_what_metrics_jsonl_holds(tiny_config):
    run_dir = fit(tiny_config("name=tb", "method=balancemix", "noise=mislabel",
                              "noise_rate=0.4", "epochs=2"))
    events = _events(run_dir)
    tags = events.Tags()
    for tag in ("train/loss", "train/lr", "train/images_per_s", "test/mAP", "test/mAP_few",
                "labels/selection_precision", "noise/memorized_noisy"):
        assert tag in tags["scalars"], tag
    assert "sampler/relative_probability" in tags["histograms"]
    metrics = runs.read_metrics(run_dir)
    logged = [(e.step, e.value) for e in events.Scalars("test/mAP")]
    assert [step for step, _ in logged] == [1, 2]
    assert logged[-1][1] == pytest.approx(metrics[-1]["mAP"], rel=1e-6)


def test_tensorboard_false_writes_no_events(tiny_config):
    run_dir = fit(tiny_config("name=notb", "tensorboard=false"))
    assert not runs.tensorboard_dir(run_dir).exists()
