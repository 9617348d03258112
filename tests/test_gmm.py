"""Tests for bmxlib.gmm: batched 2-component GMMs and the clean probability p_G
(docs/method.md §1.4)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from bmxlib.gmm import GMMFit, clean_probability, clean_probability_with_fit, fit_gmm_batched

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _bimodal_losses(seed, num_items=2000, num_classes=5):
    """Low tight 'clean' losses plus a high spread 'noisy' component, noise rate per class."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_items, num_classes)) < 0.3).astype(np.uint8)
    noise_rate = rng.uniform(0.05, 0.5, size=num_classes)
    noisy = rng.random((num_items, num_classes)) < noise_rate
    low = np.abs(rng.normal(0.0, 0.1, (num_items, num_classes)))
    high = rng.normal(2.0, 0.7, (num_items, num_classes)).clip(0.0)
    return np.where(noisy, high, low).astype(np.float32), labels


def _sklearn_clean_probability(values):
    """The DivideMix recipe with the docs/method.md §1.4 settings: min-max normalise, fit,
    low-mean posterior."""
    x = values.astype(np.float64)
    x = ((x - x.min()) / (x.max() - x.min()))[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=10 is expected
        gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4,
                              random_state=0).fit(x)
    return gmm.predict_proba(x)[:, gmm.means_.argmin()]


def test_init_and_one_em_step_by_hand():
    # Values 0, 0.1, 0.9, 1.0: the optimal 2-means split is {0, 0.1} | {0.9, 1.0}, so the
    # init is means 0.05 / 0.95, variances 0.05^2 + reg_covar = 0.0025 + 0.0005 = 0.003,
    # weights 1/2. The clusters are ~16 standard deviations apart, so one EM step keeps
    # the responsibilities at 0/1 and the parameters unchanged (to ~1e-12).
    values = torch.tensor([[0.0, 0.1, 0.9, 1.0]])
    fit = fit_gmm_batched(values, torch.ones_like(values, dtype=torch.bool), max_iter=1)
    torch.testing.assert_close(fit.means, torch.tensor([[0.05, 0.95]], dtype=torch.float64))
    torch.testing.assert_close(fit.variances, torch.tensor([[0.003, 0.003]], dtype=torch.float64))
    torch.testing.assert_close(fit.weights, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    assert fit.n_iter.tolist() == [1] and fit.fitted.tolist() == [True]
    posterior = fit.posterior_low(values)
    torch.testing.assert_close(posterior, torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64))


def test_two_separated_clusters_give_clean_low_and_noisy_high():
    # Class 0, label value 1: five small losses and three large ones. Class 0, label 0:
    # losses 0.2 / 0.21 / 0.22 / 3.0 -> the last one is the noisy one.
    losses = torch.tensor(
        [[0.01], [0.02], [0.03], [0.02], [0.01], [2.0], [2.1], [1.9], [0.2], [0.21], [0.22], [3.0]]
    )
    labels = torch.tensor([[1]] * 8 + [[0]] * 4)
    p_clean = clean_probability(losses, labels)
    expected = torch.tensor([[1.0]] * 5 + [[0.0]] * 3 + [[1.0]] * 3 + [[0.0]])
    torch.testing.assert_close(p_clean, expected, atol=1e-6, rtol=0)
    assert p_clean.dtype == torch.float32 and p_clean.device == losses.device


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_parity_with_sklearn(seed):
    losses, labels = _bimodal_losses(seed)
    p_clean = clean_probability(losses, labels).numpy()
    agree = total = 0
    for k in range(losses.shape[1]):
        for value in (0, 1):
            members = labels[:, k] == value
            reference = _sklearn_clean_probability(losses[members, k])
            agree += np.sum((reference > 0.5) == (p_clean[members, k] > 0.5))
            total += members.sum()
            assert np.mean(np.abs(reference - p_clean[members, k])) < 1e-2
    assert agree / total >= 0.99


def _optimal_two_means_split(values):
    """The first value of the upper cluster of the best 1-D 2-means split, by brute force."""
    ordered = np.sort(values)
    within = [((ordered[:i] - ordered[:i].mean()) ** 2).sum()
              + ((ordered[i:] - ordered[i:].mean()) ** 2).sum() for i in range(1, len(ordered))]
    return ordered[int(np.argmin(within)) + 1]


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_em_matches_sklearn_from_the_same_start(seed):
    # Overlapping components, where stock sklearn's k-means start varies with its
    # random_state: started from the same optimal 2-means split (docs/method.md §1.4),
    # the EM is sklearn's to rounding, with the same number of iterations.
    rng = np.random.default_rng(seed)
    for _ in range(4):
        n = int(rng.integers(30, 400))
        x = np.concatenate([rng.normal(0.3, 0.15, n), rng.normal(0.6, 0.2, n // 2)])
        x = (x - x.min()) / (x.max() - x.min())
        upper = x >= _optimal_two_means_split(x)
        variances = np.array([x[~upper].var(), x[upper].var()]) + 5e-4
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = GaussianMixture(
                n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4,
                weights_init=np.array([(~upper).mean(), upper.mean()]),
                means_init=np.array([[x[~upper].mean()], [x[upper].mean()]]),
                precisions_init=(1.0 / variances)[:, None, None]).fit(x[:, None])
        values = torch.tensor(x)[None]
        fit = fit_gmm_batched(values, torch.ones_like(values, dtype=torch.bool), max_iter=10,
                              tol=1e-2, reg_covar=5e-4)
        expected = reference.predict_proba(x[:, None])[:, reference.means_.argmin()]
        np.testing.assert_allclose(fit.posterior_low(values)[0].numpy(), expected, atol=1e-10)
        assert int(fit.n_iter[0]) == reference.n_iter_


def test_batched_fit_equals_one_group_at_a_time():
    losses, labels = _bimodal_losses(3, num_items=300, num_classes=3)
    values = torch.from_numpy(losses).T.repeat_interleave(2, dim=0) / 4.0
    mask = (
        torch.from_numpy(labels).T.repeat_interleave(2, dim=0) == torch.tensor([0, 1] * 3)[:, None]
    )
    batched = fit_gmm_batched(values, mask)
    for g in range(values.shape[0]):
        single = fit_gmm_batched(values[g : g + 1], mask[g : g + 1])
        torch.testing.assert_close(batched.means[g], single.means[0])
        torch.testing.assert_close(batched.variances[g], single.variances[0])
        assert batched.n_iter[g] == single.n_iter[0]


def test_non_members_do_not_matter():
    values = torch.tensor([[0.0, 0.1, 0.9, 1.0, 0.0], [0.0, 0.1, 0.9, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True, True, False]] * 2)
    values[1, 4] = torch.nan  # garbage outside the group must not leak in
    fit = fit_gmm_batched(values, mask)
    torch.testing.assert_close(fit.means[0], fit.means[1])


def test_degenerate_groups_are_clean_and_finite():
    # Class 0: every label is 1, so group (0, l=0) is empty; its l=1 group has all-equal
    #   losses. Class 1: a single label 0 (group of one member) and separable positives.
    losses = torch.tensor(
        [[0.5, 3.0], [0.5, 0.01], [0.5, 0.02], [0.5, 0.03], [0.5, 2.5], [0.5, 0.01]]
    )
    labels = torch.tensor([[1, 0], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]])
    p_clean, fit = clean_probability_with_fit(losses, labels)
    assert torch.isfinite(p_clean).all()
    torch.testing.assert_close(p_clean[:, 0], torch.ones(6))  # empty / all-equal groups
    assert p_clean[0, 1] == 1.0  # group of one member
    assert p_clean[4, 1] < 0.5 and (p_clean[1:4, 1] > 0.5).all()  # a real fit on (1, l=1)
    assert fit.degenerate.tolist() == [[True, True], [True, False]]
    assert fit.counts.tolist() == [[0, 6], [1, 5]]
    assert torch.isnan(fit.means[0]).all() and torch.isfinite(fit.means[1, 1]).all()
    assert fit.means.shape == fit.variances.shape == fit.weights.shape == (2, 2, 2)
    assert fit.loss_min[1, 1] == pytest.approx(0.01) and fit.loss_max[1, 1] == 3.0 - 0.5


@pytest.mark.parametrize(
    ("base", "spread", "degenerate"),
    [
        (1e-8, 3.9e-7, True),  # below 1 the bound is absolute: 4 eps = 4.77e-7
        (1e-8, 6e-7, False),
        (10.0, 3.8e-6, True),  # above 1 it scales with the largest loss: 4.77e-6 at 10
        (10.0, 8e-6, False),
    ],
    ids=["tiny-within", "tiny-beyond", "ten-within", "ten-beyond"],
)
def test_all_equal_means_within_four_epsilons_of_max_one_and_the_largest_loss(
        base, spread, degenerate):
    # docs/method.md §1.4: a float32 group spread over at most 4 eps max(1, largest loss)
    losses = torch.tensor([base] * 90 + [base + spread] * 10, dtype=torch.float32)[:, None]
    p_clean, fit = clean_probability_with_fit(losses, torch.ones_like(losses))
    assert fit.degenerate[0, 1].item() is degenerate
    assert (p_clean == 1.0).all().item() is degenerate


def test_far_values_underflow_safely():
    # Fit on 0 x50 and 1 x3 (variances ~reg_covar). At x = +-100 both Gaussian densities
    # are exp(-1e7) = 0 in float64, so a linear-space posterior would be 0/0; in log space
    # the nearer (equal-variance) component wins outright.
    values = torch.tensor([[0.0] * 50 + [1.0] * 3])
    fit = fit_gmm_batched(values, torch.ones_like(values, dtype=torch.bool))
    posterior = fit.posterior_low(torch.tensor([[-100.0, 100.0]]))
    torch.testing.assert_close(posterior, torch.tensor([[1.0, 0.0]], dtype=torch.float64))


def test_zero_variance_components_never_nan():
    # reg_covar=0 and exactly repeated values: a component collapses to zero variance
    # (sklearn would refuse); the fit must still give finite posteriors in [0, 1].
    values = torch.tensor([[0.0] * 50 + [1.0] * 3])
    fit = fit_gmm_batched(values, torch.ones_like(values, dtype=torch.bool), reg_covar=0.0)
    posterior = fit.posterior_low(values)
    assert torch.isfinite(posterior).all() and ((posterior >= 0) & (posterior <= 1)).all()
    p_clean = clean_probability(values.T, torch.ones(53, 1), reg_covar=0.0)
    assert torch.isfinite(p_clean).all()


def test_numpy_input_and_float64():
    losses, labels = _bimodal_losses(4, num_items=200, num_classes=2)
    from_numpy = clean_probability(losses, labels)
    from_torch = clean_probability(torch.from_numpy(losses), torch.from_numpy(labels))
    assert isinstance(from_numpy, torch.Tensor)
    torch.testing.assert_close(from_numpy, from_torch)
    as_double = clean_probability(losses.astype(np.float64), labels)
    assert as_double.dtype == torch.float64
    assert ((as_double > 0.5) == (from_torch > 0.5)).float().mean() >= 0.99


@pytest.mark.parametrize(
    ("losses", "labels", "match"),
    [
        (torch.zeros(4, 2), torch.zeros(4, 3), "shape"),
        (torch.zeros(4), torch.zeros(4), "shape"),
        (torch.zeros(4, 2), torch.full((4, 2), 2), "labels"),
        (torch.tensor([[torch.nan], [0.0]]), torch.zeros(2, 1), "finite"),
        (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2), "float"),
    ],
    ids=["shape-mismatch", "not-2d", "labels-not-binary", "nan-loss", "int-losses"],
)
def test_bad_inputs_raise(losses, labels, match):
    with pytest.raises((ValueError, TypeError), match=match):
        clean_probability(losses, labels)


@pytest.mark.parametrize(
    "options", [{"max_iter": 0}, {"tol": -1.0}, {"reg_covar": float("nan")}], ids=str
)
def test_bad_options_raise(options):
    with pytest.raises(ValueError):
        clean_probability(torch.zeros(3, 1), torch.zeros(3, 1), **options)


@pytest.mark.gpu
@cuda
def test_cuda_matches_cpu():
    losses, labels = _bimodal_losses(5, num_items=2000, num_classes=5)
    cpu = clean_probability(losses, labels)
    gpu = clean_probability(torch.from_numpy(losses).cuda(), torch.from_numpy(labels).cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def test_fit_rebuilt_from_parameters_gives_the_same_posterior():
    rng = np.random.default_rng(0)
    values = torch.from_numpy(np.concatenate([rng.normal(0.1, 0.05, 300),
                                              rng.normal(0.7, 0.1, 100)]))[None]
    fit = fit_gmm_batched(values, torch.ones_like(values, dtype=torch.bool))
    again = GMMFit.from_parameters(fit.means.numpy(), fit.variances.numpy(),
                                   fit.weights.numpy())
    grid = torch.linspace(0, 1, 50, dtype=torch.float64)
    torch.testing.assert_close(again.posterior_low(grid), fit.posterior_low(grid[None]))
    density = again.weighted_log_density(grid).exp().sum(dim=-1)  # (1, 50) mixture pdf
    reference = sum(w * np.exp(-(grid.numpy() - m) ** 2 / (2 * v)) / np.sqrt(2 * np.pi * v)
                    for m, v, w in zip(*(a[0].numpy() for a in (fit.means, fit.variances,
                                                                fit.weights))))
    np.testing.assert_allclose(density[0].numpy(), reference, rtol=1e-10)
    assert not GMMFit.from_parameters([[np.nan, 1.0]], [[1.0, 1.0]], [[0.5, 0.5]]).fitted[0]
