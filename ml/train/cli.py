"""``galsearch train --config configs/<preset>.toml [key=value ...]``: train MoCo v2.

Several GPUs or nodes: ``torchrun --nproc-per-node=8 -m server.cli train --config
configs/paper.toml`` (add ``--nnodes=N --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT`` for
several nodes; out_dir on a filesystem every node sees).
"""

from __future__ import annotations

import os

import click


@click.command("train", context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Preset TOML (configs/demo.toml, configs/paper.toml); defaults without it.")
@click.option("--resume", is_flag=True, help="Continue the run in out_dir from checkpoint.pt.")
@click.option("--overwrite", is_flag=True, help="Start afresh even if out_dir holds a run.")
@click.option("--show-config", is_flag=True, help="Print the resolved settings and exit.")
@click.argument("overrides", nargs=-1)
def train(config_path: str | None, resume: bool, overwrite: bool, show_config: bool,
          overrides: tuple[str, ...]) -> None:
    """Train the MoCo v2 encoder on a survey.

    OVERRIDES are key=value settings on top of the preset, e.g. batch_size=64,
    max_minutes=10, augment.out_size=48. Results go to out_dir: checkpoint.pt, release.pt
    (float16, for embedding), log.jsonl and loss.png.
    """
    # OpenMP threads that spin while waiting collapse (4x slower, measured) when other
    # processes share the cores; passive waiting costs little when they do not. Read once,
    # when torch loads: this runs before the first torch import of the command.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import json

    from ml.train.config import ConfigError, load_config
    from ml.train.loop import TrainError
    from ml.train.loop import train as run_training

    try:
        config = load_config(config_path, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if show_config:
        click.echo(json.dumps(config.to_dict(), indent=2))
        return
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    try:
        result = run_training(config, resume=resume, overwrite=overwrite)
    except TrainError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{result.reason}: {result.step}/{result.total_steps} steps in "
               f"{result.minutes:.1f} min, last loss {result.loss:.4f}; "
               f"release checkpoint {result.out_dir / 'release.pt'}")
