"""Run configuration: one flat dataclass of commented literals (nanoGPT style).

The keys every run reads are the commented literals of ``CoreConfig``; the keys only one
method reads (``focal_gamma``, BalanceMix's switches, ...) are declared, with default,
range and comment, by that method's class (``bmxlib.methods``, ``Method.hyperparameters``)
and appended to ``Config``'s fields from the method registry, as is the list of methods.

Loaded from YAML and overridden by ``key=value`` arguments. Every key is validated:
unknown keys, wrong types and out-of-range values raise ``ConfigError`` with a one-line
message naming the key (the CLI turns it into exit status 2, docs/method.md §9).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

import yaml

from .data import DATASETS, GENERATED_DATASETS
from .data.generated import MAX_SEED
from .data.presets import IMPLEMENTATIONS as AUGMENTATIONS
from .methods import REGISTRY, method_hyperparameters
from .noise import KINDS as NOISE_KINDS

#: every registered method, sorted (each class registers itself, ``bmxlib.methods``)
METHODS = tuple(sorted(REGISTRY))
#: Methods that mix by definition (docs/method.md §1.3): "bce + mixup" and BalanceMix.
MIXING_METHODS = tuple(name for name, cls in REGISTRY.items() if cls.mixes_by_definition)
PROTOCOLS = ("paper", "custom")


class ConfigError(ValueError):
    """A bad configuration key or value (one line, names the key)."""


# bmxlib.models.SmallCNN's three 2x max-pools leave nothing of a smaller side
# (tests/test_models.py checks the bound against the network)
SMALL_CNN_MIN_SIZE = 8

#: Keys that do not change what a run computes; they may differ between sessions (a
#: resumed run, a restarted sweep). Every other key must match for results to be the same.
BOOKKEEPING_KEYS = ("name", "out_dir", "progress", "num_workers", "tensorboard")


@dataclass
class CoreConfig:
    """The keys every run reads; ``Config`` adds those the methods declare."""

    # --- run ---
    name: str = "run"  # run directory name under out_dir
    out_dir: str = "runs"  # parent folder of run directories
    seed: int = 0  # training seed (model init, samplers, augmentation, λ draws)
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for torch (0 = torch's default)
    # --- data ---
    dataset: str = "digits-lt"  # digits-lt | glyphs-coco | coco | voc | manifest
    data_root: str = ""  # folder of coco / voc / manifest data
    data_seed: int = 0  # digits-lt / glyphs-coco generation seed
    n_train: int = 8000  # digits-lt / glyphs-coco training canvases (glyphs-coco's own: 2000)
    n_test: int = 3000  # digits-lt / glyphs-coco test canvases (glyphs-coco's own: 2000)
    max_images: int = 0  # cap on images per split for real datasets (0 = all)
    image_size: int = 0  # square input side (0 = dataset default: 32 digits, 448 photos)
    # DataLoader worker processes; -1 = auto: min(8, CPU count) on CUDA for images read
    # from files, 0 on the CPU and for in-memory datasets (digits-lt, glyphs-coco)
    num_workers: int = -1
    shot_many: int = 0  # many-shot: more than this many training positives (0 = dataset's)
    shot_few: int = 0  # few-shot: fewer than this many (0 = dataset's; paper: 10,000 / 1,000)
    coco_drop_empty: bool = True  # COCO: drop images without annotations (ASL's loader does)
    coco_year: int = 2014  # COCO: 2014 or 2017 (annotations/instances_{train,val}<year>.json)
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
    # --- noise (docs/method.md §2), injected once into the training labels ---
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
    # auto | none | digits | imagenet; auto = digits for small_cnn on digits-lt (docs/method.md §5),
    # imagenet for resnets (the paper's backbone), none for small_cnn on other data
    pretrained: str = "auto"
    weights_path: str = ""  # local ImageNet weights file for resnets
    # --- optimisation (paper: SGD 0.9, wd 1e-4, lr 0.01 cosine) ---
    epochs: int = 12  # training epochs
    batch_size: int = 64  # instances per step (per sampler)
    lr: float = 0.01  # initial learning rate, cosine-annealed per step to 0
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 1e-4  # SGD weight decay
    amp: bool = True  # bf16 autocast on CUDA (on the CPU only with amp_cpu)
    # bf16 autocast of the training step on the CPU as well: faster where the CPU has AMX /
    # AVX-512 BF16 (docs/benchmarks.md), slower where it does not; changes float rounding
    amp_cpu: bool = False
    channels_last: bool = True  # channels_last memory format for conv nets
    # --- augmentation (RandAugment for all methods) ---
    randaugment: bool = True  # RandAugment on training images
    randaugment_ops: int = 2  # RandAugment number of ops
    randaugment_magnitude: int = 9  # RandAugment magnitude (0..30)
    hflip: bool = False  # random horizontal flip (photos only)
    # batched: one tensor op per op kind and batch (bmxlib.data.augment); grouped: the
    # torchvision-stream-identical implementation that runs before 2026-12-03 used
    augmentation: str = "batched"
    # --- method ---
    method: str = "bce"  # one of METHODS
    # paper: the paper's protocol (docs/method.md §4), Mixup for every method but bce;
    # custom: the `mixup` key decides (mixup and balancemix always mix)
    protocol: str = "paper"
    # Mixup (docs/method.md §1.3) on top of the method's own rule (protocol: custom)
    mixup: bool = False
    mix_alpha: float = 4.0  # Beta(α, α) for minority-augmented mixing (docs/method.md §1.3)
    per_sample_lambda: bool = False  # one λ per instance instead of per batch
    # epochs before label management (BalanceMix, docs/method.md §1.4) or before the T-estimator
    # estimates its transition matrices
    warmup_epochs: int = 3
    # the methods' own keys (BalanceMix's switches, focal_gamma, asl_*, ll_delta_rel, t_*)
    # are declared by each method class: bmxlib/methods/<module>.py, ``hyperparameters``
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


#: the methods' own keys (``Method.hyperparameters``): default, range, comment
METHOD_KEYS = method_hyperparameters()

Config = make_dataclass(
    "Config",
    [(key, type(h.default).__name__, field(default=h.default)) for key, h in METHOD_KEYS.items()],
    bases=(CoreConfig,),
)
Config.__module__ = __name__  # so a pickled config (sweep workers) finds its class
Config.__doc__ = ("A run's configuration: ``CoreConfig``'s keys, then the keys each method "
                  "declares (``METHOD_KEYS``), in registry order.")


# value constraints: key -> (predicate, description)
_CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "dataset": DATASETS,
    "noise": NOISE_KINDS,
    "arch": ("small_cnn", "resnet18", "resnet50", "resnet101"),
    "pretrained": ("auto", "none", "digits", "glyphs", "imagenet"),
    "method": METHODS,
    "protocol": PROTOCOLS,
    "head": ("linear", "decoder"),
    "augmentation": AUGMENTATIONS,
    "coco_year": (2014, 2017),
    "voc_year": (2007, 2012),
    **{key: h.choices for key, h in METHOD_KEYS.items() if h.choices is not None},
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
    "diagnostics_every": (0, None),
    "eval_every": (1, None),
    **{key: (h.low, h.high) for key, h in METHOD_KEYS.items()
       if h.low is not None or h.high is not None},
}
_FIELDS = {f.name: f for f in fields(Config)}
SEED_KEYS = ("seed", "data_seed", "noise_seed")


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
                f"config key {key!r}: {getattr(config, key)!r} is not one of "
                f"{', '.join(map(str, choices))}"
            )
    for key, (low, high) in _RANGES.items():
        value = getattr(config, key)
        if (low is not None and value < low) or (high is not None and value > high):
            bound = (f"[{low}, {high}]" if low is not None and high is not None
                     else f">= {low}" if low is not None else f"<= {high}")
            raise ConfigError(f"config key {key!r}: {value!r} is out of range {bound}")
    for key, spec in _FIELDS.items():  # text reaches the OS as paths: no NUL inside
        if spec.type == "str" and "\x00" in getattr(config, key):
            raise ConfigError(f"config key {key!r}: {getattr(config, key)!r} holds a NUL "
                              "character")
    for key in SEED_KEYS:
        if getattr(config, key) > MAX_SEED:
            raise ConfigError(f"config key {key!r}: {getattr(config, key)!r} is out of range "
                              f"[0, {MAX_SEED}] (seeds are 32-bit)")
    if not is_valid_name(config.name):
        raise ConfigError(f"config key 'name': {config.name!r} is not a valid run name")
    if not config.out_dir.strip():
        raise ConfigError("config key 'out_dir' is empty; name a folder ('.' for the "
                          "current one)")
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
    problem = REGISTRY[config.method].config_problem(config)
    if problem:
        raise ConfigError(problem)
    if config.pretrained == "auto":  # resolved here, so config.yaml records what ran
        if config.arch != "small_cnn":
            config.pretrained = "imagenet"
        else:
            config.pretrained = {"digits-lt": "digits", "glyphs-coco": "glyphs"}.get(
                config.dataset, "none")
    # each small-CNN backbone was pretrained on its own dataset's sources
    backbone_dataset = {"digits": "digits-lt", "glyphs": "glyphs-coco"}.get(config.pretrained)
    if backbone_dataset and (config.dataset != backbone_dataset
                             or config.arch != "small_cnn"):
        raise ConfigError(
            f"config key 'pretrained': the {config.pretrained} backbone is a 1-channel "
            f"small_cnn pretrained on {backbone_dataset}, not usable for dataset "
            f"{config.dataset!r} with arch {config.arch!r}; set pretrained=imagenet (resnets) "
            f"or pretrained=none"
        )
    if config.arch == "small_cnn" and 0 < config.image_size < SMALL_CNN_MIN_SIZE:
        raise ConfigError(f"config key 'image_size': {config.image_size} is below "
                          f"{SMALL_CNN_MIN_SIZE}, the smallest side small_cnn can pool")
    if config.shot_many and config.shot_few and config.shot_few > config.shot_many:
        raise ConfigError(f"config key 'shot_few': {config.shot_few} exceeds shot_many "
                          f"{config.shot_many}")
    if config.voc_classes and config.voc_classes_file:
        raise ConfigError("config keys 'voc_classes' and 'voc_classes_file' exclude each other")
    if config.dataset not in GENERATED_DATASETS and not config.data_root:
        raise ConfigError(f"config key 'data_root' is required for dataset {config.dataset!r}")
    config.out_dir = str(Path(config.out_dir).expanduser())  # `~/runs`, not a folder `~`
    for key in ("data_root", "voc_classes_file", "weights_path"):  # stored resolved, so a
        value = getattr(config, key)  # run resumes from any working directory
        if value:
            setattr(config, key, str(Path(value).expanduser().resolve()))
    return config


def check_data_root(config: Config, *, point: str = "") -> None:
    """Raise ConfigError unless the data_root of a coco / voc / manifest config is a folder
    (checked where a run is about to start, not in validation: a config may be read where
    its data is not)."""
    if config.dataset not in GENERATED_DATASETS and not Path(config.data_root).is_dir():
        raise ConfigError(f"{f'point {point}: ' if point else ''}config key 'data_root': "
                          f"folder not found: {config.data_root}")


def is_valid_name(name: Any) -> bool:
    """A run or sweep name: one non-empty folder name, not '.' or '..', without control
    characters (a tab or newline in a folder name breaks every table and shell line)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in name))


def describe_keys() -> list[tuple[str, Any, str]]:
    """(key, default, comment) for every Config key in declaration order: for
    ``CoreConfig``'s keys the comments beside and above each field in this file, for the
    methods' keys the comment each method declares (what ``bmx config --list`` prints)."""
    import inspect
    import re

    comments: dict[str, str] = {}
    above: list[str] = []
    group = ""  # a comment above several fields without their own describes them all
    for line in inspect.getsource(CoreConfig).splitlines():
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
    comments.update({key: h.comment for key, h in METHOD_KEYS.items()})
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
            f"mixup={config.mixup} (docs/method.md §4); set protocol=custom to choose mixup "
            "yourself"
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
    for item in overrides:  # in order: a later override of a key wins
        key, value = parse_override(item)
        values[key] = value
    return from_dict(values, source=source)
