"""How a sweep's points run: here, one after the other or in worker processes, or as
cluster jobs through submitit.

``bmxlib.sweep`` plans the points and applies the restart rules; it hands the points still
to do to :func:`run_point` (one at a time), :func:`run_pool` (``--jobs N``) or
:func:`submit_all` (``--launcher slurm`` / ``submitit-local``). Every path runs a point
through :func:`run_point`, which decides under the point's writer lock whether to skip,
resume or start it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path

from . import runs
from .config import Config, ConfigError
from .io import kill_if_stuck
from .results import write_tables

LAUNCHERS = ("local", "slurm", "submitit-local")
_STOPPING: list[int] = []  # a sweep worker's SIGTERM (_exit_with_parent): no other point


class PointsFailed(RuntimeError):
    """Some submitted points failed (the others finished; a rerun redoes the failed)."""


@dataclass
class ClusterOptions:
    """Resources of one sweep point as a cluster job (``--launcher slurm``).

    ``gpus`` per point (one node), ``cpus`` per point, ``time_minutes`` wall-time limit,
    ``mem_gb`` memory, ``partition`` the SLURM partition ("" = the cluster's default).
    """

    partition: str = ""
    gpus: int = 1
    cpus: int = 8
    time_minutes: int = 24 * 60
    mem_gb: int = 64


def check_launcher(launcher: str) -> None:
    """Refuse, before anything is written, a launcher this machine cannot use."""
    if launcher == "slurm" and shutil.which("srun") is None:
        raise ConfigError("no SLURM here: srun not found; use --launcher local")
    if launcher != "local":
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ConfigError(f"--launcher {launcher} needs the submitit package "
                              "(pip install submitit)") from None


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: leave when the sweep process ``parent`` (its pid from the parent:
    a worker killed while importing has another) is gone, not train on after its SIGKILL.
    Ctrl-C is the sweep's (ignored here, and blocked since the worker started: ``run_pool``);
    its SIGTERM unwinds the worker's point and sets ``_STOPPING``."""
    import faulthandler
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="bmx-parent-watch").start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(_STOPPING.append(signum) or 143))
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # its stacks, if io.kill_if_stuck


def run_point(config: Config) -> str:
    """Run one point under its writer lock, deciding under the lock: skip it if finished,
    resume it if it has a checkpoint, else start it; none in a stopped worker (a queued
    point). runs.RunDirBusy when another process (a sweep, a bmx train) is writing it."""
    from .engine import fit

    if _STOPPING:
        raise SystemExit(143)
    run_dir = Path(config.out_dir) / config.name
    with runs.writer_lock(run_dir):
        if not runs.is_finished(run_dir):
            resumable = runs.checkpoint_path(run_dir).exists()
            fit(config, resume=resumable, overwrite=not resumable)
    return config.name


def run_pool(configs: list[Config], jobs: int, finished, skipped, *,
             task: Callable[[Config], str] = run_point) -> None:
    """Run the points ``configs`` in ``jobs`` spawned workers, joined whatever stops them;
    ``finished(name)`` after each, ``skipped(name, runs.RunDirBusy)`` for a busy one.
    ``task`` runs one point in a worker (a module-level function: it is pickled).

    The workers are spawned with Ctrl-C blocked, and a signal mask survives exec: a Ctrl-C
    that reached a worker still importing, before ``_exit_with_parent`` ignores it, printed
    the worker's KeyboardInterrupt traceback. The sweep's own Ctrl-C waits in its mask the
    milliseconds the spawning takes, then arrives (the standard library starts its resource
    tracker so).
    """
    pool = None
    try:
        with _sigint_blocked():  # ProcessPoolExecutor spawns its workers in submit
            pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_exit_with_parent, initargs=(os.getpid(),))
            futures = {pool.submit(task, dataclasses.replace(c, progress=False)): c.name
                       for c in configs}
        for future in as_completed(futures):
            try:
                finished(future.result())
            except runs.RunDirBusy as error:
                skipped(futures[future], error)
    except BaseException as stop:  # Ctrl-C or SIGTERM: the running points unwind too
        workers = [] if isinstance(stop, Exception) else multiprocessing.active_children()
        for worker in workers:
            worker.terminate()  # it unwinds (_exit_with_parent); killed, it leaked semaphores
        if workers:  # unwinding takes seconds; after 30 a worker is stuck (a daemon timer)
            kill_if_stuck(workers, after_s=30)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Hold SIGINT pending in this thread (and the processes and threads it starts) inside;
    a no-op where there are no signal masks (Windows)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    # the resource tracker, started by a spawn if not running, unblocks SIGINT once it has
    # started (it blocks it around its own spawn, as here): start it before blocking
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if signal.SIGINT not in blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def submit_all(configs: list[Config], sweep_dir: Path, launcher: str,
               cluster: ClusterOptions, finished) -> None:
    """Run the points ``configs`` as submitit jobs (SLURM, or submitit's local executor)
    and wait; ``finished(name)`` after each. PointsFailed names the failed ones."""
    import submitit  # check_launcher: installed

    folder = sweep_dir / ".submitit"
    if launcher == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        options = {"slurm_partition": cluster.partition} if cluster.partition else {}
        executor.update_parameters(
            name=f"bmx-{sweep_dir.name}", timeout_min=cluster.time_minutes,
            gpus_per_node=cluster.gpus, cpus_per_task=cluster.cpus,
            mem_gb=cluster.mem_gb, nodes=1, tasks_per_node=1, **options)
    else:  # the same submission path on this machine (tests, a workstation)
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=cluster.time_minutes)
    jobs = [executor.submit(run_point, dataclasses.replace(c, progress=False))
            for c in configs]
    for config, job in zip(configs, jobs):
        print(f"[sweep {sweep_dir.name}] submitted {config.name} as job {job.job_id}",
              file=sys.stderr, flush=True)
    failed = []
    for config, job in zip(configs, jobs):
        try:
            finished(job.result())
        except Exception as err:  # noqa: BLE001 (a failed job is named; the others go on)
            message = " ".join(str(err).split())[-300:]
            print(f"[sweep {sweep_dir.name}] job {job.job_id} ({config.name}) failed: "
                  f"{message}", file=sys.stderr, flush=True)
            failed.append(config.name)
    if failed:
        write_tables(sweep_dir)
        raise PointsFailed(f"{len(failed)} of {len(configs)} points failed ({failed[0]}, ...); "
                           f"their logs are in {folder}; rerun the sweep to redo them")
