"""bmxlib.regime: the regime check of docs/method.md §5 on hand-made sweeps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from bmxlib import regime
from bmxlib.cli import main


def test_plateau_movement_reads_the_seed_mean_over_the_last_fifth():
    curves = [{70: 0.0, 80: 0.5, 90: 0.6, 100: 0.7},
              {70: 0.9, 80: 0.7, 90: 0.6, 100: 0.7}]
    # seed means over epochs >= 80: 0.6, 0.6, 0.7 (epoch 70 lies outside the tail)
    assert regime.plateau_movement(curves, 100) == pytest.approx(0.1)
    assert math.isnan(regime.plateau_movement([{90: 0.5}, {100: 0.5}], 100))  # no shared epoch
    assert math.isnan(regime.plateau_movement([{10: 0.5}], 100))


def _point(root: Path, name: str, labels: dict[str, str], curve: dict[int, float],
           memorized: float | None) -> dict:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"method": labels.get("method", "bce")}))
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"epoch": e, "mAP": v}) + "\n" for e, v in sorted(curve.items())))
    last = max(curve)
    summary = {"epochs": last, "mAP": curve[last], "total_seconds": 100.0}
    if memorized is not None:
        summary["memorized_noisy"] = memorized
        summary["memorized_false_positives"] = memorized / 4
    (run / "summary.json").write_text(json.dumps(summary))
    return {"name": name, "labels": labels}


@pytest.fixture
def calibration_sweep(tmp_path) -> Path:
    """Setting A meets every target; setting B memorizes too little; an ASL run is
    ignored."""
    root = tmp_path / "calibration"
    finals = {"clean": (0.9, None), "mislabel-40": (0.75, 0.5), "flip-40": (0.6, 0.45),
              "missing": (0.78, 1.0)}
    points = []
    for setting, memorized_scale in (("A", 1.0), ("B", 0.5)):
        for noise, (final, memorized) in finals.items():
            for seed, shift in (("0", 0.01), ("1", -0.01)):
                curve = {80: final + shift - 0.002, 90: final + shift, 100: final + shift}
                points.append(_point(
                    root, f"setting={setting}__noise={noise}__seed={seed}",
                    {"setting": setting, "noise": noise, "method": "bce", "seed": seed},
                    curve, None if memorized is None else memorized * memorized_scale))
    points.append(_point(root, "asl", {"setting": "A", "noise": "clean", "method": "asl",
                                       "seed": "0"}, {100: 0.1}, None))
    (root / "sweep.json").write_text(json.dumps({"source": "c.yaml", "points": points}))
    return root


def test_regime_rows_compute_drops_memorization_and_the_verdict(calibration_sweep):
    a, b = regime.regime_rows(calibration_sweep)
    assert (a["setting"], a["seeds"], a["epochs"]) == ("A", 2, 100)  # the ASL run is left out
    assert a["clean"] == pytest.approx(0.9) and a["plateau"] == pytest.approx(0.002)
    assert a["mislabel-40_drop"] == pytest.approx(0.15)
    assert a["flip-40_drop"] == pytest.approx(0.30)
    assert a["missing_drop"] == pytest.approx(0.12)
    assert a["flip-40_memorized"] == pytest.approx(0.45) and a["seconds"] == 100.0
    assert a["meets"] is True
    assert b["mislabel-40_memorized"] == pytest.approx(0.25) and b["meets"] is False
    assert a["flip-40_memorized_fp"] == pytest.approx(0.45 / 4)


def test_regime_markdown_and_cli(calibration_sweep, capsys):
    assert main(["data", "regime", str(calibration_sweep)]) == 0
    out = capsys.readouterr().out
    assert "| A | 2 | 90.0 ± 1.4 | 0.20 | 75.0 ± 1.4 (-15.0)" in out
    assert "| 0.50 / 0.45 / 1.00 | 0.12 / 0.11 |" in out  # all corrupted / false positives
    assert out.count("not met") == 1


def test_regime_needs_a_noise_axis(tmp_path, capsys):
    root = tmp_path / "s"
    points = [_point(root, "p", {"method": "bce", "seed": "0"}, {10: 0.5}, None)]
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": points}))
    assert main(["data", "regime", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'noise' axis" in err[0]


def test_a_sweep_without_the_clean_setting_is_refused_in_one_line(calibration_sweep, capsys):
    """Every drop is measured against clean: without it the table was all nan."""
    import shutil

    for run in calibration_sweep.glob("*noise=clean*"):
        shutil.rmtree(run)
    assert main(["data", "regime", str(calibration_sweep)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'clean'" in err[0], err


@pytest.mark.parametrize("method", ["bce", "mixup"])
def test_a_sweep_of_one_method_is_read_only_if_that_method_is_bce(tmp_path, capsys, method):
    """Without a method axis the method is in each run's config: a Mixup sweep's runs were
    read as BCE's and judged against BCE's regime targets."""
    root = tmp_path / "s"
    points = [_point(root, f"noise={noise}__seed=0", {"noise": noise, "seed": "0"},
                     {100: final}, None) for noise, final in (("clean", 0.9), ("flip-40", 0.5))]
    for point in points:
        (root / point["name"] / "config.yaml").write_text(yaml.safe_dump({"method": method}))
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": points}))
    rows = regime.regime_rows(root)
    if method == "bce":
        assert len(rows) == 1 and rows[0]["flip-40_drop"] == pytest.approx(0.4)
    else:
        assert rows == []
        assert main(["data", "regime", str(root)]) == 0
        assert "(no finished BCE runs)" in capsys.readouterr().out


@pytest.mark.parametrize(("curves", "rise"), [
    # seed means over epochs >= 80: 0.6, 0.6, 0.7 -> last - first = +0.1
    ([{70: 0.0, 80: 0.5, 90: 0.6, 100: 0.7}, {70: 0.9, 80: 0.7, 90: 0.6, 100: 0.7}], 0.1),
    # a curve that peaks inside the tail and falls back (memorization): 0.5 -> 0.4
    ([{80: 0.5, 90: 0.7, 100: 0.4}], -0.1),
    # one shared tail epoch: nothing to rise over
    ([{80: 0.5, 100: 0.6}, {80: 0.4, 90: 0.6}], 0.0),
], ids=["rising", "falling-back", "one-shared-epoch"])
def test_tail_rise_is_signed_last_minus_first_of_the_seed_mean(curves, rise):
    assert regime.tail_rise(curves, 100) == pytest.approx(rise)


def test_tail_rise_without_a_shared_tail_epoch_is_nan():
    assert math.isnan(regime.tail_rise([{90: 0.5}, {100: 0.5}], 100))
    assert math.isnan(regime.tail_rise([], 100))


@pytest.fixture
def two_method_sweep(tmp_path) -> Path:
    """BCE flat at the end of its 100 epochs, Mixup still rising 1 point, two seeds each."""
    root = tmp_path / "paper"
    points = []
    for method, gain in (("bce", 0.002), ("mixup", 0.01)):
        for seed, shift in (("0", 0.01), ("1", -0.01)):
            curve = {70: 0.5, 80: 0.6 + shift, 90: 0.6 + shift + gain / 2,
                     100: 0.6 + shift + gain}
            points.append(_point(root, f"seed={seed}__method={method}",
                                 {"seed": seed, "method": method}, curve, None))
    (root / "sweep.json").write_text(json.dumps({"source": "p.yaml", "points": points}))
    return root


def test_plateau_rows_read_every_method(two_method_sweep):
    bce, mixup = regime.plateau_rows(two_method_sweep)
    assert (bce["method"], bce["seeds"], bce["epochs"]) == ("bce", 2, 100)
    assert bce["mAP"] == pytest.approx(0.602) and bce["rise"] == pytest.approx(0.002)
    assert bce["movement"] == pytest.approx(0.002) and bce["rising"] is False
    assert mixup["rise"] == pytest.approx(0.01) and mixup["rising"] is True


def test_plateau_cli_prints_the_table_and_the_count(two_method_sweep, capsys):
    assert main(["data", "plateau", str(two_method_sweep)]) == 0
    out = capsys.readouterr().out
    assert "| mixup | 2 | 100 | 61.0 | 1.00 | +1.00 | yes |" in out
    assert "| bce | 2 | 100 | 60.2 | 0.20 | +0.20 | no |" in out
    assert "1 of 2 settings still rising." in out


def test_plateau_cli_refuses_a_folder_that_is_no_sweep_in_one_line(tmp_path, capsys):
    assert main(["data", "plateau", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0]
