"""precision = "auto": bf16 against fp32 timed on CPUs, the trial invisible, the choice kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch.utils._pytree import tree_flatten

from ml.moco import build_moco
from ml.train import checkpoint as ckpt_io
from ml.train import precision
from ml.train.distributed import DistInfo
from ml.train.loop import train
from ml.train.step import contrastive_loss

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _identical(a, b) -> bool:
    """Nested states (dicts, lists, tensors, numbers) equal bit for bit."""
    leaves_a, spec_a = tree_flatten(a)
    leaves_b, spec_b = tree_flatten(b)
    return spec_a == spec_b and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
        for x, y in zip(leaves_a, leaves_b, strict=True))


def _no_trial() -> dict[str, float]:
    raise AssertionError("no trial expected")


def _timings(fp32: float, bf16: float):
    """A timer that runs each trial step and reports the given seconds for its precision."""
    def timer(name, step):
        step()
        return {"fp32": fp32, "bf16": bf16}[name]
    return timer


def _events(out_dir, event: str) -> list[dict]:
    rows = [json.loads(line) for line in Path(out_dir, "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r["event"] == event]


@pytest.mark.parametrize(("fp32", "bf16", "chosen"), [
    (0.30, 0.20, "bf16"), (0.20, 0.30, "fp32"), (0.25, 0.25, "fp32"),
])
def test_auto_keeps_the_faster_precision(monkeypatch, fp32, bf16, chosen):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    choice = precision.choose("auto", CPU, lambda: {"fp32": fp32, "bf16": bf16})
    assert choice == precision.PrecisionChoice(chosen, "timed", {"fp32": fp32, "bf16": bf16})
    assert choice.autocast_dtype == (torch.bfloat16 if chosen == "bf16" else None)


def test_auto_is_fp32_without_cpu_bf16_and_bf16_on_cuda_untimed(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    assert precision.choose("auto", CPU, _no_trial) == precision.PrecisionChoice(
        "fp32", "no cpu bf16")
    gpu = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cuda", 0))
    assert precision.choose("auto", gpu, _no_trial).precision == "bf16"
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    for name in ("fp32", "bf16"):  # set explicitly: as set
        assert precision.choose(name, CPU, _no_trial) == precision.PrecisionChoice(name, "set")


def test_the_trial_leaves_model_queue_optimizer_and_generators_as_they_were(tiny_config):
    model = build_moco(tiny_config().model_args())
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.1, momentum=0.9,
                                weight_decay=1e-4)
    generator = torch.Generator().manual_seed(5)

    def views():
        return (torch.randn(8, 3, 16, 16, generator=generator),
                torch.randn(8, 3, 16, 16, generator=generator))

    loss, _ = contrastive_loss(model, *views(), None)  # a real step first: momentum buffers
    loss.backward()
    optimizer.step()
    before = ({k: v.clone() for k, v in model.state_dict().items()},
              copy.deepcopy(optimizer.state_dict()), ckpt_io.rng_state(generator))

    steps = []

    def timer(name, step):
        step()
        steps.append((name, int(model.queue_ptr)))
        return 0.1

    seconds = precision.trial_seconds(model, optimizer, generator, views, timer)
    assert seconds == {"fp32": 0.1, "bf16": 0.1}
    assert [name for name, _ in steps] == ["fp32", "bf16", "bf16", "fp32"] * 2
    assert {ptr for _, ptr in steps} != {int(before[0]["queue_ptr"])}  # the steps did train
    after = (dict(model.state_dict()), optimizer.state_dict(), ckpt_io.rng_state(generator))
    # both encoders, BN statistics, the queue; momentum buffers, learning rates; every generator
    assert _identical(before, after)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("faster", ["bf16", "fp32"])
def test_a_run_with_auto_trains_as_the_run_with_its_choice_set(tiny_config, tmp_path,
                                                                 monkeypatch, faster):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    slow, fast = 0.3, 0.2
    monkeypatch.setattr(precision, "wall_seconds", _timings(
        fp32=fast if faster == "fp32" else slow, bf16=fast if faster == "bf16" else slow))
    train(tiny_config(out_dir=str(tmp_path / "auto"), precision="auto", max_steps=3))
    train(tiny_config(out_dir=str(tmp_path / "set"), precision=faster, max_steps=3))

    [event] = _events(tmp_path / "auto", "precision")
    assert (event["precision"], event["source"]) == (faster, "timed")
    assert set(event["seconds_per_step"]) == {"fp32", "bf16"}
    a = ckpt_io.load(tmp_path / "auto" / "checkpoint.pt")
    b = ckpt_io.load(tmp_path / "set" / "checkpoint.pt")
    assert a["precision"] == b["precision"] == faster
    assert _identical(a["model"], b["model"]) and _identical(a["optimizer"], b["optimizer"])
    assert _identical(a["rng"], b["rng"])
    losses = [[r["loss"] for r in _events(tmp_path / run, "train")] for run in ("auto", "set")]
    assert losses[0] == losses[1]


def test_the_choice_is_stored_and_reused_on_resume(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    monkeypatch.setattr(precision, "wall_seconds", _timings(fp32=0.3, bf16=0.2))
    out = tmp_path / "auto"
    train(tiny_config(out_dir=str(out), precision="auto", max_steps=4, stop_at_step=2))
    assert ckpt_io.load(out / "checkpoint.pt")["precision"] == "bf16"

    def no_timing(name, step):
        raise AssertionError("a resumed run must not time again")

    monkeypatch.setattr(precision, "wall_seconds", no_timing)
    train(tiny_config(out_dir=str(out), precision="auto", max_steps=4), resume=True)
    assert [(e["precision"], e["source"]) for e in _events(out, "precision")] == [
        ("bf16", "timed"), ("bf16", "checkpoint")]
    assert _events(out, "resume")[0]["precision"] == "bf16"
    train(tiny_config(out_dir=str(tmp_path / "set"), precision="bf16", max_steps=4))
    a = ckpt_io.load(out / "checkpoint.pt")
    b = ckpt_io.load(tmp_path / "set" / "checkpoint.pt")
    assert _identical(a["model"], b["model"]) and _identical(a["optimizer"], b["optimizer"])


def test_a_checkpoint_without_a_recorded_precision_resumes_as_auto_meant_then(tiny_config,
                                                                              monkeypatch):
    """Runs from before the trial: "auto" was fp32 on CPUs, and stays so for them."""
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    monkeypatch.setattr(precision, "wall_seconds", _timings(fp32=0.3, bf16=0.2))
    config = tiny_config(precision="auto", max_steps=3, stop_at_step=1)
    train(config)
    path = Path(config.out_dir, "checkpoint.pt")
    ckpt = ckpt_io.load(path)
    del ckpt["precision"]
    ckpt_io.atomic_save(ckpt, path)
    train(tiny_config(precision="auto", max_steps=3), resume=True)
    assert _events(config.out_dir, "precision")[-1]["precision"] == "fp32"
