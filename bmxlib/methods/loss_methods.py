"""Methods that differ from BCE only in their per-label loss, or only in the sampler.

bce, focal (γ = 2), asl (γ+ = 0, γ− = 4, m = 0.05), db (Distribution-Balanced) and ros
(random oversampling of instances holding rare positives; BCE loss). docs/method.md §4. Each loss
takes soft targets, so under Mixup (the paper's protocol) it applies to the mixed labels
y_mix as it is; nothing depends on a label's observed value.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Hyperparameter, Method
from .losses import asymmetric_loss, distribution_balanced_loss, focal_loss
from .selection import ros_instance_weights


class BCE(Method):
    """Plain binary cross-entropy on the given labels."""

    name = "bce"


class Focal(Method):
    """Focal loss (Lin et al. 2017) on every label."""

    name = "focal"
    hyperparameters = {"focal_gamma": Hyperparameter(2.0, "focal loss γ", low=0.0, high=10.0)}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, targets, gamma=self.config.focal_gamma)


class ASL(Method):
    """Asymmetric loss (Ridnik et al. 2021); gradients flow through the focusing weight
    (docs/method.md §4 default) or not (``asl_detach_focusing``, the official training code)."""

    name = "asl"
    hyperparameters = {
        "asl_gamma_pos": Hyperparameter(0.0, "ASL γ+", low=0.0, high=10.0),
        "asl_gamma_neg": Hyperparameter(4.0, "ASL γ−", low=0.0, high=10.0),
        "asl_clip": Hyperparameter(0.05, "ASL probability margin m", low=0.0, high=1.0),
        "asl_detach_focusing": Hyperparameter(
            False, "ASL: detach the focusing weight (the official training code); "
                   "docs/method.md §4 default: gradients flow through it"),
    }

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        c = self.config
        return asymmetric_loss(
            logits, targets, gamma_pos=c.asl_gamma_pos, gamma_neg=c.asl_gamma_neg,
            clip=c.asl_clip, detach_focusing=c.asl_detach_focusing,
        )


class DistributionBalanced(Method):
    """Distribution-Balanced loss (Wu et al. 2020) with the paper's defaults."""

    name = "db"

    def __init__(self, config, data) -> None:
        super().__init__(config, data)
        # class frequencies of the *given* training labels: all the learner can see
        self.class_freq = data.noisy_labels.sum(dim=0)
        self.train_num = float(data.noisy_labels.shape[0])

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return distribution_balanced_loss(logits, targets, self.class_freq, self.train_num)


class RandomOversampling(Method):
    """BCE with instances drawn in proportion to the rarity of their positives.

    With Mixup (the paper's protocol) the second batch is an independent draw of the same
    oversampling sampler: ROS's sampler is its "random sampler".
    """

    name = "ros"

    def __init__(self, config, data) -> None:
        super().__init__(config, data)
        if self.mixes:
            self.second_sampler = "weighted"

    def instance_weights(self) -> np.ndarray:
        return ros_instance_weights(self.data.noisy_labels.cpu().numpy())
