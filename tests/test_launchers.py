"""bmxlib.launchers: how the worker pool's processes start."""

from __future__ import annotations

import signal

import pytest

from bmxlib.config import load_config
from bmxlib.launchers import run_pool

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"),
                                reason="no signal masks on this platform")


def report_sigint(config) -> str:
    """A pool task (module level: the workers unpickle it): how its worker treats Ctrl-C."""
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    return f"{config.name} blocked={blocked} ignored={ignored}"


def test_pool_workers_start_with_ctrl_c_blocked_and_the_sweep_gets_its_own_back():
    """A Ctrl-C while a worker still imported torch printed the worker's KeyboardInterrupt
    traceback under the sweep's "interrupted" line (the worker ignored SIGINT only once its
    initializer ran). Nothing in a worker blocks SIGINT, so a blocked one was inherited from
    the spawn."""
    configs = [load_config(None, [f"name=p{i}"]) for i in range(3)]  # 3 points, 2 workers
    finished, skipped = [], []
    run_pool(configs, 2, finished.append, lambda name, error: skipped.append(name),
             task=report_sigint)
    assert sorted(finished) == [f"p{i} blocked=True ignored=True" for i in range(3)]
    assert not skipped
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
