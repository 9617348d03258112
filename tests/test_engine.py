"""Training core: a complete run directory, exact resume, every method trains."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

import bmxlib.passes as passes
import bmxlib.steps as steps
from bmxlib.compute import TrainingDiverged
from bmxlib.engine import fit
from bmxlib.experiment import build
from bmxlib.methods import REGISTRY
from bmxlib.passes import predict_views
from bmxlib.runs import load_run
from bmxlib.steps import train_one_epoch


def _weights(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return state["model"]


def test_run_directory_is_complete(tiny_config):
    run_dir = fit(tiny_config("name=bce", "noise=mislabel", "noise_rate=0.4"))
    for name in ("config.yaml", "labels.npz", "metrics.jsonl", "summary.json",
                 "checkpoints/last.pt", "dataset.json"):
        assert (run_dir / name).is_file(), name
    run = load_run(run_dir)
    assert [r["epoch"] for r in run.metrics] == [1, 2]
    record = run.metrics[-1]
    for key in ("lr", "train_loss", "mAP", "mAP_many", "mAP_medium", "mAP_few", "ap",
                "seconds", "images_per_s"):
        assert key in record, key
    assert 0 <= record["mAP"] <= 1 and len(record["ap"]) == 10
    # the corrupted mask is saved with the run so later analysis knows the truth
    assert np.array_equal(run.corrupted, run.noisy_labels != run.clean_labels)
    assert run.corrupted.mean() > 0.05
    # the last epoch measures how much of the noise the model has memorized
    assert 0 <= record["memorized_noisy"] <= 1 and 0 <= record["fit_clean"] <= 1
    assert record["fit_clean"] > record["memorized_noisy"]
    assert "memorized_noisy" in json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("method", ["bce", "balancemix"])
def test_resume_repeats_the_uninterrupted_run(tiny_config, method):
    common = [f"method={method}", "noise=mislabel", "noise_rate=0.4", "epochs=4",
              "warmup_epochs=1"]
    straight = fit(tiny_config(*common, "name=straight"))
    # "interrupt" after 2 epochs: train a 4-epoch run whose loop stops at epoch 2
    config = tiny_config(*common, "name=resumed")

    original = steps.evaluate
    calls = {"n": 0}

    def interrupt_after_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    steps.evaluate = interrupt_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(config)
    finally:
        steps.evaluate = original
    assert not (straight.parent / "resumed" / "summary.json").exists()
    resumed = fit(config, resume=True)
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = load_run(straight).metrics, load_run(resumed).metrics
    assert [r["epoch"] for r in mb] == [1, 2, 3, 4]
    for ra, rb in zip(ma, mb):
        assert ra["mAP"] == rb["mAP"] and ra["train_loss"] == rb["train_loss"]


@pytest.mark.parametrize("method", sorted(REGISTRY), ids=str)
def test_every_method_trains(tiny_config, method):
    run_dir = fit(tiny_config(f"method={method}", f"name={method}", "noise=mislabel",
                              "noise_rate=0.4", "epochs=2", "warmup_epochs=1"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 <= summary["mAP"] <= 1
    losses = [r["train_loss"] for r in load_run(run_dir).metrics]
    assert all(np.isfinite(losses))


def test_existing_run_is_not_overwritten(tiny_config):
    from bmxlib.runs import RunExistsError

    fit(tiny_config("name=once", "epochs=1"))
    with pytest.raises(RunExistsError, match="once"):
        fit(tiny_config("name=once", "epochs=1"))


def test_balancemix_writes_diagnostics(balancemix_run):
    run = load_run(balancemix_run)
    assert run.diagnostic_epochs == [1, 2]
    diag = run.diagnostics(2)
    assert diag["gmm_means"].shape == (10, 2, 2)
    assert diag["loss_hist"].shape[:2] == (10, 2)
    assert diag["sampling_probabilities"].shape == (240,)
    assert np.isclose(diag["sampling_probabilities"].sum(), 1, atol=1e-5)
    assert diag["confidences"].shape == (240, 10)
    assert diag["state"].shape == (240, 10)
    last = run.metrics[-1]
    for key in ("labels_clean", "labels_relabeled", "labels_ambiguous", "selection_precision",
                "selection_recall", "relabel_accuracy", "confidence_ap_pearson"):
        assert key in last, key
    total = last["labels_clean"] + last["labels_relabeled"] + last["labels_ambiguous"]
    assert total == 240 * 10


def test_memorization_reuses_the_methods_full_data_pass(tiny_config, monkeypatch):
    from bmxlib.metrics import noisy_label_fit

    s = build(tiny_config("method=balancemix", "noise=mislabel", "noise_rate=0.4",
                          "warmup_epochs=1"))
    train_one_epoch(s, 1)
    passes = []
    original = steps.full_data_pass
    monkeypatch.setattr(steps, "full_data_pass",
                        lambda *a, **k: passes.append(1) or original(*a, **k))
    context = steps.EngineContext(s, 1, True)
    s.method.end_of_epoch(context)
    measured = context.noise_fit()
    assert len(passes) == 1  # BalanceMix's own pass, measured before its in-place sigmoid
    logits = original(s.model, s.eval_train_set, device=s.device, config=s.config)
    assert measured == noisy_label_fit(logits, s.noisy, s.corrupted)


def test_memorization_is_recorded_at_every_epoch_with_a_full_data_pass(tiny_config):
    # BalanceMix passes over the training set every epoch: its memorization costs nothing
    # more, so metrics.jsonl holds it at every epoch; BCE has no pass of its own and gets
    # one only at the full-diagnostics epochs (here the last)
    common = ("epochs=3", "diagnostics_every=3", "noise=mislabel", "noise_rate=0.4")
    for method, expected in (("balancemix", [1, 2, 3]), ("bce", [3])):
        run = load_run(fit(tiny_config(f"name={method}", f"method={method}", *common)))
        recorded = [r["epoch"] for r in run.metrics if "memorized_noisy" in r]
        assert recorded == expected, method
        assert all(0 <= r["memorized_noisy"] <= 1 and 0 <= r["fit_clean"] <= 1
                   for r in run.metrics if "memorized_noisy" in r)


def test_eval_every_evaluates_at_its_epochs_the_last_and_full_diagnostics(tiny_config):
    run_dir = fit(tiny_config("name=sparse", "method=balancemix", "epochs=5", "eval_every=3",
                              "diagnostics_every=2", "noise=mislabel", "noise_rate=0.4"))
    run = load_run(run_dir)
    evaluated = [r["epoch"] for r in run.metrics if "mAP" in r]
    assert evaluated == [2, 3, 4, 5]  # 3: eval_every; 2, 4: full diagnostics; 5: the last
    assert all("confidence_ap_pearson" in r for r in run.metrics if r["epoch"] in evaluated)
    assert json.loads((run_dir / "summary.json").read_text())["mAP"] == run.metrics[-1]["mAP"]


def _managed_per_epoch(monkeypatch, config):
    """{epoch: whether the steps of that epoch trained on managed labels}."""
    from bmxlib.methods.balancemix import BalanceMix

    seen: dict[int, set] = {}
    original = BalanceMix.step_targets

    def spy(self, index):
        seen.setdefault(self.epoch, set()).add(self.managed is not None)
        return original(self, index)

    monkeypatch.setattr(BalanceMix, "step_targets", spy)
    run_dir = fit(config)
    return {epoch: values.pop() for epoch, values in seen.items() if len(values) == 1}, run_dir


def test_label_management_starts_in_the_epoch_after_warm_up(tiny_config, monkeypatch):
    managed, _ = _managed_per_epoch(monkeypatch, tiny_config(
        "name=boundary", "method=balancemix", "epochs=4", "warmup_epochs=2", "noise=mislabel",
        "noise_rate=0.4"))
    assert managed == {1: False, 2: False, 3: True, 4: True}  # fitted at the end of epoch 2


def test_without_warm_up_management_applies_from_the_first_epoch(tiny_config, monkeypatch):
    managed, run_dir = _managed_per_epoch(monkeypatch, tiny_config(
        "name=nowarm", "method=balancemix", "epochs=2", "warmup_epochs=0", "noise=mislabel",
        "noise_rate=0.4"))
    assert managed == {1: True, 2: True}
    run = load_run(run_dir)
    assert run.diagnostic_epochs[0] == 0  # the full-data pass made before epoch 1
    assert "gmm_means" in run.diagnostics(0)


def test_passes_use_the_evaluation_transform_and_views_randaugment(tiny_config):
    from bmxlib.data.presets import EvalPreset, TrainPreset

    s = build(tiny_config("method=balancemix", "randaugment=false"))

    def randaugments(dataset) -> bool:
        return any(getattr(t, "randaugment", False) for t in dataset.transform.per_batch.transforms)

    assert isinstance(s.eval_train_set.transform, EvalPreset)  # the full-data pass (§1.1)
    assert isinstance(s.train_set.transform, TrainPreset) and not randaugments(s.train_set)
    assert randaugments(s.views_set)  # re-label views: RandAugment even so (§1.4)
    # two views of one image differ (independent RandAugment draws)
    views = predict_views(s.model, s.views_set, torch.tensor([0]), n_views=2,
                                 device=s.device, config=s.config)
    assert not torch.equal(views[0, 0], views[0, 1])


def test_a_diverging_run_stops_and_keeps_its_last_checkpoint(tiny_config, monkeypatch):
    from bmxlib.methods import Method

    common = ["method=bce", "epochs=3", "noise=mislabel", "noise_rate=0.4"]
    straight = fit(tiny_config(*common, "name=straight"))
    original = Method.step_loss

    def nan_in_epoch_two(self, logits, labels):
        out = original(self, logits, labels)
        return {**out, "loss": out["loss"] * float("nan")} if labels.epoch == 2 else out

    monkeypatch.setattr(Method, "step_loss", nan_in_epoch_two)
    config = tiny_config(*common, "name=diverged")
    with pytest.raises(TrainingDiverged, match="epoch 2 step 1"):
        fit(config)
    run_dir = straight.parent / "diverged"
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in load_run(run_dir).metrics] == [1]
    monkeypatch.setattr(Method, "step_loss", original)
    fit(config, resume=True)  # resumes from the last good epoch
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(run_dir)[key])


def test_instance_noise_trains_a_reference_and_saves_it_with_the_run(tiny_config):
    config = tiny_config("name=inst", "noise=instance", "noise_rate=0.3",
                         "instance_reference_epochs=2")
    run = load_run(fit(config))
    reference = run.reference_confidence
    assert reference.shape == run.clean_labels.shape
    assert ((reference >= 0) & (reference <= 1)).all()
    removed = (run.clean_labels == 1) & (run.noisy_labels == 0)
    assert 0.15 < removed.sum() / run.clean_labels.sum() < 0.45  # τ = 0.3 of the positives
    # the reference is cached: a second run with another training seed reuses it
    again = load_run(fit(tiny_config("name=inst2", "noise=instance", "noise_rate=0.3",
                                     "instance_reference_epochs=2", "seed=3")))
    assert np.array_equal(again.reference_confidence, reference)
    assert np.array_equal(again.noisy_labels, run.noisy_labels)


def test_autocast_on_the_cpu_only_when_asked():
    from bmxlib.compute import autocast

    cpu = torch.device("cpu")
    with autocast(cpu, True):
        assert not torch.is_autocast_enabled("cpu")  # amp alone: CUDA only, as before
    with autocast(cpu, False, cpu=True):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(cpu, True, cpu=True):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.parametrize("amp_cpu", [False, True], ids=["float32", "bf16"])
def test_amp_cpu_runs_the_training_step_in_bf16(tiny_config, amp_cpu):
    """The convolutions of the training step compute in bf16 exactly when amp_cpu is set."""
    s = build(tiny_config("method=mixup", f"amp_cpu={str(amp_cpu).lower()}"))
    conv = next(m for m in s.model.modules() if isinstance(m, torch.nn.Conv2d))
    seen: list[torch.dtype] = []
    conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    record = train_one_epoch(s, 1)
    assert np.isfinite(record["train_loss"])
    assert set(seen) == {torch.bfloat16 if amp_cpu else torch.float32}


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu avx avx2 fma", False),
    ("fpu avx2 avx512f avx512_bf16", True),
    ("fpu avx2 amx_bf16 amx_tile", True),
], ids=["avx2-only", "avx512-bf16", "amx"])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    from bmxlib.compute import cpu_bf16_flags, cpu_has_native_bf16

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(str(cpuinfo)) is expected
    assert cpu_bf16_flags(str(cpuinfo)) == sorted(f for f in flags.split() if "bf16" in f)
    assert cpu_has_native_bf16(str(tmp_path / "absent")) is None
    (tmp_path / "noflags").write_text("processor\t: 0\n")
    assert cpu_has_native_bf16(str(tmp_path / "noflags")) is None


@pytest.mark.parametrize("native", [False, True, None], ids=["emulated", "native", "unknown"])
def test_amp_cpu_warns_once_only_where_bf16_is_emulated(tiny_config, monkeypatch, capsys,
                                                       native):
    import bmxlib.compute as compute

    monkeypatch.setattr(compute, "cpu_has_native_bf16", lambda: native)
    build(tiny_config("amp_cpu=true"))
    err = capsys.readouterr().err
    assert err.count("amp_cpu=true on a CPU without AMX") == (1 if native is False else 0)
    build(tiny_config("amp_cpu=false"))
    assert "amp_cpu" not in capsys.readouterr().err


def test_evaluation_ranks_logits_beyond_float32_sigmoid_saturation(monkeypatch):
    # float32's sigmoid is exactly 1.0 for these four logits, so AP on the confidences
    # would tie them (3/4); the logits keep the model's order: (1 + 1 + 3/4) / 3.
    logits = torch.tensor([[25.0], [20.0], [18.0], [17.5], [-3.0]])
    assert (torch.sigmoid(logits[:4]) == 1.0).all()
    labels = np.array([[1], [1], [0], [1], [0]], dtype=np.uint8)
    monkeypatch.setattr(passes, "predict", lambda *args, **kwargs: logits)
    result = passes.evaluate(None, SimpleNamespace(labels=labels), np.array(["many"]),
                             device=torch.device("cpu"), config=None)
    assert result["mAP"] == pytest.approx(11 / 12)
    assert result["mAP"] == pytest.approx(average_precision_score(labels[:, 0], logits[:, 0]))


def test_the_method_starts_its_epoch_before_the_loaders_ask_it_for_weights(tiny_config):
    # a method whose start_epoch changes its sampling weights or subset must have them
    # read after that, by the epoch's loaders
    s = build(tiny_config("method=ros"))
    calls = []
    for hook in ("start_epoch", "instance_weights", "training_indices"):
        original = getattr(s.method, hook)
        setattr(s.method, hook, lambda *a, _f=original, _h=hook: calls.append(_h) or _f(*a))
    train_one_epoch(s, 1)
    assert calls[0] == "start_epoch" and {"instance_weights", "training_indices"} <= set(calls)
