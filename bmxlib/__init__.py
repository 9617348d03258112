"""bmxlib: BalanceMix and its baselines for noisy, imbalanced multi-label learning.

The small public API (docs/method.md §6) is re-exported here as submodules::

    bmxlib.data.load_dataset        bmxlib.noise.inject           bmxlib.stats.imbalance
    bmxlib.metrics.average_precision / mean_average_precision
    bmxlib.gmm.clean_probability    bmxlib.sampling.minority_probabilities
    bmxlib.mixing.minority_mix      bmxlib.runs.load_run          bmxlib.engine.fit

The submodules are imported on first use (PEP 562), so ``from bmxlib import plots, runs``
— the first line of every notebook of a report — does not pay for torchvision and the
dataset loaders.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["data", "gmm", "load_run", "metrics", "mixing", "noise", "sampling", "stats"]
_SUBMODULES = frozenset(__all__) - {"load_run"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "load_run":
        from .runs import load_run

        return load_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
