"""Thin DistributedDataParallel helpers; every function is a no-op in one process.

Launch with ``torchrun --nproc_per_node=N -m bmxlib.train --config FILE`` (or
``bmx train --distributed``). The backend is NCCL on CUDA and gloo on the CPU.
Only rank 0 writes the run directory; the full-data pass is gathered so every rank
holds the same global F (docs/method.md §1.1) and fits identical GMMs.
"""

from __future__ import annotations

import math
import os

import torch
import torch.distributed as td
from torch.utils.data import Sampler


def is_initialized() -> bool:
    return td.is_available() and td.is_initialized()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(model, "module", model)


def init() -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    td.init_process_group(backend=backend)


def world_size() -> int:
    return td.get_world_size() if is_initialized() else 1


def rank() -> int:
    return td.get_rank() if is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        td.barrier()


def sum_across_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the ranks (a new tensor; ``values`` itself in one process)."""
    if not is_initialized():
        return values
    total = values.clone()
    td.all_reduce(total)
    return total


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if not is_initialized():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


class ShardedShuffle(Sampler[int]):
    """A seeded permutation of range(n), split across ranks (padded to equal length)."""

    def __init__(self, n: int, *, seed: int, num_replicas: int, rank: int) -> None:
        self.n, self.seed, self.num_replicas, self.rank = n, seed, num_replicas, rank
        self.per_rank = math.ceil(n / num_replicas)

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed))
        padded = torch.cat([order, order[: self.per_rank * self.num_replicas - self.n]])
        return iter(padded[self.rank :: self.num_replicas].tolist())


def shuffled_sampler(n: int, *, seed: int) -> Sampler[int]:
    """An ordinary shuffled pass (docs/method.md §1.2 'random sampler'), sharded under DDP."""
    return ShardedShuffle(n, seed=seed, num_replicas=world_size(), rank=rank())


def shard_indices(n: int) -> torch.Tensor:
    """This rank's contiguous share of range(n) for no-grad passes."""
    per_rank = math.ceil(n / world_size())
    start = min(rank() * per_rank, n)
    return torch.arange(start, min(start + per_rank, n))


def gather_rows(rows: torch.Tensor, indices: torch.Tensor, n: int) -> torch.Tensor:
    """Assemble the global (n, K) matrix from every rank's ``rows`` at ``indices``."""
    if not is_initialized():
        return rows
    per_rank = math.ceil(n / world_size())
    padded = torch.zeros(per_rank, rows.shape[1], dtype=rows.dtype, device=rows.device)
    padded[: len(rows)] = rows
    gathered = [torch.empty_like(padded) for _ in range(world_size())]
    td.all_gather(gathered, padded)
    return torch.cat(gathered)[:n]
