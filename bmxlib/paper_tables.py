"""The paper's COCO numbers (docs/method.md §11) and the Markdown tables that set a sweep of
the paper's structure beside them — docs/results.md's method × setting tables, generated
from the sweep directory (or its archive under studies/) instead of typed.

- ``PAPER_MAIN`` / ``PAPER_ABLATION`` / ``PAPER_SENSITIVITY``: last-epoch mAP all (%) on
  MS-COCO, ResNet-50 at 448², mean of 3 runs (the paper's Tables 1–3, 5, 7 and 8).
- ``grid_markdown(directory)``: one row per method (or ablation variant), one column per
  noise setting; each cell "mean ± std [paper]" over seeds, ⁽ⁿ⁾ where fewer than 3 seeds
  finished; then the drop of one row against clean, paired by seed, and each row's rank
  per column.
- ``measure_markdown(directory, measure)``: the same grid for any measure of
  ``bmxlib.measures`` (shot-group mAP, memorization, selection quality), means only.
- ``oversampling_markdown(directory)``: the minority sampler's draw of each shot group
  relative to a shuffle (``management.minority_oversampling``).
- ``relabeling_markdown(directory)``: what label management did to the positives, per
  setting of any sweep's axes (``management.relabel_outcomes``).
- ``large_loss_markdown(directory)``: where LL-R / LL-Ct's modified labels fell, per shot
  group (``management.large_loss_by_group``); both through ``shot_group_table``.
- ``settings_markdown(directory, measures)``: any sweep, one row per setting of its axes
  but the seed, "mean ± std" over seeds of each measure (the missing readings, a
  sensitivity sweep: sweeps without the grid's method × noise axes).

``bmx tables SWEEP_DIR`` prints them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from . import measures, runs
from .results import (
    collect,
    format_percent,
    format_share,
    markdown_table,
    mean_std,
    setting_axes,
    setting_groups,
)

#: Tables 1–3 (Mixup: Table 5's "+ random sampler" row), COCO, last-epoch mAP all (%)
PAPER_MAIN: dict[str, dict[str, float]] = {
    "bce": {"clean": 83.4, "mislabel-20": 73.1, "mislabel-40": 63.8, "flip-20": 59.8,
            "flip-40": 43.5, "missing": 69.7},
    "mixup": {"clean": 84.2, "mislabel-40": 67.4, "flip-40": 64.9, "missing": 73.3},
    "balancemix": {"clean": 85.2, "mislabel-20": 84.3, "mislabel-40": 81.6, "flip-20": 76.5,
                   "flip-40": 74.5, "missing": 77.4},
    "coteaching": {"clean": 82.8, "mislabel-20": 82.5, "mislabel-40": 78.6, "flip-20": 65.5,
                   "flip-40": 43.6, "missing": 68.1},
    "asl": {"clean": 85.0, "mislabel-20": 82.8, "mislabel-40": 80.3, "flip-20": 75.0,
            "flip-40": 66.2, "missing": 73.3},
    "t_estimator": {"clean": 84.3, "mislabel-20": 82.2, "mislabel-40": 80.5, "flip-20": 74.3,
                    "flip-40": 69.9, "missing": 16.8},
    "ll_r": {"clean": 82.5, "mislabel-20": 80.7, "mislabel-40": 75.3, "flip-20": 74.0,
             "flip-40": 69.3, "missing": 74.2},
    "ll_ct": {"clean": 79.4, "mislabel-20": 81.3, "mislabel-40": 77.4, "flip-20": 73.2,
              "flip-40": 70.1, "missing": 76.9},
}
#: Table 5, COCO, by the variant labels of configs/*_ablation.yaml
PAPER_ABLATION: dict[str, dict[str, float]] = {
    "0-bce": {"clean": 83.4, "mislabel-40": 63.3, "flip-40": 43.0, "missing": 72.6},
    "1-random-sampler": {"clean": 84.2, "mislabel-40": 67.4, "flip-40": 64.9, "missing": 73.3},
    "2+minority-sampler": {"clean": 85.1, "mislabel-40": 70.2, "flip-40": 67.2,
                           "missing": 74.2},
    "3+clean-labels": {"clean": 84.9, "mislabel-40": 76.1, "flip-40": 74.9, "missing": 74.6},
    "4+re-labeling": {"clean": 85.3, "mislabel-40": 80.2, "flip-40": 74.9, "missing": 76.1},
    "5+ambiguous-weighting": {"clean": 85.3, "mislabel-40": 81.6, "flip-40": 74.5,
                              "missing": 77.4},
}
#: Table 8 for α under mislabel-40, Table 7 for ε under mislabel-40 and single positive
#: labels: (level, mAP all %)
PAPER_SENSITIVITY = {
    "alpha": {"mislabel-40": [(1, 80.3), (2, 81.1), (4, 81.6), (8, 81.3)]},
    "epsilon": {"mislabel-40": [(1.0, 77.8), (0.975, 81.4), (0.95, 81.5), (0.9, 81.3)],
                "missing": [(0.55, 77.4), (0.6, 77.3), (0.7, 76.8), (0.9, 76.3)]},
}
#: the settings in the paper's column order
SETTINGS = ("clean", "mislabel-20", "mislabel-40", "flip-20", "flip-40", "missing")
FULL_SEEDS = 3  # the paper's runs per cell; fewer are marked ⁽ⁿ⁾
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def grid_points(directory: str | Path, *, rows: str | None = None, columns: str = "noise",
                collected: tuple[list[str], list[dict[str, Any]]] | None = None,
                ) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(row label, column label, seed, record) of each finished run of a sweep, where the
    record is ``results.collect``'s (axis labels, ``run``, the summary).

    ``rows``: the axis of the table's rows; by default ``method``, else ``variant`` (an
    ablation), else each run's configured method (a sweep of one method). The labels of
    any further setting axis follow the row's in parentheses, "ll_r (mixed-zero)", so that
    no two settings share a cell. ``collected``: ``collect(directory)`` when the caller
    has read it already. Raises ValueError naming the axis a sweep lacks.
    """
    axes, records = collected or collect(directory)
    rows = row_axis(axes, rows)
    for axis in (rows or "method", columns, "seed"):
        if axis not in axes and not (axis == "method" and rows is None):
            raise ValueError(f"{directory}: no {axis!r} axis (axes: {', '.join(axes)})")
    further = [a for a in setting_axes(axes) if a not in (rows, columns)]

    def row_label(record: dict[str, Any]) -> str:
        row = str(record[rows] if rows else
                  runs.read_config(Path(directory) / record["run"])["method"])
        return f"{row} ({', '.join(str(record[a]) for a in further)})" if further else row

    return [(row_label(record), str(record[columns]), int(record["seed"]), record)
            for record in records]


def row_axis(axes, rows: str | None = None) -> str | None:
    """The axis of a table's rows: ``rows`` if given, else ``method``, else ``variant``,
    else None (each run's configured method)."""
    return rows or next((a for a in ("method", "variant") if a in axes), None)


def grid_cells(directory: str | Path, measure: str = "mAP", *, rows: str | None = None,
               columns: str = "noise") -> dict[tuple[str, str], dict[int, float]]:
    """{(row label, column label): {seed: value of the summary ``measure``}} over the
    finished runs that recorded it (``grid_points``)."""
    return cells_of(grid_points(directory, rows=rows, columns=columns), measure)


def cells_of(points: list[tuple[str, str, int, dict[str, Any]]],
             measure: str) -> dict[tuple[str, str], dict[int, float]]:
    """``grid_cells`` of points already read (``grid_points``)."""
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for row, column, seed, record in points:
        value = record.get(measure)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            cells.setdefault((row, column), {})[seed] = float(value)
    return cells


def ordered(labels, preferred) -> list[str]:
    """``labels`` in the order of ``preferred``, the others after them in their own order."""
    labels = list(dict.fromkeys(labels))
    return [p for p in preferred if p in labels] + [x for x in labels if x not in preferred]


def grid_markdown(directory: str | Path, *, reference: dict[str, dict[str, float]] | None = None,
                  drop_of: str | None = None, rows: str | None = None) -> str:
    """Last-epoch mAP all (%) of a sweep, methods × settings, beside the paper's COCO numbers.

    ``reference``: the paper's numbers by row and column label (default ``PAPER_MAIN``, or
    ``PAPER_ABLATION`` for a sweep with a ``variant`` axis). ``drop_of``: the row whose
    drop against clean is shown, paired by seed (default: the first row). Below the table,
    each row's rank per column (1 = highest mean).
    """
    collected = collect(directory)  # read once: the cells and the rows' axis
    cells = cells_of(grid_points(directory, rows=rows, collected=collected), "mAP")
    row_labels = ordered((r for r, _ in cells), PAPER_MAIN)
    columns = ordered((c for _, c in cells), SETTINGS)
    if reference is None:
        reference = PAPER_ABLATION if set(row_labels) & set(PAPER_ABLATION) else PAPER_MAIN
    header = [row_axis(collected[0], rows) or "method", *columns]
    body = []
    for row in row_labels:
        line = [row]
        for column in columns:
            values = cells.get((row, column), {})
            paper = reference.get(row, {}).get(column)
            line.append(cell_text(list(values.values()), paper))
        body.append(line)
    drop_of = drop_of or row_labels[0]
    drops = [f"*{drop_of}: drop vs clean*"]
    for column in columns:
        clean, noisy = cells.get((drop_of, "clean"), {}), cells.get((drop_of, column), {})
        paired = [noisy[s] - clean[s] for s in noisy if s in clean]
        paper = reference.get(drop_of, {})
        paper_drop = (paper[column] - paper["clean"]
                      if column in paper and "clean" in paper else None)
        drops.append("" if column == "clean" or not paired else
                     signed(100 * mean_std(paired)[0]) +
                     (f" [{signed(paper_drop)}]" if paper_drop is not None else ""))
    if "clean" in columns:  # right below its row; nothing to drop from without clean labels
        body.insert(row_labels.index(drop_of) + 1, drops)
    table = markdown_table(header, body)
    ranks = rank_rows(cells, row_labels, columns)
    return table + "\n\nRank per column (1 = highest mean):\n\n" + markdown_table(
        header, [[row, *(str(ranks[row].get(c, "–")) for c in columns)] for row in row_labels])


def measure_markdown(directory: str | Path, measure: str, *, rows: str | None = None) -> str:
    """Mean over seeds of one summary ``measure`` (``bmxlib.measures``) per row × setting:
    percent measures in %, the others as numbers (shares in [0, 1]); "–" where no run
    recorded it."""
    known = {m.name: m for m in measures.ALL if m.summary}
    if measure not in known:
        raise ValueError(f"unknown measure {measure!r}; one of {', '.join(known)}")
    points = grid_points(directory, rows=rows)
    frame = cells_of(points, "mAP")  # the runs with an mAP: the table's rows and columns
    cells = cells_of(points, measure)
    row_labels = ordered((r for r, _ in frame), PAPER_MAIN)
    columns = ordered((c for _, c in frame), SETTINGS)
    percent = known[measure].format == "percent"
    body = []
    for row in row_labels:
        line = [row]
        for column in columns:
            values = list(cells.get((row, column), {}).values())
            mean = mean_std(values)[0] if values else None
            line.append("–" if mean is None else
                        format_percent(mean) if percent else format_share(mean))
        body.append(line)
    return markdown_table([known[measure].label, *columns], body)


def settings_markdown(directory: str | Path, measure_names=("mAP",)) -> str:
    """Any sweep: one row per setting of its axes but the seed, the number of seeds that
    finished, and per summary measure (``bmxlib.measures``) "mean ± std" over seeds —
    percent measures in %, the others as numbers; "–" where no run recorded it."""
    known = {m.name: m for m in measures.ALL if m.summary}
    for name in measure_names:
        if name not in known:
            raise ValueError(f"unknown measure {name!r}; one of {', '.join(known)}")
    axes, records = collect(directory)

    def cell(values: list[float], name: str) -> str:
        mean, std, count = mean_std(values)
        if not count:
            return "–"
        if known[name].format == "percent":
            return format_percent(mean, std if count > 1 else None)
        return format_share(mean) + (f" ± {format_share(std)}" if count > 1 else "")

    body = [[*map(str, setting), str(len(group)),
             *(cell([r.get(name) for r in group], name) for name in measure_names)]
            for setting, group in setting_groups(axes, records).items()]
    return markdown_table([*setting_axes(axes), "seeds",
                           *(known[n].label for n in measure_names)], body)


def oversampling_markdown(directory: str | Path, *, rows: str | None = None) -> str:
    """The minority sampler's draw of each shot group relative to a shuffle
    (``management.minority_oversampling`` at each run's last epoch), mean over seeds per row ×
    setting, "many / medium / few"; only rows whose runs record draw shares (BalanceMix
    with its minority sampler)."""
    from .management import minority_oversampling
    from .stats import GROUP_NAMES

    factors: dict[tuple[str, str], list[dict[str, float]]] = {}
    for row, column, _, record in grid_points(directory, rows=rows):
        try:
            factor = minority_oversampling(runs.load_run(Path(directory) / record["run"]))
        except ValueError:  # no draw shares: not a minority-sampler run
            continue
        factors.setdefault((row, column), []).append(factor)
    if not factors:
        return "No run with minority-sampler draw shares.\n"
    row_labels = ordered((r for r, _ in factors), PAPER_MAIN)
    columns = ordered((c for _, c in factors), SETTINGS)
    body = [[row, *(" / ".join(f"{mean_std([f[g] for f in factors[(row, c)]])[0]:.2f}"
                                for g in GROUP_NAMES) if (row, c) in factors else "–"
                    for c in columns)] for row in row_labels]
    return markdown_table([f"drawn vs a shuffle ({' / '.join(GROUP_NAMES)})", *columns], body)


def relabeling_markdown(directory: str | Path) -> str:
    """What label management did to the labels (``management.relabel_outcomes`` at each
    run's last label states), one row per setting of the sweep's axes but the seed, mean
    over seeds: each cell "all (many / medium / few)" in %, "–" where no label of the kind
    exists; only runs that record label states and clean labels. Works on any sweep (the
    paper grid, the ablation, the missing readings)."""
    from .labels import RELABEL_OUTCOMES
    from .management import relabel_outcomes

    return shot_group_table(
        directory, relabel_outcomes, RELABEL_OUTCOMES, decimals=1,
        note="% of the labels named, all classes (many / medium / few), mean over seeds:",
        missing="No run with label states and clean labels.")


def large_loss_markdown(directory: str | Path) -> str:
    """Where LL-R / LL-Ct's modified labels fell (``management.large_loss_by_group`` at each
    run's last full-diagnostics epoch), one row per setting of the sweep's axes but the seed,
    mean over seeds: the share of the label entries modified and the share of those that were
    hidden positives, each "all (many / medium / few)" in %; only runs that record the
    per-class counts."""
    from .management import large_loss_by_group

    return shot_group_table(
        directory, large_loss_by_group,
        {"modified": "label entries modified", "precision": "of them hidden positives"},
        decimals=2, note="% at the last full-diagnostics epoch, all classes (many / medium / "
                         "few), mean over seeds:",
        missing="No run with per-class large-loss counts.")


def shot_group_table(directory: str | Path, read, columns: dict[str, str], *, decimals: int,
                     note: str, missing: str) -> str:
    """One row per setting of the sweep's axes but the seed: for each of ``columns``
    ({name: header}), "all (many / medium / few)" in %, the mean over seeds of what
    ``read(run)`` returns ({"all" or shot group: {name: share in [0, 1] or NaN}}); "–"
    where no seed has a number. Runs for which ``read`` raises ValueError are left out;
    ``missing`` (one line) when none is left."""
    from .stats import GROUP_NAMES

    axes, records = collect(directory)
    keys = setting_axes(axes)
    found: dict[tuple[str, ...], list[dict[str, dict[str, float]]]] = {}
    for record in records:
        try:
            outcome = read(runs.load_run(Path(directory) / record["run"]))
        except ValueError:  # the run did not record what ``read`` reads
            continue
        found.setdefault(tuple(str(record[k]) for k in keys), []).append(outcome)
    if not found:
        return missing + "\n"

    def percent(outcomes: list[dict[str, dict[str, float]]], group: str, name: str) -> str:
        values = [o[group][name] for o in outcomes
                  if name in o.get(group, {}) and not math.isnan(o[group][name])]
        return f"{100 * mean_std(values)[0]:.{decimals}f}" if values else "–"

    body = [[*setting, str(len(outcomes)),
             *(f"{percent(outcomes, 'all', name)} "
               f"({' / '.join(percent(outcomes, g, name) for g in GROUP_NAMES)})"
               for name in columns)]
            for setting, outcomes in found.items()]
    return note + "\n\n" + markdown_table([*keys, "seeds", *columns.values()], body)


def cell_text(values: list[float], paper: float | None) -> str:
    """"mean ± std [paper]" in percent; ⁽ⁿ⁾ for n < 3 seeds; "–" without runs."""
    if not values:
        text = "–"
    else:
        mean, std, n = mean_std(values)
        text = format_percent(mean, std if n > 1 else None)
        if n < FULL_SEEDS:
            text += f" ⁽{str(n).translate(SUPERSCRIPTS)}⁾"
    return text + (f" [{paper:.1f}]" if paper is not None else "")


def rank_rows(cells: dict[tuple[str, str], dict[int, float]], row_labels: list[str],
              columns: list[str]) -> dict[str, dict[str, int]]:
    """{row: {column: rank of its mean among the rows with runs in that column}}."""
    ranks: dict[str, dict[str, int]] = {row: {} for row in row_labels}
    for column in columns:
        means = {row: mean_std(list(cells[(row, column)].values()))[0]
                 for row in row_labels if cells.get((row, column))}
        for rank, row in enumerate(sorted(means, key=lambda r: -means[r]), start=1):
            ranks[row][column] = rank
    return ranks


def signed(points: float) -> str:
    return f"{points:+.1f}".replace("-", "−")

