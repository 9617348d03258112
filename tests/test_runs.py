"""Run-directory helpers: atomic writes, JSON lines, load_run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bmxlib.runs import (
    append_jsonl,
    atomic_write_json,
    load_run,
    read_jsonl,
    to_jsonable,
    truncate_jsonl,
)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": [np.int64(2)]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_jsonl_append_read_truncate(tmp_path):
    path = tmp_path / "m.jsonl"
    for epoch in (1, 2, 3):
        append_jsonl(path, {"epoch": epoch, "mAP": math.nan if epoch == 2 else 0.5})
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2, 3]
    assert read_jsonl(path)[1]["mAP"] is None  # NaN becomes null, valid JSON
    truncate_jsonl(path, max_epoch=2)
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2]


def test_to_jsonable_handles_numpy_and_inf():
    assert to_jsonable({"a": np.array([1.0, np.inf]), "b": np.bool_(True)}) == {
        "a": [1.0, None], "b": True}


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
