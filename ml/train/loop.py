"""MoCo v2 training: one function, sections marked, every decision visible.

``train(config)`` reads a survey, augments each batch twice on the training device, and trains
:class:`ml.moco.MoCo` with SGD and a warm-up + cosine schedule. It writes into
``config.out_dir``: ``checkpoint.pt`` (exact resume), ``release.pt`` (float16, for
:class:`ml.encoder.Encoder`), ``log.jsonl`` and ``loss.png``. Under ``torchrun`` each process
trains on its share of every global batch (DDP); rank 0 writes the files.

Exact resume: the checkpoint holds the model (with its queue), the optimizer, the step, the
schedule's length, the precision (``"auto"`` times fp32 against bf16 on CPUs once, at the
start: :mod:`ml.train.precision`) and every generator (torch, CUDA, numpy, python, the
augmentations', per rank); the sampler is a pure function of the step. A resumed run takes
the same next step as an uninterrupted one, bit for bit on the same hardware and thread count.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ml.augment import Augment, AugmentStats
from ml.moco import build_moco
from ml.survey import Survey
from ml.train import checkpoint as ckpt_io
from ml.train import distributed
from ml.train import precision as precision_mod
from ml.train.config import RUN_CONTROL_FIELDS, TrainConfig
from ml.train.data import ShuffledBatches, make_loader
from ml.train.runlog import RunLog, plot_loss
from ml.train.schedule import lr_at, scaled_lr
from ml.train.step import contrastive_loss, two_views

# seconds kept free at the end of a time budget for the last checkpoint, release and plot
BUDGET_RESERVE_S = 15.0
# the schedule is fitted to this fraction of the remaining budget: a shared machine slows down
# unpredictably, and a cosine that reaches its end beats one cut off by the hard stop
CALIBRATION_MARGIN = 0.9
# once each of these shares of the budget has passed, the schedule is fitted again from the
# speed since the fit before (up to the configured length). The first fit's ten steps, taken
# while the loader fills its queue and the page cache warms, judged a demo run at 0.47 s/step
# that then ran at 0.37 s/step, and it finished in 8 of its 11 minutes. With one refit, a
# quarter in, a demo run fitted 0.90 x its last 8.3 minutes at 0.346 s/step, went on at 0.31
# and ended after 9.2 of 11 minutes; the later refit leaves the margin of a shorter remainder.
REFIT_AT = (0.25, 0.6)


class TrainError(RuntimeError):
    """Training cannot start or cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    out_dir: Path
    step: int  # optimizer steps done
    total_steps: int  # the schedule's length
    reason: str  # "done", "time budget", "paused" (stop_at_step)
    loss: float  # mean loss of the last logged interval
    minutes: float


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train MoCo v2 as ``config`` says; see the module docstring for the files written.

    Args:
        config: the run's settings.
        resume: continue from ``<out_dir>/checkpoint.pt`` (its maths settings must match).
        overwrite: start afresh even if ``out_dir`` holds a checkpoint.

    Raises:
        TrainError: a clear message on bad set-up; NonFiniteLossError when the loss blows up.
    """
    info = distributed.setup(config.device)
    try:
        return _train(config, info, resume, overwrite)
    finally:
        distributed.teardown()


def _train(config: TrainConfig, info: distributed.DistInfo, resume: bool,
           overwrite: bool) -> TrainResult:
    t_start = time.monotonic()
    device = info.device
    # ============ run folder and resume ... ============
    out_dir = Path(config.out_dir)
    ckpt_path, release_path = out_dir / ckpt_io.CHECKPOINT_NAME, out_dir / ckpt_io.RELEASE_NAME
    if resume and not ckpt_path.exists():
        raise TrainError(f"--resume: no checkpoint at {ckpt_path}")
    if ckpt_path.exists() and not (resume or overwrite):
        raise TrainError(f"{out_dir} already holds a run ({ckpt_path.name}); pass --resume to "
                         "continue it, --overwrite to start again, or set out_dir=...")
    saved = ckpt_io.load(ckpt_path) if resume else None
    if saved is not None:
        _check_resumable(saved["config"], config)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if overwrite and not resume:
            for name in (ckpt_io.CHECKPOINT_NAME, ckpt_io.RELEASE_NAME, "log.jsonl", "loss.png"):
                (out_dir / name).unlink(missing_ok=True)
    log = RunLog(out_dir, enabled=info.is_main)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed + info.rank)

    # ============ data and augmentations ... ============
    try:
        survey = Survey(config.survey)
        stats = AugmentStats.load(config.survey)
    except (OSError, ValueError) as exc:  # SurveyError, AugmentStatsError are ValueErrors
        raise TrainError(str(exc)) from exc
    augment = Augment(config.augment, stats)
    sampler = ShuffledBatches(survey.n, config.batch_size, info.rank, info.world_size,
                              seed=config.seed)
    global_batch = config.batch_size * info.world_size
    planned_steps = config.max_steps or math.ceil(config.epochs * sampler.steps_per_epoch)
    warmup_steps = round(config.warmup_epochs * sampler.steps_per_epoch)
    peak_lr = scaled_lr(config.base_lr, global_batch)

    # ============ model and optimizer ... ============
    _check_bn_mode(config, info)
    model: nn.Module = build_moco(config.model_args())
    if config.bn_mode == "sync":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=peak_lr,
                                momentum=config.sgd_momentum, weight_decay=config.weight_decay)
    generator = torch.Generator(device=device).manual_seed(1_000_003 * config.seed + info.rank)

    step, total_steps, calibrated = 0, planned_steps, config.max_minutes <= 0
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        step, total_steps, calibrated = saved["step"], saved["total_steps"], saved["calibrated"]
        rngs = saved["rng"]
        if len(rngs) == info.world_size:
            ckpt_io.set_rng_state(rngs[info.rank], generator)
        else:  # a different number of ranks cannot replay the same draws: reseed per step
            torch.manual_seed(config.seed + info.rank + 7919 * step)
            generator.manual_seed(1_000_003 * config.seed + info.rank + 7919 * step)
            log.write("warning", step=step, message=(
                f"resumed on {info.world_size} ranks, trained on {len(rngs)}: the global "
                "batch, learning rate and random draws differ from an uninterrupted run"))
        sampler.start_step = step
    net = model
    if info.distributed:
        # the queue is identical on every rank (gathered keys), so buffers need no broadcast
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False)
    loader = make_loader(survey, sampler, config.num_workers, pin_memory=device.type == "cuda")
    it = iter(loader)

    # ============ precision: the checkpoint's, or chosen (timed on the first batch) ... ==========
    def trial() -> dict[str, float]:  # the bare module on every rank, not DDP (ml.train.precision)
        nonlocal it
        batch = next(it)
        it = itertools.chain([batch], it)  # the run trains on it next, as if never seen
        return precision_mod.trial_seconds(model, optimizer, generator, lambda: two_views(
            augment, batch, device, generator, config.channels_last))

    if saved is not None:
        choice = precision_mod.PrecisionChoice(
            saved.get("precision") or precision_mod.static_precision(config.precision, device),
            "checkpoint")
    else:
        choice = precision_mod.choose(config.precision, info, trial)
    amp = choice.autocast_dtype

    n_params = sum(p.numel() for p in model.encoder_q.parameters())
    log.write("start" if saved is None else "resume", step=step, total_steps=total_steps,
              world_size=info.world_size, device=str(device), precision=choice.precision,
              objects=survey.n, steps_per_epoch=sampler.steps_per_epoch, peak_lr=peak_lr,
              encoder_parameters=n_params, config=config.to_dict())
    log.write("precision", step=step, **choice.log_fields())
    bar = None
    if info.is_main and config.progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, unit="step", desc="training MoCo",
                   dynamic_ncols=True)
        bar.write(choice.describe())

    # ============ training loop ... ============
    def save(reason: str) -> None:  # collective: every rank calls it at the same step
        nonlocal last_saved
        state = _checkpoint(config, model, optimizer, stats, step, total_steps, calibrated,
                            choice.precision, generator, info, metrics)
        if info.is_main:
            ckpt_io.atomic_save(state, ckpt_path)
            log.write("checkpoint", step=step, reason=reason)
        last_saved = step

    metrics: dict[str, float] = {}
    loss_sum = acc_sum = 0.0
    n_sum = 0
    t_log = t_calib = time.monotonic()
    steps_at_calib_start = step
    fitted_at: tuple[int, float] | None = None  # (step, time) of this session's last fit
    refits = iter(REFIT_AT)  # budget shares at which the schedule is fitted again
    refit_at = next(refits, None)
    last_saved = step if saved is not None else -1
    reason = "done"
    try:
        while step < total_steps:
            batch = next(it)
            lr = lr_at(step, total_steps, warmup_steps, peak_lr, config.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            im_q, im_k = two_views(augment, batch, device, generator, config.channels_last)
            loss, logits = contrastive_loss(net, im_q, im_k, amp)
            loss_value = loss.item()
            if distributed.any_rank(not math.isfinite(loss_value), info):
                log.write("stop", step=step, reason="non-finite loss", loss=loss_value, lr=lr)
                raise NonFiniteLossError(
                    f"the loss became {loss_value} at step {step} (lr {lr:.3g}); training "
                    f"stopped. {_last_good(ckpt_path, last_saved)}: lower base_lr "
                    "or raise warmup_epochs, then start again or --resume")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss_value
            acc_sum += (logits.detach().argmax(dim=1) == 0).float().mean().item()
            n_sum += 1

            if not calibrated and step - steps_at_calib_start == config.calibration_steps + 1:
                t_calib = time.monotonic()  # the first step pays for start-up: time from here
            fit = None  # (event, cap, seconds per step): fit the schedule to the budget now
            if not calibrated and step - steps_at_calib_start == 2 * config.calibration_steps + 1:
                now = time.monotonic()
                fit = ("calibrate", total_steps, (now - t_calib) / config.calibration_steps)
                calibrated = True
                fitted_at = (step, now)
            elif (fitted_at is not None and refit_at is not None
                  and step - fitted_at[0] >= config.calibration_steps
                  and distributed.broadcast_flag(
                      time.monotonic() - t_start >= refit_at * 60 * config.max_minutes, info)):
                now = time.monotonic()
                fit = ("refit", planned_steps, (now - fitted_at[1]) / max(1, step - fitted_at[0]))
                fitted_at, refit_at = (step, now), next(refits, None)
            if fit is not None:
                event, cap, sec_per_step = fit
                total_steps = _calibrate(config, info, step, cap, sec_per_step, now - t_start,
                                         log, event)
                warmup_steps = min(warmup_steps, total_steps)
                if bar is not None:
                    bar.total = total_steps
                    bar.refresh()

            if step % config.log_every == 0 or step == total_steps:
                elapsed = time.monotonic() - t_log
                metrics = {"loss": distributed.mean_over_ranks(loss_sum / n_sum, info),
                           "acc1": distributed.mean_over_ranks(acc_sum / n_sum, info)}
                log.write("train", step=step, epoch=round(step / sampler.steps_per_epoch, 4),
                          lr=lr, images_per_s=round(n_sum * global_batch / elapsed, 2),
                          minutes=round((time.monotonic() - t_start) / 60, 3), **metrics)
                loss_sum = acc_sum = 0.0
                n_sum = 0
                t_log = time.monotonic()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.3g}")

            if step == config.stop_at_step and step < total_steps:
                reason = "paused"
                log.write("stop", step=step, reason=reason)
                break
            over_budget = (config.max_minutes > 0 and
                           time.monotonic() - t_start > 60 * config.max_minutes - BUDGET_RESERVE_S)
            if distributed.broadcast_flag(over_budget, info) and step < total_steps:
                reason = "time budget"
                log.write("stop", step=step, reason=reason)
                break
            if step % config.checkpoint_every == 0 and step < total_steps:
                save("periodic")
    finally:
        if bar is not None:
            bar.close()
        del it

    # ============ final checkpoint, release, plot ... ============
    if n_sum:
        metrics = {"loss": distributed.mean_over_ranks(loss_sum / n_sum, info),
                   "acc1": distributed.mean_over_ranks(acc_sum / n_sum, info)}
    if step != last_saved:
        save(reason)
    minutes = (time.monotonic() - t_start) / 60
    if info.is_main:
        if reason == "paused":  # not a finished model: no release until the run ends
            release_path.unlink(missing_ok=True)
        else:
            ckpt_io.atomic_save(ckpt_io.release_from(ckpt_io.load(ckpt_path)), release_path)
        log.write("end", step=step, total_steps=total_steps, reason=reason,
                  minutes=round(minutes, 3), **metrics)
        plot_loss(log)
    return TrainResult(out_dir, step, total_steps, reason, metrics.get("loss", math.nan), minutes)


# -- pieces of the loop -------------------------------------------------------------------------
def _calibrate(config: TrainConfig, info: distributed.DistInfo, step: int, cap: int,
               sec_per_step: float, elapsed_s: float, log: RunLog, event: str) -> int:
    """The schedule's length that fits the rest of the time budget at ``sec_per_step``, at most
    ``cap`` and at least ``step`` (rank 0 decides)."""
    total = _fit_steps(step, cap, sec_per_step, elapsed_s, config.max_minutes)
    if info.distributed:
        t = torch.tensor([total], dtype=torch.int64, device=info.device)
        dist.broadcast(t, src=0)
        total = int(t.item())
    log.write(event, step=step, seconds_per_step=round(sec_per_step, 4), planned_steps=cap,
              total_steps=total)
    return total


def _fit_steps(step: int, cap: int, sec_per_step: float, elapsed_s: float,
               max_minutes: float) -> int:
    remaining = CALIBRATION_MARGIN * (60 * max_minutes - BUDGET_RESERVE_S - elapsed_s)
    return max(step, min(cap, step + max(0, int(remaining / sec_per_step))))


def _last_good(ckpt_path: Path, last_saved: int) -> str:
    if last_saved < 0:
        return "No checkpoint was saved before it"
    return f"The last good checkpoint, step {last_saved}, is kept at {ckpt_path}"


def _checkpoint(config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                stats: AugmentStats, step: int, total_steps: int, calibrated: bool,
                precision: str, generator: torch.Generator, info: distributed.DistInfo,
                metrics: dict[str, float]) -> dict:
    rng = ckpt_io.rng_state(generator)
    rngs = [rng]
    if info.distributed:
        rngs = [None] * info.world_size
        dist.all_gather_object(rngs, rng)
    return {
        "format": ckpt_io.FORMAT, "version": ckpt_io.VERSION, "kind": "train",
        "config": config.to_dict(), "model_args": config.model_args().to_dict(),
        "augment_stats": stats.to_dict(), "step": step, "total_steps": total_steps,
        "calibrated": calibrated, "precision": precision, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "rng": rngs, "metrics": dict(metrics),
    }


def _check_resumable(saved: dict, config: TrainConfig) -> None:
    current = config.to_dict()
    differ = sorted(k for k in set(saved) | set(current)
                    if k not in RUN_CONTROL_FIELDS and saved.get(k) != current.get(k))
    if differ:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}"
                            for k in differ)
        raise TrainError("cannot resume: the checkpoint was trained with other settings "
                         f"({details}). Only {sorted(RUN_CONTROL_FIELDS)} may change on resume.")


def _check_bn_mode(config: TrainConfig, info: distributed.DistInfo) -> None:
    if config.bn_mode == "ddp" and not info.distributed:
        raise TrainError("bn_mode='ddp' shuffles keys across ranks and needs torchrun with 2+ "
                         "processes; on one process use bn_mode='groups'")
    if config.bn_mode == "sync" and info.device.type != "cuda":
        raise TrainError("bn_mode='sync' (SyncBatchNorm) runs on GPUs only; use 'groups'")
