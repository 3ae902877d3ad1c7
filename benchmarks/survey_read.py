"""Survey reader: memory and speed of iterating a survey in batches, and of random reads.

Writes a survey of N noise cutouts (152 px; 50,000 by default, 5,000 with --quick) with
SurveyWriter, then, in a fresh process so that the peak resident memory belongs to reading
alone, measures

* ``iter_batches`` over every object (images + ebv, psfsize, psfdepth), against the baseline
  of plain h5py slice reads of the same files;
* ``read_images`` of random ids in batches (the DataLoader access pattern);

and reports objects/s, MB/s, peak RSS above the process's RSS after imports, and the ratio of
each time to the baseline. The survey is deleted afterwards unless --keep.

    .venv/bin/python benchmarks/survey_read.py [--quick] [--n N] [--batch 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import package_version, status_mb, write_noise_survey, write_results  # noqa: E402

COLUMNS = ("ebv", "psfsize", "psfdepth")
RANDOM_BATCHES = 40


def rss_mb() -> float:
    return status_mb("VmRSS")


def peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: the latter survives exec and would report the
    # parent's (the writer's) peak inherited through fork
    return status_mb("VmHWM")


def write_survey(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    write_noise_survey(path, n, batch=500, objects_per_file=min(n, 1_000_000))
    return time.perf_counter() - t0


def measure(path: Path, batch: int) -> dict:
    """Runs in a fresh process: every figure of the reading side."""
    import h5py

    from ml.survey import Survey

    survey = Survey(path)
    base_rss = rss_mb()
    mb = survey.n * 3 * 152 * 152 * 4 / 1e6

    def h5py_pass() -> None:  # the baseline: plain h5py slice reads, file by file
        for p in survey.files:
            with h5py.File(p, "r") as f:
                images = f["images"]
                for lo in range(0, images.shape[0], batch):
                    images[lo:lo + batch]

    checksum = 0.0

    def survey_pass() -> None:
        nonlocal checksum
        for b in survey.iter_batches(batch, columns=COLUMNS):
            checksum += float(b.images[:, :, 0, 0].sum())

    # alternate the two, twice, and keep each one's best: the page cache favours whichever
    # runs second, and the survey may be larger than the cache
    t_h5py = t_iter = float("inf")
    for _ in range(2):
        for fn in (h5py_pass, survey_pass):
            t0 = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - t0
            if fn is h5py_pass:
                t_h5py = min(t_h5py, elapsed)
            else:
                t_iter = min(t_iter, elapsed)
    peak_iter = peak_rss_mb()

    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(RANDOM_BATCHES):
        survey.read_images(rng.integers(0, survey.n, batch))
    t_random = time.perf_counter() - t0
    n_random = RANDOM_BATCHES * batch
    return {
        "n": survey.n, "batch": batch, "survey_gb": mb / 1e3,
        "rss_after_open_mb": base_rss,
        "peak_rss_iter_mb": peak_iter, "peak_rss_above_open_mb": peak_iter - base_rss,
        "peak_rss_end_mb": peak_rss_mb(),
        "h5py_baseline_s": t_h5py, "h5py_baseline_obj_per_s": survey.n / t_h5py,
        "iter_batches_s": t_iter, "iter_batches_obj_per_s": survey.n / t_iter,
        "iter_batches_mb_per_s": mb / t_iter, "iter_vs_baseline": t_iter / t_h5py,
        "random_reads_obj_per_s": n_random / t_random,
        "random_vs_baseline_per_object": (t_random / n_random) / (t_h5py / survey.n),
        "checksum": checksum,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 objects (~1.4 GB on disk)")
    parser.add_argument("--n", type=int, default=None, help="objects (default 50,000)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "bench_survey_read")
    parser.add_argument("--keep", action="store_true", help="keep the survey on disk")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.batch)))
        return

    n = args.n or (5_000 if args.quick else 50_000)
    path = args.dir / f"n{n}"
    if path.exists():
        shutil.rmtree(path)
    try:
        t_write = write_survey(path, n)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), "--batch", str(args.batch)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    r["write_s"] = t_write
    r["write_obj_per_s"] = n / t_write

    print(f"survey: {n} objects, {r['survey_gb']:.1f} GB, batch {args.batch}")
    print(f"{'measure':<34}{'value':>14}{'vs h5py slices':>16}")
    print(f"{'h5py slice reads (baseline)':<34}{r['h5py_baseline_obj_per_s']:>10.0f} o/s{1.0:>15.2f}x")
    print(f"{'Survey.iter_batches':<34}{r['iter_batches_obj_per_s']:>10.0f} o/s"
          f"{r['iter_vs_baseline']:>15.2f}x")
    print(f"{'Survey.read_images (random ids)':<34}{r['random_reads_obj_per_s']:>10.0f} o/s"
          f"{r['random_vs_baseline_per_object']:>15.2f}x")
    print(f"{'peak RSS while iterating':<34}{r['peak_rss_iter_mb']:>10.0f} MB")
    print(f"{'  of which above RSS after open':<34}{r['peak_rss_above_open_mb']:>10.0f} MB")
    print(f"{'write (SurveyWriter)':<34}{r['write_obj_per_s']:>10.0f} o/s")

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    record = {
        "benchmark": "survey_read", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick, "parameters": {"n": n, "batch": args.batch, "image_size": 152},
        "figures": r,
        "notes": "times include the OS page cache (the survey was just written); each time is "
                 "the best of two alternating passes; peak RSS is the reading process's own "
                 "(VmHWM), measured in a fresh process; the machine was shared with other jobs",
        "machine": {
            "cores": os.cpu_count(), "memory_gb": round(pages / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "h5py": package_version("h5py"), "torch": package_version("torch"),
            "faiss": package_version("faiss-cpu"),
        },
    }
    write_results("survey_read", record, quick=args.quick)


if __name__ == "__main__":
    main()
