"""Two CPU processes under torchrun (gloo): DDP with keys shuffled across ranks trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml.train import checkpoint as ckpt_io

pytestmark = pytest.mark.slow


def test_two_process_gloo_run_trains(tiny_survey, tmp_path):
    out = tmp_path / "ddp"
    settings = [
        f"survey={tiny_survey}", f"out_dir={out}", "arch=resnet10", "width=8",
        "small_stem=true", "queue_size=24", "batch_size=4", "bn_mode=ddp", "max_steps=6",
        "num_workers=0", "log_every=2", "checkpoint_every=3", "threads=1", "progress=false",
        "augment.crop=24", "device=cpu", "precision=auto",
    ]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "server.cli", "train", *settings]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env,
                          cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr[-3000:]

    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["world_size"] == 2
    assert start["steps_per_epoch"] == 64 // (4 * 2)
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses) == 3 and all(0 < loss < 20 for loss in losses)
    ckpt = ckpt_io.load(out / "checkpoint.pt")
    assert ckpt["step"] == 6
    # every step enqueued the keys of both ranks: 6 steps x 8 keys into K = 24
    assert int(ckpt["model"]["queue_ptr"]) == (6 * 8) % 24
    assert len(ckpt["rng"]) == 2  # each rank's generators, for an exact resume
    # "auto" on a CPU: both ranks ran the trial steps (their BN shuffles' collectives matched)
    [choice] = [e for e in events if e["event"] == "precision"]
    assert choice["source"] in ("timed", "no cpu bf16") and choice["precision"] == ckpt["precision"]
    assert (out / "release.pt").is_file()
