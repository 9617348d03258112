"""TensorBoard event files of a run (``runs/<name>/tb/``), so ``tensorboard --logdir runs``
compares runs live. Written by rank 0 when the optional ``tensorboard`` package is
installed and the config's ``tensorboard`` key is on; nothing else depends on it.

Per epoch: the training loss, learning rate, images/s, test mAP and mAP per shot group,
clean-label selection precision / recall and re-labeling accuracy, the memorization of
the label noise, and a histogram of the minority sampler's probabilities (as N·p(n), 1 =
uniform). A resumed run purges the events after its checkpoint's epoch, so a re-run
epoch is not shown twice.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from . import measures, runs
from .methods.balancemix import SAMPLING_PROBABILITIES

#: metrics.jsonl key -> TensorBoard tag (``bmxlib.measures``)
SCALARS = measures.tensorboard_tags()


def available() -> bool:
    """Whether the tensorboard package (which torch's SummaryWriter needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


class EpochWriter:
    """Writes one run's per-epoch scalars and histograms; a no-op when disabled."""

    def __init__(self, run_dir: Path, *, enabled: bool, start_epoch: int = 1) -> None:
        self.writer = None
        if enabled and available():
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(runs.tensorboard_dir(run_dir)),
                                        purge_step=start_epoch)

    def write(self, record: dict[str, Any], diagnostics: dict[str, np.ndarray]) -> None:
        if self.writer is None:
            return
        epoch = int(record["epoch"])
        for key, tag in SCALARS.items():
            value = record.get(key)
            if isinstance(value, (int, float)) and np.isfinite(value):
                self.writer.add_scalar(tag, float(value), epoch)
        probabilities = diagnostics.get(SAMPLING_PROBABILITIES)
        if probabilities is not None and len(probabilities):
            relative = np.asarray(probabilities, dtype=np.float64) * len(probabilities)
            self.writer.add_histogram("sampler/relative_probability", relative, epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
