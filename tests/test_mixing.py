"""Tests for bmxlib.mixing: minority-augmented mixing (docs/method.md §1.3)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import beta as beta_dist

from bmxlib.mixing import minority_mix, mix_with, sample_lambda

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _batch(batch_size=3, num_classes=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x_r = torch.rand(batch_size, 1, 2, 2, generator=generator)
    x_m = torch.rand(batch_size, 1, 2, 2, generator=generator)
    y_r = (torch.rand(batch_size, num_classes, generator=generator) < 0.5).float()
    y_m = (torch.rand(batch_size, num_classes, generator=generator) < 0.5).float()
    return x_r, y_r, x_m, y_m


def test_mix_with_by_hand():
    # lam = 0.75: x = 0.75*[1, 2] + 0.25*[3, 6] = [1.5, 3.0]; y = 0.75*[1, 0] + 0.25*[0, 1]
    x_mix, y_mix = mix_with(
        torch.tensor([[1.0, 2.0]]),
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[3.0, 6.0]]),
        torch.tensor([[0.0, 1.0]]),
        0.75,
    )
    torch.testing.assert_close(x_mix, torch.tensor([[1.5, 3.0]]))
    torch.testing.assert_close(y_mix, torch.tensor([[0.75, 0.25]]))


def test_mix_with_per_sample_broadcasts_over_image_and_label_dims():
    # Instance 0 with lam 1 is x_r unchanged; instance 1 with lam 0.5 is the midpoint.
    x_r, x_m = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 4.0)
    y_r, y_m = torch.tensor([[1, 0], [1, 0]]), torch.tensor([[0, 1], [0, 1]])
    x_mix, y_mix = mix_with(x_r, y_r, x_m, y_m, torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(x_mix[0], torch.zeros(1, 2, 2))
    torch.testing.assert_close(x_mix[1], torch.full((1, 2, 2), 2.0))
    torch.testing.assert_close(y_mix, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    assert y_mix.dtype == torch.float32  # integer labels are promoted to x's dtype


def test_minority_mix_applies_its_lambda():
    x_r, y_r, x_m, y_m = _batch()
    x_mix, y_mix, lam = minority_mix(x_r, y_r, x_m, y_m, generator=torch.Generator().manual_seed(1))
    assert lam.shape == () and lam.dtype == x_r.dtype and lam.device == x_r.device
    torch.testing.assert_close(x_mix, lam * x_r + (1 - lam) * x_m)
    torch.testing.assert_close(y_mix, lam * y_r + (1 - lam) * y_m)


@settings(max_examples=25, deadline=None)
@given(
    alpha=st.floats(0.05, 100.0),
    per_sample=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_lambda_at_least_half(alpha, per_sample, seed):
    x_r, y_r, x_m, y_m = _batch(batch_size=8)
    generator = torch.Generator().manual_seed(seed)
    *_, lam = minority_mix(
        x_r, y_r, x_m, y_m, alpha=alpha, per_sample=per_sample, generator=generator
    )
    assert ((lam >= 0.5) & (lam <= 1.0)).all()


def test_reproducible_with_generator_seed():
    batch = _batch()

    def draw(seed):
        return minority_mix(*batch, per_sample=True, generator=torch.Generator().manual_seed(seed))

    first, again, other = draw(5), draw(5), draw(6)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(first[2], other[2])


def test_global_rng_used_without_generator():
    batch = _batch()
    torch.manual_seed(123)
    first = minority_mix(*batch)[2]
    torch.manual_seed(123)
    assert torch.equal(minority_mix(*batch)[2], first)


def test_per_sample_shape():
    x_r, y_r, x_m, y_m = _batch(batch_size=5)
    x_mix, y_mix, lam = minority_mix(x_r, y_r, x_m, y_m, per_sample=True)
    assert lam.shape == (5,) and x_mix.shape == x_r.shape and y_mix.shape == y_r.shape
    torch.testing.assert_close(x_mix, lam.view(5, 1, 1, 1) * x_r + (1 - lam.view(5, 1, 1, 1)) * x_m)


def test_mean_lambda_matches_expectation():
    # E[max(B, 1 - B)] for B ~ Beta(4, 4) = 2 * integral_{1/2}^{1} x f(x) dx (symmetry).
    expected = 2 * integrate.quad(lambda x: x * beta_dist.pdf(x, 4, 4), 0.5, 1.0)[0]
    draws = sample_lambda(4.0, size=20000, generator=torch.Generator().manual_seed(0))
    # Standard deviation of lambda is ~0.08, so the standard error is ~6e-4.
    assert abs(draws.mean() - expected) < 3e-3


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((3, 4), (3, 2), (3, 5), (3, 2)), "x_r and x_m"),
        (((3, 4), (3, 2), (3, 4), (3, 3)), "y_r and y_m"),
        (((3, 4), (2, 2), (3, 4), (2, 2)), "batch size"),
    ],
    ids=["x-mismatch", "y-mismatch", "batch-mismatch"],
)
def test_bad_shapes_raise(shapes, match):
    tensors = [torch.zeros(shape) for shape in shapes]
    with pytest.raises(ValueError, match=match):
        minority_mix(*tensors)


@pytest.mark.parametrize(
    ("dtypes", "match"),
    [
        ((torch.float32, torch.float32, torch.float64, torch.float32), "x_r and x_m dtypes"),
        ((torch.float32, torch.float32, torch.float32, torch.float64), "y_r and y_m float"),
    ],
    ids=["x-dtypes", "y-dtypes"],
)
def test_mixed_dtypes_raise(dtypes, match):
    # before: x was promoted to float64 while y was cast down to y_r's float32
    tensors = [t.to(dtype) for t, dtype in zip(_batch(), dtypes)]
    with pytest.raises(TypeError, match=match):
        minority_mix(*tensors)


@pytest.mark.parametrize("integer_side", ["y_r", "y_m"])
def test_integer_labels_take_the_other_labels_float_dtype(integer_side):
    x_r, y_r, x_m, y_m = _batch()
    y_r, y_m = y_r.double(), y_m.double()
    if integer_side == "y_r":
        y_r = y_r.to(torch.uint8)
    else:
        y_m = y_m.to(torch.uint8)
    y_mix = mix_with(x_r, y_r, x_m, y_m, 0.75)[1]
    assert y_mix.dtype == torch.float64
    torch.testing.assert_close(y_mix, 0.75 * y_r.double() + 0.25 * y_m.double())


@pytest.mark.parametrize("moved", ["y_r", "x_m", "y_m"])
def test_inputs_on_another_device_name_it(moved):
    # the meta device stands in for a GPU: a tensor left behind on another device
    names = ["x_r", "y_r", "x_m", "y_m"]
    tensors = [t.to("meta") if name == moved else t for name, t in zip(names, _batch())]
    with pytest.raises(ValueError, match=f"{moved} is on meta but x_r on cpu"):
        minority_mix(*tensors)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")], ids=str)
def test_bad_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        minority_mix(*_batch(), alpha=alpha)


def test_bad_lam_shape_raises():
    with pytest.raises(ValueError, match="lam"):
        mix_with(*_batch(batch_size=3), torch.ones(2))


@pytest.mark.gpu
@cuda
def test_cuda_inputs_and_generator():
    batch = [t.cuda() for t in _batch()]
    generator = torch.Generator(device="cuda").manual_seed(0)
    x_mix, y_mix, lam = minority_mix(*batch, per_sample=True, generator=generator)
    assert x_mix.device.type == y_mix.device.type == lam.device.type == "cuda"
    torch.testing.assert_close(y_mix, lam[:, None] * batch[1] + (1 - lam[:, None]) * batch[3])
