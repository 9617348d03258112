"""The run directory: truncating metrics on resume, load_run."""

from __future__ import annotations

import pytest

from bmxlib.io import append_jsonl, read_jsonl
from bmxlib.runs import load_run, truncate_jsonl


def test_load_run_rejects_a_non_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run(tmp_path)


def test_load_run_gives_everything(balancemix_run):
    run = load_run(balancemix_run)
    assert run.complete and run.name == "bm"
    assert run.config["method"] == "balancemix"
    assert run.class_names == [str(d) for d in range(10)]
    assert run.noisy_labels.shape == run.clean_labels.shape == (240, 10)
    assert set(run.shot_groups) <= {"many", "medium", "few"}
    assert run.metric("mAP").shape == (2,)


def test_truncate_keeps_epochs_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "m.jsonl"
    for epoch in (1, 2, 3):
        append_jsonl(path, {"epoch": epoch})
    truncate_jsonl(path, max_epoch=2)
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2]
