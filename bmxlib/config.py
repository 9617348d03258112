"""Run configuration: one flat dataclass of commented literals (nanoGPT style).

Loaded from YAML and overridden by ``key=value`` arguments. Every key is validated:
unknown keys, wrong types and out-of-range values raise ``ConfigError`` with a one-line
message naming the key (the CLI turns it into exit status 2, SPEC §9).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

METHODS = ("bce", "mixup", "focal", "asl", "ros", "ll_r", "ll_ct", "coteaching", "t_estimator",
           "db", "balancemix")
#: Methods that mix by definition (SPEC §1.3): "bce + mixup" and BalanceMix.
MIXING_METHODS = ("mixup", "balancemix")
PROTOCOLS = ("paper", "custom")
NOISE_KINDS = ("none", "mislabel", "flip", "missing", "instance")


class ConfigError(ValueError):
    """A bad configuration key or value (one line, names the key)."""


#: Keys that do not change what a run computes; they may differ between sessions (a
#: resumed run, a restarted sweep). Every other key must match for results to be the same.
BOOKKEEPING_KEYS = ("name", "out_dir", "progress", "num_workers", "tensorboard")


@dataclass
class Config:
    # --- run ---
    name: str = "run"  # run directory name under out_dir
    out_dir: str = "runs"  # parent folder of run directories
    seed: int = 0  # training seed (model init, samplers, augmentation, λ draws)
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch (0 = torch's default)
    # --- data ---
    dataset: str = "digits-lt"  # digits-lt | coco | voc | manifest
    data_root: str = ""  # folder of coco / voc / manifest data
    data_seed: int = 0  # digits-lt generation seed
    n_train: int = 8000  # digits-lt training canvases
    n_test: int = 3000  # digits-lt test canvases
    max_images: int = 0  # cap on images per split for real datasets (0 = all)
    image_size: int = 0  # square input side (0 = dataset default: 32 digits, 448 photos)
    # DataLoader worker processes; -1 = auto: min(8, CPU count) on CUDA, 0 on the CPU
    num_workers: int = -1
    shot_many: int = 0  # many-shot: more than this many training positives (0 = dataset's)
    shot_few: int = 0  # few-shot: fewer than this many (0 = dataset's; paper: 10,000 / 1,000)
    coco_drop_empty: bool = True  # COCO: drop images without annotations (ASL's loader does)
    voc_year: int = 2007  # VOC: 2007 or 2012
    # VOC classes: "" = the 20 official ones; "auto" = the sorted object names of the
    # training split (the test split gets the same list); or "a,b,c" for your own data
    voc_classes: str = ""
    voc_classes_file: str = ""  # VOC: a file with one class name per line (instead)
    # manifest: allow image paths that lead outside the CSV's folder via ".." (refused by
    # default: a manifest from elsewhere must not make bmx open ../../etc/shadow)
    manifest_allow_outside_root: bool = False
    # an image that fails to decode (at load time or mid-training) is skipped with one
    # warning line and counted, instead of stopping the run
    skip_bad_images: bool = False
    # --- noise (SPEC §2), injected once into the training labels ---
    noise: str = "none"  # none | mislabel | flip | missing | instance
    noise_rate: float = 0.0  # τ for mislabel / flip / instance
    noise_seed: int = 0  # seed of the injected noise (and of the instance noise's reference)
    # instance noise: epochs of the reference model (BCE on the clean labels) whose
    # confidences make hard positives and confusable classes more likely to be corrupted
    instance_reference_epochs: int = 10
    # --- model ---
    arch: str = "small_cnn"  # small_cnn | resnet18 | resnet50 | resnet101
    width: int = 16  # small_cnn base width
    # linear: global average pooling + a linear layer; decoder: an ML-Decoder-style head
    # (learned queries cross-attending to the spatial features, no self-attention), the
    # paper's head for every method
    head: str = "linear"
    # auto | none | digits | imagenet; auto = digits for small_cnn on digits-lt (SPEC §5),
    # imagenet for resnets (the paper's backbone), none for small_cnn on other data
    pretrained: str = "auto"
    weights_path: str = ""  # local ImageNet weights file for resnets
    # --- optimisation (paper: SGD 0.9, wd 1e-4, lr 0.01 cosine) ---
    epochs: int = 12  # training epochs
    batch_size: int = 64  # instances per step (per sampler)
    lr: float = 0.01  # initial learning rate, cosine-annealed per step to 0
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 1e-4  # SGD weight decay
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # channels_last memory format for conv nets
    # --- augmentation (RandAugment for all methods) ---
    randaugment: bool = True  # RandAugment on training images
    randaugment_ops: int = 2  # RandAugment number of ops
    randaugment_magnitude: int = 9  # RandAugment magnitude (0..30)
    hflip: bool = False  # random horizontal flip (photos only)
    # --- method ---
    method: str = "bce"  # one of METHODS
    # paper: the paper's protocol (SPEC §4), Mixup for every method but bce;
    # custom: the `mixup` key decides (mixup and balancemix always mix)
    protocol: str = "paper"
    mixup: bool = False  # Mixup (SPEC §1.3) on top of the method's own rule (protocol: custom)
    mix_alpha: float = 4.0  # Beta(α, α) for minority-augmented mixing (SPEC §1.3)
    per_sample_lambda: bool = False  # one λ per instance instead of per batch
    warmup_epochs: int = 3  # BalanceMix epochs before label management (SPEC §1.4)
    minority_sampler: bool = True  # BalanceMix: second batch from the minority sampler
    minority_score: str = "all"  # all (SPEC §1.2) | positive (opt-in: positive labels only)
    clean_labels: bool = True  # BalanceMix: GMM clean-label selection
    relabel: bool = True  # BalanceMix: re-label confident non-clean labels
    ambiguous_weighting: bool = True  # BalanceMix: weight remaining labels by p_G
    relabel_epsilon: float = 0.975  # re-labeling threshold ε (0.55 for missing labels)
    relabel_to_zero: bool = True  # re-label to 0 as well as to 1 (SPEC default: True)
    focal_gamma: float = 2.0  # focal loss γ
    asl_gamma_pos: float = 0.0  # ASL γ+
    asl_gamma_neg: float = 4.0  # ASL γ−
    asl_clip: float = 0.05  # ASL probability margin m
    # ASL: detach the focusing weight (the official training code); SPEC default: gradients
    # flow through it
    asl_detach_focusing: bool = False
    # LL-R / LL-Ct: percent of labels whose rejection rate grows per epoch (the authors'
    # delta_rel, divided by 100 in their code); ≈ 2% by the last epoch: 0.1 for 20 epochs,
    # 0.04 for 50, 0.18 for our 12
    ll_delta_rel: float = 0.18
    # T-estimator (Li et al., NeurIPS 2022): share of the training set held out as the noisy
    # validation set (the BalanceMix paper's 10%), the epochs of losses averaged for its
    # sample selection (the authors' 5), the fewest selected positives and negatives of a
    # class for the label-correlation estimate (the authors' 50; else Dual-T)
    t_holdout: float = 0.1
    t_history: int = 5
    t_min_selected: int = 50
    # --- logging ---
    diagnostics_every: int = 5  # full per-label arrays every this many epochs (0 = never)
    # test-set evaluation every this many epochs, and always at the last epoch and at every
    # full-diagnostics epoch (the paper reports the last epoch; > 1 saves CPU time)
    eval_every: int = 1
    progress: bool = True  # tqdm progress bars on a terminal (epoch summary lines always)
    tensorboard: bool = True  # event files in runs/<name>/tb/ when tensorboard is installed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """Every key in declaration order, as the run directory's config file holds it."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# value constraints: key -> (predicate, description)
_CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "dataset": ("digits-lt", "coco", "voc", "manifest"),
    "noise": NOISE_KINDS,
    "arch": ("small_cnn", "resnet18", "resnet50", "resnet101"),
    "pretrained": ("auto", "none", "digits", "imagenet"),
    "method": METHODS,
    "minority_score": ("all", "positive"),
    "protocol": PROTOCOLS,
    "head": ("linear", "decoder"),
    "voc_year": (2007, 2012),
}
_RANGES = {
    "threads": (0, None),
    "n_train": (10, None),
    "n_test": (10, None),
    "max_images": (0, None),
    "image_size": (0, 4096),
    "num_workers": (-1, 64),
    "shot_many": (0, None),
    "shot_few": (0, None),
    "noise_rate": (0.0, 1.0),
    "noise_seed": (0, None),
    "instance_reference_epochs": (1, 10_000),
    "data_seed": (0, None),
    "seed": (0, None),
    "width": (1, 512),
    "epochs": (1, 10_000),
    "batch_size": (1, 1 << 16),
    "lr": (0.0, 10.0),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, 1.0),
    "randaugment_ops": (0, 10),
    "randaugment_magnitude": (0, 30),
    "mix_alpha": (1e-6, 1e6),
    "warmup_epochs": (0, 10_000),
    "relabel_epsilon": (0.5, 1.0),
    "focal_gamma": (0.0, 10.0),
    "asl_gamma_pos": (0.0, 10.0),
    "asl_gamma_neg": (0.0, 10.0),
    "asl_clip": (0.0, 1.0),
    "ll_delta_rel": (0.0, 100.0),
    "t_holdout": (0.0, 0.5),
    "t_history": (1, 100),
    "t_min_selected": (1, None),
    "diagnostics_every": (0, None),
    "eval_every": (1, None),
}
_FIELDS = {f.name: f for f in fields(Config)}
SEED_KEYS = ("seed", "data_seed", "noise_seed")
MAX_SEED = 2**32 - 1  # NumPy's legacy seeding and torch's generators take 32 / 64 bits


def _coerce(key: str, value: Any) -> Any:
    """Check ``value`` against the declared type of ``key`` (ints accepted for floats)."""
    kind = _FIELDS[key].type
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "float":
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key {key!r}: value must be finite, got {value!r}")
            return float(value)
    elif kind == "str":
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key {key!r} expects {kind}, got {type(value).__name__} {value!r}")


def validate(config: Config) -> Config:
    """Check every key's type, choice set and range; return the config."""
    for key in _FIELDS:
        setattr(config, key, _coerce(key, getattr(config, key)))
    for key, choices in _CHOICES.items():
        if getattr(config, key) not in choices:
            raise ConfigError(
                f"config key {key!r}: {getattr(config, key)!r} is not one of {', '.join(choices)}"
            )
    for key, (low, high) in _RANGES.items():
        value = getattr(config, key)
        if value < low or (high is not None and value > high):
            bound = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise ConfigError(f"config key {key!r}: {value!r} is out of range {bound}")
    for key, field in _FIELDS.items():  # text reaches the OS as paths: no NUL inside
        if field.type == "str" and "\x00" in getattr(config, key):
            raise ConfigError(f"config key {key!r}: {getattr(config, key)!r} holds a NUL "
                              "character")
    for key in SEED_KEYS:
        if getattr(config, key) > MAX_SEED:
            raise ConfigError(f"config key {key!r}: {getattr(config, key)!r} is out of range "
                              f"[0, {MAX_SEED}] (seeds are 32-bit)")
    if not config.name or "/" in config.name or config.name in (".", ".."):
        raise ConfigError(f"config key 'name': {config.name!r} is not a valid run name")
    if config.noise in ("mislabel", "flip", "instance") and config.noise_rate <= 0:
        raise ConfigError(f"config key 'noise_rate' must be > 0 for noise {config.noise!r}")
    if config.noise in ("none", "missing") and config.noise_rate != 0:
        raise ConfigError(f"config key 'noise_rate': noise {config.noise!r} takes no rate "
                          f"(got {config.noise_rate!r}); remove it or choose mislabel / flip")
    if config.protocol == "paper":  # resolved here, so config.yaml records what ran
        config.mixup = config.method != "bce"
    elif config.method in MIXING_METHODS and not config.mixup:
        raise ConfigError(f"config key 'mixup': method {config.method!r} mixes by definition; "
                          f"use method=bce (or another method) for training without Mixup")
    if config.method == "t_estimator" and config.warmup_epochs < 1:
        raise ConfigError("config key 'warmup_epochs': t_estimator estimates its transition "
                          "matrices at the end of warm-up, so it needs warmup_epochs >= 1")
    if config.pretrained == "auto":  # resolved here, so config.yaml records what ran
        if config.arch != "small_cnn":
            config.pretrained = "imagenet"
        else:
            config.pretrained = "digits" if config.dataset == "digits-lt" else "none"
    if config.pretrained == "digits" and (config.dataset != "digits-lt"
                                          or config.arch != "small_cnn"):
        raise ConfigError(
            f"config key 'pretrained': the digits backbone is a 1-channel small_cnn pretrained "
            f"on digits-lt, not usable for dataset {config.dataset!r} with arch "
            f"{config.arch!r}; set pretrained=imagenet (resnets) or pretrained=none"
        )
    if config.shot_many and config.shot_few and config.shot_few > config.shot_many:
        raise ConfigError(f"config key 'shot_few': {config.shot_few} exceeds shot_many "
                          f"{config.shot_many}")
    if config.voc_classes and config.voc_classes_file:
        raise ConfigError("config keys 'voc_classes' and 'voc_classes_file' exclude each other")
    if config.dataset != "digits-lt" and not config.data_root:
        raise ConfigError(f"config key 'data_root' is required for dataset {config.dataset!r}")
    for key in ("data_root", "voc_classes_file", "weights_path"):  # stored resolved, so a
        value = getattr(config, key)  # run resumes from any working directory
        if value:
            setattr(config, key, str(Path(value).expanduser().resolve()))
    return config


def describe_keys() -> list[tuple[str, Any, str]]:
    """(key, default, comment) for every Config key in declaration order: the comments
    beside and above each field in this file (what ``bmx config --list`` prints)."""
    import inspect
    import re

    comments: dict[str, str] = {}
    above: list[str] = []
    group = ""  # a comment above several fields without their own describes them all
    for line in inspect.getsource(Config).splitlines():
        text = line.strip()
        if text.startswith("# ---"):  # section headers
            above, group = [], ""
        elif text.startswith("#"):
            above.append(text.lstrip("# "))
        elif match := re.match(r"(\w+): [\w\[\], |]+ = .*?(?:#\s*(.*))?$", text):
            if above:
                group = " ".join(above)
            comments[match.group(1)] = (" ".join([*above, match.group(2) or ""]).strip()
                                        or group)
            above = []
        else:
            above, group = [], ""
    defaults = Config()
    return [(f.name, getattr(defaults, f.name), comments.get(f.name, "")) for f in fields(Config)]


def result_differences(old: Config, new: Config) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every key outside BOOKKEEPING_KEYS that differs."""
    return [(f.name, getattr(old, f.name), getattr(new, f.name)) for f in fields(Config)
            if f.name not in BOOKKEEPING_KEYS and getattr(old, f.name) != getattr(new, f.name)]


def parse_override(item: str) -> tuple[str, Any]:
    """Parse ``key=value``; the value is read as YAML (so 0.4, true, 'text' work)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key not in _FIELDS:
        raise ConfigError(f"unknown config key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if _FIELDS[key].type == "str" and value is not None and not isinstance(value, str):
        value = raw  # e.g. name=2024 stays a string
    return key, value


def from_dict(values: dict[str, Any], *, source: str = "config") -> Config:
    """Build and validate a Config from a mapping, rejecting unknown keys."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values")
    unknown = [k for k in values if k not in _FIELDS]
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r} in {source}")
    config = validate(Config(**values))
    if "mixup" in values and values["mixup"] != config.mixup:  # the paper protocol decided
        raise ConfigError(
            f"config key 'mixup': protocol 'paper' trains {config.method!r} with "
            f"mixup={config.mixup} (SPEC §4); set protocol=custom to choose mixup yourself"
        )
    return config


#: Bounds on a YAML file bmx reads: its size, and its node count with every alias
#: expanded (an "alias bomb" of 450 bytes expands to billions of nodes).
MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last
    silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"key {key!r} is given twice (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(node, path: Path) -> int:
    """Node count of ``node`` with aliases expanded (memoised over shared nodes)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(item) -> int:
        if id(item) in sizes:
            return sizes[id(item)]
        if id(item) in active:
            raise ConfigError(f"config file {path} holds a recursive alias")
        active.add(id(item))
        children = item.value if isinstance(item.value, list) else []
        flat = [c for pair in children for c in (pair if isinstance(pair, tuple) else (pair,))]
        total = 1 + sum(size(child) for child in flat)
        active.discard(id(item))
        sizes[id(item)] = total
        if total > MAX_YAML_NODES:
            raise ConfigError(f"config file {path} expands to more than {MAX_YAML_NODES:,} "
                              "YAML nodes (aliases included); a config is far smaller")
        return total

    return size(node)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors naming the file. Refused: a path that is
    not a regular file (directory, FIFO, device), files over MAX_YAML_BYTES or expanding
    to more than MAX_YAML_NODES nodes, a key given twice."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory, not a YAML file")
    if path.exists() and not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file (a FIFO, device or "
                          "socket); give a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(f"config file {path} is larger than {MAX_YAML_BYTES >> 20} MB; "
                              "a config is a few kB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read ({err.__class__.__name__})") \
            from None
    if not text.strip():
        raise ConfigError(f"config file {path} is empty (a config holds key: value lines)")
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _expanded_nodes(node, path)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except ConfigError as err:
        raise ConfigError(f"config file {path}: {err}" if str(path) not in str(err)
                          else str(err)) from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | tuple = ()) -> Config:
    """Load YAML (optional), apply ``key=value`` overrides, validate."""
    values = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "overrides"
    unknown = [k for k in values if k not in _FIELDS]
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r} in {source}")
    for item in overrides:
        key, value = parse_override(item)
        values[key] = value
    return from_dict(values, source=source)
