"""One dataclass tree for every setting, loadable from YAML and overridable from the command line.

Every field carries its help text in ``metadata["help"]``; the CLI turns each field into a flag
(``--data.height 256``) so ``--help`` documents every option, and a few common ones get short aliases
(``--dataset``, ``--epochs`` ...). The config actually used is saved beside every checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

# The synthetic benchmark's default difficulty, for training (data.synth_difficulty) and `bireid synth` alike.
SYNTH_DIFFICULTY = 0.2


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message names the key or the file."""


def opt(default: Any, help: str, choices: tuple | None = None, registry: str | None = None, **kw) -> Any:
    """A dataclass field with its CLI help attached, and its allowed values: a fixed tuple (``choices``) or the
    names of a registry (``registry``: "method", "backbone", "dataset"; checked by :func:`check_names`)."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if registry is not None:
        meta["registry"] = registry
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass
class TaskConfig:
    name: str = opt("reid", "what the model learns: reid (person re-identification, the default), classification "
                    "(images, top-1/top-5) or pointcloud (point-cloud classification); each task brings its data "
                    "sets, model family, loss, metric and its own defaults for the keys below (docs/tasks.md)",
                    registry="task")


@dataclass
class DataConfig:
    dataset: str = opt("synthetic", "data set name ('custom' reads a CSV list; 'synthetic' generates the built-in "
                       "benchmark on first use)", registry="dataset")
    root: str = opt("", "data set folder (for 'synthetic': where it is generated; default runs/_data/synthetic)")
    eval_dataset: str = opt("", "evaluate on another data set's query/gallery (e.g. train on mars, test on "
                            "market1501); empty = the training data set", registry="dataset")
    eval_root: str = opt("", "folder of eval_dataset")
    cuhk03_split: str = opt("detected", "CUHK03-NP variant", choices=("detected", "labeled"))
    height: int = opt(128, "input height in pixels (must be divisible by 32)")
    width: int = opt(64, "input width in pixels (must be divisible by 16)")
    num_identities: int = opt(8, "P: identities per training batch (P x K sampler)")
    num_instances: int = opt(4, "K: images per identity in a training batch")
    test_batch_size: int = opt(128, "batch size for feature extraction at evaluation")
    workers: int = opt(2, "data-loading worker processes (0 = load in the main process)")
    bad_images: str = opt("skip", "what to do with corrupt or unreadable images: skip them (with a warning "
                          "count) or stop with an error naming the file", choices=("skip", "error"))
    flip_prob: float = opt(0.5, "random horizontal flip probability (training)")
    pad: int = opt(10, "padding before the random crop (training); 0 disables pad+crop")
    erasing_prob: float = opt(0.5, "random erasing probability (training); 0 disables it")
    synth_train_ids: int = opt(120, "synthetic set: training identities")
    synth_test_ids: int = opt(120, "synthetic set: test identities")
    synth_seed: int = opt(0, "synthetic set: generator seed")
    synth_difficulty: float = opt(SYNTH_DIFFICULTY, "synthetic set: 0 = easy (distinct people, mild cameras) .. "
                                  "1 = hard")
    synth_scenes: list = opt([300, 100], "detection: synthetic pedestrian scenes [train, test] (scene size: "
                             "data.height x data.width)")
    batch_size: int = opt(64, "classification / point clouds: training batch size (shuffled; re-ID uses P x K)")
    num_points: int = opt(1024, "point clouds: points per cloud (subsampled, or drawn with replacement when a cloud "
                          "has fewer; meshes are sampled to this many)")
    up_axis: str = opt("z", "point clouds: the up axis (ModelNet: z)", choices=("x", "y", "z"))
    rotate: bool = opt(True, "point clouds: random rotation about the up axis (training)")
    point_scale: list = opt([0.8, 1.25], "point clouds: random isotropic scale range [low, high] (training; [1, 1] "
                            "disables it)")
    point_jitter: float = opt(0.01, "point clouds: std of the Gaussian jitter added to every point (training; clipped "
                              "at 5 std; 0 disables it)")


@dataclass
class ModelConfig:
    arch: str = opt("resnet18", "backbone architecture", registry="backbone")
    method: str = opt("real", "binarization method (real = float; see docs/methods.md)", registry="method")
    last_stride: int = opt(1, "stride of the last stage (1 keeps a larger final feature map, as in re-ID)",
                           choices=(1, 2))
    width: int = opt(64, "network width as the first-stage channels of a standard ResNet-18 (64 = every "
                     "architecture's standard size; ResNet-20 has width/4 first-stage channels, PointNet width)")
    stem: str = opt("imagenet", "image backbones: imagenet (7x7 stride-2 conv + max pool) or cifar (3x3 stride-1 "
                    "conv, no pool, for 32x32 inputs)", choices=("imagenet", "cifar"))
    aggregation: str = opt("ema-max", "point clouds: how per-point features become the global one: max, or "
                           "ema-max (BiPointNet's entropy-maximising max: max - delta, delta chosen so a 1-bit layer "
                           "after it sees balanced signs)", choices=("max", "ema-max"))
    dropout: float = opt(0.0, "classification / point clouds: dropout before the final classifier")
    head: str = opt("bnneck", "re-ID head: bnneck (pool, BN, classifier) or fc2 (pool, FC, BN, classifier: the "
                    "paper's 'FC, FC' head)", choices=("bnneck", "fc2"))
    downsample: str = opt("auto", "binary models: the 1x1 downsample convs binary (BiRe-ID's accounting) or real "
                          "with average pooling (Bi-Real's); auto = the method's own choice (bireal: real, others: "
                          "binary)", choices=("auto", "binary", "real"))
    branch_gamma: float = opt(0.1, "binary models: initial BatchNorm gamma after each binary conv inside the residual "
                              "blocks; small values let the real shortcuts carry the stem's features through the "
                              "random network, which a random 1-bit network otherwise scrambles (1.0 = PyTorch's "
                              "default)")
    init_from: str = opt("", "initialise from a checkpoint of the same architecture (e.g. a trained real "
                         "model for a binary one); mismatching keys are reported")
    teacher: str = opt("", "reactnet: a real-valued teacher checkpoint for the distribution (KL) loss")
    two_step: bool = opt(False, "binary models: train with binary activations only for the first half of the "
                         "epochs, then binarize the weights too (ReActNet's two-step schedule)")


@dataclass
class LossConfig:
    label_smoothing: float = opt(0.1, "label smoothing of the identity cross-entropy")
    triplet: bool = opt(True, "add the batch-hard triplet loss on the pre-BN feature")
    margin: float = opt(0.3, "triplet margin (<= 0 uses the soft margin log(1 + exp(d_ap - d_an)))")
    triplet_weight: float = opt(1.0, "weight of the triplet loss")
    distill_weight: float = opt(1.0, "weight of the distribution (KL) loss when a teacher is given")


@dataclass
class OptimConfig:
    optimizer: str = opt("adam", "optimizer", choices=("adam", "sgd"))
    lr: float = opt(1e-3, "base learning rate (1e-3 suits training from random init; the strong baseline's "
                    "3.5e-4 assumes ImageNet weights)")
    weight_decay: float = opt(5e-4, "weight decay (binary latent weights use binary_weight_decay)")
    binary_weight_decay: float = opt(0.0, "weight decay on the latent weights of binary convs")
    momentum: float = opt(0.9, "SGD momentum")
    scheduler: str = opt("cosine", "learning-rate schedule after warmup", choices=("cosine", "step"))
    milestones: list = opt([40, 70], "step schedule: epochs at which the rate is multiplied by gamma")
    gamma: float = opt(0.1, "step schedule factor")
    warmup_epochs: int = opt(2, "linear warmup epochs (from warmup_factor x lr)")
    warmup_factor: float = opt(0.1, "starting fraction of the learning rate during warmup")
    alpha_lr_mult: float = opt(1.0, "learning-rate multiplier for scale factors alpha (binary convs)")
    other_lr_mult: float = opt(1.0, "learning-rate multiplier for BN, PReLU and other non-weight parameters")
    grad_clip: float = opt(0.0, "clip the gradient norm to this value (0 = off)")


@dataclass
class GALConfig:
    kr_gal: bool = opt(True, "bireid: kernel refinement (KR-GAL) on every binary conv")
    fr_gal: bool = opt(True, "bireid: feature refinement (FR-GAL) on the supervised stages")
    kr_lambda: float = opt(1e-5, "KR-GAL: weight lambda of lambda/2 ||w - alpha*sign(w)||^2")
    kr_adv_weight: float = opt(1e-4, "KR-GAL: weight of the adversarial (generator) term")
    alpha_mode: str = opt("learned", "KR-GAL scale factor: a learned per-channel vector or an attention "
                          "module computing it from kernel statistics", choices=("learned", "attention"))
    fr_mu: float = opt(1.0, "FR-GAL: weight mu of mu/2 mean((a_L - a*_H)^2) (1.0 with the pooled comparison: ahead "
                        "of no GAL on average on the CPU proxy, not on every seed; docs/methods.md)")
    fr_adv_weight: float = opt(1e-3, "FR-GAL: weight of the adversarial (generator) term")
    fr_stages: list = opt([1, 2, 3], "FR-GAL: supervised low-level stages (1-based; 4 is the high level)")
    disc_lr: float = opt(1e-4, "learning rate of the discriminators")
    disc_hidden: int = opt(64, "hidden width of the discriminator MLPs")
    disc_blocks: int = opt(2, "Linear + LeakyReLU blocks per discriminator")
    disc_noise: float = opt(0.0, "instance noise: std of Gaussian noise added to every discriminator input (real "
                            "and fake, in D's step and the generator term), relative to the samples' scale; > 0 "
                            "keeps a discriminator from separating the two sides perfectly (0 = off)")
    kr_filters_per_layer: int = opt(32, "KR-GAL: filters per layer sampled for the discriminator each step")
    kr_grad: str = opt("paper", "KR-GAL gradients: 'paper' = the printed forms (dL_MSE/dw = lambda (w - alpha b) "
                       "alpha; the adversarial gradient reaches w through the real side, alpha through the fake "
                       "side with b held fixed), 'autograd' = plain autograd of the losses (w only through the fake "
                       "side's ApproxSign)", choices=("autograd", "paper"))
    fr_compare: str = opt("pooled", "FR-GAL's MSE: 'upsampled' = a_L against the nearest-upsampled a*_H at a_L's "
                          "size; 'pooled' = a_L average-pooled to a_H's grid against a*_H",
                          choices=("upsampled", "pooled"))
    disc_order: str = opt("before", "when the discriminators step: 'before' the model step on the same batch (the "
                          "paper's Algorithm 11: kernel D, then feature D, then w, alpha and the rest) or 'after' it",
                          choices=("before", "after"))
    disc_target_acc: float = opt(0.75, "adaptive instance noise: the noise std is raised while the discriminator's "
                                 "accuracy is above this target and lowered while below (disc_noise is its start "
                                 "and floor); 0 = fixed noise")
    fr_grid: list = opt([4, 2], "FR-GAL: features are average-pooled to this (h, w) grid for the discriminator")


@dataclass
class TrainConfig:
    epochs: int = opt(40, "training epochs")
    seed: int = opt(0, "random seed (Python, NumPy, torch, the sampler)")
    device: str = opt("cpu", "device: cpu, cuda, cuda:N")
    amp: bool = opt(True, "mixed precision on CUDA (ignored on CPU)")
    output_dir: str = opt("runs/train", "where logs, curves and checkpoints go")
    resume: bool = opt(False, "continue from output_dir/last checkpoint exactly where it stopped")
    eval_every: int = opt(0, "evaluate every N epochs (0 = only at the end)")
    checkpoint_every: int = opt(1, "write the resumable checkpoint every N epochs")
    log_format: str = opt("jsonl", "per-epoch log format", choices=("jsonl", "csv"))
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    max_steps_per_epoch: int = opt(0, "cap iterations per epoch (0 = a full pass over the training set)")
    sync_bn: bool = opt(False, "distributed: synchronise BatchNorm statistics across ranks")
    progress: bool = opt(True, "show progress bars")


@dataclass
class EvalConfig:
    metric: str = opt("euclidean", "distance", choices=("euclidean", "cosine"))
    rerank: bool = opt(False, "k-reciprocal re-ranking")
    flip: bool = opt(False, "average features of the image and its horizontal flip")
    max_rank: int = opt(50, "longest CMC curve reported")


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    gal: GALConfig = field(default_factory=GALConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())


# Short aliases for the flags people type most; each maps to a dotted key.
ALIASES: dict[str, str] = {
    "task": "task.name",
    "dataset": "data.dataset",
    "data-root": "data.root",
    "height": "data.height",
    "width": "data.width",
    "workers": "data.workers",
    "arch": "model.arch",
    "method": "model.method",
    "last-stride": "model.last_stride",
    "epochs": "train.epochs",
    "lr": "optim.lr",
    "seed": "train.seed",
    "device": "train.device",
    "output-dir": "train.output_dir",
    "resume": "train.resume",
    "kr-gal": "gal.kr_gal",
    "fr-gal": "gal.fr_gal",
    "teacher": "model.teacher",
    "init-from": "model.init_from",
}


def _field_type(cls: type, f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[f.name]


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Convert a YAML or CLI value to the field's type, with an error naming the key."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        typ = [a for a in typing.get_args(typ) if a is not type(None)][0]
    if value is None and typ is not str:
        raise ConfigError(f"config key '{key}' has no value (null); expected a {getattr(typ, '__name__', typ)}")
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if typ is list or typing.get_origin(typ) is list:
            if isinstance(value, str):
                value = yaml.safe_load(value) if value.strip().startswith("[") else [
                    yaml.safe_load(v) for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                value = [value]
            return list(value)
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"not an integer: {value!r}")
            if isinstance(value, bool):
                raise ValueError(f"not an integer: {value!r}")
            return int(value)
        if typ is float:
            return float(value)
        if typ is str:
            return "" if value is None else str(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key '{key}': {e}") from None
    return value


def _validate_choice(cls: type, f: dataclasses.Field, value: Any, key: str) -> None:
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {', '.join(map(str, choices))}")


def set_key(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key (``data.height``) with type conversion and validation."""
    parts = key.split(".")
    obj: Any = cfg
    for p in parts[:-1]:
        if not is_dataclass(obj) or not hasattr(obj, p):
            raise ConfigError(f"unknown config section '{p}' in '{key}'")
        obj = getattr(obj, p)
    names = {f.name: f for f in fields(obj)}
    if parts[-1] not in names:
        close = difflib.get_close_matches(parts[-1], list(names), n=1)
        hint = f"did you mean '{'.'.join(parts[:-1] + close)}'? " if close else ""
        raise ConfigError(f"unknown config key '{key}' ({hint}known in this section: {', '.join(names)})")
    f = names[parts[-1]]
    if is_dataclass(getattr(obj, f.name)):
        # A section given a plain value (``data: 5`` in YAML, ``--set data=5``) would replace the whole section.
        raise ConfigError(f"config key '{key}' is a section, not a value: set its keys instead (e.g. "
                          f"{key}.{fields(getattr(obj, f.name))[0].name})")
    v = _coerce(value, _field_type(type(obj), f), key)
    _validate_choice(type(obj), f, v, key)
    setattr(obj, f.name, v)


def _apply_dict(cfg: Config, d: dict, prefix: str = "") -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _apply_dict(cfg, v, key + ".")
        else:
            set_key(cfg, key, v)


# (task name) -> {dotted key: value}: the settings a task starts from (``bireid.tasks.task_defaults``). The tasks
# live above this module, so whoever builds a config passes their defaults in.
TaskDefaults = Callable[[str], Mapping[str, Any]]
DEFAULT_TASK = "reid"


def new_config(task: str = DEFAULT_TASK, defaults: TaskDefaults | None = None) -> Config:
    """A config for ``task``: the dataclass defaults, then the task's own defaults (``defaults(task)``)."""
    cfg = Config()
    set_key(cfg, "task.name", task)
    if defaults is not None:
        for key, value in defaults(task).items():
            set_key(cfg, key, value)
    return cfg


def _task_in(d: Mapping) -> str:
    """The task a config mapping names (``task: {name: ...}``), else the default task."""
    sec = d.get("task") if isinstance(d, Mapping) else None
    name = sec.get("name") if isinstance(sec, Mapping) else None
    return str(name) if name else DEFAULT_TASK


def from_dict(d: dict, defaults: TaskDefaults | None = None) -> Config:
    """The config a (possibly partial) mapping describes: the task's defaults, then the mapping's values."""
    cfg = new_config(_task_in(d or {}), defaults)
    _apply_dict(cfg, d or {})
    validate(cfg)
    return cfg


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file ({} for an empty file); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {p} is not a UTF-8 text file (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    if d is not None and not isinstance(d, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections, got {type(d).__name__}")
    return d or {}


def load_yaml(path: str | Path, defaults: TaskDefaults | None = None) -> Config:
    d = read_yaml(path)
    try:
        return from_dict(d, defaults)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def validate(cfg: Config) -> None:
    """Cross-field checks, each naming the offending key."""
    d, m, t, o = cfg.data, cfg.model, cfg.train, cfg.optim
    for key, val in (("data.height", d.height), ("data.width", d.width), ("data.num_identities",
                     d.num_identities), ("data.num_instances", d.num_instances), ("data.test_batch_size",
                     d.test_batch_size), ("train.epochs", t.epochs), ("model.width", m.width),
                     ("train.checkpoint_every", t.checkpoint_every), ("eval.max_rank", cfg.eval.max_rank),
                     ("data.batch_size", d.batch_size), ("data.num_points", d.num_points)):
        if val <= 0:
            raise ConfigError(f"config key '{key}' must be positive, got {val}")
    for key, val in (("data.workers", d.workers), ("data.pad", d.pad), ("train.eval_every", t.eval_every),
                     ("train.max_steps_per_epoch", t.max_steps_per_epoch), ("optim.warmup_epochs", o.warmup_epochs)):
        if val < 0:
            raise ConfigError(f"config key '{key}' must be >= 0, got {val}")
    # The ImageNet stem and stages downsample by 32 (16 with last_stride 1); the CIFAR stem takes any size.
    for key, val, div in (("data.height", d.height, 32), ("data.width", d.width, 16)) if m.stem == "imagenet" else ():
        if val % div:
            raise ConfigError(f"config key '{key}' = {val} must be divisible by {div}: the input size (height x "
                              "width) must have height divisible by 32 and width by 16 (the backbone downsamples "
                              "by 32, or 16 with last_stride=1)")
    if o.lr <= 0:
        raise ConfigError(f"config key 'optim.lr' must be positive, got {o.lr}")
    if not 0 <= d.flip_prob <= 1 or not 0 <= d.erasing_prob <= 1:
        raise ConfigError("data.flip_prob and data.erasing_prob must lie in [0, 1]")
    if len(d.point_scale) != 2 or not all(isinstance(v, (int, float)) for v in d.point_scale) \
            or not 0 < d.point_scale[0] <= d.point_scale[1]:
        raise ConfigError(f"data.point_scale must be [low, high] with 0 < low <= high, got {d.point_scale}")
    if d.point_jitter < 0:
        raise ConfigError(f"data.point_jitter must be >= 0, got {d.point_jitter}")
    if not 0 <= m.dropout < 1:
        raise ConfigError(f"model.dropout must lie in [0, 1), got {m.dropout}")
    if any(s not in (1, 2, 3) for s in cfg.gal.fr_stages):
        raise ConfigError(f"gal.fr_stages must be a subset of 1, 2, 3, got {cfg.gal.fr_stages}")
    if not 0 <= cfg.gal.disc_target_acc < 1:
        raise ConfigError(f"gal.disc_target_acc must lie in [0, 1) (0 = fixed noise), got {cfg.gal.disc_target_acc}")


def check_names(cfg: Config, registries: Mapping[str, Any]) -> None:
    """Check every key whose values are a registry's names (``opt(registry=...)``) against ``registries``
    ({registry name: ``bireid.registry.Registry``}); keys of registries not given, and empty values, are skipped.

    The registries are passed in, not imported: they live above this module (methods, backbones, data sets),
    so the layer that owns them calls this (``bireid.factory.check_model_config``, ``bireid.data.check_data_config``).
    """
    for key, f, _typ in _walk(Config):
        reg = registries.get(f.metadata.get("registry"))
        value = _get(cfg, key)
        if reg is not None and value != "" and value not in reg:
            raise ConfigError(f"config key '{key}': {reg.unknown_message(value)}")


def _get(cfg: Config, key: str) -> Any:
    obj: Any = cfg
    for p in key.split("."):
        obj = getattr(obj, p)
    return obj


# ----------------------------------------------------------------------------------------------- CLI glue
def _walk(cls: type, prefix: str = ""):
    for f in fields(cls):
        typ = _field_type(cls, f)
        if is_dataclass(typ):
            yield from _walk(typ, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, typ


def add_config_arguments(parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None,
                         registry_names: Mapping[str, Sequence[str]] | None = None) -> None:
    """Add ``--config``, ``--set`` and one flag per config field (with its help) to a parser.

    ``registry_names`` ({registry name: its names}) lists the allowed values of registry-backed keys in
    ``--help``.
    """
    parser.add_argument("--config", metavar="YAML", help="load settings from a YAML file (flags override it)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override any key, e.g. --set optim.lr=1e-3 (repeatable)")
    alias_of = {v: k for k, v in ALIASES.items()}
    default = Config()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for key, f, typ in _walk(Config):
        section = key.split(".")[0]
        if sections is not None and section not in sections:
            continue
        g = groups.setdefault(section, parser.add_argument_group(f"{section} options"))
        names = [f"--{key}"]
        if key in alias_of:
            names.insert(0, f"--{alias_of[key]}")
        help_text = f.metadata.get("help", "") + f" (default: {_get(default, key)})"
        choices = f.metadata.get("choices") or (registry_names or {}).get(f.metadata.get("registry"))
        if typ is bool:
            g.add_argument(*names, dest=key, default=None, action=argparse.BooleanOptionalAction,
                           help=help_text)
        else:
            metavar = "{" + ",".join(map(str, choices)) + "}" if choices else typ.__name__.upper() \
                if isinstance(typ, type) else "VALUE"
            g.add_argument(*names, dest=key, default=None, metavar=metavar, help=help_text)


def _set_items(args: argparse.Namespace) -> list[tuple[str, Any]]:
    items = []
    for item in getattr(args, "set", []) or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        items.append((k.strip(), yaml.safe_load(v) if v.strip() else ""))
    return items


def config_from_args(args: argparse.Namespace, defaults: TaskDefaults | None = None) -> Config:
    """Build the config: defaults (the dataclass's, then the task's via ``defaults``), then the ``--config`` YAML,
    then per-field flags, then ``--set``. The task is the last one named by those."""
    d = read_yaml(args.config) if getattr(args, "config", None) else {}
    sets = _set_items(args)
    task = next((str(v) for k, v in reversed(sets) if k == "task.name"), None) or getattr(args, "task.name", None) \
        or _task_in(d)
    cfg = new_config(task, defaults)
    try:
        _apply_dict(cfg, d)
    except ConfigError as e:
        raise ConfigError(f"{args.config}: {e}") from None
    for key, _f, _t in _walk(Config):
        val = getattr(args, key, None)
        if val is not None:
            set_key(cfg, key, val)
    for k, v in sets:
        set_key(cfg, k, v)
    validate(cfg)
    return cfg
