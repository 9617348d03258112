"""Shared fixtures: an isolated cache, tiny digits-lt configs, a finished tiny run, and
the tiny sweep with its report (built once per session by test_notebooks.build_tiny_report)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TINY = [
    "n_train=240", "n_test=120", "width=8", "batch_size=32", "epochs=2", "warmup_epochs=1",
    "progress=false", "diagnostics_every=1", "threads=1",
]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Datasets and the pretrained backbone are cached once per test session."""
    cache = tmp_path_factory.mktemp("bmxlib-cache")
    old = os.environ.get("BMXLIB_CACHE")
    os.environ["BMXLIB_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("BMXLIB_CACHE", None)
    else:
        os.environ["BMXLIB_CACHE"] = old


@pytest.fixture
def tiny_overrides(tmp_path):
    """key=value overrides for a seconds-long digits-lt run under tmp_path."""
    return [*TINY, f"out_dir={tmp_path / 'runs'}"]


@pytest.fixture
def tiny_config(tiny_overrides):
    from bmxlib.config import load_config

    def make(*extra: str):
        return load_config(None, [*tiny_overrides, *extra])

    return make


@pytest.fixture(scope="session")
def balancemix_run(tmp_path_factory):
    """A finished 2-epoch BalanceMix run with synthetic noise (shared, read-only)."""
    from bmxlib.config import load_config
    from bmxlib.engine import fit

    out = tmp_path_factory.mktemp("runs")
    config = load_config(None, [*TINY, f"out_dir={out}", "name=bm", "method=balancemix",
                                "noise=mislabel", "noise_rate=0.4"])
    return fit(config)


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory):
    """The tiny sweep (bce and balancemix, 2 epochs) and its ``bmx report``, built once."""
    from test_notebooks import build_tiny_report

    return build_tiny_report(tmp_path_factory)


@pytest.fixture(scope="session")
def bm_run(tiny_report) -> Path:
    """The tiny sweep's BalanceMix run (the per-run notebooks' run)."""
    from test_notebooks import BM_POINT

    return tiny_report["sweep_dir"] / BM_POINT
