"""The measures a run records per epoch, declared once: name, label, direction, format.

``runs`` copies the ``summary`` measures into summary.json, ``results`` builds its tables
from the ``map`` / ``quality`` / ``memorization`` groups, ``tensorboard`` writes every
measure with a ``tag``, the plots label their axes from here. A new measure is one line
of ``ALL`` (plus the code that computes it into the epoch record).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    """One key of a metrics.jsonl record.

    Attributes
    ----------
    name : str
        The record's key (``mAP_few``).
    label : str
        How tables and plots name it (``few``).
    direction : str
        ``"higher"`` or ``"lower"`` is better, or ``"neither"`` (bookkeeping).
    format : str
        How tables show it: ``"percent"`` (a share in [0, 1] shown as %, mean ± std),
        ``"share"`` (a share in [0, 1] shown as %), ``"number"`` or ``"count"``.
    group : str
        ``map`` (the paper's measures, docs/method.md §3), ``quality`` (label management against
        the truth), ``memorization``, ``large_loss`` (LL-R / LL-Ct's modified labels
        against the truth), ``training`` or ``relation``.
    tag : str or None
        Its TensorBoard tag (None: not written there).
    summary : bool
        Copied from the last epoch into summary.json.
    """

    name: str
    label: str
    direction: str
    format: str
    group: str
    tag: str | None = None
    summary: bool = True


ALL: tuple[Measure, ...] = (
    Measure("train_loss", "training loss", "lower", "number", "training", "train/loss",
            summary=False),
    Measure("lr", "learning rate", "neither", "number", "training", "train/lr", summary=False),
    Measure("images_per_s", "images / s", "higher", "number", "training",
            "train/images_per_s", summary=False),
    Measure("mAP", "mAP all", "higher", "percent", "map", "test/mAP"),
    Measure("mAP_many", "many", "higher", "percent", "map", "test/mAP_many"),
    Measure("mAP_medium", "medium", "higher", "percent", "map", "test/mAP_medium"),
    Measure("mAP_few", "few", "higher", "percent", "map", "test/mAP_few"),
    Measure("n_excluded", "classes without test positives", "neither", "count", "map"),
    Measure("selection_precision", "selection precision", "higher", "share", "quality",
            "labels/selection_precision"),
    Measure("selection_recall", "selection recall", "higher", "share", "quality",
            "labels/selection_recall"),
    Measure("relabel_accuracy", "re-labeling accuracy", "higher", "share", "quality",
            "labels/relabel_accuracy"),
    Measure("ll_modified", "labels modified", "neither", "share", "large_loss",
            "labels/ll_modified"),
    Measure("ll_modified_precision", "modified labels that are hidden positives", "higher",
            "share", "large_loss", "labels/ll_modified_precision"),
    Measure("ll_hidden_modified", "hidden positives modified", "higher", "share",
            "large_loss", "labels/ll_hidden_modified"),
    Measure("confidence_ap_pearson", "Pearson r (confidence, AP)", "higher", "number",
            "relation"),
    Measure("memorized_noisy", "memorized noisy", "lower", "share", "memorization",
            "noise/memorized_noisy"),
    Measure("fit_clean", "fit clean", "higher", "share", "memorization", "noise/fit_clean"),
    # the two directions apart: with many classes most labels are negatives, and a model
    # that predicts "absent" everywhere fits every hidden positive without learning anything
    Measure("memorized_false_positives", "memorized false positives", "lower", "share",
            "memorization", "noise/memorized_false_positives"),
    Measure("memorized_false_negatives", "memorized false negatives", "lower", "share",
            "memorization", "noise/memorized_false_negatives"),
)
BY_NAME: dict[str, Measure] = {m.name: m for m in ALL}


def in_group(group: str) -> tuple[Measure, ...]:
    """The measures of ``group`` in declaration order (``map``: mAP, many, medium, few and
    ``n_excluded``; use :func:`table_measures` for the columns of a table)."""
    return tuple(m for m in ALL if m.group == group)


def table_measures(group: str) -> tuple[tuple[str, str], ...]:
    """(name, label) of the group's measures a results table shows (counts are not)."""
    return tuple((m.name, m.label) for m in in_group(group) if m.format != "count")


def summary_names() -> tuple[str, ...]:
    """The keys copied from the last epoch's record into summary.json."""
    return tuple(m.name for m in ALL if m.summary)


def tensorboard_tags() -> dict[str, str]:
    """metrics.jsonl key -> TensorBoard tag."""
    return {m.name: m.tag for m in ALL if m.tag is not None}
