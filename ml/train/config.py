"""Every training hyperparameter in one place, and how presets and overrides set them.

A preset is a TOML file (``configs/demo.toml``, ``configs/paper.toml``) whose top-level keys are
:class:`TrainConfig` fields and whose ``[augment]`` table holds
:class:`ml.augment.AugmentConfig` fields. Command-line overrides ``key=value`` (``lr=0.1``,
``augment.crop=64``) are coerced to the type of the field they set; an unknown key is an error
that lists the valid ones. Fields a user leaves out keep the defaults below.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ml.augment import AugmentConfig
from ml.moco import ARCHS, MoCoArgs

BN_MODES = ("groups", "ddp", "sync", "none")
PRECISIONS = ("auto", "bf16", "fp32")
# tables of a preset that belong to the other stages of `galsearch pipeline` (ml.pipeline.config)
PIPELINE_SECTIONS = ("pipeline", "simulate", "ingest", "embed", "index", "evaluate")
# fields that may differ between a checkpoint and its resumed run: they do not change the maths
RUN_CONTROL_FIELDS = frozenset({"max_minutes", "stop_at_step", "num_workers", "log_every",
                                "checkpoint_every", "progress", "threads"})


class ConfigError(ValueError):
    """A preset or an override is not a valid training configuration."""


@dataclass
class TrainConfig:
    # -- data and run folder ----------------------------------------------------------------
    survey: str = "data/demo"  # survey folder; `galsearch fit-augment` must have run on it
    out_dir: str = "runs/demo"  # run folder: checkpoint.pt, release.pt, log.jsonl, loss.png
    # -- model: MoCo v2 (Chen et al. 2020) ----------------------------------------------------
    arch: str = "resnet18"  # backbone: resnet10, resnet18, resnet34, resnet50 (torchvision)
    small_stem: bool = False  # 3x3 stride-1 stem, no max-pool: for crops below ~64 px
    width: int = 64  # channels of the first ResNet stage (torchvision: 64)
    dim: int = 128  # embedding dimension of the MLP head
    queue_size: int = 65536  # K, negatives held in the queue
    moco_m: float = 0.999  # momentum of the key encoder
    temperature: float = 0.2  # T of the InfoNCE softmax (MoCo v2)
    mlp: bool = True  # MoCo v2's 2-layer MLP head (False: MoCo v1's linear head)
    # BN against the shortcut through batch statistics (ml.moco.builder): "groups" (any device:
    # G groups, keys permuted), "ddp" (facebookresearch's shuffle across ranks), "sync" (SyncBN
    # across ranks, GPUs only), "none" (plain BN per device)
    bn_mode: str = "groups"
    bn_groups: int = 4  # G for bn_mode="groups": a query shares ~1/G of its key's statistics
    # -- optimisation -----------------------------------------------------------------------
    batch_size: int = 256  # images per process and step; global batch = batch_size x ranks
    epochs: float = 200.0  # length of training, in passes over the survey
    max_steps: int = 0  # > 0: stop after this many steps instead (smoke tests, benchmarks)
    base_lr: float = 0.03  # SGD learning rate per 256 images: lr = base_lr x global batch / 256
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0  # linear warm-up from 0, then a cosine decay
    min_lr_ratio: float = 0.0  # the cosine ends at base lr x this
    # -- budget, precision, system ------------------------------------------------------------
    # > 0: finish within this many minutes: after `calibration_steps` steps the schedule is
    # shortened to the steps that fit (the cosine still ends at its minimum), and the run
    # stops at the budget in any case with a checkpoint and a release
    max_minutes: float = 0.0
    calibration_steps: int = 10
    # > 0: pause after this step with a checkpoint, as if interrupted; --resume goes on (train
    # in sessions on a shared machine); the schedule is unchanged
    stop_at_step: int = 0
    # "bf16" (autocast), "fp32", or "auto": bf16 on CUDA; on a CPU with bf16 instructions the
    # faster of the two, timed on the first batch (ml/train/precision.py), else fp32
    precision: str = "auto"
    channels_last: bool = False  # NHWC memory layout (faster convolutions on some devices)
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda"
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    num_workers: int = 1  # DataLoader processes that read pixels and catalog rows
    seed: int = 0
    # -- logging and checkpoints ---------------------------------------------------------------
    log_every: int = 10  # steps between log.jsonl lines
    checkpoint_every: int = 500  # steps between checkpoints (also at the end and the budget)
    progress: bool = True  # tqdm progress bar
    # -- augmentations (ml.augment.AugmentConfig; the [augment] table of a preset) -------------
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig.from_dict(self.augment)
        problems = []
        if self.arch not in ARCHS:
            problems.append(f"arch must be one of {sorted(ARCHS)}, got {self.arch!r}")
        if self.bn_mode not in BN_MODES:
            problems.append(f"bn_mode must be one of {BN_MODES}, got {self.bn_mode!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("width", "dim", "queue_size", "batch_size", "bn_groups", "log_every",
                     "checkpoint_every", "calibration_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "stop_at_step", "warmup_epochs", "max_minutes", "num_workers",
                     "threads",
                     "weight_decay", "min_lr_ratio"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps == 0:
            problems.append("set epochs > 0 or max_steps > 0")
        if not 0.0 <= self.moco_m <= 1.0:
            problems.append(f"moco_m must be in [0, 1], got {self.moco_m}")
        if self.temperature <= 0 or self.base_lr <= 0:
            problems.append("temperature and base_lr must be positive")
        if self.bn_mode == "groups" and self.batch_size < 2 * self.bn_groups:
            problems.append(f"bn_mode='groups' needs batch_size >= 2 x bn_groups "
                            f"({2 * self.bn_groups}) so every BN group holds 2 images")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    # -- derived -----------------------------------------------------------------------------
    def model_args(self) -> MoCoArgs:
        """The MoCo arguments; SyncBN is a conversion of the built model, "plain" BN here."""
        shuffle = {"groups": "groups", "ddp": "ddp", "sync": "none", "none": "none"}[self.bn_mode]
        return MoCoArgs(arch=self.arch, small_stem=self.small_stem, width=self.width,
                        dim=self.dim, K=self.queue_size, m=self.moco_m, T=self.temperature,
                        mlp=self.mlp, shuffle_bn=shuffle, bn_groups=self.bn_groups)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}; valid: {sorted(known)}")
        try:
            return cls(**d)
        except ValueError as exc:  # AugmentConfig's own checks
            raise ConfigError(str(exc)) from exc


# -- presets and overrides --------------------------------------------------------------------
def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                ) -> TrainConfig:
    """A preset (or the defaults when path is None) with ``key=value`` overrides applied."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no config file at {path}; presets live in configs/ "
                              "(demo.toml, paper.toml)")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    data = {key: value for key, value in data.items() if key not in PIPELINE_SECTIONS}
    data = apply_overrides(data, overrides)
    return TrainConfig.from_dict(data)


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]
                    ) -> dict[str, Any]:
    """Set ``key=value`` items (``augment.key=value`` for the augment table) in a config dict."""
    data = {**data, "augment": dict(data.get("augment", {}))}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        section, _, name = key.rpartition(".")
        if section not in ("", "augment"):
            raise ConfigError(f"override {item!r}: only top-level keys and augment.<key> exist")
        target_cls = AugmentConfig if section else TrainConfig
        specs = {f.name: f for f in fields(target_cls)
                 if not (target_cls is TrainConfig and f.name == "augment")}
        if name not in specs:
            where = "augment." if section else ""
            raise ConfigError(f"unknown setting {key!r}; valid: "
                              + ", ".join(where + k for k in sorted(specs)))
        value = coerce(text.strip(), _field_type(target_cls, name), key)
        (data["augment"] if section else data)[name] = value
    return data


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def coerce(text: str, annotation: Any, key: str) -> Any:
    """Turn override text into a value of the field's annotated type (bool, int, float, str,
    ``X | None``, tuples); the error says what was expected."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        if text.lower() in ("none", "null", "") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(text, inner[0], key)
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key} expects true or false, got {text!r}")
    if annotation in (int, float):
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{key} expects a number, got {text!r}") from None
        if annotation is int:
            if not value.is_integer():
                raise ConfigError(f"{key} expects an integer, got {text!r}")
            return int(value)
        return value
    if annotation is str:
        return text
    if origin is tuple:
        try:
            parts = json.loads(text) if text.startswith("[") else text.strip("()").split(",")
        except json.JSONDecodeError:
            raise ConfigError(f"{key} expects a list such as 0.9,1.1, got {text!r}") from None
        item_type = args[0] if args else float
        return tuple(coerce(str(p).strip(), item_type, key) for p in parts)
    raise ConfigError(f"{key}: cannot set a field of type {annotation} from the command line")
