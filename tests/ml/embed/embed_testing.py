"""Encoders that misbehave on purpose, for the resume tests (also run in subprocesses)."""

from __future__ import annotations

import time

from ml.encoder import Encoder


class FailingEncoder(Encoder):
    """Raises on its ``fail_at``-th call of :meth:`embed` (counting from 0), like a crash."""

    fail_at = 0
    calls = 0

    def embed(self, images, batch_size=256, progress=False):
        if self.calls == self.fail_at:
            raise RuntimeError("injected failure")
        self.calls += 1
        return super().embed(images, batch_size, progress)


class SlowEncoder(Encoder):
    """Sleeps before each batch, so that a test can kill the process mid-run."""

    delay_s = 0.3

    def embed(self, images, batch_size=256, progress=False):
        time.sleep(self.delay_s)
        return super().embed(images, batch_size, progress)


def slow_run(checkpoint: str, survey: str, out: str) -> None:
    """The subprocess of the SIGKILL test: embed with 4-object batches, 8-object chunks."""
    import torch

    from ml.embed import run_embed

    torch.set_num_threads(1)
    encoder = SlowEncoder.from_checkpoint(checkpoint)
    run_embed(checkpoint, survey, out, batch_size=4, chunk_size=8, workers=0, progress=False,
              encoder=encoder)
