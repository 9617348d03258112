"""The measures are declared once (bmxlib.measures) and every reader takes them from there."""

from __future__ import annotations

import json

from bmxlib import measures, results, runs, tensorboard
from bmxlib.plots.method_comparison import MEASURE_LABELS


def test_every_measure_is_well_formed_and_named_once():
    assert len({m.name for m in measures.ALL}) == len(measures.ALL)
    tags = [m.tag for m in measures.ALL if m.tag]
    assert len(set(tags)) == len(tags)
    for m in measures.ALL:
        assert m.direction in ("higher", "lower", "neither"), m
        assert m.format in ("percent", "share", "number", "count"), m
        assert m.label and m.group, m


def test_readers_take_the_declared_measures():
    assert runs.SUMMARY_KEYS == tuple(m.name for m in measures.ALL if m.summary)
    assert tensorboard.SCALARS == {m.name: m.tag for m in measures.ALL if m.tag}
    assert [name for name, _ in results.MEASURES] == ["mAP", "mAP_many", "mAP_medium", "mAP_few"]
    assert {name for name, _ in results.QUALITY_MEASURES + results.MEMORIZATION_MEASURES} == {
        m.name for m in measures.ALL if m.group in ("quality", "memorization")}
    assert MEASURE_LABELS == {"mAP": "all", "mAP_many": "many", "mAP_medium": "medium",
                              "mAP_few": "few"}


def test_a_finished_run_summarizes_its_summary_measures(balancemix_run):
    last = [json.loads(line) for line in (balancemix_run / runs.METRICS_FILE).open()][-1]
    summary = runs.read_summary(balancemix_run)
    expected = {m.name for m in measures.ALL if m.summary and m.name in last}
    assert expected <= set(summary)
    assert {"mAP", "mAP_few"} <= expected
    assert not {m.name for m in measures.ALL if not m.summary} & set(summary)
