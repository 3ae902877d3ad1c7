"""Run a checkpoint's encoder over a whole survey, chunk by chunk, resumably, on many ranks.

The work is cut into chunks of consecutive object ids (:class:`ml.embed.output.EmbedPlan`);
under ``torchrun`` rank r takes chunks r, r + W, r + 2W, ... of the chunks not yet done. A
DataLoader worker reads each chunk's cutouts (``Survey.iter_batches``) and cuts their central
crop while the main process runs the network on the previous batch, so reading overlaps
compute and only the pixels the network looks at cross between processes (and to the GPU).
Each finished chunk is written, flushed and marked (:class:`ml.embed.output.EmbedOutput`); after
a barrier rank 0 writes the manifest.

The representations are exactly :meth:`ml.encoder.Encoder.embed`'s: the same preprocessing
(``center_view`` of the crop the reader cut, which is the crop ``center_view`` would cut from
the full cutout) and the same network, one batch per forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ml.augment.geometry import center_offset
from ml.embed.output import REPRESENTATIONS, EmbedOutput, EmbedPlan, EmbedStateError
from ml.encoder import Encoder
from ml.survey import Survey
from ml.train import distributed


class EmbedError(RuntimeError):
    """Embedding cannot go on; the message says why and what to do."""


@dataclass
class EmbedResult:
    folder: Path
    n: int  # objects in the survey
    chunks: int  # chunks in the run
    computed: int  # chunks this rank computed now
    skipped: int  # chunks of this rank already done
    redone: int  # chunks of this rank whose marker or rows were damaged, computed again
    objects: int  # objects this rank computed now
    seconds: float  # wall time of this rank's computation
    complete: bool  # the manifest exists

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0


class ChunkReader(IterableDataset):
    """Batches of central crops of the given chunks: ``(chunk, offset in chunk, crops)``.

    Args:
        survey: the survey (picklable: each DataLoader worker reopens its files).
        chunks: (chunk index, first id, end id) to read, in order.
        batch_size: objects per batch.
        crop: side of the central crop the encoder looks at, in pixels.
    """

    def __init__(self, survey: Survey, chunks: list[tuple[int, int, int]], batch_size: int,
                 crop: int) -> None:
        self.survey, self.chunks, self.batch_size, self.crop = survey, chunks, batch_size, crop

    def __iter__(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        worker = get_worker_info()
        chunks = self.chunks if worker is None else self.chunks[worker.id::worker.num_workers]
        _, height, width = self.survey.image_shape
        y0, x0 = center_offset(height, self.crop), center_offset(width, self.crop)
        for chunk, lo, hi in chunks:
            for batch in self.survey.iter_batches(self.batch_size, start=lo, stop=hi):
                crops = batch.images[:, :, y0:y0 + self.crop, x0:x0 + self.crop]  # (B, 3, c, c)
                yield chunk, int(batch.object_ids[0]) - lo, torch.from_numpy(
                    np.ascontiguousarray(crops))


def run_embed(checkpoint: str | Path, survey_path: str | Path, out: str | Path,
              batch_size: int = 256, chunk_size: int = 4096, dtype: str = "float16",
              device: str = "auto", workers: int = 1, restart: bool = False,
              progress: bool = True, encoder: Encoder | None = None) -> EmbedResult:
    """Embed a survey with a checkpoint (see the module docstring); joins torchrun's group.

    Args:
        checkpoint: a training or release checkpoint.
        survey_path: the survey folder.
        out: the output folder (created, or resumed when it holds this run).
        batch_size: objects per forward pass.
        chunk_size: objects per chunk (the unit of resuming).
        dtype: ``float16`` or ``float32`` arrays.
        device: ``auto``, ``cpu`` or ``cuda`` (under torchrun: this rank's GPU).
        workers: DataLoader reader processes per rank (0: read in this process).
        restart: replace a folder that holds another run instead of refusing.
        progress: show a progress bar (rank 0).
        encoder: an already loaded encoder of ``checkpoint`` (tests); loaded here otherwise.

    Raises:
        EmbedError, EmbedStateError, ml.survey.SurveyError, ml.train.checkpoint.CheckpointError.
    """
    info = distributed.setup(device)
    try:
        if encoder is None:
            encoder = Encoder.from_checkpoint(checkpoint, device=info.device)
        survey = Survey(survey_path)
        return embed_survey(encoder, survey, Path(out), info, batch_size=batch_size,
                            chunk_size=chunk_size, dtype=dtype, workers=workers,
                            restart=restart, progress=progress)
    finally:
        distributed.teardown()


def embed_survey(encoder: Encoder, survey: Survey, out: Path, info: distributed.DistInfo,
                 batch_size: int = 256, chunk_size: int = 4096, dtype: str = "float16",
                 workers: int = 1, restart: bool = False, progress: bool = True,
                 ) -> EmbedResult:
    """The body of :func:`run_embed`, for a loaded encoder and survey on this rank."""
    if batch_size < 1 or workers < 0:
        raise EmbedError(f"batch_size must be >= 1 and workers >= 0 (got {batch_size}, "
                         f"{workers})")
    crop = encoder.augment.crop
    _, height, width = survey.image_shape
    if crop > min(height, width):
        raise EmbedError(f"the model looks at the central {crop} x {crop} pixels but the "
                         f"survey's cutouts are {height} x {width}; embed a survey with larger "
                         "cutouts or use a model trained on smaller crops")
    plan = EmbedPlan(
        checkpoint_path=str(Path(encoder.path).absolute()) if encoder.path else "",
        checkpoint_sha256=encoder.sha256, survey_path=str(survey.path.absolute()),
        survey_fingerprint=survey.fingerprint(), n=survey.n, dims=dict(encoder.dims),
        dtype=dtype, chunk_size=chunk_size)

    # ============ the folder: rank 0 creates or checks it, then every rank opens it ... ====
    output, problem = None, None
    if info.is_main:
        try:
            output = EmbedOutput.prepare(out, plan, restart=restart)
        except EmbedStateError as exc:
            problem = str(exc)
    problem = _from_rank0(problem, info)
    if problem is not None:
        raise EmbedStateError(problem)
    if output is None:
        output = EmbedOutput.attach(out, plan)

    mine = list(range(info.rank, plan.n_chunks, info.world_size))
    done, bad = output.done_chunks(mine)
    output.forget(bad)
    pending = [c for c in mine if c not in done]

    # ============ read, embed, write, chunk by chunk ... ============
    t0 = time.monotonic()
    objects = 0
    if pending:
        objects = _compute(encoder, survey, output, pending, batch_size, workers,
                           progress and info.is_main)
    seconds = time.monotonic() - t0

    # ============ every rank done: the manifest ... ============
    if info.distributed:
        dist.barrier()
    if info.is_main and not output.complete:
        output.write_manifest(seconds)
    return EmbedResult(folder=out, n=plan.n, chunks=plan.n_chunks, computed=len(pending),
                       skipped=len(done), redone=len(bad), objects=objects, seconds=seconds,
                       complete=output.complete)


def _compute(encoder: Encoder, survey: Survey, output: EmbedOutput, chunks: list[int],
             batch_size: int, workers: int, progress: bool) -> int:
    """Embed the given chunks; returns the number of objects embedded."""
    plan = output.plan
    ranges = [(c, *plan.chunk_range(c)) for c in chunks]
    loader = DataLoader(ChunkReader(survey, ranges, batch_size, encoder.augment.crop),
                        batch_size=None, num_workers=workers,
                        pin_memory=encoder.device.type == "cuda",
                        prefetch_factor=2 if workers else None)
    buffers: dict[int, dict[str, np.ndarray]] = {}
    filled: dict[int, int] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(hi - lo for _, lo, hi in ranges)
        bar = tqdm(total=total, unit="obj", desc="embedding", dynamic_ncols=True)
    objects = 0
    try:
        for chunk, offset, crops in loader:
            lo, hi = plan.chunk_range(chunk)
            reps = encoder.embed(crops.to(encoder.device, non_blocking=True),
                                 batch_size=len(crops))
            if chunk not in buffers:
                buffers[chunk] = {name: np.empty((hi - lo, plan.dims[name]), dtype=np.float32)
                                  for name in REPRESENTATIONS}
                filled[chunk] = 0
            for name in REPRESENTATIONS:
                values = reps[name]
                if not np.isfinite(values).all():
                    row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
                    raise EmbedError(
                        f"object {lo + offset + row}'s {name} representation is not finite: "
                        "check its pixels (`galsearch survey-info` / Survey.validate_pixels) "
                        "and the checkpoint")
                buffers[chunk][name][offset:offset + len(values)] = values
            filled[chunk] += len(crops)
            objects += len(crops)
            if bar is not None:
                bar.update(len(crops))
            if filled[chunk] == hi - lo:
                _write(output, chunk, buffers.pop(chunk))
                del filled[chunk]
    finally:
        if bar is not None:
            bar.close()
    return objects


def _write(output: EmbedOutput, chunk: int, rows: dict[str, np.ndarray]) -> None:
    if output.plan.dtype == "float16":
        for name, values in rows.items():
            if np.abs(values).max(initial=0.0) > np.finfo(np.float16).max:
                raise EmbedError(f"{name} representations exceed the float16 range in chunk "
                                 f"{chunk}; embed with --dtype float32")
    output.write_chunk(chunk, rows)


def _from_rank0(message: str | None, info: distributed.DistInfo) -> str | None:
    """Rank 0's error message (or None) on every rank, so that all stop together."""
    if not info.distributed:
        return message
    box = [message]
    dist.broadcast_object_list(box, src=0)
    return box[0]
