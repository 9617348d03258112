"""What determines a run's numbers: software versions, thread count, machine, and digests
of the cached inputs (the digits-lt arrays and the pretrained digits backbone).

``run_provenance`` is written into every run directory (``runs.write_provenance``) so two
runs that disagree can be told apart by reading two small JSON files. docs/reliability.md
says which differences change numbers and by how much.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch threads and versions, date, load (benchmarks and runs)."""
    info = {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_provenance(*, device: torch.device, cached_inputs: dict[str, Path]) -> dict[str, Any]:
    """The facts a run's numbers depend on besides its config.

    Parameters
    ----------
    device : torch.device
        The training device.
    cached_inputs : dict of name -> path
        Cached files the run read (e.g. ``{"digits_lt": ..., "digits_backbone": ...}``);
        each is recorded with its SHA-256 prefix.
    """
    import sklearn
    import torchvision

    from .io import file_digest

    info = machine_info()
    info.pop("load_average")
    info.update(
        torchvision=torchvision.__version__,
        sklearn=sklearn.__version__,
        device=str(device),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cached_inputs={name: {"file": Path(path).name, "sha256": file_digest(path)}
                       for name, path in cached_inputs.items() if Path(path).is_file()},
    )
    return info
