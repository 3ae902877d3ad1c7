"""``galsearch evaluate``: invariance and class retrieval of a model, and of a search bundle.

    galsearch evaluate --checkpoint CKPT --survey DIR      # the model, by exact search
    galsearch evaluate --bundle BUNDLE                     # + the bundle: ANN recall, class
                                                           #   retrieval through the index vs
                                                           #   exact, neighbour grid and map
"""

from __future__ import annotations

import os
from pathlib import Path

import click

MAP_CHOICES = ("tsne", "pca", "none")


@click.command("evaluate")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False),
              help="A training or release checkpoint (checkpoint.pt, release.pt); with "
                   "--bundle, default: the bundle's model.pt.")
@click.option("--survey", "survey_dir", type=click.Path(file_okay=False),
              help="Survey folder; class metrics need its truth.h5 (simulated surveys). With "
                   "--bundle, default: the bundle's survey.")
@click.option("--bundle", "bundle_dir", type=click.Path(exists=True, file_okay=False),
              help="A search bundle: also measure its index against exact search and draw "
                   "the neighbour grid and the map.")
@click.option("--n-sample", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="Random objects evaluated (all of them when the survey is smaller).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for evaluation.json and evaluation.md [default: eval-<survey name> "
                   "beside the checkpoint, or eval-<bundle name> beside the bundle].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the sample and of the augmented copies.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--queries-per-class", type=click.IntRange(min=1), default=200, show_default=True,
              help="With --bundle: query objects per class, exact vs through the index.")
@click.option("--depth", type=click.IntRange(min=1), default=1000, show_default=True,
              help="With --bundle: ranking depth of the class metrics (mAP@depth).")
@click.option("--recall-queries", type=click.IntRange(min=1), default=1000, show_default=True,
              help="With --bundle: random queries of the ANN recall.")
@click.option("--recall-k", type=click.IntRange(min=1), default=100, show_default=True,
              help="With --bundle: k of the ANN recall@k.")
@click.option("--map", "map_method", type=click.Choice(MAP_CHOICES), default="tsne",
              show_default=True, help="With --bundle: the 2-D map of the representations.")
@click.option("--map-per-class", type=click.IntRange(min=1), default=400, show_default=True,
              help="With --bundle: objects per class on the map.")
@click.option("--bundle-only", is_flag=True,
              help="With --bundle: skip the model's evaluation (baselines, invariance).")
def evaluate(checkpoint: str | None, survey_dir: str | None, bundle_dir: str | None,
             n_sample: int, out_dir: str | None, seed: int, batch_size: int, device: str,
             queries_per_class: int, depth: int, recall_queries: int, recall_k: int,
             map_method: str, map_per_class: int, bundle_only: bool) -> None:
    """Evaluate a checkpoint on a survey by exact cosine search, against baselines; with
    --bundle, also a search bundle's index against exact search, with figures."""
    # OpenMP threads that spin while waiting collapse (4x slower, measured) when other
    # processes share the cores; passive waiting costs little when they do not. Read once,
    # when torch loads: this runs before the first torch import of the command.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ml.evaluate import report
    from ml.evaluate.evaluation import evaluate as run_evaluation
    from ml.index import BundleError
    from ml.survey import SurveyError
    from ml.train.checkpoint import CheckpointError

    if bundle_dir is None and (checkpoint is None or survey_dir is None):
        raise click.UsageError("give --checkpoint and --survey, or --bundle")
    try:
        if bundle_dir is not None:
            from ml.evaluate.bundle_run import evaluate_bundle, markdown

            bundle = Path(bundle_dir)
            out = out_dir or str(bundle.absolute().parent / f"eval-{bundle.absolute().name}")
            result = evaluate_bundle(
                bundle, out, survey_dir=survey_dir, checkpoint=checkpoint,
                model=not bundle_only, n_sample=n_sample, batch_size=batch_size, device=device,
                queries_per_class=queries_per_class, depth=depth,
                recall_queries=recall_queries, recall_k=recall_k,
                map_method=None if map_method == "none" else map_method,
                map_per_class=map_per_class, seed=seed)
            click.echo(markdown(result))
            click.echo(f"wrote {Path(out) / 'evaluation.json'}, evaluation.md and figures")
            return
        result = run_evaluation(checkpoint, survey_dir, n_sample=n_sample, seed=seed,
                                batch_size=batch_size, device=device)
    except (CheckpointError, SurveyError, BundleError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if out_dir is None:
        out_dir = str(Path(checkpoint).parent / f"eval-{Path(survey_dir).resolve().name}")
    json_path, md_path = report.write(result, out_dir)
    click.echo(report.markdown(result))
    click.echo(f"wrote {json_path} and {md_path}")
