"""Where a run's epochs go: the run directory, TensorBoard and the console, in one place.

``open_run`` holds the run directory for one writer (it replaces an overwritten run's files
and removes a killed run's half-written ones); ``write_run_header`` writes what a run knows
before its first epoch (config, provenance, labels, the dataset's facts, a method's
initial-pass diagnostics as epoch 0); a :class:`Recorder` writes each :class:`EpochRecord`
the engine hands it (TensorBoard's view, then the run directory's files in the order that
keeps a killed run whole: diagnostics, the metrics line, the checkpoint), and the summary
at the end. Only rank 0 writes; every rank waits for it.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import distributed as dist
from . import runs
from .config import Config
from .experiment import Setup, cached_inputs
from .provenance import run_provenance
from .stats import dataset_facts
from .steps import EpochRecord
from .tensorboard import EpochWriter

MIN_FREE_BYTES = 256 << 20  # stop (keeping the last checkpoint) below this much free disk


@contextlib.contextmanager
def open_run(run_dir: Path, *, resume: bool, overwrite: bool) -> Iterator[Path]:
    """Hold ``run_dir`` for writing while inside; every rank enters once rank 0 is done.

    Rank 0 takes the writer lock (``runs.writer_lock``: the OS releases it if the process
    dies), checks again under it that the directory may be written
    (``runs.check_writable``), then removes an overwritten run's files, or the half-written
    files a killed run left when resuming.
    """
    with runs.writer_lock(run_dir) if dist.is_main() else contextlib.nullcontext():
        if dist.is_main():
            runs.check_writable(run_dir, resume=resume, overwrite=overwrite)
            if resume:
                runs.remove_stale_temporaries(run_dir)
            elif overwrite:
                runs.clear_dir(run_dir)
        dist.barrier()
        yield run_dir


def write_run_header(run_dir: Path, s: Setup, *,
                     initial_diagnostics: dict[str, np.ndarray] | None = None) -> None:
    """The run header (config, provenance, labels, dataset facts, no epochs yet) and a
    method's initial pass's diagnostics (as epoch 0), by rank 0."""
    if not dist.is_main():
        return
    inputs = cached_inputs(s)
    provenance = run_provenance(device=s.device, cached_inputs=inputs)
    thresholds = {"many": s.config.shot_many or s.train_set.shot_many,
                  "few": s.config.shot_few or s.train_set.shot_few}
    dataset = dataset_facts(s.train_set.labels, class_names=s.train_set.class_names,
                            n_test=len(s.test_set), groups=s.groups,
                            shot_thresholds=thresholds, corrupted=s.corrupted)
    labels = {"clean": s.train_set.labels, "noisy": s.noisy, "corrupted": s.corrupted,
              "test": s.test_set.labels, "class_names": np.array(s.train_set.class_names),
              "shot_groups": s.groups.astype(str),
              **({"reference_confidence": s.reference.astype(np.float16)}
                 if s.reference is not None else {})}
    runs.write_header(run_dir, config_text=s.config.to_yaml(), provenance=provenance,
                      labels=labels, dataset=dataset)
    if initial_diagnostics:
        runs.write_diagnostics(run_dir, 0, initial_diagnostics)


def check_disk(run_dir: Path, epoch: int) -> None:
    """Refuse to write an epoch onto a nearly full disk (one line, the last epoch kept)."""
    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise OSError(f"only {free >> 20} MB free on the disk of {run_dir}: stopped before "
                      f"writing epoch {epoch} (the last checkpoint is kept; free space and "
                      f"resume, or raise diagnostics_every)")


def epoch_line(config: Config, record: dict[str, Any]) -> str:
    """The console's one summary line of an epoch record."""
    fmt = lambda v: "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"  # noqa: E731
    scores = (f"mAP {fmt(record.get('mAP'))} (many {fmt(record.get('mAP_many'))} medium "
              f"{fmt(record.get('mAP_medium'))} few {fmt(record.get('mAP_few'))}) "
              if "mAP" in record else "(not evaluated: eval_every) ")
    return (f"[{config.name}] epoch {record['epoch']}/{config.epochs} loss "
            f"{record['train_loss']:.4f} {scores}{record['seconds']:.1f}s "
            f"{record['images_per_s']:.0f} img/s")


class Recorder:
    """Writes one run's epoch records: run directory, TensorBoard events, console line.

    Parameters
    ----------
    run_dir : Path
        The run directory (its header already written).
    config : Config
        The run's config (``tensorboard``, ``name`` and ``epochs`` are read).
    start_epoch : int
        The first epoch this session writes (TensorBoard purges later events on resume).
    save_state : callable
        ``save_state(run_dir, epoch)`` writes the checkpoint of a finished epoch.
    """

    def __init__(self, run_dir: Path, config: Config, *, start_epoch: int,
                 save_state: Callable[[Path, int], None]) -> None:
        self.run_dir, self.config, self.save_state = run_dir, config, save_state
        self.board = EpochWriter(run_dir, enabled=config.tensorboard and dist.is_main(),
                                 start_epoch=start_epoch)

    def write_epoch(self, done: EpochRecord) -> None:
        """TensorBoard's view, then the run directory's files in the order that keeps a
        killed run whole: diagnostics, the metrics line, the checkpoint (a resumed run
        purges the events after its checkpoint). The metrics line gets the run directory's
        size after the diagnostics (``run_dir_bytes``)."""
        record, diagnostics = done
        epoch = record["epoch"]
        line = epoch_line(self.config, record)  # run_dir_bytes is not on the console
        if dist.is_main():
            check_disk(self.run_dir, epoch)
            self.board.write(record, diagnostics)
            if diagnostics:
                runs.write_diagnostics(self.run_dir, epoch, diagnostics)
            record["run_dir_bytes"] = runs.directory_bytes(self.run_dir)
            runs.append_metrics(self.run_dir, record)
            self.save_state(self.run_dir, epoch)
        dist.barrier()
        if dist.is_main():  # one summary line per epoch, whatever ``progress`` says
            tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        self.board.close()

    def finish(self) -> None:
        """summary.json, written last (a run without it is unfinished)."""
        if dist.is_main():
            runs.write_summary(self.run_dir)
        dist.barrier()
