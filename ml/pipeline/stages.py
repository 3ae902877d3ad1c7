"""The stages of ``galsearch pipeline``: what each reads, what it makes, and how it runs.

Each stage is described by a :class:`Stage`: its ``inputs`` (fingerprints of what it reads —
the upstream stages' outputs — and its own parameters, a JSON-able dict), a function giving the
fingerprint of its output as it stands on disk (None when absent or incomplete), and the
function that runs it. The runner (:mod:`ml.pipeline.run`) skips a stage whose stamp records the
same inputs and the output fingerprint found on disk, so a changed input reruns the stage, and
the stages after it see a changed fingerprint and rerun too.

The stages call the same code as the commands: ``galsearch simulate``, ``ingest``,
``fit-augment`` and ``index`` themselves (through click), :func:`ml.train.loop.train`,
:func:`ml.embed.run_embed` and :func:`ml.evaluate.bundle_run.evaluate_bundle`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import click

from ml.augment.cli import DEFAULT_MAX_OBJECTS
from ml.index.manifest import sha256_file
from ml.pipeline.config import PipelineConfig
from ml.train.config import RUN_CONTROL_FIELDS

# `galsearch fit-augment`'s own defaults: the paper's log-normal fits on a seeded subset
FIT_AUGMENT_DEFAULTS = {"sampling": "lognormal", "max_objects": DEFAULT_MAX_OBJECTS, "seed": 0}


class PipelineError(RuntimeError):
    """The pipeline cannot go on; the message says why and what to do."""


@dataclass
class Stage:
    """One step of the pipeline.

    Attributes:
        name: short name (stamp file name).
        output_path: where its output lives (for the summary).
        inputs: fingerprints and parameters it depends on.
        output: the fingerprint of its complete output on disk, or None.
        run: does the work; called with ``resume`` (an interrupted attempt with the same
            inputs may be continued) and ``ours`` (a stamp shows that this pipeline made the
            output now on disk, so it may be replaced).
        adopt: optional: True when an output made without the pipeline (no stamp) is known to
            match the inputs, so it is taken as it is.
    """

    name: str
    output_path: Path
    inputs: dict[str, Any]
    output: Callable[[], str | None]
    run: Callable[[bool, bool], None]
    adopt: Callable[[], bool] | None = None


def file_fingerprint(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def survey_fingerprint(path: Path) -> str | None:
    """The survey's own fingerprint (``Survey.fingerprint``) or None when there is none."""
    from ml.survey import Survey, SurveyError

    try:
        with Survey(path) as survey:
            return survey.fingerprint()
    except SurveyError:
        return None


def _invoke(command: click.Command, **params: Any) -> None:
    """Run a galsearch sub-command as the command line would (defaults filled in)."""
    with click.Context(command) as ctx:
        ctx.invoke(command, **params)


# -- survey ----------------------------------------------------------------------------------
def survey_stage(config: PipelineConfig) -> Stage:
    survey = config.survey
    if config.simulate is not None:
        return _simulate_stage(config)
    if config.ingest is not None:
        return _ingest_stage(config)

    def run(resume: bool, ours: bool) -> None:
        if survey_fingerprint(survey) is not None:
            return  # a survey of the user's, changed since the last run: taken as it is now
        raise PipelineError(
            f"the config names the survey {survey}, which is missing or not a survey; add a "
            "[simulate] or [ingest] table to the config, or create it with `galsearch "
            "simulate` / `galsearch ingest`")

    return Stage("survey", survey, {"kind": "existing", "path": str(survey)},
                 lambda: survey_fingerprint(survey), run, adopt=lambda: True)


def _refuse_foreign(survey: Path, ours: bool) -> None:
    if not ours and survey_fingerprint(survey) is not None:
        raise PipelineError(
            f"{survey} holds a survey that this pipeline did not make (or made with other "
            "settings before its stamps were removed); it is left alone. Remove it, point "
            "`survey` at another folder, or drop the [simulate]/[ingest] table to use it as "
            "it is")


def _simulate_stage(config: PipelineConfig) -> Stage:
    from ml.simulate.classes import RatesError, parse_rates

    sim, survey = config.simulate, config.survey
    try:
        rates = parse_rates(sim.rates or None)
    except RatesError as exc:
        raise PipelineError(f"[simulate] rates: {exc}") from exc
    inputs = {"kind": "simulate", "n": sim.n, "seed": sim.seed, "size": sim.size,
              "objects_per_file": sim.objects_per_file,
              "rates": {k: round(v, 12) for k, v in sorted(rates.items())}}

    def adopt() -> bool:
        """A survey simulated by hand with these settings (its truth records them)."""
        from ml.survey import Survey, SurveyError

        try:
            with Survey(survey) as s:
                truth = s.truth()
                return (truth is not None and s.n == sim.n and truth.seed == sim.seed
                        and s.image_shape[1:] == (sim.size, sim.size)
                        and all(abs(truth.rates.get(k, -1) - v) < 1e-9 for k, v in rates.items()))
        except SurveyError:
            return False

    def run(resume: bool, ours: bool) -> None:
        from ml.simulate.cli import simulate

        _refuse_foreign(survey, ours)
        _invoke(simulate, n=sim.n, out=str(survey), seed=sim.seed, workers=sim.workers or None,
                rates=sim.rates or None, size=sim.size, objects_per_file=sim.objects_per_file,
                overwrite=True)

    return Stage("survey", survey, inputs, lambda: survey_fingerprint(survey), run, adopt)


def _ingest_stage(config: PipelineConfig) -> Stage:
    ing, survey = config.ingest, config.survey
    sources: dict[str, Any] = {}
    if ing.fits_dir:
        folder = Path(ing.fits_dir)
        if not folder.is_dir():
            raise PipelineError(f"[ingest] fits_dir {folder} is not a folder")
        listing = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                         for p in folder.iterdir() if p.is_file())
        sources["fits_dir"] = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    for key in ("catalog", "from_legacy_survey"):
        value = getattr(ing, key)
        if value:
            if not Path(value).is_file():
                raise PipelineError(f"[ingest] {key} {value} is not a file")
            sources[key] = sha256_file(value)
    inputs = {"kind": "ingest", "settings": asdict(ing), "sources": sources}

    def run(resume: bool, ours: bool) -> None:
        from ml.ingest.cli import ingest

        _refuse_foreign(survey, ours)
        _invoke(ingest, fits_dir=Path(ing.fits_dir) if ing.fits_dir else None,
                catalog=Path(ing.catalog) if ing.catalog else None,
                targets=Path(ing.from_legacy_survey) if ing.from_legacy_survey else None,
                out=survey, skip_bad=ing.skip_bad, overwrite=True)

    return Stage("survey", survey, inputs, lambda: survey_fingerprint(survey), run)


# -- augmentation statistics -------------------------------------------------------------------
def fit_augment_stage(config: PipelineConfig, survey_fp: str) -> Stage:
    from ml.survey_format import AUGMENT_STATS_FILENAME

    path = config.survey / AUGMENT_STATS_FILENAME

    def run(resume: bool, ours: bool) -> None:
        from ml.augment.cli import fit_augment

        _invoke(fit_augment, survey_dir=str(config.survey), **FIT_AUGMENT_DEFAULTS)

    return Stage("fit-augment", path, {"survey": survey_fp, **FIT_AUGMENT_DEFAULTS},
                 lambda: file_fingerprint(path), run)


# -- model -----------------------------------------------------------------------------------
def train_stage(config: PipelineConfig, survey_fp: str, stats_fp: str) -> Stage:
    from ml.train import checkpoint as ckpt_io

    train_config = replace(config.train, progress=True)
    maths = {k: v for k, v in train_config.to_dict().items() if k not in RUN_CONTROL_FIELDS}
    release = config.trained_model
    checkpoint = release.parent / ckpt_io.CHECKPOINT_NAME

    def run(resume: bool, ours: bool) -> None:
        from ml.train.loop import TrainError, train

        go_on = resume and checkpoint.exists()
        try:
            result = train(train_config, resume=go_on, overwrite=not go_on)
        except TrainError as exc:
            raise PipelineError(str(exc)) from exc
        if result.reason == "paused":
            raise PipelineError(f"training paused at step {result.step} (stop_at_step); run "
                                "the pipeline again to go on")

    return Stage("train", release, {"survey": survey_fp, "augment_stats": stats_fp,
                                    "config": maths}, lambda: file_fingerprint(release), run)


# -- embeddings, bundle, evaluation -----------------------------------------------------------
def embed_stage(config: PipelineConfig, model: Path, model_fp: str, survey_fp: str) -> Stage:
    from ml.embed.output import MANIFEST_FILE

    e, out = config.embed, config.embeddings_dir
    inputs = {"model": model_fp, "survey": survey_fp, "dtype": e.dtype,
              "chunk_size": e.chunk_size}

    def run(resume: bool, ours: bool) -> None:
        from ml.embed import EmbedError, EmbedStateError, run_embed
        from ml.train.checkpoint import CheckpointError

        try:
            run_embed(model, config.survey, out, batch_size=e.batch_size,
                      chunk_size=e.chunk_size, dtype=e.dtype, device=e.device,
                      workers=e.workers, restart=True)
        except (EmbedError, EmbedStateError, CheckpointError) as exc:
            raise PipelineError(str(exc)) from exc

    return Stage("embed", out, inputs, lambda: file_fingerprint(out / MANIFEST_FILE), run)


def index_stage(config: PipelineConfig, embed_fp: str, survey_fp: str) -> Stage:
    from ml.index.manifest import MANIFEST_NAME

    ix, out = config.index, config.bundle_dir
    inputs = {"embeddings": embed_fp, "survey": survey_fp, **asdict(ix)}
    inputs.pop("out")

    def run(resume: bool, ours: bool) -> None:
        from ml.index.cli import index

        _invoke(index, survey_path=config.survey, out=out, embeddings=config.embeddings_dir,
                representations=None, representation=ix.representation, k=ix.k,
                index_kind=ix.kind, mag_window=ix.mag_window, overwrite=True)

    return Stage("index", out, inputs, lambda: file_fingerprint(out / MANIFEST_NAME), run)


def evaluate_stage(config: PipelineConfig, bundle_fp: str) -> Stage:
    ev, out = config.evaluate, config.evaluation_dir
    inputs = {"bundle": bundle_fp, **asdict(ev)}
    for key in ("out", "enabled", "device"):
        inputs.pop(key)

    def run(resume: bool, ours: bool) -> None:
        from ml.evaluate.bundle_run import evaluate_bundle

        (out / "evaluation.json").unlink(missing_ok=True)
        # the model evaluated is the bundle's own copy (its manifest, hence bundle_fp, has its hash)
        evaluate_bundle(config.bundle_dir, out, survey_dir=config.survey,
                        n_sample=ev.n_sample, device=ev.device,
                        queries_per_class=ev.queries_per_class, depth=ev.depth,
                        recall_queries=ev.recall_queries, recall_k=ev.recall_k,
                        map_method=None if ev.map == "none" else ev.map,
                        map_per_class=ev.map_per_class)

    return Stage("evaluate", out, inputs, lambda: file_fingerprint(out / "evaluation.json"), run)
