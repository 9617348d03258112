"""Methods (docs/method.md §4): one class per ``method`` config value, built by ``build_method``.

Each class registers itself where it is defined (``Method.__init_subclass__``) with its
name and its own hyperparameters; ``method_hyperparameters`` gathers the latter for
``bmxlib.config``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

import torch

from .base import (
    REGISTRY,
    Batch,
    EpochContext,
    EpochResult,
    Hyperparameter,
    Method,
    TrainingData,
)

# Every module of this package is imported once, so each method class registers itself
# (``Method.__init_subclass__``): a new method is a new module, with no list to extend.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

if TYPE_CHECKING:  # config reads the method registry, so methods import it only for types
    from ..config import Config

def build_method(config: Config, data: TrainingData, *, model: torch.nn.Module) -> Method:
    """Instantiate the method named by ``config.method``."""
    return REGISTRY[config.method].build(config, data, model=model)


def method_hyperparameters() -> dict[str, Hyperparameter]:
    """Every registered method's own config keys, in registry order (a key two methods
    share, such as LL-R's and LL-Ct's ``ll_delta_rel``, comes from their common base)."""
    keys: dict[str, Hyperparameter] = {}
    for cls in REGISTRY.values():
        for key, declared in cls.hyperparameters.items():
            if keys.setdefault(key, declared) != declared:
                raise ValueError(f"method {cls.name!r} redeclares hyperparameter {key!r}")
    return keys


__all__ = ["REGISTRY", "Batch", "EpochContext", "EpochResult", "Hyperparameter", "Method",
           "TrainingData", "build_method", "method_hyperparameters"]
