"""The learning-rate schedule: linear warm-up, then a half-period cosine (Loshchilov & Hutter)."""

from __future__ import annotations

import math


def lr_at(step: int, total_steps: int, warmup_steps: int, peak_lr: float,
          min_lr_ratio: float = 0.0) -> float:
    """Learning rate of optimizer step ``step`` (0-based) out of ``total_steps``.

    Warm-up rises linearly from peak/warmup to the peak over ``warmup_steps`` steps; the cosine
    then falls from the peak to ``peak x min_lr_ratio`` at the last step.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps - 1)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    floor = peak_lr * min_lr_ratio
    return floor + (peak_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """Goyal et al.'s linear scaling, as MoCo states its rate: base_lr per 256 images."""
    return base_lr * global_batch / 256.0
