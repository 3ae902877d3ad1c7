"""``galsearch evaluate --checkpoint CKPT --survey DIR``: invariance and class retrieval."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("evaluate")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A training or release checkpoint (checkpoint.pt, release.pt).")
@click.option("--survey", "survey_dir", required=True, type=click.Path(file_okay=False),
              help="Survey folder; class metrics need its truth.h5 (simulated surveys).")
@click.option("--n-sample", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="Random objects evaluated (all of them when the survey is smaller).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for evaluation.json and evaluation.md "
                   "[default: eval-<survey name> beside the checkpoint].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the sample and of the augmented copies.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def evaluate(checkpoint: str, survey_dir: str, n_sample: int, out_dir: str | None, seed: int,
             batch_size: int, device: str) -> None:
    """Evaluate a checkpoint on a survey by exact cosine search, against baselines."""
    # OpenMP threads that spin while waiting collapse (4x slower, measured) when other
    # processes share the cores; passive waiting costs little when they do not. Read once,
    # when torch loads: this runs before the first torch import of the command.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ml.evaluate import report
    from ml.evaluate.evaluation import evaluate as run_evaluation
    from ml.survey import SurveyError
    from ml.train.checkpoint import CheckpointError

    try:
        result = run_evaluation(checkpoint, survey_dir, n_sample=n_sample, seed=seed,
                                batch_size=batch_size, device=device)
    except (CheckpointError, SurveyError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if out_dir is None:
        out_dir = str(Path(checkpoint).parent / f"eval-{Path(survey_dir).resolve().name}")
    json_path, md_path = report.write(result, out_dir)
    click.echo(report.markdown(result))
    click.echo(f"wrote {json_path} and {md_path}")
