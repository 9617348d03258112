"""bmxlib.paper_tables: the paper's COCO numbers and the method x setting tables beside them,
checked on a hand-made sweep whose cells are computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bmxlib import paper_tables
from bmxlib.cli import main


def _sweep(root: Path, values: dict[tuple[str, str, int], float], *, axis: str = "method",
           extra: dict[str, float] | None = None) -> Path:
    """A finished sweep: one run per (row, noise, seed) with last-epoch mAP ``value``."""
    points = []
    for (row, noise, seed), value in values.items():
        name = f"{axis}={row}__noise={noise}__seed={seed}"
        (root / name).mkdir(parents=True)
        method = row if axis == "method" else "balancemix"
        (root / name / "config.yaml").write_text(yaml.safe_dump({"method": method}))
        summary = {"mAP": value, "mAP_many": value, "mAP_medium": value, "mAP_few": value / 2,
                   **(extra or {})}
        (root / name / "summary.json").write_text(json.dumps(summary))
        points.append({"name": name, "labels": {axis: row, "noise": noise, "seed": str(seed)}})
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": points}))
    return root


VALUES = {
    ("bce", "clean", 0): 0.80, ("bce", "clean", 1): 0.70, ("bce", "clean", 2): 0.75,
    ("bce", "mislabel-40", 0): 0.50, ("bce", "mislabel-40", 1): 0.40,
    ("balancemix", "clean", 0): 0.90, ("balancemix", "mislabel-40", 0): 0.60,
}


def test_grid_cells_hold_each_seed_of_each_cell(tmp_path):
    cells = paper_tables.grid_cells(_sweep(tmp_path / "s", VALUES))
    assert cells[("bce", "clean")] == {0: 0.80, 1: 0.70, 2: 0.75}
    assert cells[("balancemix", "mislabel-40")] == {0: 0.60}


def test_grid_markdown_cells_drop_and_ranks_by_hand(tmp_path):
    text = paper_tables.grid_markdown(_sweep(tmp_path / "s", VALUES))
    lines = text.splitlines()
    assert lines[0] == "| method | clean | mislabel-40 |"
    # bce clean: mean 75.0, sample std 5.0, 3 seeds; mislabel-40: 45.0 ± 7.1 from 2 seeds
    assert lines[2] == "| bce | 75.0 ± 5.0 [83.4] | 45.0 ± 7.1 ⁽²⁾ [63.8] |"
    # paired by seed: (50 - 80, 40 - 70) -> -30.0; the paper's 63.8 - 83.4 = -19.6
    assert lines[3] == "| *bce: drop vs clean* |  | −30.0 [−19.6] |"
    assert lines[4] == "| balancemix | 90.0 ⁽¹⁾ [85.2] | 60.0 ⁽¹⁾ [81.6] |"
    ranks = text.split("Rank per column")[1].splitlines()
    assert "| bce | 2 | 2 |" in ranks and "| balancemix | 1 | 1 |" in ranks


def test_an_ablation_sweep_is_read_by_variant_beside_table_5(tmp_path):
    values = {("0-bce", "clean", 0): 0.8, ("5+ambiguous-weighting", "clean", 0): 0.9}
    text = paper_tables.grid_markdown(_sweep(tmp_path / "s", values, axis="variant"))
    assert "| 0-bce | 80.0 ⁽¹⁾ [83.4] |" in text
    assert "| 5+ambiguous-weighting | 90.0 ⁽¹⁾ [85.3] |" in text
    assert text.startswith("| variant | clean |")  # the rows' axis heads the table
    assert "\n| variant | clean |" in text  # and the ranks below it


def test_a_further_axis_splits_the_rows_instead_of_sharing_their_cells(tmp_path):
    """A sweep with an axis beyond method x noise x seed (configs/glyphs_coco_ll_candidates
    .yaml: candidates) printed one row per method, each cell holding whichever reading was
    read last at each seed; each reading is a row of its own, without the paper's number
    (which is the default reading's)."""
    root = tmp_path / "s"
    points = []
    for reading, values in (("dominant-zero", (0.30, 0.31)), ("mixed-zero", (0.40, 0.41))):
        for seed, value in enumerate(values):
            name = f"method=ll_r__noise=missing__candidates={reading}__seed={seed}"
            (root / name).mkdir(parents=True)
            (root / name / "config.yaml").write_text("method: ll_r\n")
            (root / name / "summary.json").write_text(json.dumps({"mAP": value}))
            points.append({"name": name, "labels": {"method": "ll_r", "noise": "missing",
                                                     "candidates": reading, "seed": str(seed)}})
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": points}))
    cells = paper_tables.grid_cells(root)
    assert cells == {("ll_r (dominant-zero)", "missing"): {0: 0.30, 1: 0.31},
                     ("ll_r (mixed-zero)", "missing"): {0: 0.40, 1: 0.41}}
    text = paper_tables.grid_markdown(root)
    assert "| ll_r (dominant-zero) | 30.5 ± 0.7 ⁽²⁾ |" in text
    assert "| ll_r (mixed-zero) | 40.5 ± 0.7 ⁽²⁾ |" in text
    assert "drop vs clean" not in text  # no clean column to drop from


def test_measure_markdown_means_a_share_over_seeds(tmp_path):
    sweep = _sweep(tmp_path / "s", {("bce", "mislabel-40", 0): 0.5, ("bce", "mislabel-40", 1):
                                    0.4}, extra={"memorized_noisy": 0.25})
    text = paper_tables.measure_markdown(sweep, "memorized_noisy")
    assert "| bce | 0.250 |" in text
    assert "| bce | 22.5 |" in paper_tables.measure_markdown(sweep, "mAP_few")
    with pytest.raises(ValueError, match="nonsense"):
        paper_tables.measure_markdown(sweep, "nonsense")


def test_the_papers_numbers_are_those_of_docs_method_11():
    """A few cells read off the paper's tables (docs/method.md §11), one per table."""
    assert paper_tables.PAPER_MAIN["balancemix"]["mislabel-40"] == 81.6  # Table 1
    assert paper_tables.PAPER_MAIN["coteaching"]["flip-40"] == 43.6  # Table 2
    assert paper_tables.PAPER_MAIN["t_estimator"]["missing"] == 16.8  # Table 3
    assert paper_tables.PAPER_ABLATION["3+clean-labels"]["flip-40"] == 74.9  # Table 5
    assert set(paper_tables.PAPER_MAIN["bce"]) == set(paper_tables.SETTINGS)


def test_bmx_tables_prints_the_grid_and_refuses_oversampling_without_axes_in_one_line(
        tmp_path, capsys):
    sweep = _sweep(tmp_path / "s", VALUES)
    assert main(["tables", str(sweep), "--measure", "mAP_few"]) == 0
    out = capsys.readouterr().out
    assert "| bce | 75.0 ± 5.0 [83.4]" in out and "| few |" in out
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "sweep.json").write_text(json.dumps({"source": "t.yaml", "points": [
        {"name": "lr=0.1", "labels": {"lr": "0.1"}}]}))
    (tmp_path / "t" / "lr=0.1").mkdir()
    (tmp_path / "t" / "lr=0.1" / "config.yaml").write_text("method: bce\n")
    (tmp_path / "t" / "lr=0.1" / "summary.json").write_text(json.dumps({"mAP": 0.5}))
    assert main(["tables", str(tmp_path / "t"), "--oversampling"]) == 2
    err = capsys.readouterr().err
    assert "'noise'" in err and len(err.strip().splitlines()) == 1
    assert main(["tables", str(sweep), "--measure", "bogus"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "'bogus'" in err and len(err.strip().splitlines()) == 1


def test_oversampling_markdown_by_hand(tmp_path):
    """Draw shares (0.5, 0.3, 0.2) against natural shares (0.5, 0.3, 0.1) of a many, a
    medium and a few-shot class: drawn 1.00 / 1.00 / 2.00 times as often as by a shuffle;
    a run without draw shares (BCE) is left out."""
    import numpy as np

    from bmxlib import runs
    from bmxlib.methods.balancemix import DRAW_SHARE, NATURAL_SHARE

    sweep = _sweep(tmp_path / "s", {("balancemix", "clean", 0): 0.9, ("bce", "clean", 0): 0.8})
    for name in ("method=balancemix__noise=clean__seed=0", "method=bce__noise=clean__seed=0"):
        np.savez(sweep / name / runs.LABELS_FILE,
                 shot_groups=np.array(["many", "medium", "few"]))
    path = runs.diagnostics_path(sweep / "method=balancemix__noise=clean__seed=0", 5)
    path.parent.mkdir()
    np.savez(path, **{DRAW_SHARE: np.array([0.5, 0.3, 0.2]),
                      NATURAL_SHARE: np.array([0.5, 0.3, 0.1])})
    text = paper_tables.oversampling_markdown(sweep)
    assert "| balancemix | 1.00 / 1.00 / 2.00 |" in text and "| bce |" not in text


def _label_states(run_dir: Path, state, targets, *, clean, noisy) -> None:
    """labels.npz (clean, noisy, a many / medium / few class) and the last epoch's label
    states of a hand-made run."""
    import numpy as np

    from bmxlib import runs
    from bmxlib.methods.balancemix import STATE, TARGETS

    np.savez(run_dir / runs.LABELS_FILE, clean=np.array(clean), noisy=np.array(noisy),
             shot_groups=np.array(["many", "medium", "few"]))
    path = runs.diagnostics_path(run_dir, 5)
    path.parent.mkdir()
    np.savez(path, **{STATE: np.array(state, dtype=np.uint8),
                      TARGETS: np.array(targets, dtype=np.uint8)})


def test_relabeling_markdown_by_hand(tmp_path, capsys):
    """Clean labels [[1, 1, 1], [1, 0, 0]] (classes many, medium, few). Seed 0 re-labels
    the many-shot positive (0, 0) to 0 and sets the medium one (0, 1) ambiguous; seed 1
    keeps everything. Correct positives: all 4, many 2, medium 1, few 1 -> to 0: 1/4, 1/2,
    0, 0 at seed 0, nothing at seed 1 -> means 12.5 (25.0 / 0.0 / 0.0); ambiguous 12.5
    (0.0 / 50.0 / 0.0). No wrong or hidden positive, nothing turned to 1: "–". BCE (no
    label states) is left out."""
    from bmxlib.labels import AMBIGUOUS, CLEAN, RELABELED

    clean = [[1, 1, 1], [1, 0, 0]]
    sweep = _sweep(tmp_path / "s", {("balancemix", "clean", 0): 0.9,
                                    ("balancemix", "clean", 1): 0.9, ("bce", "clean", 0): 0.8})
    _label_states(sweep / "method=balancemix__noise=clean__seed=0",
                  [[RELABELED, AMBIGUOUS, CLEAN], [CLEAN] * 3], [[0, 1, 1], [1, 0, 0]],
                  clean=clean, noisy=clean)
    _label_states(sweep / "method=balancemix__noise=clean__seed=1", [[CLEAN] * 3] * 2, clean,
                  clean=clean, noisy=clean)
    text = paper_tables.relabeling_markdown(sweep)
    lines = text.splitlines()
    assert lines[2].startswith("| method | noise | seeds | correct positives re-labeled to 0 |")
    row = "| balancemix | clean | 2 | 12.5 (25.0 / 0.0 / 0.0) | 12.5 (0.0 / 50.0 / 0.0) |"
    assert lines[4] == row + " – (– / – / –) |" * 3
    assert len(lines) == 5  # no bce row

    assert main(["tables", str(sweep), "--relabeling"]) == 0
    out = capsys.readouterr().out
    assert "| method | clean |" in out and row in out  # the grid, then the relabeling table


def test_relabeling_alone_reads_a_sweep_without_noise_axis(tmp_path, capsys):
    """The missing readings are a sweep of ``reading`` x ``seed``: the relabeling table
    reads it; the grid tables refuse it in one line."""
    from bmxlib.labels import CLEAN, RELABELED

    root = tmp_path / "readings"
    points = []
    for reading, state in (("relabel-to-zero", RELABELED), ("keep-positives", CLEAN)):
        name = f"reading={reading}__seed=0"
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(yaml.safe_dump({"method": "balancemix"}))
        (root / name / "summary.json").write_text(json.dumps({"mAP": 0.5}))
        # one observed positive per row (single positive labels), a hidden one in row 0
        _label_states(root / name, [[state, CLEAN, CLEAN], [CLEAN] * 3],
                      [[0 if state == RELABELED else 1, 0, 0], [0, 1, 0]],
                      clean=[[1, 1, 0], [0, 1, 0]], noisy=[[1, 0, 0], [0, 1, 0]])
        points.append({"name": name, "labels": {"reading": reading, "seed": "0"}})
    (root / "sweep.json").write_text(json.dumps({"source": "r.yaml", "points": points}))
    assert main(["tables", str(root), "--relabeling"]) == 0
    out = capsys.readouterr().out
    assert "| reading | seeds |" in out
    assert "| relabel-to-zero | 1 | 50.0 (100.0 / 0.0 / –) |" in out
    assert "| keep-positives | 1 | 0.0 (0.0 / 0.0 / –) |" in out
    assert main(["tables", str(root), "--oversampling"]) == 2
    assert "no 'noise' axis" in capsys.readouterr().err


def test_settings_table_of_a_sweep_without_the_grid_axes_by_hand(tmp_path, capsys):
    """A reading x seed sweep: relabel-to-zero at seeds 0 and 1 (mAP 0.50, 0.60 -> 55.0 ±
    7.1; fit_clean 0.9, 0.7 -> 0.800 ± 0.141), keep-positives at seed 0 only (0.70 -> 70.0,
    no std; no fit_clean recorded -> "–")."""
    root = tmp_path / "readings"
    runs_ = {("relabel-to-zero", 0): {"mAP": 0.5, "fit_clean": 0.9},
             ("relabel-to-zero", 1): {"mAP": 0.6, "fit_clean": 0.7},
             ("keep-positives", 0): {"mAP": 0.7}}
    points = []
    for (reading, seed), summary in runs_.items():
        name = f"seed={seed}__reading={reading}"
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(yaml.safe_dump({"method": "balancemix"}))
        (root / name / "summary.json").write_text(json.dumps(summary))
        points.append({"name": name, "labels": {"seed": str(seed), "reading": reading}})
    (root / "sweep.json").write_text(json.dumps({"source": "r.yaml", "points": points}))
    lines = paper_tables.settings_markdown(root, ["mAP", "fit_clean"]).splitlines()
    assert lines[0] == "| reading | seeds | mAP all | fit clean |"
    assert lines[2] == "| relabel-to-zero | 2 | 55.0 ± 7.1 | 0.800 ± 0.141 |"
    assert lines[3] == "| keep-positives | 1 | 70.0 | – |"
    assert main(["tables", str(root), "--measure", "fit_clean"]) == 0
    assert capsys.readouterr().out.startswith("| reading | seeds | mAP all | fit clean |")
    assert main(["tables", str(root), "--measure", "bogus"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "'bogus'" in err and len(err.strip().splitlines()) == 1


def test_large_loss_markdown_by_hand(tmp_path, capsys):
    """Classes many, medium, few. LL-R at seeds 0 and 1 modified (0.04, 0.02, 0.0) and
    (0.02, 0.02, 0.02) of each class's entries, hidden positives (0.01, 0.0, 0.0) and
    (0.0, 0.01, 0.0): all classes 2.00 both seeds; precision 0.01 / 0.06 and 0.01 / 0.06
    -> 16.67; many 3.00 (25.0 and 0.0 -> 12.50), medium 2.00 (0.0 and 50.0 -> 25.00), few
    1.00 (NaN at seed 0 -> 0.00 from seed 1 alone). BCE (no counts) is left out."""
    import numpy as np

    from bmxlib import runs
    from bmxlib.methods.large_loss import MODIFIED_BY_CLASS, MODIFIED_HIDDEN_BY_CLASS

    sweep = _sweep(tmp_path / "s", {("ll_r", "mislabel-40", 0): 0.4,
                                    ("ll_r", "mislabel-40", 1): 0.4,
                                    ("bce", "mislabel-40", 0): 0.4})
    counts = {0: ([0.04, 0.02, 0.0], [0.01, 0.0, 0.0]), 1: ([0.02, 0.02, 0.02], [0.0, 0.01, 0.0])}
    for seed, (modified, hidden) in counts.items():
        run_dir = sweep / f"method=ll_r__noise=mislabel-40__seed={seed}"
        np.savez(run_dir / runs.LABELS_FILE, shot_groups=np.array(["many", "medium", "few"]))
        path = runs.diagnostics_path(run_dir, 5)
        path.parent.mkdir()
        np.savez(path, **{MODIFIED_BY_CLASS: np.array(modified),
                          MODIFIED_HIDDEN_BY_CLASS: np.array(hidden)})
    lines = paper_tables.large_loss_markdown(sweep).splitlines()
    assert lines[2] == ("| method | noise | seeds | label entries modified "
                        "| of them hidden positives |")
    assert lines[4] == ("| ll_r | mislabel-40 | 2 | 2.00 (3.00 / 2.00 / 1.00) "
                        "| 16.67 (12.50 / 25.00 / 0.00) |")
    assert len(lines) == 5  # no bce row
    assert main(["tables", str(sweep), "--large-loss"]) == 0
    assert lines[4] in capsys.readouterr().out
