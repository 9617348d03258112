"""``python -m bmxlib.train [--config FILE] [key=value ...]``: the torchrun entry point.

Equivalent to ``bmx train ...``; launched by ``torchrun --nproc_per_node=N -m
bmxlib.train --config FILE`` every process joins the process group (gloo on the CPU, NCCL
on CUDA) and trains with DistributedDataParallel; only rank 0 writes the run directory.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``bmx train`` with ``argv`` (default: the command-line arguments)."""
    from .cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
