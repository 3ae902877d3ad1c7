"""Training throughput: the full MoCo step against the bare backbone, in one run.

Definition (images/s count the images of the batch, B per step):

* **MoCo step** — what ``galsearch train`` does per batch, with the batch already in memory on
  the device (152-px cutouts and their conditions): both views augmented (one pass over 2B
  cutouts: extinction, resampling, blur, noise, stretch, resize), the query encoder's forward
  and backward, the momentum update, the key encoder's forward (with the preset's BN mode),
  the queue matmul and enqueue, the loss, and the SGD step (``ml.train.step``, as the loop).
* **bare backbone** — the same network (backbone + head, same width, precision and memory
  layout) on the same already-augmented B views: forward, a scalar loss, backward, SGD step.

ratio = MoCo images/s / bare-backbone images/s. MoCo must spend at least one extra forward
(the key encoder) on top of the backbone's forward + backward, so the ratio's ceiling is about
0.75 when a backward costs twice a forward; what is below that is augmentation, BN grouping,
the queue and copies. The component table says where the time goes.

Precision: as the preset (or ``precision=...``) says. With ``"auto"`` on a CPU with bfloat16
arithmetic both fp32 and bf16 are measured, and the headline figures are those of the faster
MoCo step, the precision ``galsearch train`` would keep (``ml/train/precision.py``); both are in
the JSON (``by_precision``).

    .venv/bin/python benchmarks/train_throughput.py [--quick] [--preset demo|paper]
        [--batch-size B] [--device cpu|cuda] [key=value ...]   (config overrides)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# as `galsearch train` does: passive OpenMP waiting, before torch loads (ml/train/cli.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import write_results  # noqa: E402
from ml.augment import Augment, AugmentStats  # noqa: E402
from ml.moco import build_moco, build_query_encoder, features  # noqa: E402
from ml.photometry import psf_fwhm_arcsec_to_sigma_pix  # noqa: E402
from ml.train.config import load_config  # noqa: E402
from ml.train.precision import (  # noqa: E402
    AUTOCAST_DTYPES,
    cpu_bf16_supported,
    faster,
    static_precision,
)
from ml.train.step import contrastive_loss, two_views  # noqa: E402


def synthetic_batch(b: int, size: int, device: torch.device, seed: int = 0) -> dict:
    """Galaxy-like cutouts in nanomaggies (Gaussian blobs over DR9-like sky noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius = rng.uniform(2, 8, (b, 1, 1, 1))
    flux = rng.uniform(1, 30, (b, 3, 1, 1))
    images = flux * np.exp(-0.5 * (xx**2 + yy**2) / radius**2) / (2 * np.pi * radius**2)
    noise = np.array([0.004, 0.006, 0.02])[None, :, None, None]
    images = images + rng.normal(size=images.shape) * noise
    fwhm = rng.uniform(1.0, 1.8, (b, 3))
    return {
        "images": torch.tensor(images, dtype=torch.float32, device=device),
        "ebv": torch.tensor(rng.uniform(0.01, 0.1, b), dtype=torch.float32, device=device),
        "psf_sigma_pix": torch.tensor(psf_fwhm_arcsec_to_sigma_pix(fwhm), dtype=torch.float32,
                                      device=device),
        "noise_sigma": torch.tensor(np.broadcast_to(noise[:, :, 0, 0], (b, 3)).copy(),
                                    dtype=torch.float32, device=device),
    }


STEP_NAMES = ("moco_step", "baseline_step", "augment_two_views", "key_forward", "query_fwd_bwd",
              "backbone_forward")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, steps: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds per call of fn, over `steps` calls."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def measure(config, device: torch.device, batch_size: int, amp: torch.dtype | None,
            repeats: int, steps: int) -> dict:
    """Median wall and process-CPU seconds of each step kind, in one precision."""
    torch.manual_seed(0)
    model = build_moco(config.model_args()).to(device)
    baseline = build_query_encoder(config.model_args()).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
        baseline = baseline.to(memory_format=torch.channels_last)
    opt_moco = torch.optim.SGD(model.encoder_q.parameters(), lr=0.01, momentum=0.9,
                               weight_decay=1e-4)
    opt_base = torch.optim.SGD(baseline.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    augment = Augment(config.augment, AugmentStats.dr9_south())
    generator = torch.Generator(device=device).manual_seed(0)
    batch = synthetic_batch(batch_size, 152, device)
    views_q, views_k = two_views(augment, batch, device, generator, config.channels_last)

    def autocast():
        return torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None)

    def moco_step() -> None:
        im_q, im_k = two_views(augment, batch, device, generator, config.channels_last)
        loss, _ = contrastive_loss(model, im_q, im_k, amp)
        opt_moco.zero_grad(set_to_none=True)
        loss.backward()
        opt_moco.step()
        loss.item()

    def baseline_step() -> None:
        with autocast():
            out = baseline(views_q)
        loss = out.float().square().mean()
        opt_base.zero_grad(set_to_none=True)
        loss.backward()
        opt_base.step()
        loss.item()

    # components of the MoCo step, for the breakdown
    def augment_only() -> None:
        two_views(augment, batch, device, generator, config.channels_last)

    def key_forward() -> None:
        with torch.no_grad(), autocast():
            model._keys(views_k)

    def query_fwd_bwd() -> None:
        with autocast():
            q = (model._grouped(model.encoder_q, views_q) if model.shuffle_bn == "groups"
                 else model.encoder_q(views_q))
        q.float().square().mean().backward()
        model.zero_grad(set_to_none=True)

    def backbone_forward() -> None:
        with torch.no_grad(), autocast():
            features(baseline, views_q)

    fns = dict(zip(STEP_NAMES, (moco_step, baseline_step, augment_only, key_forward,
                                query_fwd_bwd, backbone_forward), strict=True))
    for fn in fns.values():
        fn()  # warm-up: allocator, oneDNN primitives, cuDNN autotune
    wall: dict[str, list[float]] = {name: [] for name in STEP_NAMES}
    cpu: dict[str, list[float]] = {name: [] for name in STEP_NAMES}
    for _ in range(repeats):  # interleaved, so load from other processes hits all alike
        for name, fn in fns.items():
            w, c = timed(fn, device, steps)
            wall[name].append(w)
            cpu[name].append(c)
    sec = {name: statistics.median(v) for name, v in wall.items()}
    cpu_sec = {name: statistics.median(v) for name, v in cpu.items()}
    moco_ips, base_ips = batch_size / sec["moco_step"], batch_size / sec["baseline_step"]
    ratio_wall = moco_ips / base_ips
    ratio_cpu = cpu_sec["baseline_step"] / cpu_sec["moco_step"]
    # on a shared CPU, process CPU time is the steadier clock (others' load stretches wall
    # time, not the work done); on a GPU the wall clock is the measure
    return {
        "wall_seconds_per_step_median": sec,
        "cpu_seconds_per_step_median": cpu_sec,
        "images_per_s_wall": {"moco_step": moco_ips, "bare_backbone": base_ips},
        "ratio": ratio_cpu if device.type == "cpu" else ratio_wall,
        "ratio_clock": "process CPU time" if device.type == "cpu" else "wall",
        "ratio_wall": ratio_wall,
        "ratio_cpu": ratio_cpu,
    }


def print_table(precision: str, m: dict, batch_size: int) -> None:
    sec, cpu_sec = m["wall_seconds_per_step_median"], m["cpu_seconds_per_step_median"]
    print(f"-- {precision}")
    print(f"{'':20}{'wall s/step':>12}{'images/s':>10}{'CPU s/step':>12}{'x baseline (CPU)':>18}")
    for name in STEP_NAMES:
        print(f"{name:20}{sec[name]:12.4f}{batch_size / sec[name]:10.1f}{cpu_sec[name]:12.4f}"
              f"{cpu_sec[name] / cpu_sec['baseline_step']:18.2f}")
    print(f"ratio (MoCo images/s / bare backbone images/s): {m['ratio']:.3f} "
          f"({m['ratio_clock']}; wall clock: {m['ratio_wall']:.3f})\n")


def precisions_to_measure(precision: str, device: torch.device) -> list[str]:
    """``"auto"`` on a CPU with bf16 arithmetic: both, as ``galsearch train`` times both and
    keeps the faster (``ml/train/precision.py``); otherwise the one training would use."""
    if precision == "auto" and device.type == "cpu" and cpu_bf16_supported():
        return ["fp32", "bf16"]
    return [static_precision(precision, device)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (within a minute)")
    parser.add_argument("--preset", default="demo", choices=["demo", "paper"])
    parser.add_argument("--batch-size", type=int, help="default: the preset's")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, help="interleaved measurement rounds")
    parser.add_argument("--steps", type=int, help="steps per round")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args()

    config = load_config(ROOT / "configs" / f"{args.preset}.toml", args.overrides)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if config.threads and device.type == "cpu":
        torch.set_num_threads(config.threads)
    batch_size = args.batch_size or config.batch_size
    precisions = precisions_to_measure(config.precision, device)
    if config.bn_mode in ("ddp", "sync"):  # one process here: the device-agnostic equivalent
        config = load_config(ROOT / "configs" / f"{args.preset}.toml",
                             [*args.overrides, "bn_mode=groups"])
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    steps = args.steps or (1 if quick else 3)
    if device.type == "cuda":
        steps = args.steps or (10 if quick else 30)

    print(f"preset {args.preset}: {config.arch} width {config.width}, small stem "
          f"{config.small_stem}, views {config.augment.view_size} px (crop {config.augment.crop}),"
          f" batch {batch_size}, K {config.queue_size}, BN {config.bn_mode}, "
          f"precision {config.precision} ({' and '.join(precisions)} measured), channels_last "
          f"{config.channels_last}, device {device}, threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}\n")
    by_precision = {}
    for precision in precisions:
        by_precision[precision] = measure(config, device, batch_size, AUTOCAST_DTYPES[precision],
                                          repeats, steps)
        print_table(precision, by_precision[precision], batch_size)
    # the precision training would keep: the faster MoCo step (the trial's rule)
    chosen = precisions[0]
    if len(precisions) > 1:
        chosen = faster({p: m["wall_seconds_per_step_median"]["moco_step"]
                         for p, m in by_precision.items()})
        print(f"training would keep {chosen} (the faster MoCo step)")

    result = {
        "benchmark": "train_throughput",
        "definition": " ".join(" ".join(__doc__.split("\n\n")[1:4]).split()),
        "preset": args.preset,
        "overrides": args.overrides,
        "quick": quick,
        "parameters": {
            "arch": config.arch, "width": config.width, "small_stem": config.small_stem,
            "crop": config.augment.crop, "view_size": config.augment.view_size,
            "batch_size": batch_size, "queue_size": config.queue_size,
            "bn_mode": config.bn_mode, "bn_groups": config.bn_groups,
            "precision": chosen, "precision_setting": config.precision,
            "channels_last": config.channels_last,
            "repeats": repeats, "steps_per_repeat": steps,
        },
        **by_precision[chosen],  # the headline figures: the precision training would use
        "by_precision": by_precision,
        "machine": {
            "device": str(device),
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                               1),
            "torch": torch.__version__, "faiss": _version("faiss-cpu"),
            "loadavg_1min": os.getloadavg()[0],
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results("train_throughput", result, quick=quick)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None


if __name__ == "__main__":
    main()
