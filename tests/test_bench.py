"""``bmx bench`` and the scale features it measures (issue #6).

The quick bench runs end to end through the CLI; the pieces it relies on are checked on
small inputs: chunked GMMs equal unchunked ones, ``manage_labels(out=...)`` may overwrite
its inputs, ``label_losses`` is BCE, the sampler works from bool labels, the AP fast path
equals scikit-learn with ties, and the GPU throughput code runs on the CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from bmxlib import bench
from bmxlib.bench.inputs import bimodal_losses, tied_scores
from bmxlib.bench.peers import sklearn_clean_probability
from bmxlib.bench.training import throughput
from bmxlib.cli import main as cli_main
from bmxlib.gmm import clean_probability_with_fit
from bmxlib.labels import ManagedLabels, label_losses, manage_labels
from bmxlib.metrics import average_precision
from bmxlib.sampling import minority_probabilities

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine two threads can be 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- the bench itself
@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):  # --quick runs with one torch thread
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    assert cli_main(["bench", "--quick", "--out", str(out)]) == 0
    assert (out.parent / "bench-scaling.png").is_file()  # the growth figure beside it
    return json.loads(out.read_text())


def test_quick_bench_measures_everything(quick_report, capsys):
    results = quick_report["results"]
    assert sorted(results) == ["amp_cpu", "ap", "breakdown", "epoch", "gmm",
                               "label_management", "loader", "randaugment", "scaling"]
    scaling = results["scaling"]
    assert len(scaling["points"]) == 4 and scaling["max_labels_16gb_host"] > 0
    assert 0.3 < scaling["exponent_n"] < 3  # grows with N, not wildly
    decoders = {c["decoder"]: c for c in results["loader"]["cases"]}
    assert set(decoders) == {"pil", "pil_draft", "torchvision_io"}
    assert all(c["images_per_s_per_worker"] > 0 for c in decoders.values())
    for case in results["randaugment"]["cases"]:
        assert case["identical"] and case["speedup"] > 0
    assert results["gmm"]["agreement"] >= 0.99
    assert results["ap"]["max_abs_diff"] <= 1e-9 and results["ap"]["ties"] > 0
    for key in ("gmm", "ap"):
        assert results[key]["bmxlib_s"] > 0 and results[key]["speedup"] > 0
    management = results["label_management"]
    assert management["peak_rss_bytes"] >= management["baseline_rss_bytes"] > 0
    assert management["probabilities_sum"] == pytest.approx(1.0)
    epoch = results["epoch"]
    assert set(epoch["runs"]) == {"bce", "mixup", "balancemix"}
    assert epoch["ratio_balancemix_to_mixup"] > 0
    balancemix = epoch["runs"]["balancemix"]
    assert balancemix["full_data_pass_s"] > 0 and balancemix["relabel_views_s"] > 0
    assert quick_report["machine"]["cpu"]


def test_breakdown_buckets_add_up_to_the_runs_wall_time(quick_report):
    breakdown = quick_report["results"]["breakdown"]
    assert set(breakdown["runs"]) == {"bce", "balancemix"} and breakdown["import_s"] > 0
    parts = ("step", "augmentation", "loader", "end_of_epoch", "evaluation", "writes", "setup")
    for method, run in breakdown["runs"].items():
        assert sum(run[p] for p in parts) == pytest.approx(run["wall"]), method
        assert all(run[p] >= 0 for p in parts if p != "loader"), method
        assert run["step"] > 0 and run["augmentation"] > 0 and run["evaluation"] > 0
    balancemix, bce = breakdown["runs"]["balancemix"], breakdown["runs"]["bce"]
    # balancemix's end of epoch holds its full-data pass and its re-label views
    assert balancemix["end_of_epoch"] >= balancemix["full_data_pass"] > 0
    assert balancemix["relabel_views"] > 0 and bce["relabel_views"] == 0


def test_amp_cpu_times_float32_against_bf16_runs(quick_report):
    amp = quick_report["results"]["amp_cpu"]
    assert set(amp["runs"]) == {"bce", "balancemix"}
    for run in amp["runs"].values():
        assert run["float32_wall"] >= run["float32_step"] > 0
        assert run["bf16_wall"] >= run["bf16_step"] > 0
        assert run["wall_ratio"] == pytest.approx(run["float32_wall"] / run["bf16_wall"])
    assert set(amp["cpu_bf16_flags"]) <= {"amx_bf16", "avx512_bf16"}


def test_every_registered_benchmark_has_a_runner_a_table_row_and_cli_help(capsys):
    from bmxlib.bench.table import ROW_MAKERS

    assert set(ROW_MAKERS) == set(bench.NAMES)
    assert all(callable(bench.runner(name)) for name in bench.NAMES)
    assert cli_main(["bench", "--help"]) == 0  # argparse's exit becomes a return code
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(f"{name} (" in help_text for name in bench.NAMES)


def test_table_lists_every_benchmark(quick_report):
    text = bench.format_table(quick_report["results"], quick_report["machine"])
    for needle in ("GMM 2K fits", "sklearn loop", "AP N=", "label management", "peak RSS",
                   "loader pil", "img/s per worker",
                   "epoch balancemix", "x mixup", "RandAugment", "bit-identical"):
        assert needle in text, needle


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_cuda_is_refused_in_one_line(capsys):
    assert cli_main(["bench", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0]


@pytest.mark.parametrize(("only", "match"), [("nope", "unknown benchmark"), ("gpu", "cuda")],
                         ids=["unknown", "gpu-on-cpu"])
def test_bad_selection_is_refused(only, match):
    with pytest.raises(ValueError, match=match):
        bench.run_bench(only=only, quick=True)


@pytest.mark.parametrize("target", ["folder", "under-a-file"])
def test_an_unwritable_out_is_refused_before_any_benchmark_runs(tmp_path, capsys, target):
    """`bmx bench --out /sys/b.json` once ran every benchmark, then failed to write."""
    (tmp_path / "file").write_text("x")
    out = tmp_path if target == "folder" else tmp_path / "file" / "b.json"
    assert cli_main(["bench", "--quick", "--only", "ap", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "AP N=" not in captured.out  # nothing was measured
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "bench output (--out)" in err[0] and str(tmp_path) in err[0]


def test_only_runs_the_selection(capsys):
    report = bench.run_bench(only="ap", quick=True)
    assert list(report["results"]) == ["ap"]
    assert "AP N=" in capsys.readouterr().out


def test_sklearn_oracle_on_two_clusters_matches_bmxlib():
    # class 0, label 1: five losses near 0 and three near 2 -> the three are noisy (p ~ 0)
    losses = np.array([[0.01], [0.02], [0.03], [0.02], [0.01], [2.0], [2.1], [1.9]], np.float32)
    labels = np.ones((8, 1), dtype=np.uint8)
    oracle = sklearn_clean_probability(losses, labels)
    ours, _ = clean_probability_with_fit(losses, labels)
    np.testing.assert_allclose(oracle[:, 0], [1, 1, 1, 1, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(ours.numpy()[:, 0], oracle[:, 0], atol=1e-6)


def test_throughput_code_path_runs_on_cpu():
    sizes = bench.Sizes(gpu_images=8, gpu_batch=4, gpu_image_size=32, gpu_arch="resnet18")
    result = throughput(sizes, torch.device("cpu"), num_classes=5)
    assert set(result["images_per_s"]) == {"bce", "mixup", "balancemix"}
    assert all(rate > 0 for rate in result["images_per_s"].values())


@pytest.mark.gpu
@cuda
def test_gpu_bench_quick():
    report = bench.run_bench(device="cuda", quick=True, only="gpu")
    gpu = report["results"]["gpu"]
    assert gpu["gmm"]["agreement"] >= 0.99 and gpu["ap"]["max_abs_diff"] <= 1e-9
    assert gpu["throughput"]["images_per_s"]["balancemix"] > 0


# ---------------------------------------------------------------- scale features
def test_gmm_chunking_does_not_change_the_result():
    losses, labels = bimodal_losses(600, 7, seed=3)
    whole, fit = clean_probability_with_fit(losses, labels, workspace_bytes=1 << 30)
    one_class, fit_one = clean_probability_with_fit(losses, labels, workspace_bytes=1)
    torch.testing.assert_close(one_class, whole, rtol=0, atol=1e-12)
    assert torch.equal(one_class > 0.5, whole > 0.5)
    torch.testing.assert_close(fit_one.means, fit.means, rtol=0, atol=1e-12, equal_nan=True)
    assert torch.equal(fit_one.n_iter, fit.n_iter)


def test_gmm_accepts_bool_labels_and_bad_budget_is_refused():
    losses, labels = bimodal_losses(300, 3, seed=4)
    from_bool, _ = clean_probability_with_fit(losses, labels.astype(bool))
    from_uint8, _ = clean_probability_with_fit(losses, labels)
    torch.testing.assert_close(from_bool, from_uint8)
    with pytest.raises(ValueError, match="workspace_bytes"):
        clean_probability_with_fit(losses, labels, workspace_bytes=0)


def test_manage_labels_into_its_own_inputs():
    # given [1, 0, 1], p_G [0.9, 0.2, 0.1], views [nan, 0.99, 0.5] (ε = 0.975):
    # clean / re-labeled to 1 / ambiguous with weight 0.1
    given = torch.tensor([[1, 0, 1]], dtype=torch.bool)
    p_clean = torch.tensor([[0.9, 0.2, 0.1]])
    views = torch.tensor([[float("nan"), 0.99, 0.5]])
    expected = manage_labels(given, p_clean.clone(), views.clone())
    state = torch.empty(1, 3, dtype=torch.uint8)
    out = ManagedLabels(targets=views, state=state, weight=p_clean)
    managed = manage_labels(given, p_clean, views, out=out)
    assert managed is out and managed.targets.data_ptr() == views.data_ptr()
    torch.testing.assert_close(managed.targets, torch.tensor([[1.0, 1.0, 1.0]]))
    torch.testing.assert_close(managed.weight, torch.tensor([[1.0, 1.0, 0.1]]))
    assert managed.state.tolist() == [[0, 1, 2]]
    for name in ("targets", "state", "weight"):
        assert torch.equal(getattr(managed, name), getattr(expected, name))
    with pytest.raises(ValueError, match="out.weight"):
        manage_labels(given, p_clean, views,
                      out=ManagedLabels(views, state, torch.empty(1, 3, dtype=torch.float64)))


def test_label_losses_is_bce_by_hand():
    # BCE(σ(0), 1) = log 2; BCE(σ(2), 0) = log(1 + e^2) = 2.126928...
    logits = torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([[True, False]])
    np.testing.assert_allclose(label_losses(logits, labels).numpy(),
                               [[np.log(2.0), np.log1p(np.exp(2.0))]], rtol=1e-6)
    big = torch.randn(5000, 3)
    targets = torch.rand(5000, 3) < 0.3
    expected = F.binary_cross_entropy_with_logits(big, targets.float(), reduction="none")
    assert torch.equal(label_losses(big, targets, out=big.clone()), expected)


def test_sampler_probabilities_from_bool_labels_match_float():
    confidences = torch.rand(300, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.rand(300, 6, generator=torch.Generator().manual_seed(1)) < 0.2
    torch.testing.assert_close(minority_probabilities(confidences, labels),
                               minority_probabilities(confidences.double(), labels.double()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32-keys", "float64-sort"])
def test_ap_fast_paths_match_sklearn_with_ties(dtype):
    scores, targets = tied_scores(2000, 6, seed=5)
    scores = scores.astype(dtype)
    if dtype == np.float64:  # not representable in float32: the argsort path
        scores = scores + np.linspace(0, 1e-12, scores.size).reshape(scores.shape)
        scores[::7] = scores[1::7][: len(scores[::7])]  # and still ties
    oracle = [average_precision_score(targets[:, k], scores[:, k]) for k in range(6)]
    np.testing.assert_allclose(average_precision(scores, targets), oracle, rtol=0, atol=1e-9)


def test_ap_negative_zero_ties_with_zero():
    scores = np.array([0.0, -0.0, 0.5], dtype=np.float32)
    targets = np.array([1, 0, 1])
    np.testing.assert_allclose(average_precision(scores, targets),
                               [average_precision_score(targets, scores)], atol=1e-12)


def test_gpu_code_paths_agree_on_cpu(monkeypatch):
    # the CUDA branches (torch.sort in the GMM init, the dense torch AP) run here on the CPU
    from bmxlib import gmm_em, metrics

    losses, labels = bimodal_losses(500, 4, seed=6)
    numpy_sorted, _ = clean_probability_with_fit(losses, labels)
    monkeypatch.setattr(gmm_em, "sorted_rows", lambda values: values.sort(dim=1).values)
    torch_sorted, _ = clean_probability_with_fit(losses, labels)
    torch.testing.assert_close(torch_sorted, numpy_sorted, rtol=0, atol=1e-12)
    scores, targets = tied_scores(1500, 5, seed=7)
    dense = metrics.average_precision(scores, targets, implementation="torch")
    oracle = [average_precision_score(targets[:, k], scores[:, k]) for k in range(5)]
    np.testing.assert_allclose(dense, oracle, rtol=0, atol=1e-9)


def test_loader_bench_files_are_real_jpegs_all_decoders_agree_on(tmp_path):
    from bmxlib.bench.pipeline import DECODERS, write_jpegs

    paths = write_jpegs(tmp_path, 2)
    assert paths[0].read_bytes()[:2] == b"\xff\xd8"  # JPEG start-of-image marker
    full = [DECODERS[name](paths[0]) for name in ("pil", "torchvision_io")]
    assert full[0].shape == full[1].shape and full[0].dtype == torch.uint8
    # the two full decoders may differ in IDCT rounding, not in content
    assert (full[0].int() - full[1].int()).abs().float().mean() < 2.0
