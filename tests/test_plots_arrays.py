"""bmxlib.plots.arrays: the computations behind the figures and run → arrays (no run dir)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmxlib import plots
from bmxlib.gmm import GMMFit, fit_gmm_batched
from bmxlib.plots.arrays import component_log_densities


class FakeRun:
    """The part of :class:`bmxlib.runs.Run` the helpers use, held in memory."""

    def __init__(self, diagnostics: dict[int, dict[str, np.ndarray]], *, metrics=(),
                 clean_labels=None, config=None):
        self.name = "fake"
        self._diagnostics = diagnostics
        self.diagnostic_epochs = sorted(diagnostics)
        self.metrics = list(metrics)
        self.clean_labels = clean_labels
        self.config = config or {}
        self.loaded: list[int] = []  # epochs whose arrays were read

    def diagnostics(self, epoch: int) -> dict[str, np.ndarray]:
        self.loaded.append(epoch)
        return dict(self._diagnostics[epoch])

    def diagnostics_keys(self, epoch: int) -> list[str]:
        return list(self._diagnostics.get(epoch, {}))

    def metric(self, key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in self.metrics],
                        dtype=float)


# --- clean boundary ----------------------------------------------------------------------
def test_clean_boundary_hand_cases():
    # equal components at 0.2 and 0.8: the posteriors cross half-way
    equal = plots.clean_boundary([0.2, 0.8], [0.01, 0.01], [0.5, 0.5], 0)
    assert equal == pytest.approx(0.5, abs=1e-3)
    # weights 0.8 / 0.2, v = 0.01: ln 0.8 - (x-.2)²/.02 = ln 0.2 - (x-.8)²/.02
    # ⇔ -1.2 x + 0.6 = 0.02 · ln 0.25 ⇔ x = (0.6 + 0.0277259) / 1.2 = 0.5231049
    heavy = plots.clean_boundary([0.2, 0.8], [0.01, 0.01], [0.8, 0.2], 0)
    assert heavy == pytest.approx(0.5231049, abs=1e-3)
    # the clean component may be stored second
    swapped = plots.clean_boundary([0.8, 0.2], [0.01, 0.01], [0.2, 0.8], 1)
    assert swapped == pytest.approx(heavy, abs=1e-12)


def test_clean_boundary_is_nan_for_degenerate_or_unfitted_groups_and_vectorised():
    means = np.array([[[0.2, 0.8], [np.nan, np.nan]], [[0.2, 0.8], [0.1, 0.9]]])
    variances = np.full((2, 2, 2), 0.01)
    weights = np.full((2, 2, 2), 0.5)
    degenerate = np.array([[False, True], [True, False]])
    result = plots.clean_boundary(means, variances, weights, np.zeros((2, 2), int),
                                  degenerate=degenerate)
    assert result.shape == (2, 2)
    assert result[0, 0] == pytest.approx(0.5, abs=1e-3)
    assert np.isnan(result[0, 1]) and np.isnan(result[1, 0])
    assert result[1, 1] == pytest.approx(0.5, abs=1e-3)


def test_clean_boundary_is_nan_for_any_non_finite_parameter_or_no_crossing():
    means = np.array([[0.2, 0.8], [0.2, 0.8], [0.2, 0.8], [0.2, 2.5]])
    variances = np.array([[np.nan, 0.01], [0.01, np.nan], [0.01, 0.01], [0.01, 0.01]])
    weights = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, np.nan], [0.5, 0.5]])
    result = plots.clean_boundary(means, variances, weights, [0, 0, 0, 0])
    # rows 0-2: a NaN parameter; row 3: the posteriors cross at 1.35, outside [0, 1]
    assert np.isnan(result).all()


def test_clean_boundary_survives_tiny_variances_without_warnings():
    with np.errstate(all="raise"):
        value = plots.clean_boundary([0.1, 0.9], [1e-14, 1e-14], [0.5, 0.5], 0)
    assert value == pytest.approx(0.5, abs=1e-3)


def test_clean_boundary_is_where_the_fitted_posterior_falls_below_one_half():
    """On mixtures fitted by bmxlib.gmm: the first grid point with posterior_low < 0.5."""
    rng = np.random.default_rng(3)
    clean = rng.normal(0.15, 0.05, size=(6, 300))
    noisy = rng.normal(0.7, 0.1, size=(6, 300))
    values = torch.as_tensor(np.clip(np.concatenate([clean, noisy[:, :120]], axis=1), 0, 1))
    fit = fit_gmm_batched(values, torch.ones(values.shape, dtype=torch.bool))
    means, variances, weights = (t.numpy() for t in (fit.means, fit.variances, fit.weights))
    low = means.argmin(axis=1)
    boundary = plots.clean_boundary(means, variances, weights, low, resolution=501)
    grid = np.linspace(0.0, 1.0, 501)
    posterior = fit.posterior_low(torch.as_tensor(grid)).numpy()  # (G, 501)
    expected = grid[(posterior < 0.5).argmax(axis=1)]
    assert (posterior < 0.5).any(axis=1).all()
    np.testing.assert_array_equal(boundary, expected)
    assert ((boundary > 0.2) & (boundary < 0.6)).all()


def test_component_log_densities_are_the_gmm_weighted_densities():
    means = np.array([[[0.2, 0.8], [0.3, 0.6]]])  # (1, 2, 2): batch (1, 2)
    variances = np.full((1, 2, 2), 0.01)
    weights = np.array([[[0.7, 0.3], [0.5, 0.5]]])
    grid = np.linspace(0.0, 1.0, 11)
    log_pdf = component_log_densities(grid, means, variances, weights)
    assert log_pdf.shape == (1, 2, 11, 2)
    fit = GMMFit.from_parameters(means.reshape(2, 2), variances.reshape(2, 2),
                                 weights.reshape(2, 2))
    np.testing.assert_allclose(log_pdf.reshape(2, 11, 2),
                               fit.weighted_log_density(torch.as_tensor(grid)).numpy())
    x = 0.5
    direct = np.log(0.7) - 0.5 * np.log(2 * np.pi * 0.01) - (x - 0.2) ** 2 / 0.02
    assert log_pdf[0, 0, 5, 0] == pytest.approx(direct, rel=1e-12)


# --- defaults ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("positives", "per_end", "expected"),
    [([5, 50, 1, 20], 1, [1, 2]), ([5, 50, 1, 20], 2, [1, 3, 0, 2]), ([7], 1, [0]),
     ([3, 3, 3], 1, [0, 2])],
    ids=["one-each", "two-each", "single-class", "ties-keep-order"],
)
def test_default_classes_most_then_least_frequent(positives, per_end, expected):
    assert plots.default_classes(positives, per_end=per_end) == expected


@pytest.mark.parametrize(
    ("available", "warmup", "expected"),
    [(range(1, 13), 3, [4, 8, 12]), ([1, 2], 1, [2]), ([1, 2, 3], 5, [1, 2, 3]),
     ([2, 4, 6, 8], 0, [2, 6, 8])],
    ids=["demo", "tiny", "all-in-warmup", "every-other"],
)
def test_default_epochs_first_middle_last_after_warmup(available, warmup, expected):
    assert plots.default_epochs(list(available), warmup_epochs=warmup) == expected


def test_epoch_rows_in_the_wanted_order_or_one_line_naming_the_epoch():
    assert plots.epoch_rows(np.array([2, 4, 6]), [6, 2]) == [2, 0]
    assert plots.epoch_rows([2, 4, 6], []) == []
    with pytest.raises(ValueError, match=r"^epoch 5 has no diagnostics; available: \[2, 4, 6\]$"):
        plots.epoch_rows([6, 2, 4], [4, 5])


def test_sampling_distributions_draws_the_chosen_epochs():
    probabilities = np.full((4, 5), 0.2)
    fig = plots.sampling_distributions(probabilities, epochs=[1, 2, 3, 4], show_epochs=[4, 2])
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["2", "4"]


def test_default_choices_reject_empty_inputs():
    with pytest.raises(ValueError, match="no diagnostics"):
        plots.default_epochs([])
    with pytest.raises(ValueError):
        plots.default_classes([])


def test_default_explorer_epoch_is_the_last_with_per_label_arrays():
    light = {"presence_confidence": np.zeros(3)}
    full = {**light, "state": np.zeros((5, 3), np.uint8)}
    run = FakeRun({1: light, 2: full, 3: full, 4: light})
    assert plots.default_explorer_epoch(run) == 3
    assert run.loaded == []  # the keys are enough: no arrays read
    assert plots.default_explorer_epoch(FakeRun({1: light, 2: light})) == 2
    with pytest.raises(ValueError, match="no diagnostics"):
        plots.default_explorer_epoch(FakeRun({}))


# --- run → arrays ------------------------------------------------------------------------
def test_stack_diagnostics_requires_keys_and_fills_optional_ones_with_nan():
    run = FakeRun({1: {"a": np.ones(2)}, 2: {"a": np.zeros(2), "b": np.full(3, 5.0)}})
    out = plots.stack_diagnostics(run, ["a"], optional=["b", "c"])
    np.testing.assert_array_equal(out["epochs"], [1, 2])
    np.testing.assert_array_equal(out["a"], [[1, 1], [0, 0]])
    np.testing.assert_array_equal(out["b"], [[np.nan] * 3, [5.0] * 3])
    assert "c" not in out
    with pytest.raises(ValueError, match="'b' missing at epochs \\[1\\]"):
        plots.stack_diagnostics(run, ["b"])
    with pytest.raises(ValueError, match="no diagnostics"):
        plots.stack_diagnostics(FakeRun({}), ["a"])


def test_confidence_arrays_skips_epochs_without_a_test_evaluation():
    k, g = 4, 2
    light = {"presence_confidence": np.full(k, 0.5), "group_confidence": np.full(g, 0.4)}
    evaluated = {**light, "group_ap": np.full(g, 0.3)}
    metrics = [{"epoch": e, "ap": [0.1, None, 0.3, 0.4], "confidence_ap_pearson": r}
               for e, r in ((1, 0.5), (2, None), (3, None))]
    labels = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], np.uint8)
    run = FakeRun({1: evaluated, 2: light, 3: evaluated}, metrics=metrics, clean_labels=labels)
    out = plots.confidence_arrays(run)
    np.testing.assert_array_equal(out["epochs"], [1, 3])
    assert out["group_ap"].shape == (2, g) and out["presence"].shape == (2, k)
    np.testing.assert_array_equal(out["ap"], [[0.1, np.nan, 0.3, 0.4]] * 2)
    np.testing.assert_array_equal(out["pearson_r"], [0.5, np.nan])
    np.testing.assert_array_equal(out["positives"], [2, 1, 1, 0])


def test_gmm_arrays_stack_the_mixtures_and_compute_their_boundaries():
    k, bins = 3, 8
    rng = np.random.default_rng(0)

    def epoch(degenerate_class: int) -> dict[str, np.ndarray]:
        means = np.broadcast_to([0.2, 0.7], (k, 2, 2)).copy()
        degenerate = np.zeros((k, 2), bool)
        degenerate[degenerate_class, 1] = True
        means[degenerate_class, 1] = np.nan
        return {"loss_hist": rng.integers(0, 5, (k, 2, bins)), "gmm_means": means,
                "gmm_variances": np.full((k, 2, 2), 0.01), "gmm_weights": np.full((k, 2, 2), 0.5),
                "gmm_low_component": np.zeros((k, 2), np.int64), "gmm_degenerate": degenerate,
                "loss_min": np.zeros((k, 2)), "loss_max": np.ones((k, 2))}

    run = FakeRun({1: epoch(0), 2: epoch(2)})
    out = plots.gmm_arrays(run, [1, 2])
    assert out["hist"].shape == (2, k, 2, bins) and out["means"].shape == (2, k, 2, 2)
    assert out["state_counts"] is None
    expected = plots.clean_boundary(out["means"], out["variances"], out["weights"],
                                    out["low_component"], degenerate=out["degenerate"])
    np.testing.assert_array_equal(out["boundary"], expected)
    assert np.isnan(out["boundary"][0, 0, 1]) and np.isnan(out["boundary"][1, 2, 1])
    assert np.isfinite(out["boundary"]).sum() == 2 * k * 2 - 2
