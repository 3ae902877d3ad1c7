"""The training loop on a tiny survey: files, exact resume, stops and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ml.encoder import Encoder
from ml.train import checkpoint as ckpt_io
from ml.train.loop import NonFiniteLossError, TrainError, train


def _states_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            if not _states_equal(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


def test_a_run_writes_checkpoint_release_log_and_plot(tiny_config):
    config = tiny_config(max_steps=4)
    result = train(config)
    assert (result.step, result.total_steps, result.reason) == (4, 4, "done")
    out = result.out_dir
    for name in ("checkpoint.pt", "release.pt", "log.jsonl", "loss.png"):
        assert (out / name).is_file(), name
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train_rows = [e for e in events if e["event"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and 0 <= r["acc1"] <= 1 for r in train_rows)
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "done"

    ckpt = ckpt_io.load(out / "checkpoint.pt")
    assert ckpt["kind"] == "train" and ckpt["step"] == 4
    assert ckpt["config"] == config.to_dict()
    assert ckpt["model_args"]["arch"] == "resnet10"
    assert int(ckpt["model"]["queue_ptr"]) == (4 * 8) % 20  # 4 steps of 8 keys into K = 20
    release = ckpt_io.load(out / "release.pt")
    assert release["kind"] == "release"
    assert all(v.dtype == torch.float16 for v in release["encoder"].values()
               if v.is_floating_point())
    assert "model" not in release and "optimizer" not in release


def test_resume_reproduces_the_uninterrupted_run_exactly(tiny_config, tmp_path):
    # bn_mode="groups" draws permutations from torch's generator and the augmentations from
    # theirs: both must be restored for the steps after the pause to match
    uninterrupted = tiny_config(out_dir=str(tmp_path / "a"), max_steps=5)
    train(uninterrupted)

    paused = tiny_config(out_dir=str(tmp_path / "b"), max_steps=5, stop_at_step=3)
    result = train(paused)
    assert (result.step, result.reason) == (3, "paused")
    assert not (tmp_path / "b" / "release.pt").exists()  # not a finished model
    result = train(tiny_config(out_dir=str(tmp_path / "b"), max_steps=5), resume=True)
    assert (result.step, result.reason) == (5, "done")

    a = ckpt_io.load(tmp_path / "a" / "checkpoint.pt")
    b = ckpt_io.load(tmp_path / "b" / "checkpoint.pt")
    assert _states_equal(a["model"], b["model"])  # both encoders, queue and pointer
    assert _states_equal(a["optimizer"], b["optimizer"])
    assert torch.equal(a["rng"][0]["augment"], b["rng"][0]["augment"])
    losses = {}
    for run in ("a", "b"):
        rows = [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()
                if '"train"' in line]
        losses[run] = {r["step"]: r["loss"] for r in rows}
    assert losses["a"] == losses["b"]


def test_resume_refuses_other_settings_but_accepts_run_control_changes(tiny_config):
    train(tiny_config(max_steps=4, stop_at_step=2))
    with pytest.raises(TrainError, match=r"base_lr: checkpoint 0\.03, now 0\.5"):
        train(tiny_config(max_steps=4, base_lr=0.5), resume=True)
    result = train(tiny_config(max_steps=4, log_every=3, checkpoint_every=7), resume=True)
    assert result.step == 4


def test_an_existing_run_is_not_overwritten_by_accident(tiny_config):
    train(tiny_config(max_steps=1))
    with pytest.raises(TrainError, match="already holds a run"):
        train(tiny_config(max_steps=1))
    assert train(tiny_config(max_steps=2), overwrite=True).step == 2
    with pytest.raises(TrainError, match="no checkpoint"):
        train(tiny_config(max_steps=1, out_dir=str(tiny_config().out_dir) + "-new"), resume=True)


def test_non_finite_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tiny_config):
    # an absurd learning rate blows the weights up within a few steps
    config = tiny_config(max_steps=40, base_lr=1e12, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match=r"the loss became (nan|inf).*last good"):
        train(config)
    ckpt = ckpt_io.load(f"{config.out_dir}/checkpoint.pt")
    assert 0 < ckpt["step"] < 40
    lines = Path(config.out_dir, "log.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    stop = [e for e in events if e["event"] == "stop"]
    assert stop and stop[0]["reason"] == "non-finite loss" and stop[0]["step"] == ckpt["step"]


def test_time_budget_stops_with_a_usable_release(tiny_config):
    # a budget below the reserve for the final writes: the run stops after its first step
    result = train(tiny_config(max_steps=1000, max_minutes=0.01))
    assert result.reason == "time budget" and 1 <= result.step < 1000
    encoder = Encoder.from_checkpoint(result.out_dir / "release.pt")
    assert encoder.dims == {"prehead": 64, "head": 128}


def test_the_schedule_is_fitted_to_the_budget_three_times(tiny_config, monkeypatch):
    """First from ten steps after start-up, then again a quarter and 60% into the budget, each
    from the speed since the fit before (up to the configured length): the first fit alone
    misjudged steady runs, and one refit left its margin of a long remainder unused."""
    from ml.train import loop

    monkeypatch.setattr(loop, "BUDGET_RESERVE_S", 0.5)
    result = train(tiny_config(max_steps=100_000, max_minutes=0.05))  # 3 s
    events = [json.loads(line) for line in
              Path(result.out_dir, "log.jsonl").read_text().splitlines()]
    [first] = [e for e in events if e["event"] == "calibrate"]
    refits = [e for e in events if e["event"] == "refit"]
    assert first["step"] == 21 and len(refits) == len(loop.REFIT_AT) == 2
    before = first
    for again in refits:
        assert again["step"] >= before["step"] + 10
        assert again["planned_steps"] == 100_000  # may lengthen a fit, up to max_steps
        assert again["step"] <= again["total_steps"] <= 100_000
        before = again
    end = events[-1]
    assert end["event"] == "end" and end["total_steps"] == refits[-1]["total_steps"]


def test_a_fit_never_ends_before_the_current_step_nor_after_the_cap():
    from ml.train.loop import BUDGET_RESERVE_S, CALIBRATION_MARGIN, _fit_steps

    left = 60 * 10 - BUDGET_RESERVE_S - 100  # seconds of a 10-minute budget, 100 s in
    assert _fit_steps(50, 10_000, 0.5, 100, 10) == 50 + int(CALIBRATION_MARGIN * left / 0.5)
    assert _fit_steps(50, 300, 0.5, 100, 10) == 300
    assert _fit_steps(50, 10_000, 0.5, 700, 10) == 50  # over budget already


def test_missing_augment_stats_is_a_clear_error(tiny_config, tmp_path):
    survey = tmp_path / "no_stats"
    survey.mkdir()
    for path in Path(tiny_config().survey).glob("*.h5"):
        (survey / path.name).write_bytes(path.read_bytes())
    with pytest.raises(TrainError, match="fit-augment"):
        train(tiny_config(survey=str(survey)))
