"""The printed table of ``bmx bench``: one row maker per benchmark."""

from __future__ import annotations

from typing import Any


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, bmxlib, peer, ratio, check) rows for the printed table."""
    rows = []
    for key, result in results.items():
        rows += ROW_MAKERS[key](result)
    return rows


def _gmm_rows(r):
    return [(f"GMM 2K fits N={r['items']:,} K={r['classes']} [{r['device']}]",
             _seconds(r["bmxlib_s"]), f"{_seconds(r['peer_s'])} sklearn loop",
             f"{r['speedup']:.1f}x", f"agree {100 * r['agreement']:.2f}%")]


def _ap_rows(r):
    rows = [(f"AP N={r['items']:,} K={r['classes']} [{r['device']}]", _seconds(r["bmxlib_s"]),
             f"{_seconds(r['peer_s'])} sklearn loop", f"{r['speedup']:.1f}x",
             f"max|diff| {r['max_abs_diff']:.1e}")]
    tm = r.get("torchmetrics_s")
    rows.append(("  vs torchmetrics", "", "not installed" if tm is None else _seconds(tm),
                 "" if tm is None else f"{tm / r['bmxlib_s']:.1f}x", ""))
    return rows


def _label_rows(r):
    size = f"N={r['items']:,} K={r['classes']:,}"
    peak = f"peak RSS {r['peak_rss_bytes'] / 1e9:.2f} GB"
    return [(f"sampling probabilities {size}", _seconds(r["sampling_s"]), "", "", ""),
            (f"label management {size}", _seconds(r["label_management_s"]), "", "",
             f"{peak} (limit 16 GB)")]


def _randaugment_rows(r):
    return [(f"RandAugment {c['images']:,}x{c['channels']}x{c['side']}² [{r['device']}]",
             _seconds(c["bmxlib_s"]), f"{_seconds(c['peer_s'])} torchvision per image",
             f"{c['speedup']:.1f}x",
             ("bit-identical ops" if c["identical"] else "DIFFERENT")
             + (f"; grouped {_seconds(c['grouped_s'])}" if "grouped_s" in c else ""))
            for c in r["cases"]]


def _loader_rows(r):
    return [(f"loader {c['decoder']} {r['images']} JPEGs → {r['target']}²", "",
             f"decode {c['decode_ms']:.1f} ms, resize {c['resize_ms']:.1f} ms, "
             f"RandAugment {c['randaugment_ms']:.1f} ms", "",
             f"{c['images_per_s_per_worker']:.0f} img/s per worker "
             f"({c['decode_resize_images_per_s']:.0f} without RandAugment)")
            for c in r["cases"]]


def _scaling_rows(r):
    rows = [(f"label management N={p['items']:,} K={p['classes']:,}",
             _seconds(p["label_management_s"]), "", "",
             f"peak {p['peak_bytes'] / 1e9:.2f} GB, {p['bytes_per_label']:.0f} B/label")
            for p in r["points"]]
    fits = (f"fits {r['max_labels_16gb_host']:.2e} labels in 16 GB host, "
            f"{r['max_labels_80gb_gpu']:.2e} in 80 GB GPU"
            if r["max_labels_16gb_host"] is not None else "peak below the RSS resolution")
    rows.append(("  growth", "", "", "",
                 f"t ∝ N^{r['exponent_n']:.2f} K^{r['exponent_k']:.2f}; {fits}"))
    return rows


def _epoch_rows(r):
    runs = r["runs"]
    rows = [(f"digits-lt epoch {name} (n={run['n_train']})", _seconds(run["epoch_s"]), "",
             f"{run['epoch_s'] / runs['mixup']['epoch_s']:.2f}x mixup", "")
            for name, run in runs.items()]
    profile = r["balancemix_profile"]
    rows.append(("  balancemix split", "", "", "",
                 ", ".join(f"{k[:-2]} {_seconds(v)}" for k, v in profile.items())))
    return rows


def _breakdown_rows(r):
    rows = []
    for method, run in r["runs"].items():
        parts = ("step", "augmentation", "loader", "end_of_epoch", "evaluation", "writes",
                 "setup")
        rows.append((f"run {method} ({r['config']})", _seconds(run["wall"]), "", "",
                     ", ".join(f"{p} {100 * run[p] / run['wall']:.0f}%" for p in parts)))
    rows.append(("  import bmxlib.engine (once per worker)", _seconds(r["import_s"]), "", "",
                 ""))
    return rows


def _amp_cpu_rows(r):
    if "skipped" in r:
        return [("amp_cpu", "", "", "", r["skipped"])]
    flags = ", ".join(r["cpu_bf16_flags"]) or "no bf16 instructions: emulated"
    return [(f"run {method} bf16 vs float32", _seconds(run["bf16_wall"]),
             _seconds(run["float32_wall"]), f"{run['wall_ratio']:.2f}x",
             f"step {run['step_ratio']:.2f}x; CPU {flags}")
            for method, run in r["runs"].items()]


def _gpu_rows(r):
    t = r["throughput"]
    rates = ", ".join(f"{k} {v:.0f}" for k, v in t["images_per_s"].items())
    return [*_gmm_rows(r["gmm"]), *_ap_rows(r["ap"]),
            (f"{t['arch']} {t['image_size']}px img/s", rates, "", "",
             f"balancemix {100 * t['balancemix_share_of_bce_mixup']:.0f}% of bce/mixup")]


ROW_MAKERS = {"gmm": _gmm_rows, "ap": _ap_rows, "label_management": _label_rows,
              "loader": _loader_rows, "scaling": _scaling_rows,
              "randaugment": _randaugment_rows, "epoch": _epoch_rows,
              "breakdown": _breakdown_rows, "amp_cpu": _amp_cpu_rows, "gpu": _gpu_rows}


def format_table(results: dict[str, Any], info: dict[str, Any]) -> str:
    header = ("benchmark", "bmxlib", "peer", "ratio", "check")
    rows = [header, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"bmx bench — {info['cpu']} ({info['cpu_count']} CPUs, {info['torch_threads']} "
             f"torch threads), torch {info['torch']}, {info['date']}"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  "
                     + row[4])
    return "\n".join(lines)
