"""Reading BalanceMix's sampler and label management back from a run directory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bmxlib import labels, management
from bmxlib.runs import load_run


def test_minority_oversampling_reads_the_last_draw_shares(balancemix_run):
    from bmxlib.methods.balancemix import DRAW_SHARE, NATURAL_SHARE
    from bmxlib.stats import group_oversampling

    run = load_run(balancemix_run)
    last = [e for e in run.diagnostic_epochs if DRAW_SHARE in run.diagnostics_keys(e)][-1]
    data = run.diagnostics(last)
    got = management.minority_oversampling(run)
    assert got == group_oversampling(data[DRAW_SHARE], data[NATURAL_SHARE], run.shot_groups)
    assert set(got) == set(run.shot_groups)
    with pytest.raises(ValueError, match="no draw shares"):
        management.minority_oversampling(run, epoch=99)


def test_minority_oversampling_needs_a_minority_sampler(tiny_config):
    from bmxlib.engine import fit

    run = load_run(fit(tiny_config("name=bce", "method=bce", "epochs=1")))
    with pytest.raises(ValueError, match="no minority-sampler draw shares"):
        management.minority_oversampling(run)


def test_relabel_outcomes_read_the_last_label_states(balancemix_run):
    from bmxlib.methods.balancemix import STATE, TARGETS

    run = load_run(balancemix_run)
    last = [e for e in run.diagnostic_epochs if STATE in run.diagnostics_keys(e)][-1]
    data = run.diagnostics(last)
    arrays = (data[STATE], run.noisy_labels, run.clean_labels, data[TARGETS])
    got = management.relabel_outcomes(run)
    groups = np.asarray(run.shot_groups)
    assert set(got) == {"all", *groups}
    assert got["all"] == pytest.approx(labels.relabel_outcomes(*arrays), nan_ok=True)
    for name in set(groups):
        assert got[name] == pytest.approx(
            labels.relabel_outcomes(*arrays, classes=groups == name), nan_ok=True)
    # mislabel-40 leaves every kind of label in the matrix: each share is a number in [0, 1]
    assert all(0 <= got["all"][k] <= 1 for k in labels.RELABEL_OUTCOMES
               if k not in ("hidden_positives_to_one", "to_one_precision"))
    with pytest.raises(ValueError, match="no label states"):
        management.relabel_outcomes(run, epoch=99)


def test_relabel_outcomes_need_label_management(tiny_config):
    from bmxlib.engine import fit

    run = load_run(fit(tiny_config("name=mixup", "method=mixup", "epochs=1",
                                   "noise=mislabel", "noise_rate=0.4")))
    with pytest.raises(ValueError, match="no label states"):
        management.relabel_outcomes(run)
    assert not math.isnan(run.metrics[-1]["mAP"])  # the run itself is fine
