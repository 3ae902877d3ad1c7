"""The settings of ``galsearch pipeline``: one preset file for every stage.

A preset (``configs/demo.toml``) holds the training settings at its top level and in
``[augment]`` (:class:`ml.train.config.TrainConfig`), and one table per other stage:

| table | settings | stage |
|---|---|---|
| ``[pipeline]`` | ``model`` (the shipped model used unless training), ``work_dir`` | where things go |
| ``[simulate]`` | ``n``, ``seed``, ``rates``, ``size``, ``objects_per_file``, ``workers`` | simulate the survey into ``survey`` |
| ``[ingest]`` | ``fits_dir`` + ``catalog``, or ``from_legacy_survey``; ``skip_bad`` | or build it from your files |
| ``[embed]`` | ``batch_size``, ``chunk_size``, ``dtype``, ``device``, ``workers``, ``out`` | ``galsearch embed`` |
| ``[index]`` | ``representation``, ``k``, ``kind``, ``mag_window``, ``out`` | ``galsearch index`` |
| ``[evaluate]`` | ``enabled``, ``n_sample``, ``queries_per_class``, ``depth``, ``recall_queries``, ``recall_k``, ``map``, ``map_per_class``, ``device``, ``out`` | ``galsearch evaluate --bundle`` |

With neither ``[simulate]`` nor ``[ingest]`` the survey named by ``survey`` must exist. Paths are
relative to the current folder; the outputs default to ``<work_dir>/embeddings``, ``/bundle``,
``/evaluation`` and the stage stamps to ``<work_dir>/stamps``, with ``work_dir`` defaulting to the
training run's ``out_dir``. Command-line overrides ``key=value`` reach every table:
``simulate.n=2000``, ``embed.batch_size=128``, ``max_minutes=5``, ``augment.crop=64``.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ml.survey_format import CUTOUT_SIZE, MAX_OBJECTS_PER_FILE
from ml.train.config import (
    PIPELINE_SECTIONS,
    ConfigError,
    TrainConfig,
    apply_overrides,
    coerce,
)


@dataclass
class PipelineSettings:
    model: str = ""  # the shipped model (a release checkpoint) used unless --train / --model
    work_dir: str = ""  # outputs and stamps (default: the training run's out_dir)


@dataclass
class SimulateSettings:
    n: int = 20_000  # objects
    seed: int = 0
    rates: str = ""  # e.g. "lens=0.004,ring=0.004"; empty: the simulator's default rates
    size: int = CUTOUT_SIZE  # cutout side, pixels
    objects_per_file: int = MAX_OBJECTS_PER_FILE
    workers: int = 0  # processes (0: every core); the survey does not depend on it


@dataclass
class IngestSettings:
    fits_dir: str = ""  # a folder of FITS cutouts, with `catalog`
    catalog: str = ""  # FITS or CSV table describing the cutouts
    from_legacy_survey: str = ""  # or: a table of targets to download from the Legacy Surveys
    skip_bad: bool = False  # leave out bad rows instead of stopping


@dataclass
class EmbedSettings:
    batch_size: int = 256
    chunk_size: int = 4096
    dtype: str = "float16"
    device: str = "auto"
    workers: int = 1  # reader processes
    out: str = ""  # default <work_dir>/embeddings


@dataclass
class IndexSettings:
    representation: str = "prehead"
    k: int = 1000  # neighbours per object in the similarity arrays, itself included
    kind: str = "auto"  # auto, flat, hnsw, ivfpq
    mag_window: float = 0.5  # |Δmag_r| of the windowed arrays (0: none)
    out: str = ""  # default <work_dir>/bundle


@dataclass
class EvaluateSettings:
    enabled: bool = True
    n_sample: int = 10_000  # objects of the model's evaluation (baselines, invariance)
    queries_per_class: int = 200
    depth: int = 1000
    recall_queries: int = 1000
    recall_k: int = 100
    map: str = "tsne"  # tsne, pca, none
    map_per_class: int = 400
    device: str = "cpu"
    out: str = ""  # default <work_dir>/evaluation


SECTION_TYPES: dict[str, type] = {
    "pipeline": PipelineSettings, "simulate": SimulateSettings, "ingest": IngestSettings,
    "embed": EmbedSettings, "index": IndexSettings, "evaluate": EvaluateSettings,
}
assert set(SECTION_TYPES) == set(PIPELINE_SECTIONS)


@dataclass
class PipelineConfig:
    """Every stage's settings; ``simulate`` / ``ingest`` are None when the preset has no such
    table (the survey then exists already)."""

    train: TrainConfig
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    simulate: SimulateSettings | None = None
    ingest: IngestSettings | None = None
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    source: str = ""  # the preset file

    # -- paths -----------------------------------------------------------------------------
    @property
    def survey(self) -> Path:
        return Path(self.train.survey)

    @property
    def work_dir(self) -> Path:
        return Path(self.pipeline.work_dir or self.train.out_dir)

    @property
    def embeddings_dir(self) -> Path:
        return Path(self.embed.out) if self.embed.out else self.work_dir / "embeddings"

    @property
    def bundle_dir(self) -> Path:
        return Path(self.index.out) if self.index.out else self.work_dir / "bundle"

    @property
    def evaluation_dir(self) -> Path:
        return Path(self.evaluate.out) if self.evaluate.out else self.work_dir / "evaluation"

    @property
    def stamps_dir(self) -> Path:
        return self.work_dir / "stamps"

    @property
    def trained_model(self) -> Path:
        return Path(self.train.out_dir) / "release.pt"

    def to_dict(self) -> dict[str, Any]:
        out = {name: (None if getattr(self, name) is None else asdict(getattr(self, name)))
               for name in SECTION_TYPES}
        out["train"] = self.train.to_dict()
        return out


def load_pipeline_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                         ) -> PipelineConfig:
    """A preset with ``key=value`` overrides (see the module docstring).

    Raises:
        ConfigError: no such file, invalid TOML, an unknown table or key, or a bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file at {path}; presets live in configs/ (demo.toml, "
                          "paper.toml)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    sections = {name: dict(data.pop(name)) for name in SECTION_TYPES if name in data}
    train_overrides = []
    for item in overrides:
        key, sep, text = item.partition("=")
        section, _, name = key.strip().partition(".")
        if sep and name and section in SECTION_TYPES:
            settings_type = SECTION_TYPES[section]
            known = {f.name for f in fields(settings_type)}
            if name not in known:
                raise ConfigError(f"unknown setting {key.strip()!r}; valid: "
                                  + ", ".join(f"{section}.{k}" for k in sorted(known)))
            hint = typing.get_type_hints(settings_type)[name]
            sections.setdefault(section, {})[name] = coerce(text.strip(), hint, key.strip())
        else:
            train_overrides.append(item)
    train = TrainConfig.from_dict(apply_overrides(data, train_overrides))
    built = {name: _section(name, values, path) for name, values in sections.items()}
    config = PipelineConfig(train=train, source=str(path), **built)
    _check(config)
    return config


def _section(name: str, values: dict[str, Any], path: Path) -> Any:
    settings_type = SECTION_TYPES[name]
    known = {f.name for f in fields(settings_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path} [{name}]: unknown setting(s) {unknown}; valid: "
                          f"{sorted(known)}")
    hints = typing.get_type_hints(settings_type)
    for key, value in values.items():
        want = hints[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            values[key], ok = float(value), True
        if not ok:
            raise ConfigError(f"{path} [{name}] {key} = {value!r}: expected {want.__name__}")
    return settings_type(**values)


def _check(config: PipelineConfig) -> None:
    problems = []
    if config.simulate is not None and config.ingest is not None:
        problems.append("give [simulate] or [ingest], not both: the survey comes from one")
    if config.ingest is not None:
        ing = config.ingest
        if bool(ing.fits_dir) == bool(ing.from_legacy_survey):
            problems.append("[ingest] needs fits_dir (with catalog) or from_legacy_survey")
        elif ing.fits_dir and not ing.catalog:
            problems.append("[ingest] fits_dir needs catalog, the table describing the cutouts")
    if config.simulate is not None and config.simulate.n < 1:
        problems.append(f"[simulate] n must be at least 1, got {config.simulate.n}")
    if config.embed.dtype not in ("float16", "float32"):
        problems.append(f"[embed] dtype must be float16 or float32, got {config.embed.dtype!r}")
    if config.index.representation not in ("prehead", "head"):
        problems.append(f"[index] representation must be prehead or head, got "
                        f"{config.index.representation!r}")
    if config.evaluate.map not in ("tsne", "pca", "none"):
        problems.append(f"[evaluate] map must be tsne, pca or none, got {config.evaluate.map!r}")
    for name in ("batch_size", "chunk_size"):
        if getattr(config.embed, name) < 1:
            problems.append(f"[embed] {name} must be at least 1")
    if problems:
        raise ConfigError("invalid pipeline config: " + "; ".join(problems))
