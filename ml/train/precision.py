"""Which precision a run trains in; ``precision = "auto"`` times both on CPUs.

- ``"fp32"``, ``"bf16"`` (bfloat16 autocast): as set.
- ``"auto"`` on CUDA: bf16.
- ``"auto"`` on a CPU without bfloat16 arithmetic (:func:`cpu_bf16_supported`): fp32.
- ``"auto"`` on a CPU with it: measured. Once the model, the optimizer and the first batch
  exist, real training steps (query and key forward, momentum update, queue, loss, backward,
  SGD step) run on one pair of views of that batch, 1 warm-up and 3 timed steps per precision,
  interleaved (fp32, bf16, bf16, fp32, ...) so that a change in the machine's load hits both;
  the precision with the lower median wins (fp32 on a tie). The same CPU family (AMD EPYC with
  avx512_bf16) made the demo's MoCo step 1.3x faster in bf16 one day and 1.3x slower another
  (``benchmarks/results/demo_runs.md``): a fixed rule is wrong on one of them.

The trial changes nothing the run goes on with: the model (both encoders, BN statistics, the
queue and its pointer), the optimizer (momentum buffers, learning rates) and every generator
(torch, CUDA, numpy, python, the augmentations') are restored afterwards, so a run with
``"auto"`` takes the same steps, bit for bit, as one with its choice set explicitly. The choice
is stored in the checkpoint (``precision``) and a resumed run reuses it without timing again.
Under DDP every rank runs the trial steps on the bare module (the ``"ddp"`` BN shuffle's
collectives line up; DDP's gradient all-reduce is fp32 in both precisions and is left out), the
medians are averaged over ranks and rank 0's decision is broadcast.
"""

from __future__ import annotations

import copy
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ml.train import checkpoint as ckpt_io
from ml.train import distributed
from ml.train.step import contrastive_loss

TRIAL_WARMUP = 1  # untimed steps per precision (kernel selection, caches)
TRIAL_STEPS = 3  # timed steps per precision; the median counts
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}

# (precision, one trial step) -> its seconds: tests pass one to decide without real speed
StepTimer = Callable[[str, Callable[[], object]], float]


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "fp32" or "bf16"
    # "set" (the config), "cuda", "no cpu bf16", "timed", "checkpoint" (a resumed run)
    source: str
    seconds_per_step: dict[str, float] | None = None  # median trial step, when timed

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return AUTOCAST_DTYPES[self.precision]

    def log_fields(self) -> dict[str, object]:
        """The ``precision`` record of ``log.jsonl`` (timings rounded to 0.1 ms)."""
        seconds = self.seconds_per_step
        return {"precision": self.precision, "source": self.source, "seconds_per_step":
                seconds and {name: round(s, 4) for name, s in seconds.items()}}

    def describe(self) -> str:
        text = f"precision {self.precision} ({self.source}"
        if self.seconds_per_step:
            text += ": " + ", ".join(f"{name} {s:.4f} s/step"
                                     for name, s in self.seconds_per_step.items())
        return text + ")"


def static_precision(precision: str, device: torch.device) -> str:
    """The choice without measurement: what is set, and for ``"auto"`` bf16 on CUDA only (also
    what ``"auto"`` meant for checkpoints that do not record their precision)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return "bf16"
    return "fp32"


def choose(precision: str, info: distributed.DistInfo,
           trial: Callable[[], dict[str, float]]) -> PrecisionChoice:
    """The run's precision; ``trial()`` (seconds per step by precision) runs only when it must.

    Collective under DDP: every rank calls it and gets rank 0's choice.
    """
    if precision != "auto":
        return PrecisionChoice(precision, "set")
    if info.device.type == "cuda":
        return PrecisionChoice("bf16", "cuda")
    if distributed.any_rank(not cpu_bf16_supported(), info):
        return PrecisionChoice("fp32", "no cpu bf16")
    seconds = {name: distributed.mean_over_ranks(s, info) for name, s in trial().items()}
    bf16 = distributed.broadcast_flag(faster(seconds) == "bf16", info)
    return PrecisionChoice("bf16" if bf16 else "fp32", "timed", seconds)


def faster(seconds: dict[str, float]) -> str:
    """The precision of fewer seconds per step in ``{"fp32": s, "bf16": s}``; fp32 on a tie."""
    return "bf16" if seconds["bf16"] < seconds["fp32"] else "fp32"


def cpu_bf16_supported() -> bool:
    """Whether this CPU computes in bfloat16: AVX512-BF16 on x86 (AMX CPUs have it too),
    oneDNN's check elsewhere (the BF16 extension on Arm). oneDNN's check alone also passes on
    any AVX-512 CPU, where it emulates bf16, slower than fp32."""
    try:
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            return bool(torch.cpu._is_avx512_bf16_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private helpers: another torch may lack them
        return False


def wall_seconds(precision: str, step: Callable[[], object]) -> float:
    """The default :data:`StepTimer`: wall-clock seconds of one call (CPU steps: no sync)."""
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def trial_seconds(model: nn.Module, optimizer: torch.optim.Optimizer,
                  generator: torch.Generator,
                  views: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                  timer: StepTimer | None = None) -> dict[str, float]:
    """Median seconds of a training step in each precision, with everything it changed restored.

    Args:
        model: the MoCo module (not its DDP wrapper).
        optimizer: the run's SGD optimizer; its learning rates are 0 during the trial (the same
            work, and the weights every trial step sees are the run's).
        generator: the augmentations' generator (restored with torch's, numpy's, python's).
        views: makes the query and key views of the first batch; called once, inside the
            restored span, and every trial step trains on them.
        timer: seconds of one step, :func:`wall_seconds` by default.

    Returns:
        ``{"fp32": s, "bf16": s}``, the median of :data:`TRIAL_STEPS` timed steps each.
    """
    timer = timer or wall_seconds

    def step(amp: torch.dtype | None) -> None:
        loss, _ = contrastive_loss(model, im_q, im_k, amp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times: dict[str, list[float]] = {name: [] for name in AUTOCAST_DTYPES}
    with restored(model, optimizer, generator):
        im_q, im_k = views()
        for group in optimizer.param_groups:
            group["lr"] = 0.0
        for i in range(TRIAL_WARMUP + TRIAL_STEPS):
            order = list(AUTOCAST_DTYPES) if i % 2 == 0 else list(AUTOCAST_DTYPES)[::-1]
            for name in order:
                seconds = timer(name, partial(step, AUTOCAST_DTYPES[name]))
                if i >= TRIAL_WARMUP:
                    times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


@contextmanager
def restored(model: nn.Module, optimizer: torch.optim.Optimizer,
             generator: torch.Generator) -> Iterator[None]:
    """Puts back, when the block ends, what training steps change: the model's parameters and
    buffers, the optimizer's state and settings, every generator; gradients end as None."""
    model_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    rng = ckpt_io.rng_state(generator)
    try:
        yield
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        optimizer.zero_grad(set_to_none=True)
        ckpt_io.set_rng_state(rng, generator)
