"""The regime check of docs/method.md §5 ("Regime"): is a setting one where plain BCE
memorizes the noise, as on COCO? Read from a sweep of BCE runs, never of the method under
study.

A sweep with a ``noise`` axis labelled ``clean``, ``mislabel-40``, ``flip-40`` and
``missing`` (configs/regime/calibration.yaml, configs/glyphs_coco_calibration.yaml; a
``method`` axis is allowed and only its ``bce`` runs are read) gives one row per setting
of its other axes:

- clean BCE's last-epoch mAP and its **plateau movement**: max - min of the seed-mean
  test-mAP curve over the evaluated epochs in the last ``PLATEAU_TAIL`` of the schedule
  (target: below ``PLATEAU_TOLERANCE``);
- per noise setting, the last-epoch mAP and its **drop** against clean (seed means;
  targets ``TARGET_DROPS``);
- per noise setting, the share of corrupted training labels BCE agrees with at the last
  epoch (``memorized_noisy``, ``metrics.noisy_label_fit``; target ``TARGET_MEMORIZED``),
  and, shown beside it, the share among the corrupted labels given as 1
  (``memorized_false_positives``): with many classes a model that predicts "absent"
  everywhere reaches ``memorized_noisy`` ≈ 0.5 under mislabeling without memorizing;
- the mean wall seconds per run.

``bmx data regime SWEEP_DIR`` prints the table. ``bmx data plateau SWEEP_DIR`` applies the
plateau test to every method and setting of any sweep (``plateau_rows``): the schedule
was chosen for BCE's plateau, and a method still rising at the end is ranked before it
has finished learning.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from .results import collect, format_percent, markdown_table, mean_std, setting_axes, setting_groups

CLEAN = "clean"  # the noise axis's label of the clean runs
#: mAP lost against clean (as shares of 1) that the regime asks of BCE
TARGET_DROPS = {"mislabel-40": 0.10, "flip-40": 0.20, "missing": 0.08}
TARGET_MEMORIZED = 0.40  # share of the corrupted labels BCE agrees with at the last epoch
PLATEAU_TAIL = 0.2  # the plateau is read over the last 20% of the schedule
PLATEAU_TOLERANCE = 0.005  # ... where the seed-mean clean curve moves less than 0.5 points


def plateau_movement(curves: list[dict[int, float]], epochs: int, *,
                     tail: float = PLATEAU_TAIL) -> float:
    """max - min of the seed-mean curve over the epochs ``>= (1 - tail) * epochs``.

    Parameters
    ----------
    curves : list of {epoch: value}
        One curve per seed (the evaluated epochs of each run's metrics.jsonl).
    epochs : int
        The schedule's length E.
    tail : float in (0, 1]
        The share of the schedule read.

    Returns nan when no epoch of the tail was evaluated by every seed.
    """
    mean = _tail_means(curves, epochs, tail)
    return max(mean) - min(mean) if mean else math.nan


def tail_rise(curves: list[dict[int, float]], epochs: int, *,
              tail: float = PLATEAU_TAIL) -> float:
    """Last minus first value of the seed-mean curve over the epochs ``>= (1 - tail) *
    epochs`` (the window of :func:`plateau_movement`): positive while the curve still
    rises at the end of the schedule, negative when it falls back (a model memorizing
    noise). Returns nan when no epoch of the tail was evaluated by every seed."""
    mean = _tail_means(curves, epochs, tail)
    return mean[-1] - mean[0] if mean else math.nan


def _tail_means(curves: list[dict[int, float]], epochs: int, tail: float) -> list[float]:
    """The seed-mean curve at the epochs ``>= (1 - tail) * epochs`` evaluated by every
    seed, in epoch order (empty when there are none)."""
    start = (1.0 - tail) * epochs - 1e-9
    shared = set.intersection(*(set(c) for c in curves)) if curves else set()
    return [float(np.mean([c[e] for c in curves])) for e in sorted(shared) if e >= start]


def map_curve(run_dir: Path) -> dict[int, float]:
    """{epoch: test mAP} of the evaluated epochs of a run."""
    return {int(r["epoch"]): float(r["mAP"]) for r in runs.read_metrics(run_dir)
            if r.get("mAP") is not None}


def regime_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per setting: the regime's measures of its BCE runs (see the module doc).

    Each row holds the setting's axis labels, ``seeds`` (clean runs), ``clean`` /
    ``clean_std``, ``plateau``, ``epochs``, and per noise label N of ``TARGET_DROPS``
    that ran: ``N`` / ``N_std`` / ``N_seeds`` (mAP), ``N_drop``, ``N_memorized`` and
    ``N_memorized_fp`` (of the corrupted labels given as 1 alone; nan when not recorded);
    ``seconds`` (mean per run) and ``meets`` (every target met by the means).
    """
    sweep_dir = Path(sweep_dir)
    axes, records = collect(sweep_dir)
    if "noise" not in axes:
        raise ValueError(f"{sweep_dir}: the regime check needs a sweep with a 'noise' axis "
                         f"(its axes: {', '.join(axes) or 'none'})")
    # BCE's runs alone: by the method axis, else by each run's config (a sweep of one method)
    def method_of(record: dict[str, Any]) -> str | None:
        return (record["method"] if "method" in axes else
                runs.read_config(sweep_dir / record["run"]).get("method"))

    records = [r for r in records if method_of(r) == "bce"]
    if records and not any(r["noise"] == CLEAN for r in records):
        raise ValueError(f"{sweep_dir}: no finished BCE run of the noise label {CLEAN!r}, "
                         "against which every drop is measured")
    keys = [a for a in setting_axes(axes) if a not in ("noise", "method")]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(record[a] for a in keys), []).append(record)
    rows = []
    for group_key, members in groups.items():
        by_noise: dict[str, list[dict[str, Any]]] = {}
        for record in members:
            by_noise.setdefault(record["noise"], []).append(record)
        clean = by_noise.get(CLEAN, [])
        row: dict[str, Any] = dict(zip(keys, group_key))
        row["clean"], row["clean_std"], row["seeds"] = mean_std([r.get("mAP") for r in clean])
        row["epochs"] = int(clean[0]["epochs"]) if clean else None
        row["plateau"] = (plateau_movement([map_curve(sweep_dir / r["run"]) for r in clean],
                                           row["epochs"]) if clean else math.nan)
        meets = row["plateau"] < PLATEAU_TOLERANCE
        for noise, target in TARGET_DROPS.items():
            noisy = by_noise.get(noise)
            if not noisy:
                meets = False
                continue
            row[noise], row[f"{noise}_std"], row[f"{noise}_seeds"] = mean_std(
                [r.get("mAP") for r in noisy])
            row[f"{noise}_drop"] = row["clean"] - row[noise]
            row[f"{noise}_memorized"] = mean_std([r.get("memorized_noisy") for r in noisy])[0]
            row[f"{noise}_memorized_fp"] = mean_std(
                [r.get("memorized_false_positives") for r in noisy])[0]
            meets = (meets and row[f"{noise}_drop"] >= target
                     and row[f"{noise}_memorized"] >= TARGET_MEMORIZED)
        row["seconds"] = mean_std([r.get("total_seconds") for r in members])[0]
        row["meets"] = bool(meets)
        rows.append(row)
    return rows


def regime_markdown(rows: list[dict[str, Any]]) -> str:
    """The regime table: mAP (%) with the drop against clean, plateau movement (points),
    memorized shares, seconds per run, and whether every target is met."""
    if not rows:
        return "(no finished BCE runs)"
    keys = [k for k in rows[0] if k not in _ROW_FIELDS and not k.startswith(_NOISE_PREFIXES)]
    header = [*keys, "seeds", "clean", "plateau (points)",
              *TARGET_DROPS, "memorized " + " / ".join(TARGET_DROPS),
              "memorized false positives mislabel-40 / flip-40", "s / run", "targets"]
    def percent(row: dict[str, Any], key: str, seeds: int) -> str:  # no std of one seed
        return format_percent(row[key], row[f"{key}_std"] if seeds > 1 else None)

    body = []
    for row in rows:
        noisy = [f"{percent(row, n, row[f'{n}_seeds'])} ({-100 * row[f'{n}_drop']:+.1f})"
                 if n in row else "-" for n in TARGET_DROPS]
        memorized = " / ".join(f"{row[f'{n}_memorized']:.2f}" if n in row else "-"
                               for n in TARGET_DROPS)
        false_positives = " / ".join(
            f"{row[f'{n}_memorized_fp']:.2f}" if n in row and not math.isnan(
                row[f"{n}_memorized_fp"]) else "-" for n in ("mislabel-40", "flip-40"))
        body.append([*(str(row[k]) for k in keys), str(row["seeds"]),
                     percent(row, "clean", row["seeds"]),
                     f"{100 * row['plateau']:.2f}", *noisy, memorized, false_positives,
                     f"{row['seconds']:.0f}", "met" if row["meets"] else "not met"])
    return markdown_table(header, body)


_ROW_FIELDS = ("seeds", "clean", "clean_std", "epochs", "plateau", "seconds", "meets")
_NOISE_PREFIXES = tuple(TARGET_DROPS)


def plateau_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The plateau test applied to every setting of a sweep, methods included.

    One row per setting (the labels on every axis but the seed, in grid order) of the
    finished runs: the axis labels, ``seeds``, ``epochs``, ``mAP`` (seed-mean last-epoch
    test mAP, share in [0, 1]), ``movement`` (:func:`plateau_movement`), ``rise``
    (:func:`tail_rise`) and ``rising`` (``rise >= PLATEAU_TOLERANCE``: the seed-mean curve
    gained at least the tolerance over the last ``PLATEAU_TAIL`` of the schedule).
    """
    sweep_dir = Path(sweep_dir)
    axes, records = collect(sweep_dir)
    rows = []
    for key, members in setting_groups(axes, records).items():
        curves = [map_curve(sweep_dir / r["run"]) for r in members]
        epochs = int(members[0]["epochs"])
        row: dict[str, Any] = dict(zip(setting_axes(axes), key))
        row["mAP"], _, row["seeds"] = mean_std([r.get("mAP") for r in members])
        row["epochs"] = epochs
        row["movement"] = plateau_movement(curves, epochs)
        row["rise"] = tail_rise(curves, epochs)
        row["rising"] = bool(row["rise"] >= PLATEAU_TOLERANCE)
        rows.append(row)
    return rows


def plateau_markdown(rows: list[dict[str, Any]]) -> str:
    """The plateau table: last-epoch mAP (%), movement and rise over the schedule's last
    ``PLATEAU_TAIL`` (points), and a count of the settings still rising."""
    if not rows:
        return "(no finished runs)\n"
    fields = ("mAP", "seeds", "epochs", "movement", "rise", "rising")
    keys = [k for k in rows[0] if k not in fields]
    tail = f"last {PLATEAU_TAIL:.0%}"
    header = [*keys, "seeds", "epochs", "mAP", f"movement, {tail} (points)",
              f"rise, {tail} (points)", f"still rising (≥ {100 * PLATEAU_TOLERANCE:.1f})"]
    body = [[*(str(row[k]) for k in keys), str(row["seeds"]), str(row["epochs"]),
             format_percent(row["mAP"]), f"{100 * row['movement']:.2f}",
             f"{100 * row['rise']:+.2f}", "yes" if row["rising"] else "no"] for row in rows]
    rising = sum(row["rising"] for row in rows)
    return markdown_table(header, body) + f"\n{rising} of {len(rows)} settings still rising.\n"
