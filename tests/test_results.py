"""bmxlib.results: records, mean ± std over seeds, and the tables of sweeps and reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bmxlib import results
from bmxlib.runs import load_run


def _fake_sweep(root: Path, summaries: dict[str, tuple[dict, dict | None]]) -> Path:
    """A sweep directory whose points have the given (labels, summary or None)."""
    points = []
    for name, (labels, summary) in summaries.items():
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(yaml.safe_dump({"method": labels["method"]}))
        if summary is not None:
            (root / name / "summary.json").write_text(json.dumps(summary))
        points.append({"name": name, "labels": labels})
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": points}))
    return root


def _summary(value: float) -> dict:
    return {"mAP": value, "mAP_many": value, "mAP_medium": value, "mAP_few": math.nan,
            "memorized_noisy": value / 2}


def test_results_rows_average_over_seeds():
    records = [{"method": "bce", "seed": s, "mAP": v, "mAP_many": v, "mAP_medium": v,
                "mAP_few": v} for s, v in ((0, 0.5), (1, 0.7))]
    (row,) = results.results_rows(["method", "seed"], records)
    assert row["mAP_mean"] == pytest.approx(0.6) and row["seeds"] == 2
    assert row["mAP_std"] == pytest.approx(0.1414213, rel=1e-5)


def test_collect_keeps_finished_points_in_grid_order(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {
        "b0": ({"method": "bce", "seed": "0"}, _summary(0.5)),
        "b1": ({"method": "bce", "seed": "1"}, None),  # still running: left out
        "m0": ({"method": "mixup", "seed": "0"}, _summary(0.8)),
    })
    axes, records = results.collect(sweep)
    assert axes == ["method", "seed"]
    assert [r["run"] for r in records] == ["b0", "m0"]
    rows = results.results_rows(axes, records)
    assert [(r["method"], r["seeds"]) for r in rows] == [("bce", 1), ("mixup", 1)]
    assert math.isnan(rows[0]["mAP_few_mean"]) and rows[1]["memorized_noisy_mean"] == 0.4


@pytest.mark.parametrize(("mean", "std", "text"),
                         [(0.834, 0.012, "83.4 ± 1.2"), (0.834, None, "83.4"),
                          (math.nan, 0.1, "–"), (None, None, "–")],
                         ids=["mean-std", "mean-only", "nan", "none"])
def test_format_percent(mean, std, text):
    assert results.format_percent(mean, std) == text


def test_an_axis_named_like_a_summary_key_keeps_its_labels(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {
        "e1": ({"method": "bce", "epochs": "100"}, {**_summary(0.5), "epochs": 100}),
        "e2": ({"method": "bce", "epochs": "120"}, {**_summary(0.6), "epochs": 120}),
    })
    _, md_path = results.write_tables(sweep)
    assert "| bce | 100 | 50.0 |" in md_path.read_text()  # one seed: no "± 0.0"


def test_tables_are_written_beside_the_sweep(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {
        "b": ({"method": "bce", "noise": "clean"}, _summary(0.5)),
        "m": ({"method": "mixup", "noise": "clean"}, _summary(0.75)),
    })
    csv_path, md_path = results.write_tables(sweep)
    table = md_path.read_text()
    assert "| bce | clean | 50.0 |" in table and "## mAP all by method × noise" in table
    assert "## Memorization of the label noise" in table and "| mixup | clean | 0.375 |" in table
    assert csv_path.read_text().splitlines()[0].startswith("method,noise,mAP_mean,mAP_std")


def test_comparison_data_and_tables(tiny_report, bm_run):
    data = results.comparison_data(tiny_report["sweep_dir"])
    assert data["axes"] == ["method", "noise", "setting"]
    assert [row["method"] for row in data["rows"]] == ["bce", "balancemix"]
    curves = data["curves"]
    assert list(curves.columns) == ["method", "noise", "setting", "seed", "run", "epoch",
                                    "measure", "value"]
    bce = "method=bce__noise=mislabel-40__setting=default"
    assert set(curves["run"]) == {bce, "method=balancemix__noise=mislabel-40__setting=default"}
    bce_map = curves[(curves["run"] == bce) & (curves["measure"] == "mAP")]
    assert list(bce_map["epoch"]) == [1, 2] and list(bce_map["method"]) == ["bce", "bce"]
    assert bce_map["value"].iloc[-1] == data["summaries"][bce]["mAP"]
    assert set(curves["seed"]) == {0}  # no seed axis: the configured seed
    # the bars' long table comes with the sweep's one collection, as long_table builds it
    pd.testing.assert_frame_equal(data["table"], results.long_table(tiny_report["sweep_dir"]))
    assert len(data["table"]) == 4 * 2 and set(data["table"]["seed"]) == {0}
    assert len(data["ablation"]) == 1 and data["ablation"][0]["re-labeling"] is True
    table = results.results_table_html(data["rows"], data["axes"])
    assert table.count("<tr>") == 3 and "selection precision" in table
    assert "memorized noisy" in table and "fit clean" in table
    last = load_run(tiny_report["sweep_dir"] / bce).metrics[-1]
    for measure in ("memorized_noisy", "fit_clean"):
        rows = curves[(curves["run"] == bce) & (curves["measure"] == measure)]
        assert rows["epoch"].iloc[-1] == 2 and rows["value"].iloc[-1] == last[measure]
    assert table.count("✓") == 0 and results.ablation_table_html(data["ablation"]).count("✓") == 5
    # paper layout: one row per method, a column group per noise setting
    paper = results.paper_table_html(data["rows"], data["axes"])
    # thresholds follow n_train, so even the tiny run has all three shot groups
    assert '<th colspan="4">mislabel-40</th>' in paper
    assert "<td>balancemix / default</td>" in paper and "<td>bce / default</td>" in paper
    assert results.paper_table_html(data["rows"], ["method"]).startswith('<table class="results">')
    single = results.comparison_data(bm_run)
    assert single["axes"] == ["method"] and len(single["rows"]) == 1


def test_compare_sweeps_puts_the_same_settings_side_by_side(tmp_path):
    reference = _fake_sweep(tmp_path / "float32", {
        "b0": ({"method": "bce", "seed": "0"}, _summary(0.70)),
        "b1": ({"method": "bce", "seed": "1"}, _summary(0.72)),
        "m0": ({"method": "mixup", "seed": "0"}, _summary(0.80)),
        "m1": ({"method": "mixup", "seed": "1"}, _summary(0.80)),
    })
    candidate = _fake_sweep(tmp_path / "bf16", {
        "b0": ({"method": "bce", "seed": "0"}, _summary(0.71)),
        "b1": ({"method": "bce", "seed": "1"}, _summary(0.71)),
        "m0": ({"method": "mixup", "seed": "0"}, _summary(0.85)),
        "a0": ({"method": "asl", "seed": "0"}, _summary(0.9)),  # not in the reference
    })
    bce, mixup = results.compare_sweeps(reference, candidate)
    assert (bce["method"], bce["reference_seeds"], bce["candidate_seeds"]) == ("bce", 2, 2)
    assert bce["difference"] == pytest.approx(0.0) and bce["within_std"]
    # the reference's seed std of bce: |0.70 - 0.72| / sqrt(2)
    assert bce["reference_std"] == pytest.approx(0.02 / math.sqrt(2))
    assert mixup["difference"] == pytest.approx(0.05) and not mixup["within_std"]
    table = results.compare_markdown([bce, mixup], reference="float32", candidate="bf16")
    assert "| mixup | 80.0 ± 0.0 (2) | 85.0 (1) | +5.0 | no |" in table
    other_grid = _fake_sweep(tmp_path / "other", {
        "n0": ({"method": "bce", "noise": "clean", "seed": "0"}, _summary(0.7))})
    with pytest.raises(ValueError, match="not a sweep of .* grid"):  # was a KeyError
        results.compare_sweeps(reference, other_grid)


@pytest.mark.parametrize(("maps", "expected"), [
    ([None, 0.07, None, 0.12, None, 0.16, 0.40], 6),  # epochs 1..7; unevaluated ones skipped
    ([0.07, 0.15, 0.151], 3),  # strictly above the threshold
    ([0.07, 0.09], None),  # never takes off (T-estimator under mislabel-40)
    ([], None),
], ids=["late", "strict", "never", "empty"])
def test_take_off_epoch_is_the_first_evaluated_epoch_above_the_threshold(maps, expected):
    metrics = [{"epoch": e, "train_loss": 1.0, **({} if m is None else {"mAP": m})}
               for e, m in enumerate(maps, 1)]
    assert results.take_off_epoch(metrics) == expected
    assert results.take_off_epoch(metrics, threshold=0.5) is None


def test_take_off_epoch_refuses_a_threshold_outside_the_unit_interval():
    with pytest.raises(ValueError, match="threshold"):
        results.take_off_epoch([], threshold=15)


# --- the sensitivity sweep ----------------------------------------------------------------
DEFAULTS = {"mix_alpha": 4.0, "relabel_epsilon": 0.975, "warmup_epochs": 3}


def _sensitivity_sweep(root: Path, points: list[tuple[str, str, dict, float]]) -> Path:
    """A sweep with (noise, setting, seed) axes: (noise, setting, config changes, mAP)."""
    labels = []
    for i, (noise, setting, changes, value) in enumerate(points):
        name = f"p{i}"
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(yaml.safe_dump(
            {"method": "balancemix", **DEFAULTS, **changes}))
        (root / name / "summary.json").write_text(json.dumps(_summary(value)))
        labels.append({"name": name, "labels": {"noise": noise, "setting": setting,
                                                "seed": "0"}})
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": labels}))
    return root


def test_sensitivity_table_counts_the_default_in_every_factor(tmp_path):
    sweep = _sensitivity_sweep(tmp_path / "s", [
        ("clean", "default", {}, 0.80),
        ("clean", "alpha-1", {"mix_alpha": 1.0}, 0.795),
        ("clean", "alpha-16", {"mix_alpha": 16.0}, 0.70),
        ("clean", "epsilon-0.9", {"relabel_epsilon": 0.9}, 0.60),
    ])
    table = results.sensitivity_table(sweep)
    assert sorted(zip(table["factor"], table["level"], table["value"])) == [
        ("alpha", 1.0, 0.795), ("alpha", 4.0, 0.80), ("alpha", 16.0, 0.70),
        ("epsilon", 0.9, 0.60), ("epsilon", 0.975, 0.80), ("warmup", 3.0, 0.80)]
    assert results.sensitivity_factors(table) == [
        ("alpha", "mixing α", [1.0, 4.0, 16.0]), ("epsilon", "re-labeling ε", [0.9, 0.975]),
        ("warmup", "warm-up epochs", [3.0])]
    # within 1 point of the best level: α = 1 (0.5 below) and 4, not 16; ε = 0.975 only
    assert results.stable_region(table, tolerance=0.01) == {
        ("alpha", "clean"): [1.0, 4.0], ("epsilon", "clean"): [0.975],
        ("warmup", "clean"): [3.0]}
    assert results.stable_region(table, tolerance=0.25)[("epsilon", "clean")] == [0.9, 0.975]


def test_sensitivity_table_refuses_a_sweep_without_a_setting_axis(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {"b0": ({"method": "bce", "seed": "0"}, _summary(0.5))})
    with pytest.raises(ValueError, match="no 'setting' axis"):
        results.sensitivity_table(sweep)
