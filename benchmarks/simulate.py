"""Survey simulator: objects/s, peak memory, per-class cost, and reading the result back.

In one run, on this machine:

* baseline: the naive way, measured here in one process: a GalSim bulge + disk convolved with
  each band's Moffat PSF and drawn at full cutout size in three bands, plus noise;
* per class: CPU time per object of ``simulate_object`` (one process, neighbours on), with its
  ratio to the baseline;
* the survey: ``simulate_survey`` of N objects (20,000, the demo survey; 600 with --quick) with
  all cores, and a smaller one with one worker for the parallel speed-up, each in a fresh process
  so that its peak RSS (VmHWM of the parent, ru_maxrss of the largest worker) is its own;
* reading it back: ``Survey.iter_batches`` over every object in a fresh process: objects/s and
  peak RSS above the RSS after opening the survey.

Prints a table and writes benchmarks/results/simulate.json. The survey is deleted afterwards
unless --keep.

    .venv/bin/python benchmarks/simulate.py [--quick] [--n N] [--workers W] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import package_version, run_child, status_mb, write_results  # noqa: E402

SEED = 2021


# -- baseline --------------------------------------------------------------------------------
def naive_objects(k: int) -> dict:
    """The naive simulator: per band, (bulge + disk) convolved with a Moffat, drawn at 152 px."""
    import galsim

    from ml.photometry import mag_to_flux
    from ml.simulate import population as pop
    from ml.simulate.conditions import draw_conditions
    from ml.survey_format import CUTOUT_SIZE, PIXEL_SCALE_ARCSEC

    rng = np.random.default_rng(0)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(k):
        cond = draw_conditions(rng)
        mag_z = pop.draw_count_mag(rng, 14.0, 20.0)
        hlr = float(pop.draw_hlr_arcsec(rng, mag_z))
        z = float(pop.draw_redshift(rng, mag_z))
        bulge_flux = pop.red_colour(rng, z).band_flux(0.4 * mag_to_flux(mag_z))
        disk_flux = pop.blue_colour(rng, z).band_flux(0.6 * mag_to_flux(mag_z))
        image = np.empty((3, CUTOUT_SIZE, CUTOUT_SIZE), dtype=np.float32)
        for b in range(3):
            gal = (galsim.DeVaucouleurs(half_light_radius=0.4 * hlr, flux=bulge_flux[b])
                   + galsim.Exponential(half_light_radius=hlr, flux=disk_flux[b]))
            gal = gal.shear(q=0.7, beta=rng.uniform(0, np.pi) * galsim.radians)
            psf = galsim.Moffat(beta=3.5, fwhm=float(cond.psfsize_arcsec[b]))
            drawn = galsim.Convolve(gal, psf).drawImage(
                nx=CUTOUT_SIZE, ny=CUTOUT_SIZE, scale=PIXEL_SCALE_ARCSEC)
            image[b] = drawn.array + rng.normal(0.0, cond.noise_sigma[b], image[b].shape)
    cpu = time.process_time() - c0
    return {"objects": k, "wall_ms": (time.perf_counter() - t0) / k * 1e3,
            "cpu_ms": cpu / k * 1e3, "objects_per_cpu_s": k / cpu}


def per_class(k: int) -> dict:
    from ml.simulate.classes import CLASSES
    from ml.simulate.neighbours import NeighbourLibrary
    from ml.simulate.objects import library_seed, simulate_object

    library = NeighbourLibrary.build(library_seed(SEED))
    out = {}
    for label in CLASSES:
        simulate_object(SEED, 10**7, label, library)  # GalSim tables, lenstronomy set-up
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(k):
            simulate_object(SEED, i, label, library)
        out[label] = {"cpu_ms": (time.process_time() - c0) / k * 1e3,
                      "wall_ms": (time.perf_counter() - t0) / k * 1e3}
    return out


# -- child processes -------------------------------------------------------------------------
def child_simulate(out: Path, n: int, workers: int) -> dict:
    from ml.simulate.driver import simulate_survey

    rss_imports = status_mb("VmRSS")
    c0 = time.process_time()
    summary = simulate_survey(out, n, seed=SEED, workers=workers, progress=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "n": n, "workers": workers, "seconds": summary.seconds,
        "objects_per_s": summary.objects_per_second,
        "parent_cpu_s": time.process_time() - c0,
        "workers_cpu_s": children.ru_utime + children.ru_stime,
        "rss_after_imports_mb": rss_imports, "peak_rss_parent_mb": status_mb("VmHWM"),
        "peak_rss_worker_mb": children.ru_maxrss / 1024 if workers > 1 else None,
        "survey_gb": sum(p.stat().st_size for p in summary.paths) / 1e9,
        "class_counts": summary.class_counts,
    }


def child_read(path: Path, batch: int) -> dict:
    from ml.survey import Survey

    survey = Survey(path)
    rss_open = status_mb("VmRSS")
    t0 = time.perf_counter()
    checksum = 0.0
    for b in survey.iter_batches(batch, columns=("ebv", "psfsize", "psfdepth", "flux")):
        checksum += float(b.images[:, :, 0, 0].sum())
    seconds = time.perf_counter() - t0
    return {"n": survey.n, "batch": batch, "seconds": seconds,
            "objects_per_s": survey.n / seconds, "rss_after_open_mb": rss_open,
            "peak_rss_mb": status_mb("VmHWM"),
            "peak_rss_above_open_mb": status_mb("VmHWM") - rss_open, "checksum": checksum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 objects; within a minute")
    parser.add_argument("--n", type=int, default=None, help="objects (default 20,000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "bench_simulate")
    parser.add_argument("--keep", action="store_true", help="keep the survey on disk")
    parser.add_argument("--child-simulate", nargs=3, help=argparse.SUPPRESS)  # DIR N WORKERS
    parser.add_argument("--child-read", help=argparse.SUPPRESS)  # DIR
    args = parser.parse_args()
    if args.child_simulate:
        out, n, workers = args.child_simulate
        print(json.dumps(child_simulate(Path(out), int(n), int(workers))))
        return
    if args.child_read:
        print(json.dumps(child_read(Path(args.child_read), 256)))
        return

    n = args.n or (600 if args.quick else 20_000)
    n_single = max(n // 10, 100) if not args.quick else 150
    per_class_k = 4 if args.quick else 20
    load_start = os.getloadavg()

    naive = naive_objects(6 if args.quick else 30)
    classes = per_class(per_class_k)
    from ml.simulate.classes import DEFAULT_RATES

    mean_cpu_ms = sum(DEFAULT_RATES[c] * classes[c]["cpu_ms"] for c in classes)

    path, single = args.dir / f"n{n}", args.dir / f"single{n_single}"
    for p in (path, single):
        shutil.rmtree(p, ignore_errors=True)
    try:
        survey = run_child(__file__, "--child-simulate", str(path), str(n), str(args.workers))
        one = run_child(__file__, "--child-simulate", str(single), str(n_single), "1")
        read = run_child(__file__, "--child-read", str(path))
    finally:
        shutil.rmtree(single, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    load_end = os.getloadavg()

    naive_rate = naive["objects_per_cpu_s"]
    print(f"simulated {n} objects (152 px) with {args.workers} workers; "
          f"load average {load_start[0]:.1f} -> {load_end[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<44}{'value':>16}{'vs naive':>12}")
    print(f"{'naive GalSim (Moffat, 3 bands at 152 px)':<44}{naive_rate:>11.1f} o/s"
          f"{1.0:>11.2f}x   per core, CPU")
    for label, r in classes.items():
        print(f"{'  ' + label:<44}{r['cpu_ms']:>11.2f} ms {naive['cpu_ms'] / r['cpu_ms']:>10.2f}x"
              f"   CPU per object")
    print(f"{'  default mix (rate-weighted)':<44}{mean_cpu_ms:>11.2f} ms "
          f"{naive['cpu_ms'] / mean_cpu_ms:>10.2f}x")
    print(f"{'survey, 1 worker':<44}{one['objects_per_s']:>11.1f} o/s"
          f"{one['objects_per_s'] / naive_rate:>11.2f}x   wall")
    print(f"{f'survey, {args.workers} workers':<44}{survey['objects_per_s']:>11.1f} o/s"
          f"{survey['objects_per_s'] / naive_rate:>11.2f}x   wall "
          f"({survey['seconds']:.1f} s, speed-up {survey['objects_per_s'] / one['objects_per_s']:.2f})")
    cpu_per_object = (survey["parent_cpu_s"] + survey["workers_cpu_s"]) / n
    print(f"{'  CPU per object (workers + parent)':<44}{cpu_per_object * 1e3:>11.2f} ms "
          f"  -> {min(args.workers, os.cpu_count() or 1) / cpu_per_object:.0f} o/s on idle cores")
    print(f"{'  peak RSS parent / largest worker':<44}{survey['peak_rss_parent_mb']:>8.0f} MB / "
          f"{survey['peak_rss_worker_mb'] or float('nan'):.0f} MB")
    print(f"{'  peak RSS parent, 1 worker, n = ' + str(n_single):<44}"
          f"{one['peak_rss_parent_mb']:>8.0f} MB")
    print(f"{'read back: Survey.iter_batches(256)':<44}{read['objects_per_s']:>11.0f} o/s")
    print(f"{'  peak RSS / above RSS after open':<44}{read['peak_rss_mb']:>8.0f} MB / "
          f"{read['peak_rss_above_open_mb']:.0f} MB")

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    record = {
        "benchmark": "simulate", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "parameters": {"n": n, "workers": args.workers, "n_single_worker": n_single,
                       "per_class_objects": per_class_k, "seed": SEED, "image_size": 152},
        "figures": {
            "naive_baseline": naive, "per_class": classes,
            "default_mix_cpu_ms": mean_cpu_ms,
            "default_mix_vs_naive": naive["cpu_ms"] / mean_cpu_ms,
            "survey": survey, "survey_single_worker": one,
            "parallel_speedup": survey["objects_per_s"] / one["objects_per_s"],
            "survey_vs_naive_per_core": survey["objects_per_s"] / naive_rate,
            # what the same CPU work gives when the cores are not shared with other jobs
            "survey_cpu_ms_per_object": cpu_per_object * 1e3,
            "survey_objects_per_s_cpu_bound": min(args.workers, os.cpu_count() or 1)
            / cpu_per_object,
            "read_back": read,
        },
        "load_average": {"start": load_start, "end": load_end},
        "notes": "CPU times (process_time) are per object in one process; survey times are "
                 "wall clock including HDF5 writing and the parent's work; the machine was "
                 "shared with other jobs (see load_average), which slows wall-clock figures",
        "machine": {
            "cores": os.cpu_count(), "memory_gb": round(pages / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "galsim": package_version("galsim"),
            "lenstronomy": package_version("lenstronomy"), "h5py": package_version("h5py"),
            "torch": package_version("torch"), "faiss": package_version("faiss-cpu"),
        },
    }
    write_results("simulate", record, quick=args.quick)


if __name__ == "__main__":
    main()
