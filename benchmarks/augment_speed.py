"""Augmentation speed: one batch of the paper's augmentations against one backbone step.

For a batch of 152-px cutouts, times :class:`ml.augment.Augment` (crop 96 sampled onto 64 px,
64 onto 32 px as in the CPU demo, and 96 px unresized as in the paper; log-normal and uniform
draws) and its parts (the demo's), next
to the baseline it must stay small against: the forward + backward pass of a torchvision
ResNet-18 on the same batch of views, measured in the same run and on the same threads. MoCo
augments every image twice per step, so "2 views / step" is the fraction of a training step the
augmentation costs when it runs in the training process.

    .venv/bin/python benchmarks/augment_speed.py [--quick] [--batch 256] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import package_version, write_results  # noqa: E402


def best_times(fns: dict, repeats: int) -> dict[str, float]:
    """Best of ``repeats`` runs of each function, seconds, after one warm-up each.

    The functions take turns within every round, so a burst of load from other jobs on a
    shared machine hits all of them alike rather than whichever ran during it.
    """
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def inputs(batch: int, seed: int = 0):
    """Cutouts of sky noise with a galaxy-like blob, and DR9-like observing conditions."""
    from ml.augment import AugmentStats

    gen = torch.Generator().manual_seed(seed)
    images = 0.005 * torch.randn(batch, 3, 152, 152, generator=gen)
    u = torch.arange(152.0) - 75.5
    blob = torch.exp(-0.5 * (u[:, None] ** 2 + u[None, :] ** 2) / 4.0**2)
    images += blob * torch.rand(batch, 3, 1, 1, generator=gen)
    stats = AugmentStats.dr9_south()
    ebv = stats.ebv.sample_torch(batch, gen)
    psf = torch.stack([d.sample_torch(batch, gen) for d in stats.psf_sigma_pix], 1)
    noise = torch.stack([d.sample_torch(batch, gen) for d in stats.noise_sigma], 1)
    return images, ebv, psf, noise


def backbone_step(batch: int, size: int):
    """Forward + backward of a ResNet-18 (128-d output) on a batch of views."""
    import torchvision

    net = torchvision.models.resnet18(num_classes=128)
    x = torch.rand(batch, 3, size, size)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        net(x).square().mean().backward()

    return step


def parts(aug, images, ebv, psf, noise, gen) -> dict[str, float]:
    """Seconds of each step of one call, run one after another as Augment.apply does."""
    from ml.augment import blur, geometry
    from ml.augment import noise as noise_mod

    crop, size = aug.config.crop, aug.config.view_size
    times: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        return out

    draw = timed("draw parameters", lambda: aug.draw(images.shape[0], gen))
    geom = draw.geometry
    phase = timed("interpolation phases", lambda: geometry.phase_variance(geom, crop, size))
    own = blur.own_psf_sigma_view(psf, geom.zoom(), phase)
    sigma = blur.quadrature_sigma(draw.psf_sigma_pix, own)
    pad = blur.kernel_radius(sigma)
    padded = timed("resample (grid_sample)",
                   lambda: geometry.resample(images, geom, crop, pad, size=size))
    views = timed("blur + crop (bmm)", lambda: blur.blur_crop(padded, sigma, size, None))
    rho = timed("own-noise factor", lambda: noise_mod.own_noise_variance_factor(
        sigma, geom.matrix(), phase))
    add = blur.quadrature_sigma(draw.noise_sigma, (rho * noise**2).sqrt())
    views = timed("add noise (randn)", lambda: noise_mod.add_noise(views, add, gen))
    from ml.augment import finish_view

    timed("stretch", lambda: finish_view(views, aug.stretch))
    times["blur margin px"] = pad
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 32, fewer repeats")
    parser.add_argument("--batch", type=int, default=None, help="cutouts per batch (256)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    args = parser.parse_args()
    batch = args.batch or (32 if args.quick else 256)
    repeats = 2 if args.quick else 5
    torch.set_num_threads(args.threads)

    from ml.augment import Augment, AugmentConfig

    images, ebv, psf, noise = inputs(batch)
    gen = torch.Generator().manual_seed(1)
    load_before = os.getloadavg()[0]
    cases = {
        "96 -> 64, lognormal": AugmentConfig(crop=96, out_size=64),
        "96 -> 64, uniform": AugmentConfig(crop=96, out_size=64, sampling="uniform"),
        "96, lognormal (paper)": AugmentConfig(crop=96),
        "64 -> 32, lognormal (demo)": AugmentConfig(crop=64, out_size=32),
    }
    augments = {name: Augment(cfg) for name, cfg in cases.items()}
    fns = {f"backbone {size}": backbone_step(batch, size) for size in (32, 64, 96)}
    fns.update({name: (lambda aug=aug: aug(images, ebv, psf, noise, gen))
                for name, aug in augments.items()})
    best = best_times(fns, repeats)
    rows = []
    for name, cfg in cases.items():
        t, step = best[name], best[f"backbone {cfg.view_size}"]
        rows.append({"case": name, "augment_s": t, "images_per_s": batch / t,
                     "backbone_step_s": step, "ratio_one_view": t / step,
                     "ratio_two_views": 2 * t / step})
    demo = augments["64 -> 32, lognormal (demo)"]
    runs = [parts(demo, images, ebv, psf, noise, gen) for _ in range(repeats + 1)][1:]
    breakdown = {key: min(run[key] for run in runs) for key in runs[0]}
    load_after = os.getloadavg()[0]

    print(f"batch {batch} cutouts of 152 px, {args.threads} threads, "
          f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores")
    print(f"{'case':<24}{'augment':>10}{'images/s':>10}{'ResNet-18 f+b':>15}"
          f"{'1 view/step':>13}{'2 views/step':>14}")
    for r in rows:
        print(f"{r['case']:<24}{r['augment_s'] * 1e3:>8.0f}ms{r['images_per_s']:>10.0f}"
              f"{r['backbone_step_s'] * 1e3:>13.0f}ms{r['ratio_one_view']:>13.2f}"
              f"{r['ratio_two_views']:>14.2f}")
    print("one call, 64 -> 32 lognormal (demo), by step (best of the repeats):")
    for name, seconds in breakdown.items():
        unit = "" if name == "blur margin px" else "ms"
        value = seconds if unit == "" else seconds * 1e3
        print(f"  {name:<26}{value:>8.1f}{unit}")

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    record = {
        "benchmark": "augment_speed", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "parameters": {"batch": batch, "cutout_px": 152, "threads": args.threads,
                       "repeats": repeats, "baseline": "torchvision resnet18, forward+backward"},
        "figures": {"cases": rows, "breakdown_s": breakdown,
                    "load_average_before_after": [load_before, load_after]},
        "notes": "best of the repeats; the baseline is measured in the same run and threads; "
                 "the machine was shared with other jobs (see the load averages)",
        "machine": {
            "cores": os.cpu_count(), "memory_gb": round(pages / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": package_version("torch"),
            "torchvision": package_version("torchvision"), "faiss": package_version("faiss-cpu"),
        },
    }
    write_results("augment_speed", record, quick=args.quick)


if __name__ == "__main__":
    main()
