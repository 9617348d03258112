"""Instance-level selection rules of the docs/method.md §4 baselines: co-teaching's two-component
GMM on the peer network's per-instance losses, and ROS's oversampling weights."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from .losses import check_real

__all__ = ["coteaching_clean_probability", "coteaching_select", "ros_instance_weights"]


# --------------------------------------------------------------------------- co-teaching


def _as_numpy_1d(values, name: str) -> np.ndarray:
    """Copy a 1-D tensor or array to a float64 numpy array; reject NaN/inf."""
    if isinstance(values, torch.Tensor):
        array = values.detach().to("cpu", torch.float64).numpy()
    else:
        array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def _like_input(result: np.ndarray, reference):
    """Return ``result`` as a tensor on ``reference``'s device if it was a tensor."""
    if isinstance(reference, torch.Tensor):
        return torch.from_numpy(result).to(reference.device)
    return result


def coteaching_clean_probability(
    per_instance_loss,
    *,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
    seed: int = 0,
):
    """Clean probability of each instance from a two-component 1-D GMM on its loss.

    The losses are min-max normalised and fitted with scikit-learn's ``GaussianMixture``
    (2 components, the DivideMix recipe); the clean probability is the posterior of the
    component with the smaller mean. Degenerate input (fewer than 2 losses, or all
    equal) is all clean with probability 1.

    Parameters
    ----------
    per_instance_loss : torch.Tensor or np.ndarray, shape (N,)
        The peer network's per-instance mean BCE; finite.
    max_iter, tol, reg_covar : EM settings passed to ``GaussianMixture``.
    seed : int
        ``random_state`` of the k-means initialisation, for reproducibility.

    Returns
    -------
    np.ndarray float64 (N,) in [0, 1], or a float64 torch.Tensor on the input's device
    when the input is a tensor.
    """
    losses = _as_numpy_1d(per_instance_loss, "per_instance_loss")
    spread = losses.max() - losses.min() if losses.size else 0.0
    if losses.size < 2 or spread <= 1e-12 * max(1.0, abs(losses.max())):
        return _like_input(np.ones_like(losses), per_instance_loss)
    normalised = ((losses - losses.min()) / spread).reshape(-1, 1)
    mixture = GaussianMixture(
        n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=seed
    )
    mixture.fit(normalised)
    clean_component = int(np.argmin(mixture.means_.ravel()))
    probability = mixture.predict_proba(normalised)[:, clean_component]
    return _like_input(probability.astype(np.float64), per_instance_loss)


def coteaching_select(
    per_instance_loss_other,
    *,
    threshold: float = 0.5,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
    seed: int = 0,
):
    """Instances one network keeps: those the GMM on the *other* network calls clean.

    ``clean = coteaching_clean_probability(loss_other) > threshold`` (docs/method.md §4).

    Parameters
    ----------
    per_instance_loss_other : torch.Tensor or np.ndarray, shape (N,)
        The other network's per-instance mean BCE.
    threshold : float in [0, 1)
    max_iter, tol, reg_covar, seed : see :func:`coteaching_clean_probability`.

    Returns
    -------
    Bool mask (N,): np.ndarray, or torch.Tensor on the input's device for tensor input.
    """
    threshold = check_real("threshold", threshold, low=0.0, high=1.0)
    probability = coteaching_clean_probability(
        per_instance_loss_other, max_iter=max_iter, tol=tol, reg_covar=reg_covar, seed=seed
    )
    return probability > threshold


# --------------------------------------------------------------------------- ROS


def ros_instance_weights(labels) -> np.ndarray:
    """Sampling weights that oversample instances holding rare positives.

    With ``N_k`` the number of instances positive for class k (label > 0.5), instance n
    gets weight ∝ ``max_{k ∈ pos(n)} 1/N_k``; an instance without positives gets the
    smallest possible weight ``1 / max_k N_k``. This is a simplified, sampler-weight form
    of the intent of ML-ROS (Charte et al., Neurocomputing 2015): clone instances of
    minority labels so that rare labels are seen more often. If no instance has a
    positive, the weights are uniform.

    Parameters
    ----------
    labels : np.ndarray or torch.Tensor, shape (N, K), N >= 1
        Observed (possibly noisy) labels in [0, 1].

    Returns
    -------
    np.ndarray, float64, shape (N,), positive, summing to 1.
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise ValueError(f"labels must have shape (N, K) with N >= 1, got {labels.shape}")
    positive = labels > 0.5
    counts = positive.sum(axis=0)  # N_k
    if counts.max() == 0:
        return np.full(labels.shape[0], 1.0 / labels.shape[0])
    inverse = np.divide(1.0, counts, out=np.zeros(counts.shape), where=counts > 0)
    rarest = (positive * inverse).max(axis=1)  # 0 for instances without positives
    weights = np.where(rarest > 0, rarest, 1.0 / counts.max())
    return weights / weights.sum()
