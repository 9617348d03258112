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


def test_selection_by_hardness_bins_by_the_reference_error_on_the_true_label(tmp_path):
    """Hardness is the reference model's error on each label's true value (1 − c on true
    positives, c on true negatives); selected = state CLEAN, correct = given == truth."""
    import yaml

    from bmxlib import runs
    from bmxlib.labels import CLEAN, RELABELED
    from bmxlib.methods.balancemix import STATE
    from bmxlib.metrics import selection_by_bins

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / runs.CONFIG_FILE).write_text(yaml.safe_dump({"method": "balancemix"}))
    clean, noisy = np.array([[1, 0], [0, 1]]), np.array([[1, 1], [0, 0]])
    # labels A (0,0) true 1, B (0,1) wrong positive, C (1,0) true 0, D (1,1) hidden positive:
    # hardness A 0.1, B 0.7, C 0.2, D 0.8 -> bins {A, C} and {B, D}; the raw confidences
    # would bin {C, D} and {B, A} instead
    reference = np.array([[0.9, 0.7], [0.2, 0.2]])
    np.savez(run_dir / runs.LABELS_FILE, clean=clean, noisy=noisy,
             reference_confidence=reference, shot_groups=np.array(["many", "few"]))
    path = runs.diagnostics_path(run_dir, 5)
    path.parent.mkdir()
    state = np.array([[CLEAN, CLEAN], [CLEAN, RELABELED]], dtype=np.uint8)
    np.savez(path, **{STATE: state})
    got = management.selection_by_hardness(load_run(run_dir), bins=2)
    hardness = np.array([[0.1, 0.7], [0.2, 0.8]])
    expected = selection_by_bins(state == CLEAN, noisy == clean, hardness, bins=2)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value)
    raw = selection_by_bins(state == CLEAN, noisy == clean, reference, bins=2)
    assert any(not np.allclose(raw[k], got[k], equal_nan=True) for k in raw if k in got)
    with pytest.raises(ValueError, match="no reference confidences"):
        np.savez(run_dir / runs.LABELS_FILE, clean=clean, noisy=noisy)
        management.selection_by_hardness(load_run(run_dir))


def _large_loss_run(run_dir, arrays_by_epoch, *, groups=("many", "medium", "few", "medium")):
    """A hand-made LL run directory: shot groups and per-class counts at some epochs."""
    import yaml

    from bmxlib import runs

    run_dir.mkdir()
    (run_dir / runs.CONFIG_FILE).write_text(yaml.safe_dump({"method": "ll_r"}))
    np.savez(run_dir / runs.LABELS_FILE, shot_groups=np.array(groups))
    for epoch, arrays in arrays_by_epoch.items():
        path = runs.diagnostics_path(run_dir, epoch)
        path.parent.mkdir(exist_ok=True)
        np.savez(path, **arrays)
    return load_run(run_dir)


def test_large_loss_by_group_by_hand(tmp_path):
    """Classes many, medium, few, medium; the last epoch's shares modified 0.04, 0.01, 0.0,
    0.03 (of each class's label entries), hidden positives 0.01, 0.01, 0, 0: all classes
    modified 0.02 (the mean), precision 0.02 / 0.08 = 0.25; many 0.04 and 0.25; medium
    0.02 and 0.01 / 0.04 = 0.25; few nothing modified: precision NaN."""
    from bmxlib.methods.large_loss import MODIFIED_BY_CLASS, MODIFIED_HIDDEN_BY_CLASS

    last = {MODIFIED_BY_CLASS: np.array([0.04, 0.01, 0.0, 0.03]),
            MODIFIED_HIDDEN_BY_CLASS: np.array([0.01, 0.01, 0.0, 0.0])}
    first = {MODIFIED_BY_CLASS: np.ones(4), MODIFIED_HIDDEN_BY_CLASS: np.ones(4)}
    run = _large_loss_run(tmp_path / "run", {5: first, 10: last})
    got = management.large_loss_by_group(run)
    assert got["all"] == pytest.approx({"modified": 0.02, "precision": 0.25})
    assert got["many"] == pytest.approx({"modified": 0.04, "precision": 0.25})
    assert got["medium"] == pytest.approx({"modified": 0.02, "precision": 0.25})
    assert got["few"]["modified"] == 0.0 and math.isnan(got["few"]["precision"])
    assert management.large_loss_by_group(run, epoch=5)["all"] == {"modified": 1.0,
                                                                    "precision": 1.0}
    with pytest.raises(ValueError, match="epoch 7 .* available: \\[5, 10\\]"):
        management.large_loss_by_group(run, epoch=7)
    # without injected noise there are no hidden positives to count: no precision
    unknown = _large_loss_run(tmp_path / "unknown", {5: {MODIFIED_BY_CLASS: np.ones(4)}})
    assert management.large_loss_by_group(unknown)["few"] == {"modified": 1.0}
    # a run that did not record the counts (another method, or an LL run from before them)
    other = _large_loss_run(tmp_path / "other", {5: {"draw_share": np.ones(4)}})
    with pytest.raises(ValueError, match="no per-class large-loss counts"):
        management.large_loss_by_group(other)


def test_large_loss_by_group_of_a_trained_run_matches_its_epoch_log(tiny_config):
    """Wiring: an LL-R run writes the per-class counts at its full-diagnostics epochs, and
    their mean over the classes is the epoch's logged ll_modified."""
    from bmxlib.engine import fit

    run = load_run(fit(tiny_config("name=llr", "method=ll_r", "epochs=2", "noise=mislabel",
                                   "noise_rate=0.4", "ll_delta_rel=10",
                                   "diagnostics_every=2")))
    got = management.large_loss_by_group(run)
    logged = run.metrics[-1]
    assert got["all"]["modified"] == pytest.approx(logged["ll_modified"])
    assert got["all"]["precision"] == pytest.approx(logged["ll_modified_precision"])
    assert logged["ll_modified"] > 0
    assert set(got) == {"all", *run.shot_groups}
