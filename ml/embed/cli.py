"""``galsearch embed --checkpoint CKPT --survey S --out DIR``: representations of a survey.

Many GPUs or nodes: ``torchrun --nproc-per-node=8 -m server.cli embed --checkpoint ... --survey
... --out ...`` (the output folder on a filesystem every node sees); each rank takes its share
of the chunks and rank 0 writes the manifest at the end. A killed run resumes when the same
command is run again: finished chunks are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

DTYPES = ("float16", "float32")  # ml.embed.output.DTYPES, without importing torch for --help


@click.command("embed")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A training or release checkpoint (release.pt, models/*.pt).")
@click.option("--survey", "survey_path", required=True, type=click.Path(file_okay=False),
              help="The survey folder.")
@click.option("--out", required=True, type=click.Path(file_okay=True, path_type=Path),
              help="Output folder: prehead.npy, head.npy, embed_manifest.json.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Objects per forward pass.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Objects per chunk: the unit that is flushed, marked done and resumed.")
@click.option("--dtype", type=click.Choice(DTYPES), default="float16", show_default=True,
              help="Storage type of the arrays.")
@click.option("--device", default="auto", show_default=True,
              type=click.Choice(("auto", "cpu", "cuda")),
              help="auto: this rank's GPU when there is one, else the CPU.")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Reader processes per rank (0: read between forward passes).")
@click.option("--overwrite", is_flag=True,
              help="Replace a folder that holds another run's embeddings (or a damaged one).")
def embed(checkpoint: str, survey_path: str, out: Path, batch_size: int, chunk_size: int,
          dtype: str, device: str, workers: int, overwrite: bool) -> None:
    """Embed every object of a survey with a checkpoint's encoder (resumable)."""
    # OpenMP threads that spin while waiting collapse when other processes share the cores
    # (see `galsearch train`); read once, when torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ml.embed.output import EmbedStateError, clear
    from ml.embed.run import EmbedError, run_embed
    from ml.survey import SurveyError
    from ml.train.checkpoint import CheckpointError

    if out.exists() and not out.is_dir():
        raise click.UsageError(f"--out {out} is a file; give a folder")
    if overwrite and int(os.environ.get("RANK", "0")) == 0:
        clear(out)
    try:
        result = run_embed(checkpoint, survey_path, out, batch_size=batch_size,
                           chunk_size=chunk_size, dtype=dtype, device=device, workers=workers)
    except (EmbedError, EmbedStateError, SurveyError, CheckpointError) as exc:
        raise click.ClickException(str(exc)) from exc
    if int(os.environ.get("RANK", "0")) != 0:
        return
    rate = f", {result.objects_per_s:,.0f} objects/s" if result.objects else ""
    redone = f", {result.redone} damaged chunk(s) computed again" if result.redone else ""
    click.echo(f"embedded {result.objects:,} objects in {result.seconds:.1f} s{rate} "
               f"({result.computed} chunk(s) computed, {result.skipped} already done{redone}); "
               f"{result.n:,} objects in {result.folder}")
