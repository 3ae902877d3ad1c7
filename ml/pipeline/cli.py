"""``galsearch pipeline --config configs/<preset>.toml [--train | --model PATH] [key=value ...]``."""

from __future__ import annotations

import os

import click


@click.command("pipeline")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Preset TOML (configs/demo.toml): training settings plus [pipeline], "
                   "[simulate] or [ingest], [embed], [index], [evaluate].")
@click.option("--train", is_flag=True,
              help="Train the model from scratch with the preset's settings instead of using "
                   "its shipped model.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="Embed with this release checkpoint instead of the shipped model.")
@click.option("--show-config", is_flag=True, help="Print the resolved settings and exit.")
@click.argument("overrides", nargs=-1)
def pipeline(config_path: str, train: bool, model: str | None, show_config: bool,
             overrides: tuple[str, ...]) -> None:
    """Run the offline pipeline: survey -> fit-augment -> [train] -> embed -> index -> evaluate.

    Stages whose output is complete and up to date are skipped, so a killed run resumes where
    it stopped. OVERRIDES are key=value settings on top of the preset: training keys
    (max_minutes=5), augment.<key>, and <table>.<key> for the other tables (simulate.n=2000,
    embed.batch_size=128, evaluate.enabled=false).
    """
    # OpenMP threads that spin while waiting collapse when other processes share the cores
    # (see `galsearch train`); read once, when torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import json

    from ml.pipeline.config import load_pipeline_config
    from ml.pipeline.run import run_pipeline
    from ml.pipeline.stages import PipelineError
    from ml.train.config import ConfigError

    try:
        config = load_pipeline_config(config_path, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if show_config:
        click.echo(json.dumps(config.to_dict(), indent=2))
        return
    if train and model:
        raise click.UsageError("--train and --model exclude each other")
    try:
        result = run_pipeline(config, train=train, model=model, echo=click.echo)
    except PipelineError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.summary())
