"""bmxlib.plots: figure functions on small synthetic arrays (no kernel, no run), PNG output,
style and the package's public surface (the run → arrays layer: test_plots_arrays.py)."""

from __future__ import annotations

import ast
import itertools
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from bmxlib import plots, results, runs
from bmxlib.plots.style import MAX_FIGURE_WIDTH, panel_grid

RNG = np.random.default_rng(0)
E, K, N, B = 3, 4, 50, 40


def _assert_labelled(fig: Figure) -> None:
    """A titled figure whose every data panel has a title and both axis labels."""
    assert isinstance(fig, Figure)
    assert fig.get_suptitle().strip()
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert panels
    for i, ax in enumerate(panels):
        box = ax.get_position().bounds
        if any(other.get_position().bounds == box for other in panels[:i]):
            assert ax.get_ylabel(), "a right axis (twin) without a label"  # a panel's twin
            continue
        assert ax.get_title(), "panel without a title"
        assert ax.get_xlabel() and ax.get_ylabel(), f"panel {ax.get_title()!r} lacks labels"


def _gmm_inputs():
    hist = RNG.integers(0, 9, size=(E, K, 2, B))
    means = np.broadcast_to([0.2, 0.7], (E, K, 2, 2)).copy()
    variances = np.full((E, K, 2, 2), 0.01)
    weights = np.full((E, K, 2, 2), 0.5)
    low = np.zeros((E, K, 2), dtype=int)
    degenerate = np.zeros((E, K, 2), dtype=bool)
    degenerate[0, 1, 1] = True
    means[0, 1, 1] = np.nan
    boundary = plots.clean_boundary(means, variances, weights, low, degenerate=degenerate)
    return dict(hist=hist, means=means, variances=variances, weights=weights,
                low_component=low, boundary=boundary, degenerate=degenerate,
                loss_min=np.zeros((E, K, 2)), loss_max=np.ones((E, K, 2)),
                state_counts=RNG.integers(0, 5, size=(E, K, 2, 3)).astype(float))


def _sensitivity_table():
    import pandas as pd

    rows = [{"noise": noise, "factor": factor, "level": level, "seed": seed,
             "value": 0.7 + 0.01 * seed + 0.02 * (level == 4)}
            for noise in ("mislabel-40", "missing") for seed in (0, 1)
            for factor, levels in (("alpha", (1, 2, 4, 8)), ("epsilon", (0.9, 0.975)))
            for level in levels]
    return pd.DataFrame(rows)


def _curve_table(epochs=(1, 2, 3), *, memorization: bool = True) -> pd.DataFrame:
    """The tidy curves of results.curve_table: bce and balancemix at 2 seeds under two noise
    settings (mAP at every epoch, memorization where the noise is synthetic)."""
    rows = []
    for method, noise, seed in itertools.product(("bce", "balancemix"), ("clean", "flip-40"),
                                                 (0, 1)):
        for e in epochs:
            share = 0.2 + 0.5 * e / max(epochs) + 0.02 * seed
            base = {"method": method, "noise": noise, "seed": seed,
                    "run": f"{method}-{noise}-{seed}", "epoch": e}
            rows.append({**base, "measure": "mAP", "value": share})
            if memorization and noise != "clean":
                rows += [{**base, "measure": "memorized_noisy", "value": share / 3},
                         {**base, "measure": "fit_clean", "value": 1 - share / 5}]
    return pd.DataFrame(rows)


def _long_table() -> pd.DataFrame:
    """The tidy table of results.long_table: 2 seeds of bce and balancemix on clean labels,
    one of bce with noise; no medium-shot class (NaN)."""
    runs = [("bce", "clean", 0, 0.60), ("bce", "clean", 1, 0.64),
            ("balancemix", "clean", 0, 0.70), ("balancemix", "clean", 1, 0.72),
            ("bce", "mislabel-40", 0, 0.50)]
    return pd.DataFrame([{"method": m, "noise": n, "seed": s, "run": f"{m}-{n}-{s}",
                          "measure": measure, "value": np.nan if measure == "medium" else v - d}
                         for m, n, s, v in runs for measure, d in
                         (("all", 0.0), ("many", -0.1), ("medium", 0.0), ("few", 0.2))])


def _label_panel_inputs(with_arrays: bool):
    epochs = np.arange(1, E + 1)
    return dict(
        hist=RNG.integers(0, 5, size=B), means=np.array([0.2, 0.7]),
        variances=np.array([0.01, 0.02]), weights=np.array([0.6, 0.4]), low_component=0,
        boundary=0.45, degenerate=False,
        confidence=RNG.random(N) if with_arrays else None,
        state=RNG.integers(0, 3, size=N) if with_arrays else None,
        corrupted=RNG.random(N) < 0.2 if with_arrays else None,
        history_epochs=epochs, presence=RNG.random(E), absence=RNG.random(E),
        oversampling=1 + RNG.random(E) if with_arrays else None,
        precision=RNG.random(E) if with_arrays else None,
        recall=RNG.random(E) if with_arrays else None,
        class_name="7", epoch=2, label_value=1, title="explorer — synthetic run",
    )


def _probabilities():
    raw = RNG.random((E, N)) + 0.5
    return raw / raw.sum(axis=1, keepdims=True)


def test_state_shares_start_at_the_first_managed_epoch():
    """Epochs before label management have no shares: the stacked areas begin at the first
    managed epoch instead of ramping up from zeros at the warm-up's epochs."""
    fig = plots.selection_curves(
        [1, 2, 3, 4], [np.nan, np.nan, 0.9, 0.95], [np.nan, np.nan, 0.6, 0.7],
        [np.nan, np.nan, 0.5, 0.8], counts={"clean": [np.nan, np.nan, 50, 60],
                                            "re-labeled": [np.nan, np.nan, 5, 8],
                                            "ambiguous": [np.nan, np.nan, 45, 32]},
        warmup_epochs=3)
    areas = [c for c in fig.axes[1].collections if c.get_label() in plots.STATE_NAMES]
    assert len(areas) == 3
    for area in areas:
        assert area.get_paths()[0].vertices[:, 0].min() == 3
    assert all(ax.get_xlim() == (0.5, 4.5) for ax in fig.axes[:2])
    plt.close(fig)


FIGURES = {
    "loss_histograms": lambda: plots.loss_histograms(
        **_gmm_inputs(), epochs=[1, 2, 3], classes=[0, 1], class_names=list("abcd"),
        title="GMM fits — synthetic run"),
    "loss_histograms_single_epoch": lambda: plots.loss_histograms(
        **{k: v[:1] for k, v in _gmm_inputs().items()}, epochs=[5], classes=[3],
        title="a long title naming a run called method=balancemix__noise=mislabel-40"),
    "selection_curves": lambda: plots.selection_curves(
        [1, 2, 3], [np.nan, 0.9, 0.95], [np.nan, 0.6, 0.7], [np.nan, 0.5, 0.8],
        counts={"clean": [np.nan, 50, 60], "re-labeled": [np.nan, 5, 8],
                "ambiguous": [np.nan, 45, 32]}, warmup_epochs=1, title="selection — run"),
    "selection_curves_truth_unknown": lambda: plots.selection_curves(
        [1, 2], [np.nan] * 2, [np.nan] * 2, [np.nan] * 2, title="selection — clean run"),
    "confidence_ap_groups": lambda: plots.confidence_ap_groups(
        RNG.random((E, 5)), RNG.random((E, 5)), [0.1, np.nan, 0.8], epochs=[1, 2, 3],
        show_epochs=[1, 3], title="confidence vs AP — run"),
    "confidence_ap_scatter": lambda: plots.confidence_ap_scatter(
        RNG.random((E, K)), RNG.random((E, K)), [100, 50, 10, 1], epochs=[1, 2, 3],
        show_epochs=[2, 3], groups=["many", "medium", "few", "few"],
        class_names=list("abcd"), title="per class — run"),
    "sampling_distributions": lambda: plots.sampling_distributions(
        _probabilities(), epochs=[1, 2, 3], title="sampling — run"),
    "draw_share_bars": lambda: plots.draw_share_bars(
        np.array([0.5, 0.2, 0.05, 0.01]), RNG.random((2, K)), epochs=[1, 3],
        class_names=list("abcd"), title="draw share — run"),
    "draw_share_heatmap": lambda: plots.draw_share_heatmap(
        np.array([0.5, 0.2, 0.05, 0.01]), RNG.random((E, K)), epochs=[1, 2, 3],
        title="oversampling — run"),
    "map_by_setting": lambda: plots.map_by_setting(_long_table(), title="mAP — sweep"),
    "map_by_setting_one_axis": lambda: plots.map_by_setting(
        _long_table().drop(columns="noise"), title="mAP"),
    "map_curves": lambda: plots.map_curves(_curve_table(), title="curves — sweep"),
    "map_curves_one_panel": lambda: plots.map_curves(
        _curve_table().query("noise == 'clean'").drop(columns="noise"), title="curves"),
    "memorization_curves": lambda: plots.memorization_curves(
        _curve_table(), title="memorization — sweep"),
    "label_profile": lambda: plots.label_profile(
        np.array([900, 120, 40, 7]), class_names=["a", "b", "c", "d"], shot_many=500,
        shot_few=50, pos_neg=9.1, title="labels — run"),
    "noise_profile": lambda: plots.noise_profile(
        RNG.random((60, 4)) < 0.3, RNG.random((60, 4)) < 0.3, title="noise — run"),
    "rank_radar": lambda: plots.rank_radar(
        {"clean": {"bce": 2, "bm": 1, "asl": 3}, "flip": {"bce": 3, "bm": 1, "asl": 2},
         "missing": {"bce": 1, "bm": 2, "asl": 3}}, title="ranks — sweep"),
    "sensitivity_curves": lambda: plots.sensitivity_curves(
        _sensitivity_table(), factors=[("alpha", "α", [1, 2, 4, 8]),
                                       ("epsilon", "ε", [0.9, 0.975])],
        reference={"alpha": {"mislabel-40": [(1, 80.3), (4, 81.6)]}}, title="sens — sweep"),
    "scaling_curves": lambda: plots.scaling_curves(
        [{"items": n, "classes": k, "label_management_s": 1e-6 * n * k,
          "peak_bytes": 40.0 * n * k} for n in (10**4, 10**5) for k in (10, 100)],
        exponents={"exponent_n": 1.0, "exponent_k": 1.0}, title="scaling — bench"),
    "label_panel": lambda: plots.label_panel(**_label_panel_inputs(True)),
    "label_panel_without_arrays": lambda: plots.label_panel(**_label_panel_inputs(False)),
}


@pytest.mark.parametrize("name", list(FIGURES), ids=list(FIGURES))
def test_figure_is_titled_and_labelled(name, tmp_path):
    fig = FIGURES[name]()
    _assert_labelled(fig)
    path = plots.save(fig, tmp_path, name)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.check_figures(tmp_path, [name]) == [path]


def test_loss_histograms_layout_rows_are_class_and_label_value():
    fig = plots.loss_histograms(**_gmm_inputs(), epochs=[1, 2, 3], classes=[2, 0],
                                class_names=list("abcd"), title="t")
    assert len(fig.axes) == 2 * 2 * 3
    assert fig.axes[0].get_title().startswith("class c · positive labels · epoch 1")
    assert fig.axes[3].get_title().startswith("class c · negative labels · epoch 1")
    assert fig.axes[11].get_title().startswith("class a · negative labels · epoch 3")
    assert fig.legends, "the shared legend is missing"


def test_loss_histograms_leave_out_groups_without_labels_and_never_show_nan():
    inputs = _gmm_inputs()
    inputs["hist"][:, 2, 1] = 0  # class c has no positive label: an empty group
    inputs["loss_min"][:, 2, 1] = inputs["loss_max"][:, 2, 1] = np.nan  # as the run stores it
    fig = plots.loss_histograms(**inputs, epochs=[1, 2, 3], classes=[2, 0],
                                class_names=list("abcd"), title="t")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 3 * 3  # the empty row is left out
    assert not any("class c · positive" in t for t in titles)
    assert not any("nan" in t.lower() or "n = 0" in t for t in titles)
    # a class without any label of either value: its panels stay, each with a one-line note
    inputs["hist"][:, 2, 0] = 0
    fig = plots.loss_histograms(**inputs, epochs=[1, 2, 3], classes=[2],
                                class_names=list("abcd"), title="t")
    assert len(fig.axes) == 2 * 3
    assert all(["no labels in this group"] == [t.get_text() for t in ax.texts] for ax in fig.axes)
    assert not any("nan" in ax.get_title().lower() for ax in fig.axes)


@pytest.mark.parametrize("epochs", [[2], [1, 2], list(range(1, 13))])
def test_epoch_axes_have_integer_ticks_even_for_one_epoch(epochs):
    curves = _curve_table(tuple(epochs))
    for fig in (plots.memorization_curves(curves, title="t"),
                plots.map_curves(curves, title="t")):
        fig.draw_without_rendering()
        for ax in fig.axes:
            low, high = sorted(ax.get_xlim())
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_min_font_pt_by_hand():
    # 5 in at 120 dpi = 600 px, shown at natural size: 9 pt · 96 / 120
    assert plots.min_font_pt(5.0, dpi=120) == pytest.approx(7.2)
    # 15 in = 1800 px, shown 1200 px wide: 9 pt · 1800 / 1200 · 96 / 120
    assert plots.min_font_pt(15.0, dpi=120) == pytest.approx(10.8)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_saved_figures_have_no_text_below_the_readable_floor(name, tmp_path):
    from matplotlib.text import Text

    fig = FIGURES[name]()
    plots.save(fig, tmp_path, name)
    floor = plots.min_font_pt(fig.get_figwidth(), dpi=plots.DPI)
    fig.draw_without_rendering()  # the tick labels of the saved figure
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert sizes and min(sizes) >= floor - 1e-9


def test_heatmap_shows_the_ratio_sorted_by_frequency():
    natural = np.array([0.1, 0.4])
    share = np.array([[0.2, 0.4], [0.3, 0.2]])  # epoch 1, epoch 2
    fig = plots.draw_share_heatmap(natural, share, epochs=[1, 2], class_names=["a", "b"],
                                   title="t")
    mesh = fig.axes[0].collections[0]  # seaborn's heatmap: a QuadMesh in cividis
    # rows: b (0.4) then a (0.1); ratios b: 0.4/0.4, 0.2/0.4; a: 0.2/0.1, 0.3/0.1
    np.testing.assert_allclose(np.asarray(mesh.get_array()), [[1.0, 0.5], [2.0, 3.0]])
    assert mesh.get_cmap().name == "cividis"
    assert [t.get_text() for t in fig.axes[0].texts] == ["1.00", "0.50", "2.00", "3.00"]


def test_map_by_setting_bars_are_means_over_seeds_with_sd_error_bars():
    fig = plots.map_by_setting(_long_table(), title="t")
    clean, noisy = fig.axes[:2]
    assert clean.get_title() == "noise = clean" and noisy.get_title() == "noise = mislabel-40"
    assert [t.get_text() for t in clean.get_xticklabels()] == ["all", "many", "few"]
    # bce then balancemix (grid order), per measure: all, many, few (medium has no value)
    heights = [round(b.get_height(), 6) for b in clean.patches if b.get_height() > 0]
    assert heights == [62.0, 72.0, 42.0, 71.0, 81.0, 51.0]
    spans = [np.nanmax(line.get_ydata()) - np.nanmin(line.get_ydata()) for line in clean.lines]
    sd_bce, sd_bmx = np.std([60, 64], ddof=1), np.std([70, 72], ddof=1)
    np.testing.assert_allclose(sorted(spans), sorted([2 * sd_bce] * 3 + [2 * sd_bmx] * 3))
    bars = {b.get_facecolor()[:3] for b in clean.patches if b.get_height() > 0}
    assert bars == {tuple(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)) for c in plots.CYCLE[:2]}


def test_map_by_setting_wraps_many_panels_within_the_report_width():
    # the paper grid: 8 methods × 6 noise settings was one row 106 in wide (its text then
    # raised to 76 pt to stay readable in the report's 10 in column)
    methods = ["bce", "mixup", "balancemix", "coteaching", "asl", "t_estimator", "ll_r", "ll_ct"]
    noises = ["clean", "mislabel-20", "mislabel-40", "flip-20", "flip-40", "missing"]
    table = pd.DataFrame([{"method": m, "noise": n, "seed": 0, "run": f"{m}-{n}",
                           "measure": measure, "value": 0.5}
                          for m in methods for n in noises
                          for measure in ("all", "many", "medium", "few")])
    fig = plots.map_by_setting(table, title="t")
    assert fig.get_figwidth() <= MAX_FIGURE_WIDTH
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [f"noise = {n}" for n in noises]
    assert all(ax.get_legend() is None for ax in panels)  # one legend, below
    (legend,) = fig.legends
    assert legend.get_title().get_text() == "method"
    assert [t.get_text() for t in legend.get_texts()] == methods


@pytest.mark.parametrize("count", [4, 11], ids=["one-row", "wrapped"])
def test_panel_grid_fits_the_width_and_hides_spare_cells(count):
    fig, panels = panel_grid(count, width=3.0, height=2.0, title="t")
    assert len(panels) == count and fig.get_figwidth() <= MAX_FIGURE_WIDTH
    hidden = [ax for ax in fig.axes if not ax.get_visible()]
    assert len(hidden) == (-count) % 3 if count > 3 else not hidden


def test_draw_share_bars_keeps_the_head_and_tail_of_many_classes():
    natural = np.linspace(0.5, 0.01, 30)  # already in frequency order
    share = np.tile(natural, (2, 1))
    names = [f"c{k}" for k in range(30)]
    fig = plots.draw_share_bars(natural, share, epochs=[1, 2], class_names=names, title="t")
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == names[:10] + names[-10:]
    assert ax.get_title() == "the 10 most and 10 least frequent of 30 classes"
    assert fig.get_figwidth() <= MAX_FIGURE_WIDTH


@pytest.mark.parametrize("count", [5, 30], ids=["all-named", "extremes-named"])
def test_scatter_names_every_class_or_the_extremes(count):
    rng = np.random.default_rng(0)
    ap = rng.random((1, count))
    fig = plots.confidence_ap_scatter(rng.random((1, count)), ap, np.arange(1, count + 1),
                                      epochs=[1], class_names=[f"c{k}" for k in range(count)],
                                      title="t")
    named = {t.get_text() for t in fig.axes[0].texts}
    order = np.argsort(ap[0])
    expected = ({f"c{k}" for k in range(count)} if count <= 20 else
                {f"c{k}" for k in [*order[:3], *order[-3:]]})
    assert named == expected


def _fake_sweep(root: Path, points: dict[str, tuple[dict, int, float | None]]) -> Path:
    """A sweep directory of points {name: (labels, seed, mAP or None: unfinished)}."""
    manifest = []
    for name, (labels, seed, value) in points.items():
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(yaml.safe_dump({"method": labels["method"],
                                                                  "seed": seed}))
        if value is not None:
            (root / name / "summary.json").write_text(json.dumps(
                {"mAP": value, "mAP_many": value, "mAP_medium": None, "mAP_few": value / 2}))
        manifest.append({"name": name, "labels": labels})
    (root / "sweep.json").write_text(json.dumps({"source": "s.yaml", "points": manifest}))
    return root


def test_long_table_feeds_map_by_setting(tmp_path):
    """results.long_table on a sweep directory: one row per (run, measure), seeds kept."""
    sweep = _fake_sweep(tmp_path / "s", {"b0": ({"method": "bce", "noise": "clean"}, 0, 0.5),
                                         "b1": ({"method": "bce", "noise": "clean"}, 1, 0.7),
                                         "m0": ({"method": "mixup", "noise": "clean"}, 0, 0.8),
                                         "m1": ({"method": "mixup", "noise": "clean"}, 1, None)})
    table = results.long_table(sweep)
    assert list(table.columns) == ["method", "noise", "seed", "run", "measure", "value"]
    assert len(table) == 3 * 4 and table["seed"].tolist()[::4] == [0, 1, 0]
    assert table["measure"].tolist()[:4] == ["all", "many", "medium", "few"]
    assert table["value"].isna().sum() == 3  # no medium-shot value in any run
    means = table.groupby(["method", "measure"])["value"].mean()
    assert means["bce", "all"] == pytest.approx(0.6) and means["mixup", "few"] == 0.4
    _assert_labelled(plots.map_by_setting(table, title="t"))
    single = results.long_table(sweep / "m0")  # a run directory: one-point sweep
    assert single["method"].unique().tolist() == ["mixup"] and len(single) == 4


@pytest.mark.parametrize("name", list(FIGURES), ids=list(FIGURES))
def test_figure_functions_leave_no_pyplot_state(name):
    plt.close("all")
    FIGURES[name]()
    assert plt.get_fignums() == [], f"{name} left a pyplot figure open"


def test_resolve_path_reads_relative_paths_from_the_repository_root(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # where a JupyterLab kernel starts
    assert runs.resolve_path("runs/demo") == tmp_path / "runs" / "demo"
    assert runs.resolve_path(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    monkeypatch.chdir(tmp_path.parent)  # outside any checkout: this package's checkout
    checkout = Path(plots.__file__).resolve().parents[2]
    expected = checkout if (checkout / "pyproject.toml").is_file() else tmp_path.parent
    assert runs.resolve_path("runs/demo") == expected / "runs" / "demo"


def test_resolve_path_of_a_sweep_gives_its_first_finished_balancemix_run(tmp_path):
    points = {"bce": ({"method": "bce"}, 0, 0.5), "bm0": ({"method": "balancemix"}, 0, None),
              "bm1": ({"method": "balancemix"}, 1, 0.6)}
    sweep = _fake_sweep(tmp_path / "s", points)
    assert runs.resolve_path(sweep, run=True) == sweep / "bm1"
    assert runs.resolve_path(sweep) == sweep  # without run: the path itself
    assert runs.resolve_path(sweep / "bce", run=True) == sweep / "bce"  # a run stays
    (sweep / "bm1" / "summary.json").unlink()  # none finished: the first BalanceMix run
    assert runs.resolve_path(sweep, run=True) == sweep / "bm0"


@pytest.mark.parametrize(
    "call",
    [
        lambda: plots.loss_histograms(**_gmm_inputs(), epochs=[1, 2], classes=[0], title="t"),
        lambda: plots.loss_histograms(**_gmm_inputs(), epochs=[1, 2, 3], classes=[9], title="t"),
        lambda: plots.confidence_ap_groups(np.ones((2, 3)), np.ones((2, 4)), [0, 0],
                                           epochs=[1, 2]),
        lambda: plots.confidence_ap_groups(np.ones((2, 3)), np.ones((2, 3)), [0, 0],
                                           epochs=[1, 2], show_epochs=[7]),
        lambda: plots.confidence_ap_scatter(np.ones((2, 3)), np.ones((2, 3)), [5, 3, 1],
                                            epochs=[1, 2], show_epochs=[7]),
        lambda: plots.confidence_ap_scatter(np.ones((2, 3)), np.ones((2, 3)), [5, 3, 1],
                                            epochs=[1, 2, 3]),
        lambda: plots.draw_share_bars(np.ones(3), np.ones((2, 4)), epochs=[1, 2]),
        lambda: plots.sampling_distributions(np.ones(5), epochs=[1]),
        lambda: plots.sampling_distributions(np.full((2, 4), 0.25), epochs=[1, 2],
                                             show_epochs=[3]),
        lambda: plots.map_by_setting(_long_table().assign(value=np.nan)),
        lambda: plots.map_curves(_curve_table().iloc[:0]),
        lambda: plots.memorization_curves(_curve_table(memorization=False)),
    ],
    ids=["epochs-length", "class-out-of-range", "group-shapes", "unknown-show-epoch",
         "scatter-unknown-show-epoch", "scatter-epochs-length",
         "share-shape", "probabilities-1d", "sampling-unknown-show-epoch", "no-rows",
         "no-curves", "no-memorization"],
)
def test_bad_shapes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


# --- output and style -------------------------------------------------------------------
def test_save_validates_and_publish_works_outside_ipython(tmp_path):
    fig = FIGURES["map_curves"]()
    with pytest.raises(TypeError):
        plots.save("not a figure", tmp_path, "x")
    with pytest.raises(ValueError):
        plots.save(fig, tmp_path, "../escape")
    path = plots.publish(fig, tmp_path / "nested", "curves")
    assert path == tmp_path / "nested" / "curves.png" and path.stat().st_size > 1000
    assert plots.png_bytes(fig)[:4] == b"\x89PNG"


def test_check_figures_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        plots.check_figures(tmp_path, ["absent"])
    (tmp_path / "fake.png").write_bytes(b"x" * 2000)
    with pytest.raises(ValueError, match="not a PNG"):
        plots.check_figures(tmp_path, ["fake"])


def test_palette_is_okabe_ito():
    # yellow is all but invisible on white: a grey stands in for it
    yellow = plots.OKABE_ITO["yellow"]
    assert set(plots.CYCLE) == set(plots.OKABE_ITO.values()) - {yellow} | {"#999999"}
    assert len(set(plots.GROUP_COLORS.values())) == 3
    assert plots.GROUP_COLORS["few"] != plots.OKABE_ITO["vermillion"]  # beside orange: too close
    assert plots.HEATMAP_CMAP in ("cividis", "viridis")


# --- the package ---------------------------------------------------------------------------
#: What notebooks and callers use as ``plots.<name>`` (the names of the former plots.py).
PUBLIC = {
    "OKABE_ITO", "CYCLE", "STATE_NAMES", "STATE_COLORS", "GROUP_COLORS", "HEATMAP_CMAP", "DPI",
    "GMM_KEYS", "MEASURE_LABELS", "save", "publish", "png_bytes", "check_figures",
    "readable_text", "min_font_pt", "READING_WIDTH_PX", "MIN_DISPLAY_PT",
    "default_classes", "default_epochs", "default_explorer_epoch", "epoch_rows",
    "stack_diagnostics",
    "clean_boundary", "gmm_arrays", "selection_arrays", "epoch_ap", "confidence_arrays",
    "sampling_arrays", "explorer_arrays", "loss_histograms", "selection_curves",
    "confidence_ap_groups", "confidence_ap_scatter", "sampling_distributions",
    "draw_share_bars", "draw_share_heatmap", "map_by_setting", "map_curves",
    "memorization_curves",
    "label_panel", "explorer_widget", "scaling_curves", "label_profile", "noise_profile",
    "rank_radar", "scenario_ranks", "sensitivity_curves",
}
MODULES = sorted(Path(plots.__file__).parent.glob("*.py"))


def test_package_reexports_the_public_names():
    assert set(plots.__all__) == PUBLIC
    assert all(callable(getattr(plots, n)) or n.isupper() for n in PUBLIC)


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_modules_stay_small_and_use_only_public_names_of_each_other(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name} imports private {private} from {node.module}"


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_modules_do_not_name_run_directory_files(path):
    """Only bmxlib.runs knows the run directory layout (docs/method.md §10): no file names here."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str)]
    file_name = re.compile(r"\.(npz|jsonl|yaml|json)\b|epoch_(\d|X|\{)|diagnostics/")
    for text in strings:
        assert not file_name.search(text) and text not in ("diagnostics", "checkpoints"), \
            f"{path.name} names a run file: {text!r}"


def test_label_panel_gives_the_oversampling_a_right_axis_of_its_own():
    """A rare class is drawn up to ~14 times its natural share: on the precision / recall
    axis it flattened both curves into the bottom of the panel."""
    inputs = _label_panel_inputs(True)
    inputs["oversampling"] = np.linspace(1.0, 14.0, E)
    fig = plots.label_panel(**inputs)
    left, right = fig.axes[3], fig.axes[4]
    assert right.get_shared_x_axes().joined(left, right)  # a twin of the history panel
    assert left.get_ylim() == (-0.02, 1.02)
    assert max(right.get_lines()[0].get_ydata()) == 14.0
    assert right.get_ylabel() == "draw share / natural share"
    texts = [t.get_text() for t in right.get_legend().get_texts()]
    assert texts == ["selection precision", "selection recall",
                     "draw share / natural share (right axis)"]
    # the legend lies below the panel: inside it, "best" saw only the right axis's line and
    # covered the precision / recall curves of late epochs
    fig.draw_without_rendering()
    legend_top = right.get_legend().get_window_extent().y1
    assert legend_top < left.get_window_extent().y0
    # without selection data the ratio keeps the panel's own axis
    inputs.update(precision=None, recall=None)
    fig = plots.label_panel(**inputs)
    assert len(fig.axes) == 4 and fig.axes[3].get_ylabel() == "draw share / natural share"


@pytest.mark.parametrize(("epochs", "every"), [(12, 1), (400, 20), (59, 2)],
                         ids=["demo", "long-schedule", "odd"])
def test_lines_over_epochs_carry_about_twenty_markers(epochs, every):
    """A marker at each of 400 epochs smeared every line into a band."""
    x = np.arange(1, epochs + 1)
    share = np.linspace(0.2, 0.6, epochs)
    figures = {
        "map_curves": plots.map_curves(_curve_table(tuple(x)), title="t"),
        "selection_curves": plots.selection_curves(x, share, share, share, title="t"),
        "confidence_ap_groups": plots.confidence_ap_groups(
            np.ones((epochs, 3)), np.ones((epochs, 3)), share, epochs=x, title="t"),
        "sampling_distributions": plots.sampling_distributions(
            np.full((epochs, 4), 0.25), epochs=x, title="t"),
        "label_panel": plots.label_panel(**{**_label_panel_inputs(True), "history_epochs": x,
                                            "presence": share, "absence": share,
                                            "oversampling": 1 + share, "precision": share,
                                            "recall": share}),
    }
    for name, fig in figures.items():
        lines = [line for ax in fig.axes for line in ax.get_lines()
                 if len(line.get_xdata()) == epochs and line.get_marker() not in ("None", "")]
        assert lines, name
        assert all(line.get_markevery() == every for line in lines), name


def test_map_curves_average_the_seeds_a_line_per_setting_a_panel_per_noise():
    """A 144-run sweep once drew 144 lines and a legend taller than the figure."""
    fig = plots.map_curves(_curve_table(), title="t")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["noise = clean", "noise = flip-40"]
    for ax in panels:
        lines = [line for line in ax.get_lines() if len(line.get_xdata())]  # not legend keys
        assert len(lines) == 2  # bce and balancemix, each the mean of its two seeds
        assert sorted(line.get_ydata()[-1] for line in lines) == pytest.approx([71.0, 71.0])
        assert len(ax.collections) == 2  # the ±1 sd bands
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["bce", "balancemix"]
    memorization = plots.memorization_curves(_curve_table(), title="t")
    panels = [ax for ax in memorization.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["noise = flip-40"]  # clean has no noise
    texts = [t.get_text() for t in memorization.legends[0].get_texts()]
    assert texts == ["bce", "balancemix", "memorized noisy", "fit clean"]  # no group heads


@pytest.mark.parametrize("draw, tidy", [
    (plots.map_by_setting, _long_table), (plots.map_curves, _curve_table),
    (plots.memorization_curves, _curve_table)], ids=["bars", "map_curves", "memorization"])
def test_value_axis_says_whether_seeds_were_averaged(draw, tidy):
    """A one-seed sweep's figure claimed a mean ± sd over seeds that nobody computed."""
    two_seeds, one_seed = draw(tidy(), title="t"), draw(tidy().query("seed == 0"), title="t")
    for fig, says in ((two_seeds, "mean ± sd over seeds"), (one_seed, "one run per setting")):
        labels = {ax.get_ylabel() for ax in fig.axes if ax.get_visible()}
        assert len(labels) == 1 and says in labels.pop()
    plt.close("all")


def test_confidence_groups_keep_their_bars_uncovered_one_legend_below():
    """Each bar panel had its own legend in the upper right, over the tallest bars."""
    fig = FIGURES["confidence_ap_groups"]()
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "mean confidence P(k)", "mean test AP", "Pearson r"]
    plt.close(fig)
