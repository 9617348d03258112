"""The method interface: each method owns how a step's batch is built and its loss.

The engine (``bmxlib.engine``) drives every method the same way:

1. ``start_epoch(epoch)`` opens the epoch, before the epoch's loaders are built.
   ``second_sampler`` says whether a step takes a second batch and from which sampler
   ("random": an independent shuffled pass; "weighted": an independent draw of the
   weighted sampler; "minority": docs/method.md §1.2; None: one batch). ``instance_weights()`` may
   replace the random sampler by a weighted one (ROS); ``training_indices()`` may keep some
   instances out of training altogether (T-estimator's held-out validation set).
2. ``training_step(model, batch)`` runs forward + loss and returns a dict with 'loss'
   (a scalar tensor) and anything else worth logging (floats). It is built from
   ``step_inputs`` (the one place where the batch is mixed, docs/method.md §1.3) and ``step_loss``
   (each method's own loss or rule on the resulting :class:`StepLabels`).

Mixing (the paper's protocol, docs/method.md §4): with ``config.mixup`` every method trains on
x_mix = λ·x_R + (1 − λ)·x_M and y_mix = λ·y_R + (1 − λ)·y_M of two batches, λ =
max(λ', 1 − λ'), λ' ~ Beta(α, α). A rule that depends on a label's *observed* value or on
the instance (LL-R / LL-Ct's unobserved labels, co-teaching's kept instances) follows the
random-sampler instance, which dominates the mix (λ ≥ 0.5) — as BalanceMix's reliability
does (docs/method.md §1.4). Without mixing, ``targets`` are the given labels and λ is None.
3. ``end_of_epoch(ctx)`` may run the full-data pass (docs/method.md §1.1) through the
   :class:`EpochContext` it is given and update samplers and label state; it returns an
   :class:`EpochResult` (logs, diagnostics arrays, class confidences).
4. ``state_dict`` / ``load_state_dict`` carry everything needed for exact resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..mixing import minority_mix

if TYPE_CHECKING:  # config reads the method registry, so methods import it only for types
    from ..config import Config


@dataclass
class TrainingData:
    """What a method knows about the training set."""

    noisy_labels: torch.Tensor  # (N, K) float32 on the training device, given labels
    clean_labels: np.ndarray  # (N, K) uint8, the truth (known for synthetic noise)
    corrupted: np.ndarray  # (N, K) bool, noisy != clean
    noise_known: bool  # True when the noise was injected synthetically


@dataclass
class Batch:
    """One training step's inputs on the device. ``*_m`` are None without a 2nd sampler."""

    x_r: torch.Tensor
    index_r: torch.Tensor
    x_m: torch.Tensor | None = None
    index_m: torch.Tensor | None = None
    epoch: int = 1
    generator: torch.Generator | None = None  # for λ draws, seeded per epoch


class EpochContext(Protocol):
    """What a method may use at the end of an epoch.

    The engine's context runs the passes over the training set through its data loaders;
    ``bmxlib.bench`` provides one over in-memory images. Both satisfy this protocol.
    """

    epoch: int  # the epoch that just ended (1-based)
    full_diagnostics: bool  # True at the epochs that keep full per-label arrays

    @property
    def model(self) -> torch.nn.Module:
        """The network being trained (evaluated in eval mode by the passes below)."""
        ...

    def full_data_pass(self, model: torch.nn.Module | None = None) -> torch.Tensor:
        """docs/method.md §1.1: logits (N, K) float32 of every training instance under the
        evaluation transform, without gradients (``model`` defaults to :attr:`model`)."""
        ...

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        """Mean confidence (len(rows), K) over ``n_views`` RandAugment views
        (docs/method.md §1.4)."""
        ...


@dataclass
class StepLabels:
    """The labels one training step's loss sees.

    Attributes
    ----------
    targets : torch.Tensor, shape (B, K), values in [0, 1]
        The random-sampler instances' targets, or their mix with the second batch's.
    weights : torch.Tensor, shape (B, K)
        Per-label loss weights of the random-sampler instances (1 unless a method manages
        label reliability, docs/method.md §1.4).
    observed : torch.Tensor, shape (B, K), values in {0, 1}
        The random-sampler instances' given labels, for rules on the observed value.
    index : torch.Tensor, shape (B,), int64
        The random-sampler instances, for instance-level rules.
    lam : torch.Tensor or None
        The mixing coefficient (scalar, or (B,) per sample); None without mixing.
    epoch : int
        The epoch of the step (1-based), for schedules such as LL's clean rate.
    """

    targets: torch.Tensor
    weights: torch.Tensor
    observed: torch.Tensor
    index: torch.Tensor
    lam: torch.Tensor | None = None
    epoch: int = 1


@dataclass
class EpochResult:
    """What a method reports at the end of an epoch.

    Attributes
    ----------
    logs : dict
        Scalars for this epoch's metrics.jsonl record.
    diagnostics : dict of str -> np.ndarray
        Arrays for ``diagnostics/epoch_XXX.npz`` (empty: nothing is written).
    class_confidence : np.ndarray (K,) or None
        P(k), the confidence in presence per class (docs/method.md §1.2), when the method computed
        it; the engine relates it to the test AP (docs/method.md §3, confidence vs AP).
    """

    logs: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)
    class_confidence: np.ndarray | None = None


@dataclass(frozen=True)
class Hyperparameter:
    """A config key a method declares: its default, allowed values and one-line comment.

    The key's type is its default's (bool, int, float or str); ``low`` / ``high`` bound
    numbers (inclusive, None = unbounded), ``choices`` lists a string's values.
    """

    default: bool | int | float | str
    comment: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None


#: every method class by its config name, in the order their modules were imported;
#: filled by ``Method.__init_subclass__`` (a class that sets its own ``name`` registers)
REGISTRY: dict[str, type[Method]] = {}


class Method:
    """Base class; subclasses set ``name`` and override ``loss`` or ``training_step``.

    A subclass that sets its own ``name`` is registered under it (``REGISTRY``): config
    validation, ``key=value`` overrides and the tests read the registry, so a new method
    is one new module in this package. Class attributes a method may set:

    hyperparameters : dict of str -> Hyperparameter
        The config keys only this method reads (they become ``Config`` fields).
    mixes_by_definition : bool
        The method is defined by mixing (docs/method.md §1.3): it refuses ``mixup: false``.
    after_warm_up : str
        What the method starts at the end of its ``warmup_epochs`` (e.g. "label
        management"), or "" when it has no warm-up: a run may not end before its warm-up
        does, else it trains the warm-up's plain loss alone under the method's name.
    """

    name = "base"
    hyperparameters: dict[str, Hyperparameter] = {}
    mixes_by_definition = False
    after_warm_up = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return  # a shared body (LargeLoss), not a method of its own
        other = REGISTRY.get(cls.name)
        if other is not None and other.__qualname__ != cls.__qualname__:
            raise ValueError(f"method name {cls.name!r} is taken by {other.__qualname__}")
        REGISTRY[cls.name] = cls

    @classmethod
    def config_problem(cls, config: Config) -> str | None:
        """A one-line reason why ``config`` cannot train this method, or None."""
        if cls.after_warm_up and config.warmup_epochs > config.epochs:
            return (f"config key 'warmup_epochs': {config.warmup_epochs} exceeds epochs "
                    f"{config.epochs}, so {cls.name}'s {cls.after_warm_up} (from the end of "
                    f"warm-up) never runs; lower warmup_epochs or raise epochs")
        return None

    @classmethod
    def build(cls, config: Config, data: TrainingData, *, model: torch.nn.Module) -> Method:
        """The method for a run; ``model`` is the network it trains (most ignore it)."""
        return cls(config, data)

    def __init__(self, config: Config, data: TrainingData) -> None:
        self.config = config
        self.data = data
        self.epoch = 1
        self.mixes = bool(config.mixup)  # resolved by the config's protocol (docs/method.md §4)
        self.second_sampler: str | None = "random" if self.mixes else None

    # --- per-epoch hooks -------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def end_of_epoch(self, ctx: EpochContext) -> EpochResult:
        """Update sampler and label state from the epoch's model; see :class:`EpochResult`."""
        return EpochResult()

    def needs_initial_pass(self) -> bool:
        """True when the method must see a full-data pass before epoch 1 (docs/method.md §1.1: once
        before the first epoch that needs it); the engine then calls ``end_of_epoch``
        with epoch 0."""
        return False

    def instance_weights(self) -> np.ndarray | None:
        """Sampling weights (N,) replacing the random sampler, or None."""
        return None

    def minority_probabilities(self) -> torch.Tensor | None:
        """Current minority-sampler probabilities (N,), or None for uniform."""
        return None

    def training_indices(self) -> torch.Tensor | None:
        """The instances the samplers draw from (int64, sorted), or None for all N."""
        return None

    # --- the step --------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-element loss (B, K); reduced as sum over labels, mean over the batch."""
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")

    def step_targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, loss weights) of the instances ``index``; given labels, weight 1."""
        targets = self.data.noisy_labels[index]
        return targets, torch.ones_like(targets)

    def step_inputs(self, batch: Batch) -> tuple[torch.Tensor, StepLabels]:
        """The step's input images and labels: the random-sampler batch, mixed with the
        second batch when the method mixes (docs/method.md §1.3; the only place mixing happens)."""
        targets, weights = self.step_targets(batch.index_r)
        observed = self.data.noisy_labels[batch.index_r]
        if not self.mixes:
            return batch.x_r, StepLabels(targets, weights, observed, batch.index_r,
                                         epoch=batch.epoch)
        if batch.x_m is None:
            raise ValueError(f"method {self.name} mixes but the step has no second batch")
        targets_m, _ = self.step_targets(batch.index_m)
        x_mix, y_mix, lam = minority_mix(
            batch.x_r, targets, batch.x_m, targets_m, alpha=self.config.mix_alpha,
            per_sample=self.config.per_sample_lambda, generator=batch.generator,
        )
        return x_mix, StepLabels(y_mix, weights, observed, batch.index_r, lam, batch.epoch)

    def step_loss(self, logits: torch.Tensor, labels: StepLabels) -> dict[str, Any]:
        """The method's loss on the step's logits (B, K) and labels; a dict with 'loss'."""
        return {"loss": reduce_loss(self.loss(logits, labels.targets) * labels.weights)}

    def training_step(self, model: torch.nn.Module, batch: Batch) -> dict[str, Any]:
        x, labels = self.step_inputs(batch)
        out = self.step_loss(model(x).float(), labels)
        if labels.lam is not None:
            out["lambda"] = float(labels.lam.float().mean())
        return out

    # --- extra trainable state (co-teaching's peer network) ----------------------------
    def extra_modules(self) -> dict[str, torch.nn.Module]:
        return {}

    def wrap_extra_modules(self, wrap) -> None:
        """Replace each extra module by ``wrap(module)`` (DistributedDataParallel under
        DDP, so a peer network's gradients are averaged across ranks like the model's)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def reduce_loss(per_element: torch.Tensor) -> torch.Tensor:
    """Sum over labels, mean over the batch (the reduction of docs/method.md §1.5)."""
    return per_element.sum(dim=1).mean()
