"""Figures of the sensitivity notebook and the method_comparison rank radar (the paper's
Figures 4 and Tables 7–8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from .style import CYCLE, label_axes, new_figure

__all__ = ["rank_radar", "scenario_ranks", "sensitivity_curves"]

#: the paper's Figure 4 scenarios: which noise labels each one averages over
SCENARIOS = (("clean", ("clean",)), ("mislabel", ("mislabel",)), ("flip", ("flip",)),
             ("missing", ("missing",)), ("few-shot", ()))


def scenario_ranks(rows: Sequence[dict], *, method: str = "method",
                   noise: str = "noise") -> dict[str, dict[str, float]]:
    """{scenario: {method: rank}}: 1 = the best mAP; a scenario averages the rows whose
    noise label starts with its name ("mislabel" covers mislabel-20 and mislabel-40);
    "few-shot" averages mAP_few over every noise setting. Ties share the mean rank.

    Parameters
    ----------
    rows : sequence of dict
        ``bmxlib.results.results_rows`` output with a method axis and a noise axis.
    """
    methods = list(dict.fromkeys(str(r[method]) for r in rows))
    ranks: dict[str, dict[str, float]] = {}
    for scenario, prefixes in SCENARIOS:
        scores = {}
        for name in methods:
            members = [r for r in rows if str(r[method]) == name and
                       (not prefixes or str(r[noise]).startswith(prefixes))]
            key = "mAP_few_mean" if scenario == "few-shot" else "mAP_mean"
            values = [float(r[key]) for r in members if np.isfinite(float(r[key]))]
            if values:
                scores[name] = float(np.mean(values))
        if len(scores) < 2:
            continue
        ordered = sorted(scores.values(), reverse=True)
        ranks[scenario] = {m: 1 + float(np.mean([i for i, v in enumerate(ordered) if v == s]))
                           for m, s in scores.items()}
    return ranks


def rank_radar(ranks: dict[str, dict[str, float]], *, title: str = "") -> Figure:
    """Each method's rank per scenario on a radar (outer = better), as the paper's Figure 4.

    Parameters
    ----------
    ranks : {scenario: {method: rank}}
        From :func:`scenario_ranks` (1 = best).
    """
    scenarios = list(ranks)
    if len(scenarios) < 3:
        raise ValueError(f"a radar needs at least 3 scenarios with ranks, got {scenarios}")
    methods = list(dict.fromkeys(m for scores in ranks.values() for m in scores))
    worst = max(max(scores.values()) for scores in ranks.values())
    angles = np.linspace(0, 2 * np.pi, len(scenarios), endpoint=False)
    fig = Figure(figsize=(6.2, 5.6), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    for i, name in enumerate(methods):
        radius = [worst + 1 - ranks[s].get(name, worst) for s in scenarios]  # outer = better
        style = {"color": CYCLE[i % len(CYCLE)], "lw": 1.6,
                 "ls": ("-", "--", ":", "-.")[(i // len(CYCLE)) % 4]}
        ax.plot(np.append(angles, angles[0]), radius + radius[:1], label=name, **style)
    ax.set_xticks(angles, scenarios)
    ax.set_yticks(range(1, int(worst) + 1),
                  [str(int(worst) + 1 - r) for r in range(1, int(worst) + 1)], fontsize=7)
    ax.set_ylim(0, worst + 0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    label_axes(ax, "rank per scenario (outer = better; 1 = best)", "scenario", "rank")
    ax.yaxis.label.set_visible(False)  # the rings carry the rank numbers
    fig.suptitle(title or "rank per scenario", fontsize=11)
    return fig


def sensitivity_curves(table, *, factors: Sequence[tuple[str, str, Sequence]],
                       reference: dict | None = None, title: str = "") -> Figure:
    """Test mAP against each hyperparameter with a band of ±1 std over seeds, one panel per
    factor, one line per noise setting; the paper's values (optional) as markers.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run: ``noise``, ``factor`` (the hyperparameter varied), ``level``
        (its value, numeric), ``seed``, ``value`` (mAP in [0, 1]); the default run
        appears in every factor at its default level.
    factors : sequence of (factor, axis label, levels)
    reference : {factor: {noise: [(level, mAP %), ...]}}, optional
        The paper's numbers, drawn as crosses.
    """
    fig, axes = new_figure(len(factors), 1, width=4.2, height=3.6, title=title)
    noises = list(dict.fromkeys(table["noise"]))
    palette = {n: CYCLE[i % len(CYCLE)] for i, n in enumerate(noises)}
    for ax, (factor, label, levels) in zip(axes[0], factors):
        data = table[table["factor"] == factor].assign(value=lambda d: 100 * d["value"])
        if not data.empty:
            sns.lineplot(data, x="level", y="value", hue="noise", palette=palette,
                         errorbar="sd", marker="o", ax=ax)
        for noise, points in (reference or {}).get(factor, {}).items():
            xs, ys = zip(*points)
            ax.scatter(xs, ys, marker="x", s=40, color=palette.get(noise, "black"),
                       label=f"paper, COCO {noise}")
        ax.set_xticks(list(levels))
        if factor == "alpha":
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(levels), [str(v) for v in levels])
        ax.legend(fontsize=7, loc="best")
        label_axes(ax, f"sensitivity to {label}", label, "test mAP (%, mean ± sd)")
    return fig
