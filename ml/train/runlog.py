"""A run's record: JSON lines (``log.jsonl``) and the loss curve (``loss.png``).

Every record is one JSON object per line with an ``event`` ("start", "precision", "train",
"calibrate", "refit", "checkpoint", "stop", "end"), so a resumed run appends to the same file
and tools can replay it. "calibrate" and each "refit" give the schedule's new length
(``total_steps``) and the speed it was fitted from (``seconds_per_step``). "precision" says what each session trains in and why (``source``: "set", "cuda",
"no cpu bf16", "timed" with both trial timings in ``seconds_per_step``, "checkpoint"). The plot
is redrawn from the file, so it always shows the whole run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"


class RunLog:
    """Append-only JSON-lines log; a no-op on ranks other than 0."""

    def __init__(self, out_dir: str | Path, enabled: bool = True) -> None:
        self.path = Path(out_dir) / LOG_NAME
        self.enabled = enabled

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [r for r in rows if event is None or r.get("event") == event]


def plot_loss(log: RunLog, out_path: str | Path | None = None) -> Path | None:
    """Loss (and top-1 accuracy of the positive) against step, learning rate on a twin axis."""
    rows = log.records("train")
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # a resumed run may repeat steps after its last checkpoint: keep the latest of each step
    by_step = {r["step"]: r for r in rows}
    steps = sorted(by_step)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, [by_step[s]["loss"] for s in steps], color="C0", label="InfoNCE loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot(steps, [by_step[s]["lr"] for s in steps], color="C1", alpha=0.6, label="lr")
    lr_ax.set_ylabel("learning rate")
    lines = ax.get_lines() + lr_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    ax.set_title(f"MoCo training, {log.path.parent.name}")
    fig.tight_layout()
    out = Path(out_path) if out_path else log.path.parent / PLOT_NAME
    fig.savefig(out)
    plt.close(fig)
    return out
