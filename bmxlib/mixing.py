"""Minority-augmented mixing (docs/method.md §1.3).

λ' ~ Beta(α, α), λ = max(λ', 1 − λ'), x_mix = λ·x_R + (1 − λ)·x_M, same for y.

Reproducibility: torch has no Beta (or Gamma) sampler that takes a ``torch.Generator``.
We therefore draw one 63-bit seed from the given generator (or from torch's global RNG
when none is given, so ``torch.manual_seed`` still controls the draws) and sample
λ' with ``numpy.random.Generator(seed).beta``. This is exact Beta sampling, consumes
one value of the torch generator per call, and never touches any global RNG state.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["sample_lambda", "mix_with", "minority_mix"]

_SEED_BOUND = 2**63 - 1


def _seed_from(generator: torch.Generator | None) -> int:
    if generator is None:
        return int(torch.randint(_SEED_BOUND, (1,)).item())
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")
    draw = torch.randint(_SEED_BOUND, (1,), generator=generator, device=generator.device)
    return int(draw.item())


def sample_lambda(
    alpha: float = 4.0,
    *,
    size: int | None = None,
    generator: torch.Generator | None = None,
) -> np.ndarray | float:
    """Draw λ = max(λ', 1 − λ') with λ' ~ Beta(alpha, alpha); in [0.5, 1].

    Returns a float when ``size`` is None, else a float64 array of shape (size,).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a number, got {type(alpha)}")
    alpha = float(alpha)  # NumPy scalars too
    if not (alpha > 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    rng = np.random.default_rng(_seed_from(generator))
    draw = rng.beta(alpha, alpha, size=size)
    lam = np.maximum(draw, 1.0 - draw)
    return float(lam) if size is None else lam


def _check_batches(x_r, y_r, x_m, y_m) -> None:
    for name, tensor in (("x_r", x_r), ("y_r", y_r), ("x_m", x_m), ("y_m", y_m)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor)}")
        if tensor.dim() < 1:
            raise ValueError(f"{name} must have a batch dimension, got a scalar")
    if x_r.shape != x_m.shape:
        raise ValueError(f"x_r and x_m shapes differ: {tuple(x_r.shape)} vs {tuple(x_m.shape)}")
    if y_r.shape != y_m.shape:
        raise ValueError(f"y_r and y_m shapes differ: {tuple(y_r.shape)} vs {tuple(y_m.shape)}")
    if x_r.shape[0] != y_r.shape[0]:
        raise ValueError(f"x_r has batch size {x_r.shape[0]} but y_r has {y_r.shape[0]}")
    if not x_r.is_floating_point() or not x_m.is_floating_point():
        raise TypeError(f"x_r and x_m must be float tensors, got {x_r.dtype} and {x_m.dtype}")
    if x_r.dtype != x_m.dtype:
        raise TypeError(f"x_r and x_m dtypes differ: {x_r.dtype} vs {x_m.dtype}")
    if y_r.is_floating_point() and y_m.is_floating_point() and y_r.dtype != y_m.dtype:
        raise TypeError(f"y_r and y_m float dtypes differ: {y_r.dtype} vs {y_m.dtype}")
    for name, tensor in (("y_r", y_r), ("x_m", x_m), ("y_m", y_m)):
        if tensor.device != x_r.device:
            raise ValueError(f"{name} is on {tensor.device} but x_r on {x_r.device}")


def _label_dtype(y_r: torch.Tensor, y_m: torch.Tensor, x_dtype: torch.dtype) -> torch.dtype:
    """The mixed labels' dtype: the float labels' own, else (both integer or bool) x's."""
    for y in (y_r, y_m):
        if y.is_floating_point():
            return y.dtype
    return x_dtype


def _broadcast(lam: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """View a scalar or (B,) λ so that it broadcasts over the non-batch dims of target."""
    if lam.dim() == 0:
        return lam
    return lam.view(-1, *([1] * (target.dim() - 1)))


def mix_with(x_r, y_r, x_m, y_m, lam) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex combination λ·(x_R, y_R) + (1 − λ)·(x_M, y_M) for a given λ.

    Parameters
    ----------
    x_r, x_m : torch.Tensor, shape (B, ...), float
        Random-sampler and minority-sampler inputs.
    y_r, y_m : torch.Tensor, shape (B, K)
        Their (refined) labels; integer labels are promoted to the float dtype of the other
        batch's labels, or to x's dtype when both are integer. x_r and x_m share one dtype,
        float y_r and y_m too; all four share one device.
    lam : float or torch.Tensor, scalar or shape (B,), in [0, 1]

    Returns
    -------
    (x_mix, y_mix) : tensors shaped like x_r and y_r, on x_r's device; x_mix has x's
        dtype, y_mix the labels' float dtype (x's dtype when both are integer).
    """
    _check_batches(x_r, y_r, x_m, y_m)
    lam = torch.as_tensor(lam, device=x_r.device)
    if lam.dim() not in (0, 1) or (lam.dim() == 1 and lam.shape[0] != x_r.shape[0]):
        raise ValueError(f"lam must be a scalar or have shape ({x_r.shape[0]},), got {lam.shape}")
    y_dtype = _label_dtype(y_r, y_m, x_r.dtype)
    lam_x = _broadcast(lam.to(x_r.dtype), x_r)
    lam_y = _broadcast(lam.to(y_dtype), y_r)
    x_mix = lam_x * x_r + (1 - lam_x) * x_m
    y_mix = lam_y * y_r.to(y_dtype) + (1 - lam_y) * y_m.to(y_dtype)
    return x_mix, y_mix


def minority_mix(
    x_r,
    y_r,
    x_m,
    y_m,
    *,
    alpha: float = 4.0,
    per_sample: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix a random-sampler batch with a minority-sampler batch (docs/method.md §1.3).

    Parameters
    ----------
    x_r, x_m : torch.Tensor, shape (B, ...), float
    y_r, y_m : torch.Tensor, shape (B, K)
        Dtypes and device as in :func:`mix_with`.
    alpha : float > 0
        Beta(α, α) concentration (default 4.0).
    per_sample : bool
        One λ per instance instead of one per batch.
    generator : torch.Generator, optional
        Makes λ reproducible (see module docstring); default: torch's global RNG.

    Returns
    -------
    (x_mix, y_mix, lam) : lam is a 0-dim tensor, or shape (B,) when ``per_sample``, in
        [0.5, 1], dtype of x, on x_r's device.
    """
    _check_batches(x_r, y_r, x_m, y_m)
    size = x_r.shape[0] if per_sample else None
    lam = torch.as_tensor(
        sample_lambda(alpha, size=size, generator=generator), dtype=x_r.dtype, device=x_r.device
    )
    x_mix, y_mix = mix_with(x_r, y_r, x_m, y_m, lam)
    return x_mix, y_mix, lam
