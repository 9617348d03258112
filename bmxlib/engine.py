"""Training core: ``fit(config) -> run dir``, a short loop over named verbs.

``fit`` builds the run (``bmxlib.experiment``, with the instance noise's reference from
``bmxlib.reference``), begins it (``begin_run``: a new run's header after the method's
initial pass, or the exact resume from its checkpoint, ``bmxlib.checkpoints``) and loops:
each epoch's ``bmxlib.steps.run_epoch`` (train, the method's ``end_of_epoch``, evaluate)
returns an epoch record that a :class:`bmxlib.recorder.Recorder` writes (run directory,
TensorBoard, console).

Determinism: every epoch re-seeds torch / numpy / random and the samplers from
(seed, epoch), so a run resumed at an epoch boundary repeats the uninterrupted run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from . import distributed as dist
from . import runs
from .checkpoints import check_finished, load_checkpoint, save_checkpoint
from .config import Config
from .experiment import Setup, build, load_splits
from .models import BACKBONE_SOURCES
from .pretrain import pretrained_digits_backbone
from .recorder import Recorder, open_run, write_run_header
from .reference import reference_confidence
from .steps import initial_pass, run_epoch


def build_run(config: Config) -> Setup:
    """``build`` with the instance noise's reference model when the config needs it."""
    reference = reference_confidence(config) if config.noise == "instance" else None
    return build(config, reference=reference)


def warm_caches(configs: list[Config]) -> None:
    """Fill the caches the runs of ``configs`` read — the generated embedded datasets, the
    pretrained small-CNN backbones, the instance noise's reference confidences — once,
    before a sweep starts its workers, so that they read these files instead of each
    building the same ones at the same time (the fills are atomic either way)."""
    seen: set[tuple] = set()
    for config in configs:
        key = (config.dataset, config.data_seed, config.n_train, config.n_test,
               config.width, config.pretrained)
        if key not in seen:
            seen.add(key)
            if not config.data_root:  # datasets read from files have nothing to generate
                load_splits(config)
            if config.pretrained in BACKBONE_SOURCES:
                pretrained_digits_backbone(width=config.width, seed=config.data_seed,
                                           source=config.pretrained)
        if config.noise == "instance":
            reference_confidence(config)  # a cache hit after the first of its key


def begin_run(s: Setup, run_dir: Path, *, resume: bool) -> int:
    """The first epoch to train. Resuming restores the checkpoint (the metrics of
    unfinished epochs go) and returns the epoch after it; a new run makes the method's
    initial full-data pass, then writes the run header (config, provenance, labels,
    dataset facts, the pass's diagnostics as epoch 0) and returns 1, as does a resumed run
    killed before its first checkpoint, which has nothing trained to keep."""
    if resume and runs.checkpoint_path(run_dir).is_file():
        return load_checkpoint(s, run_dir) + 1
    diagnostics = initial_pass(s)
    write_run_header(run_dir, s, initial_diagnostics=diagnostics)
    return 1


def fit(config: Config, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train ``config`` and write its run directory; returns the run directory.

    Parameters
    ----------
    config : Config
        A validated configuration (``bmxlib.config.load_config``).
    resume : bool
        Continue ``out_dir/name`` from its last checkpoint (the config is read from it); a
        finished run is returned untouched (``checkpoints.check_finished``).
    overwrite : bool
        Replace an existing run directory instead of refusing.
    """
    dist.init()
    run_dir = Path(config.out_dir) / config.name
    if resume and runs.is_finished(run_dir):
        # nothing to resume; without a checkpoint (an archived run) it would start again
        # at epoch 1 and overwrite the finished run's metrics
        check_finished(run_dir)
        return run_dir
    runs.check_writable(run_dir, resume=resume, overwrite=overwrite)  # before any work
    s = build_run(config)  # validates data and model before anything is written
    with open_run(run_dir, resume=resume, overwrite=overwrite):
        start = begin_run(s, run_dir, resume=resume)
        recorder = Recorder(run_dir, config, start_epoch=start,
                            save_state=lambda path, epoch: save_checkpoint(s, path, epoch))
        with contextlib.closing(recorder):
            for epoch in range(start, config.epochs + 1):
                done = run_epoch(s, epoch)
                recorder.write_epoch(done)
        recorder.finish()
    return run_dir
