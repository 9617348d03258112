"""Shared fixtures: an isolated cache, tiny digits-lt configs, a finished tiny run."""

from __future__ import annotations

import os

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
