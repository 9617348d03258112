"""What BalanceMix's minority sampler and label management did in a run, read back from
its run directory (docs/method.md §1.2, §1.4; the diagnostics of §7):

- ``minority_oversampling(run)``: per shot group, the minority sampler's draw of its
  positive labels relative to a shuffle.
- ``relabel_outcomes(run)``: per shot group, the shares of correct positives re-labeled to 0
  or set ambiguous, of wrong positives corrected to 0, of hidden positives recovered as 1
  (``labels.relabel_outcomes``).
- ``selection_by_hardness(run)``: clean-label selection per bin of hardness, under
  instance-dependent noise.
- ``large_loss_by_group(run)``: per shot group, the share of its label entries LL-R /
  LL-Ct modified in an epoch and how many of those were hidden positives.

Each raises ``ValueError`` (one line naming the run) for a run that did not record what it
reads: a method without a minority sampler or label management, a run without clean labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import labels, runs
from .methods.balancemix import DRAW_SHARE, NATURAL_SHARE, STATE, TARGETS
from .methods.large_loss import MODIFIED_BY_CLASS, MODIFIED_HIDDEN_BY_CLASS
from .metrics import selection_by_bins
from .stats import GROUP_NAMES, group_oversampling


def relabel_outcomes(run: runs.Run, *, epoch: int | None = None) -> dict[str, dict[str, float]]:
    """``labels.relabel_outcomes`` of a label-managing run at ``epoch`` (default: the last
    epoch whose diagnostics hold the label states), per shot group and over all classes.

    Returns
    -------
    dict
        ``"all"`` and each shot group of ``stats.GROUP_NAMES`` the run has → outcome name
        (``labels.RELABEL_OUTCOMES``) → share in [0, 1] (NaN where no label of the kind).
    """
    data = _diagnostics_holding(
        run, STATE, epoch=epoch, what="label states", usable=run.clean_labels is not None,
        missing=f"run {run.name} has no label states or no clean labels to compare them with")
    arrays = (data[STATE], run.noisy_labels, run.clean_labels, data[TARGETS])
    return _per_shot_group(run, lambda classes: labels.relabel_outcomes(*arrays,
                                                                        classes=classes))


def selection_by_hardness(run: runs.Run, *, bins: int = 5,
                          epoch: int | None = None) -> dict[str, np.ndarray]:
    """Clean-label selection precision / recall of a BalanceMix run under instance noise,
    per quantile bin of hardness — the reference model's error on each label's *true*
    value (1 − c for true positives, c for true negatives): does small-loss selection still
    separate clean from corrupted labels when the noise follows what is hard?

    ``epoch``: the full-diagnostics epoch whose label states are read (default: the last).
    """
    if run.reference_confidence is None or run.clean_labels is None:
        raise ValueError(f"run {run.name} has no reference confidences (not instance noise)")
    full = [e for e in run.diagnostic_epochs if STATE in run.diagnostics_keys(e)]
    if not full:
        raise ValueError(f"run {run.name} has no label states (no full-diagnostics epoch)")
    state = run.diagnostics(epoch if epoch is not None else full[-1])[STATE]
    truth = run.clean_labels.astype(bool)
    confidence = run.reference_confidence.astype(np.float64)
    hardness = np.where(truth, 1.0 - confidence, confidence)
    selected = state == labels.LabelState.CLEAN
    correct = run.noisy_labels == run.clean_labels
    return selection_by_bins(selected, correct, hardness, bins=bins)


def minority_oversampling(run: runs.Run, *, epoch: int | None = None) -> dict[str, float]:
    """``stats.group_oversampling`` of a BalanceMix run's minority sampler at ``epoch``
    (default: the last epoch whose diagnostics hold the draw shares): per shot group, its
    positive labels per minority draw over those per random draw."""
    data = _diagnostics_holding(
        run, DRAW_SHARE, epoch=epoch, what="draw shares", usable=run.shot_groups is not None,
        missing=f"run {run.name} has no minority-sampler draw shares or shot groups")
    return group_oversampling(data[DRAW_SHARE], data[NATURAL_SHARE], run.shot_groups)


def large_loss_by_group(run: runs.Run, *, epoch: int | None = None) -> dict[str, dict[str, float]]:
    """Where LL-R / LL-Ct's modified labels fell at ``epoch`` (default: the last epoch whose
    diagnostics hold the per-class counts): over all classes and per shot group, the share
    of the label entries modified (``"modified"``; all classes: the epoch's ``ll_modified``)
    and, where the noise was injected, the share of those that were hidden positives
    (``"precision"``; NaN where none was modified).

    Returns
    -------
    dict
        ``"all"`` and each shot group of ``stats.GROUP_NAMES`` the run has →
        {"modified": [0, 1], "precision": [0, 1] or NaN (absent without injected noise)}.
    """
    data = _diagnostics_holding(
        run, MODIFIED_BY_CLASS, epoch=epoch, what="large-loss counts",
        missing=f"run {run.name} has no per-class large-loss counts (not LL-R / LL-Ct, or no "
                "full-diagnostics epoch)")
    modified = np.asarray(data[MODIFIED_BY_CLASS], dtype=np.float64)
    hidden = data.get(MODIFIED_HIDDEN_BY_CLASS)

    def summary(classes: np.ndarray | None) -> dict[str, float]:
        chosen = slice(None) if classes is None else classes
        result = {"modified": float(modified[chosen].mean())}
        if hidden is not None:
            total = modified[chosen].sum()
            result["precision"] = (float(np.asarray(hidden)[chosen].sum() / total) if total
                                   else float("nan"))
        return result

    return _per_shot_group(run, summary)


def _diagnostics_holding(run: runs.Run, key: str, *, epoch: int | None, what: str,
                         missing: str, usable: bool = True) -> dict[str, np.ndarray]:
    """The diagnostics of ``epoch`` (default: the last epoch whose diagnostics hold ``key``);
    ``ValueError(missing)`` when no epoch holds it or the run is not ``usable`` otherwise, and
    one naming the epochs that hold ``what`` when ``epoch`` is not one of them."""
    epochs = [e for e in run.diagnostic_epochs if key in run.diagnostics_keys(e)]
    if not epochs or not usable:
        raise ValueError(missing)
    if epoch is not None and epoch not in epochs:
        raise ValueError(f"epoch {epoch} of run {run.name} has no {what}; available: "
                         f"{epochs}")
    return run.diagnostics(epochs[-1] if epoch is None else epoch)


def _per_shot_group(run: runs.Run, summarize: Callable[[np.ndarray | None], dict[str, float]]
                    ) -> dict[str, dict[str, float]]:
    """``{"all": summarize(None)}`` and, for each shot group of ``stats.GROUP_NAMES`` the run
    has, ``summarize(mask)`` with the (K,) boolean mask of its classes."""
    result = {"all": summarize(None)}
    if run.shot_groups is not None:
        groups = np.asarray(run.shot_groups)
        for name in GROUP_NAMES:
            if (groups == name).any():
                result[name] = summarize(groups == name)
    return result
