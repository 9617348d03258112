"""Mixup: BCE on mixed batches of the random sampler alone (docs/method.md §1.3, §4).

The paper's "+ random sampler" row of its component table (Table 5): the first ablation
row of BalanceMix, and the Mixup every other method trains with under the paper's
protocol. The mixing itself lives in ``Method.step_inputs`` (one place for every method);
this method only names the combination "bce + mixup" (its config always has mixup on).
"""

from __future__ import annotations

from .base import Method


class Mixup(Method):
    """Random sampler only: mix two random batches, BCE on the mixed given labels."""

    name = "mixup"
    mixes_by_definition = True
