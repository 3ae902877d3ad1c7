"""Run the offline pipeline: survey -> fit-augment -> [train] -> embed -> index -> evaluate.

Each stage (:mod:`ml.pipeline.stages`) has two stamp files in ``<work_dir>/stamps``:

- ``<stage>.started.json``, written before it runs: its inputs. A run killed mid-stage leaves
  it, and the next run with the same inputs resumes the stage's own work (training from its
  checkpoint, embedding from its finished chunks) instead of starting it again;
- ``<stage>.json``, written last, atomically, once the stage's output is complete: its inputs
  and the fingerprint of its output.

A stage is skipped when its stamp records the inputs it has now and the output on disk still
has the recorded fingerprint; anything else (changed settings, a changed upstream output, an
output deleted or edited by hand) runs it again, and then the stages after it, whose inputs
hold its output's fingerprint. One pipeline at a time may use a work folder (a lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.atomic_json import read_json, write_json_atomic
from ml.pipeline.config import PipelineConfig
from ml.pipeline.stages import (
    PipelineError,
    Stage,
    embed_stage,
    evaluate_stage,
    file_fingerprint,
    fit_augment_stage,
    index_stage,
    survey_stage,
    train_stage,
)

STAMP_FORMAT = "galsearch-stage-stamp"
STAMP_VERSION = 1
LOCK_FILE = ".pipeline.lock"


@dataclass
class StageReport:
    name: str
    status: str  # ran, resumed, skipped (up to date), adopted (made by hand, matches), existing
    seconds: float
    path: Path


@dataclass
class PipelineResult:
    config: PipelineConfig
    model: Path
    reports: list[StageReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ran(self) -> list[str]:
        return [r.name for r in self.reports if r.status in ("ran", "resumed")]

    def summary(self) -> str:
        """What ran, what was skipped, where everything is."""
        width = max(len(r.name) for r in self.reports)
        lines = ["pipeline summary:"]
        for r in self.reports:
            took = f"{r.seconds:7.1f} s" if r.status in ("ran", "resumed") else " " * 9
            lines.append(f"  {r.name:<{width}}  {r.status:<8} {took}  {r.path}")
        lines.append(f"  model: {self.model}")
        lines.append(f"  total {self.seconds:.1f} s; stamps in {self.config.stamps_dir}")
        return "\n".join(lines)


class Stamps:
    """The stamp files of one work folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str, started: bool) -> Path:
        return self.folder / (f"{name}.started.json" if started else f"{name}.json")

    def read(self, name: str, started: bool = False) -> dict[str, Any] | None:
        try:
            stamp = read_json(self._path(name, started))
        except ValueError:  # damaged by hand: the stage simply runs again
            return None
        if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT:
            return None
        return stamp

    def started(self, name: str, inputs: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path(name, True), {"format": STAMP_FORMAT,
                                                   "version": STAMP_VERSION, "inputs": inputs})

    def done(self, name: str, inputs: dict[str, Any], output: str, seconds: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path(name, False), {
            "format": STAMP_FORMAT, "version": STAMP_VERSION, "inputs": inputs, "output": output,
            "seconds": round(seconds, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self._path(name, True).unlink(missing_ok=True)


def run_stage(stage: Stage, stamps: Stamps, echo: Callable[[str], None]) -> tuple[str, StageReport]:
    """Run a stage unless it is up to date; returns its output fingerprint and its report."""
    stamp = stamps.read(stage.name)
    current = stage.output()
    if stamp is not None and stamp["inputs"] == stage.inputs and current is not None \
            and current == stamp["output"]:
        echo(f"== {stage.name}: up to date, skipped ({stage.output_path})")
        return current, StageReport(stage.name, "skipped", 0.0, stage.output_path)
    if stamp is None and current is not None and stage.adopt is not None and stage.adopt():
        stamps.done(stage.name, stage.inputs, current, 0.0)
        status = "existing" if stage.inputs.get("kind") == "existing" else "adopted"
        echo(f"== {stage.name}: {stage.output_path} matches the settings, taken as it is")
        return current, StageReport(stage.name, status, 0.0, stage.output_path)

    started = stamps.read(stage.name, started=True)
    resume = started is not None and started["inputs"] == stage.inputs
    ours = stamp is not None or started is not None
    why = ("resuming an interrupted run" if resume else
           "first run" if stamp is None else
           "its output changed on disk" if stamp["inputs"] == stage.inputs else
           "its inputs changed")
    echo(f"== {stage.name}: running ({why}) -> {stage.output_path}")
    stamps.started(stage.name, stage.inputs)
    t0 = time.monotonic()
    stage.run(resume, ours)
    seconds = time.monotonic() - t0
    output = stage.output()
    if output is None:
        raise PipelineError(f"stage {stage.name} finished but left no complete output at "
                            f"{stage.output_path}")
    stamps.done(stage.name, stage.inputs, output, seconds)
    return output, StageReport(stage.name, "resumed" if resume else "ran", seconds,
                               stage.output_path)


@contextlib.contextmanager
def work_lock(folder: Path) -> Iterator[None]:
    """Hold the work folder's lock, or fail at once naming who holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise PipelineError(f"another `galsearch pipeline` (pid {holder}) is using {folder};"
                                " wait for it to finish") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def resolve_model(config: PipelineConfig, model: str | Path | None) -> Path:
    """The model to embed with when not training: ``--model``, else the preset's shipped one."""
    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise PipelineError(f"--model {path} is not a file")
        return path
    if not config.pipeline.model:
        raise PipelineError(f"{config.source} names no shipped model ([pipeline] model); train "
                            "one with --train or pass --model PATH")
    path = Path(config.pipeline.model)
    if not path.is_file():
        budget = (f" (within {config.train.max_minutes:g} minutes)"
                  if config.train.max_minutes else "")
        raise PipelineError(f"the shipped model {path} is not there; train one with --train"
                            f"{budget}, or pass --model PATH")
    return path


def run_pipeline(config: PipelineConfig, train: bool = False, model: str | Path | None = None,
                 echo: Callable[[str], None] = print) -> PipelineResult:
    """Run every stage that is not up to date (see the module docstring).

    Args:
        config: the pipeline's settings.
        train: train the model from scratch (the preset's training settings) instead of using
            a given or shipped one.
        model: a release checkpoint to use instead of the preset's shipped model.
        echo: where progress lines go.

    Raises:
        PipelineError: with what went wrong and what to do (other errors of the stages, such as
            click.ClickException from the commands, pass through).
    """
    if train and model is not None:
        raise PipelineError("--train and --model exclude each other")
    t0 = time.monotonic()
    with work_lock(config.work_dir):
        model_path = None if train else resolve_model(config, model)
        stamps = Stamps(config.stamps_dir)
        result = PipelineResult(config, model=model_path or config.trained_model)

        def step(stage: Stage) -> str:
            output, report = run_stage(stage, stamps, echo)
            result.reports.append(report)
            return output

        survey_fp = step(survey_stage(config))
        stats_fp = step(fit_augment_stage(config, survey_fp))
        if train:
            model_fp = step(train_stage(config, survey_fp, stats_fp))
        else:
            model_fp = file_fingerprint(model_path)
        embed_fp = step(embed_stage(config, result.model, model_fp, survey_fp))
        bundle_fp = step(index_stage(config, embed_fp, survey_fp))
        if config.evaluate.enabled:
            step(evaluate_stage(config, bundle_fp))
        result.seconds = time.monotonic() - t0
    return result
