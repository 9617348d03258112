"""Where and how a batch computes, for every training step and no-grad pass: the move to
the device with the per-batch transform, bf16 autocast, whether progress bars show, and the
divergence checks (:class:`TrainingDiverged`).
"""

from __future__ import annotations

import contextlib
import sys

import torch

from . import distributed as dist


class TrainingDiverged(ValueError):
    """A training step produced a non-finite or exploding loss, or a pass non-finite
    outputs (the message names the epoch, and the step)."""


def show_bars(progress: bool) -> bool:
    """Progress bars when ``progress`` (config ``progress``) and only for an interactive
    terminal: in a log file, a cluster job or a ``--jobs`` worker they would be one long line
    of carriage returns. The per-epoch summary lines are printed either way."""
    return bool(progress) and dist.is_main() and sys.stderr.isatty()


def autocast(device: torch.device, enabled: bool, *, cpu: bool = False):
    """bf16 autocast when ``enabled``: on CUDA, and on the CPU only when ``cpu`` too (config
    ``amp_cpu``); a no-op context elsewhere."""
    if enabled and (device.type == "cuda" or (cpu and device.type == "cpu")):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: /proc/cpuinfo flags of a CPU that computes bf16 natively (else oneDNN emulates it)
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str] | None:
    """The CPU's bf16 instruction flags (of ``NATIVE_BF16_FLAGS``, sorted) read from
    ``cpuinfo``; None where the flags cannot be read (not Linux)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), None)
    except OSError:
        return None
    return None if flags is None else sorted(set(flags) & set(NATIVE_BF16_FLAGS))


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU computes bf16 natively (AMX or AVX-512 BF16), from
    ``cpu_bf16_flags``; None where the flags cannot be read. Without it, bf16 autocast
    on the CPU is emulated: 7.9x slower than float32 per glyphs-coco epoch on an AVX2-only
    AMD EPYC (2026-12-04)."""
    flags = cpu_bf16_flags(cpuinfo)
    return None if flags is None else bool(flags)


def warn_if_emulated_bf16() -> None:
    """One stderr line when this CPU has no native bf16; call it where bf16 autocast on the
    CPU is asked for (``amp_cpu``): the run stays as configured (its numbers follow its
    config), only slower."""
    if cpu_has_native_bf16() is False:
        print("bmxlib: warning: amp_cpu=true on a CPU without AMX / AVX-512 BF16: bf16 is "
              "emulated there, several times slower than float32 (amp_cpu=false)",
              file=sys.stderr, flush=True)


def to_device(x: torch.Tensor, device, channels_last: bool, batch_transform=None) -> torch.Tensor:
    """Move a batch to ``device``, apply the per-batch transform there, set channels_last."""
    x = x.to(device, non_blocking=True)
    if batch_transform is not None:
        x = batch_transform(x)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def check_finite(logits: torch.Tensor, *, epoch: int | None, what: str) -> torch.Tensor:
    """Raise :class:`TrainingDiverged` when a no-grad pass produced inf / NaN outputs."""
    if not bool(torch.isfinite(logits).all()):
        when = f" after epoch {epoch}" if epoch is not None else ""
        raise TrainingDiverged(f"training diverged: the model's {what} outputs are not "
                               f"finite{when}; the last good checkpoint is kept")
    return logits
