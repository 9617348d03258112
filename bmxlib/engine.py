"""Training core: ``fit(config) -> run dir``, a short loop over named verbs.

Per epoch (``run_epoch``): ``seed_epoch``, ``train_one_epoch`` (``bmxlib.steps``), the
method's ``end_of_epoch`` through an :class:`EngineContext` (its full-data passes and
re-label views, ``bmxlib.passes``), ``evaluate`` on the test split, and the confidence vs
AP relation (docs/method.md §3); the epoch record goes to a :class:`bmxlib.recorder.Recorder` (run
directory, TensorBoard, console). ``fit`` builds the run (``bmxlib.experiment``, with the
instance noise's reference from ``bmxlib.reference``), starts or resumes it exactly from
its checkpoint (``bmxlib.checkpoints``) and loops.

Determinism: every epoch re-seeds torch / numpy / random and the samplers from
(seed, epoch), so a run resumed at an epoch boundary repeats the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed as dist
from . import runs
from .checkpoints import check_finished, load_checkpoint, save_checkpoint
from .compute import check_finite
from .config import Config
from .experiment import Setup, build, load_splits
from .metrics import confidence_vs_ap, noisy_label_fit
from .models import BACKBONE_SOURCES
from .passes import evaluate, full_data_pass, relabel_views
from .pretrain import pretrained_digits_backbone
from .recorder import EpochRecord, Recorder, open_run, write_run_header
from .reference import reference_confidence
from .steps import seed_epoch, train_one_epoch

# Diagnostics keys the engine writes (docs/method.md §3 confidence vs AP per frequency group, (G,))
GROUP_CONFIDENCE = "group_confidence"
GROUP_AP = "group_ap"


class EngineContext:
    """The engine's :class:`bmxlib.methods.EpochContext`: passes through data loaders."""

    def __init__(self, setup: Setup, epoch: int, full_diagnostics: bool) -> None:
        self.setup, self.epoch, self.full_diagnostics = setup, epoch, full_diagnostics
        self._noise_fit: dict[str, float] | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.setup.model

    def full_data_pass(self, model: torch.nn.Module | None = None) -> torch.Tensor:
        logits = check_finite(self._pass(model), epoch=self.epoch, what="full-data pass")
        if self._noise_fit is None and (model is None or model is self.setup.model):
            # measured now, before a method may overwrite the logits in place; the pass
            # exists anyway, so every epoch that makes one records the memorization
            self._noise_fit = self._fit_of(logits)
        return logits

    def noise_fit(self, *, new_pass: bool = True) -> dict[str, float] | None:
        """``metrics.noisy_label_fit`` of the current model: from the method's own full-data
        pass when it made one, else from a new pass if ``new_pass`` (None without synthetic
        noise, or without either pass)."""
        if self._noise_fit is None and new_pass:
            self._noise_fit = self._fit_of(self._pass(None))
        return self._noise_fit

    def _pass(self, model: torch.nn.Module | None) -> torch.Tensor:
        s = self.setup
        return full_data_pass(s.model if model is None else model, s.eval_train_set,
                              device=s.device, config=s.config)

    def _fit_of(self, logits: torch.Tensor) -> dict[str, float] | None:
        s = self.setup
        return noisy_label_fit(logits, s.noisy, s.corrupted) if s.corrupted.any() else None

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        s = self.setup
        return relabel_views(s.model, s.views_set, rows, device=s.device, config=s.config,
                             n_views=n_views)


# --------------------------------------------------------------------------------------
# one epoch, and the run around it
# --------------------------------------------------------------------------------------
def is_full_diagnostics_epoch(config: Config, epoch: int) -> bool:
    every = config.diagnostics_every
    return bool(every) and (epoch % every == 0 or epoch == config.epochs)


def is_evaluation_epoch(config: Config, epoch: int) -> bool:
    return (epoch % config.eval_every == 0 or epoch == config.epochs
            or is_full_diagnostics_epoch(config, epoch))


def run_epoch(s: Setup, epoch: int) -> EpochRecord:
    """Train one epoch, let the method update itself, evaluate; the epoch's record."""
    c = s.config
    full_diagnostics, evaluating = (is_full_diagnostics_epoch(c, epoch),
                                    is_evaluation_epoch(c, epoch))
    context = EngineContext(s, epoch, full_diagnostics)
    seed_epoch(c.seed, epoch)
    start = time.perf_counter()
    record: dict[str, Any] = {"epoch": epoch, **train_one_epoch(s, epoch)}
    result = s.method.end_of_epoch(context)
    if evaluating:
        record.update(evaluate(s.model, s.test_set, s.groups, device=s.device,
                               config=s.config, epoch=epoch))
        if result.class_confidence is not None:
            # docs/method.md §3 confidence vs AP per frequency group of the clean training positives
            cva = confidence_vs_ap(result.class_confidence,
                                   np.array(record["ap"], dtype=float),
                                   s.train_set.labels.sum(axis=0))
            record["confidence_ap_pearson"] = cva["pearson_r"]
            result.diagnostics[GROUP_CONFIDENCE] = np.asarray(cva["group_confidence"])
            result.diagnostics[GROUP_AP] = np.asarray(cva["group_ap"])
    record.update(result.logs)
    # how much noise the model fits: every epoch with a full-data pass, a new pass only
    # on full-diagnostics epochs
    record.update(context.noise_fit(new_pass=full_diagnostics) or {})
    record["seconds"] = time.perf_counter() - start
    return EpochRecord(record, result.diagnostics)


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


def initial_pass(s: Setup) -> dict[str, np.ndarray]:
    """A method's full-data pass before the first epoch when it needs one; its
    diagnostics (written as epoch 0), else none."""
    if not s.method.needs_initial_pass():
        return {}
    context = EngineContext(s, 0, False)
    seed_epoch(s.config.seed, 0)
    return s.method.end_of_epoch(context).diagnostics


def start_run(s: Setup, run_dir: Path) -> int:
    """Run a method's initial full-data pass, then write the run header (config,
    provenance, labels, dataset facts, the pass's diagnostics as epoch 0); returns 1."""
    diagnostics = initial_pass(s)
    write_run_header(run_dir, s, initial_diagnostics=diagnostics)
    return 1


def resume_run(s: Setup, run_dir: Path) -> int:
    """Restore the checkpoint (metrics of unfinished epochs go); returns the next epoch.
    A run killed before its first checkpoint has nothing trained to keep: it starts again
    at epoch 1 in place."""
    if not runs.checkpoint_path(run_dir).is_file():
        return start_run(s, run_dir)
    return load_checkpoint(s, run_dir) + 1


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
        start = resume_run(s, run_dir) if resume else start_run(s, run_dir)
        recorder = Recorder(run_dir, config, start_epoch=start,
                            save_state=lambda path, epoch: save_checkpoint(s, path, epoch))
        with contextlib.closing(recorder):
            for epoch in range(start, config.epochs + 1):
                done = run_epoch(s, epoch)
                recorder.write_epoch(done)
        recorder.finish()
    return run_dir
