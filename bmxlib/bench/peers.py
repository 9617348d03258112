"""The peers bmxlib replaces, run on the same inputs: scikit-learn (and torchmetrics)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def sklearn_clean_probability(losses: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p_G (N, K) by a loop over the 2K groups with sklearn ``GaussianMixture``
    (docs/method.md §1.4).

    The DivideMix recipe with the docs/method.md §1.4 settings; groups with fewer than 2
    members or all losses equal are clean (p_G = 1), as in bmxlib.
    """
    from sklearn.mixture import GaussianMixture

    p_clean = np.ones(losses.shape, dtype=np.float64)
    for k in range(losses.shape[1]):
        for value in (0, 1):
            members = labels[:, k] == value
            x = losses[members, k].astype(np.float64)
            if x.size < 2 or x.max() - x.min() <= 4 * np.finfo(losses.dtype).eps * max(
                abs(x.max()), 1.0
            ):
                continue
            x = ((x - x.min()) / (x.max() - x.min()))[:, None]
            gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4,
                                  random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=10
                gmm.fit(x)
            p_clean[members, k] = gmm.predict_proba(x)[:, gmm.means_.argmin()]
    return p_clean



def sklearn_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    from sklearn.metrics import average_precision_score

    return np.array([
        average_precision_score(targets[:, k], scores[:, k]) if targets[:, k].any() else np.nan
        for k in range(targets.shape[1])
    ])


def torchmetrics_average_precision(scores: torch.Tensor,
                                   targets: torch.Tensor) -> Callable[[], Any] | None:
    """A call of torchmetrics' per-class AP on the inputs, or None when not installed."""
    try:
        from torchmetrics.functional.classification import multilabel_average_precision
    except ImportError:
        return None
    return lambda: multilabel_average_precision(
        scores, targets.long(), num_labels=scores.shape[1], average="none"
    )
