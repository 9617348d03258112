"""Methods (SPEC §4): one class per ``method`` config value, built by ``build_method``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .balancemix import BalanceMix
from .base import Batch, EpochContext, EpochResult, Method, TrainingData
from .coteaching import CoTeaching
from .large_loss import LargeLossCorrection, LargeLossRejection
from .loss_methods import ASL, BCE, DistributionBalanced, Focal, RandomOversampling
from .mixup import Mixup
from .t_estimator import TEstimator

if TYPE_CHECKING:  # config reads the method registry, so methods import it only for types
    from ..config import Config

REGISTRY: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        BCE, Mixup, Focal, ASL, RandomOversampling, LargeLossRejection, LargeLossCorrection,
        CoTeaching, TEstimator, DistributionBalanced, BalanceMix,
    )
}


def build_method(config: Config, data: TrainingData, *, model: torch.nn.Module) -> Method:
    """Instantiate the method named by ``config.method``."""
    cls = REGISTRY[config.method]
    if cls is CoTeaching:
        return cls(config, data, model=model)
    return cls(config, data)


__all__ = ["REGISTRY", "Batch", "EpochContext", "EpochResult", "Method", "TrainingData",
           "build_method"]
