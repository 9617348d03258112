"""bmxlib: BalanceMix and its baselines for noisy, imbalanced multi-label learning.

The small public API (SPEC §6) is re-exported here as submodules::

    bmxlib.data.load_dataset        bmxlib.noise.inject           bmxlib.stats.imbalance
    bmxlib.metrics.average_precision / mean_average_precision
    bmxlib.gmm.clean_probability    bmxlib.sampling.minority_probabilities
    bmxlib.mixing.minority_mix      bmxlib.runs.load_run          bmxlib.engine.fit
"""

import importlib

__version__ = "0.1.0"

__all__ = ["data", "gmm", "load_run", "metrics", "mixing", "noise", "sampling", "stats"]


def __getattr__(name: str):
    """Submodules load on first use (PEP 562): ``bmx --help`` must not import torch."""
    if name == "load_run":
        from .runs import load_run

        return load_run
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
