"""Exports: memory and speed of exporting a campaign's labeled objects (HDF5 with 96-px cutouts,
and CSV), run by the real export job in a worker process.

A survey of N objects at 152 px would take N x 277 kB (28 GB at N = 100,000), more than a
shared disk should hold for a benchmark, so the survey is made of a smaller block of real
cutouts (``--base`` objects, noise plus Gaussian galaxies) repeated: its ``images`` dataset is
an HDF5 *virtual dataset* whose rows map to the block, object i showing the pixels of object
i mod base. Everything else is per object: catalog columns (ra, dec, flux, ...), two
labelers' labels (alice labels every object, bob 30%), a catalog's source labels (1%), and a
probe (random weights over random 32-d representations in a search bundle: the probe's
scores are computed as in production, only its training is skipped). The survey reader, the
export job and the writers cannot tell the difference; the page cache holds the block, so the
figures are those of a survey whose pixels are cached.

Each export runs in a fresh process (``galsearch worker``'s code: :class:`server.jobs.worker.Worker`)
so that its peak resident memory (VmHWM) is its own. Baselines, measured in the same run in
the same kind of process: reading the same objects with ``Survey.iter_batches`` (images, for
the HDF5 export; catalog only, for CSV), without exporting anything.

    .venv/bin/python benchmarks/export.py [--quick] [--n N] [--base B] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import package_version, run_child, status_mb, write_results  # noqa: E402

SIZE = 152
DIM = 32
EXPORTS = (("hdf5", {"cutout_size": 96}), ("csv", {}))


# -- the survey, bundle and database ------------------------------------------------------------
def write_pixels(path: Path, base: int) -> None:
    """``base`` cutouts: sky noise plus an elliptical Gaussian galaxy of random size and flux."""
    import h5py

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (base, 3, SIZE, SIZE), np.float32,
                                  chunks=(1, 3, SIZE, SIZE))
        for lo in range(0, base, 256):
            m = min(256, base - lo)
            block = rng.normal(0, 0.01, (m, 3, SIZE, SIZE)).astype(np.float32)
            radius = rng.uniform(2, 8, m)[:, None, None]
            profile = np.exp(-0.5 * (xx ** 2 + yy ** 2) / radius ** 2)  # (m, H, W)
            block += (rng.uniform(1, 20, (m, 3))[:, :, None, None] * profile[:, None]
                      / profile.sum(axis=(1, 2))[:, None, None, None]).astype(np.float32)
            images[lo:lo + m] = block


def write_survey(folder: Path, pixels: Path, n: int, base: int) -> None:
    """A survey file of ``n`` objects whose images are a virtual dataset over ``pixels``."""
    import h5py

    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    layout = h5py.VirtualLayout(shape=(n, 3, SIZE, SIZE), dtype=np.float32)
    source = h5py.VirtualSource(str(pixels.resolve()), "images", shape=(base, 3, SIZE, SIZE))
    for lo in range(0, n, base):
        m = min(base, n - lo)
        layout[lo:lo + m] = source[:m]
    with h5py.File(folder / "survey-000000.h5", "w") as f:
        f.create_virtual_dataset("images", layout)
        f["ra"] = rng.uniform(0, 360, n)
        f["dec"] = np.degrees(np.arcsin(rng.uniform(-0.3, 0.3, n)))
        f["ebv"] = rng.uniform(0.01, 0.1, n).astype(np.float32)
        f["flux"] = rng.uniform(1, 100, (n, 3)).astype(np.float32)
        f["psfsize"] = rng.uniform(1.0, 2.0, (n, 3)).astype(np.float32)
        f["psfdepth"] = rng.uniform(100, 1000, (n, 3)).astype(np.float32)
        f["source_type"] = rng.choice([b"EXP", b"DEV", b"REX", b"SER"], n).astype("S4")


def app_config(work: Path) -> dict:
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'galsearch.db'}",
            "SECRET_KEY": "benchmark", "BUNDLE_PATH": str(work / "bundle"),
            "CUTOUT_CACHE_DIR": str(work / "cutouts"), "EXPORTS_DIR": str(work / "exports")}


def prepare(work: Path, n: int) -> dict[str, int]:
    """The bundle, a campaign with labels of two labelers and a source, and a probe."""
    from sqlalchemy import insert

    from ml.index import build_bundle
    from ml.survey import Survey
    from server.app import create_app
    from server.auth.accounts import create_user
    from server.database import utcnow
    from server.extensions import db
    from server.models import Campaign, Label, Membership, ProbeRun, Role, SourceLabel
    from server.probe.serving import bundle_sha256
    from server.sources import sources

    rng = np.random.default_rng(2)
    with Survey(work / "survey") as survey:
        vectors = rng.normal(size=(n, DIM)).astype(np.float32)
        build_bundle(work / "bundle", vectors, rng.uniform(17, 23, n), survey.path,
                     survey.fingerprint(), "external:benchmark", k=0, mag_window=None,
                     progress=False)
    app = create_app(app_config(work))
    values = np.array(["accept", "reject", "unsure"])
    with app.app_context():
        alice, bob = create_user("alice", "alice-password"), create_user("bob", "bob-password")
        campaign = Campaign(name="benchmark lenses", target="lens", settings={},
                            created_by=alice)
        db.session.add(campaign)
        db.session.flush()
        db.session.add_all([Membership(campaign_id=campaign.id, user_id=alice.id,
                                       role=Role.OWNER),
                            Membership(campaign_id=campaign.id, user_id=bob.id,
                                       role=Role.LABELER)])
        now = utcnow()
        rows = [{"campaign_id": campaign.id, "object_id": i, "user_id": alice.id,
                 "value": values[v], "created_at": now, "updated_at": now}
                for i, v in enumerate(rng.choice(3, n, p=[0.1, 0.85, 0.05]).tolist())]
        rows += [{"campaign_id": campaign.id, "object_id": i, "user_id": bob.id,
                  "value": values[rng.choice(3, p=[0.1, 0.85, 0.05])], "created_at": now,
                  "updated_at": now} for i in np.flatnonzero(rng.random(n) < 0.3).tolist()]
        for lo in range(0, len(rows), 20_000):
            db.session.execute(insert(Label), rows[lo:lo + 20_000])
        db.session.execute(insert(SourceLabel), [
            {"campaign_id": campaign.id, "object_id": i, "source": "catalog",
             "value": "accept", "created_at": now}
            for i in np.flatnonzero(rng.random(n) < 0.01).tolist()])
        bundle_hash = bundle_sha256(sources(app).bundle)
        db.session.add(ProbeRun(
            campaign_id=campaign.id, version=1, bundle_sha256=bundle_hash,
            representation="external:benchmark", dim=DIM,
            coef=rng.normal(size=DIM).astype("<f4").tobytes(), intercept=-1.0, C=1.0,
            n_positive=0, n_negative=0, n_unlabeled=0, unlabeled_weight=0.0))
        db.session.commit()
        counts = {"labels": len(rows), "campaign_id": campaign.id, "user_id": alice.id}
        db.engine.dispose()
    return counts


# -- measured in a fresh process -----------------------------------------------------------------
def measure_export(work: Path, fmt: str, options: dict, campaign_id: int, user_id: int) -> dict:
    from server.app import create_app
    from server.exports.table import ExportFilters
    from server.exports.task import start_export
    from server.extensions import db
    from server.jobs.worker import Worker
    from server.models import Campaign
    from server.models.exports import Export

    app = create_app(app_config(work))
    with app.app_context():
        export_id = start_export(db.session.get(Campaign, campaign_id), user_id, fmt,
                                 ExportFilters(), options).id
    rss_ready = status_mb("VmRSS")
    t0 = time.perf_counter()
    ran = Worker(app, ["export"], lease_s=60, name="benchmark").run(once=True)
    elapsed = time.perf_counter() - t0
    with app.app_context():
        export = db.session.get(Export, export_id)
        if ran != 1 or export.sha256 is None:
            raise RuntimeError(f"the export did not succeed: {export.job.error if export.job else ''}")
        rows, size = export.row_count, export.byte_size
        path = Path(app.config["EXPORTS_DIR"]) / str(campaign_id)
    for file in path.glob("export-*"):
        file.unlink()  # the disk is shared
    return {"format": fmt, "options": options, "rows": rows, "bytes": size, "seconds": elapsed,
            "objects_per_s": rows / elapsed, "mb_per_s": size / 1e6 / elapsed,
            "rss_before_mb": rss_ready, "peak_rss_mb": status_mb("VmHWM")}


def measure_baseline(work: Path, images: bool) -> dict:
    from ml.survey import Survey

    rss_ready = status_mb("VmRSS")
    t0 = time.perf_counter()
    with Survey(work / "survey") as survey:
        for batch in survey.iter_batches(256 if images else 4096, columns=survey.columns,
                                         images=images):
            if images:
                batch.images[:, :, 28:124, 28:124].copy()
        n = survey.n
    elapsed = time.perf_counter() - t0
    return {"images": images, "rows": n, "seconds": elapsed, "objects_per_s": n / elapsed,
            "rss_before_mb": rss_ready, "peak_rss_mb": status_mb("VmHWM")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 objects")
    parser.add_argument("--n", type=int, default=None, help="objects (default 100,000)")
    parser.add_argument("--base", type=int, default=None,
                        help="real cutouts behind the survey (default 4,096; quick 1,024)")
    parser.add_argument("--dir", type=Path, default=ROOT / "data" / "bench_export")
    parser.add_argument("--keep", action="store_true", help="keep the survey and database")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, work = args.child[0], Path(args.child[1])
        if kind == "export":
            result = measure_export(work, args.child[2], json.loads(args.child[3]),
                                    int(args.child[4]), int(args.child[5]))
        else:
            result = measure_baseline(work, kind == "baseline-images")
        print(json.dumps(result))
        return

    n = args.n or (10_000 if args.quick else 100_000)
    base = min(n, args.base or (1_024 if args.quick else 4_096))
    work = args.dir / f"n{n}"
    shutil.rmtree(work, ignore_errors=True)
    load_before = os.getloadavg()
    try:
        t0 = time.perf_counter()
        write_pixels(work / "pixels" / "block.h5", base)
        write_survey(work / "survey", work / "pixels" / "block.h5", n, base)
        setup = prepare(work, n)
        setup_s = time.perf_counter() - t0
        baselines = {"hdf5": run_child(__file__, "--child", "baseline-images", str(work)),
                     "csv": run_child(__file__, "--child", "baseline-catalog", str(work))}
        results = [run_child(__file__, "--child", "export", str(work), fmt, json.dumps(options),
                          str(setup["campaign_id"]), str(setup["user_id"]))
                   for fmt, options in EXPORTS]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    print(f"export of {n} labeled objects ({setup['labels']} labels; pixels of {base} real "
          f"cutouts repeated); setup {setup_s:.0f} s; load {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f}")
    print(f"{'export':<24}{'objects/s':>10}{'seconds':>9}{'MB':>8}{'peak RSS MB':>13}"
          f"{'of it, export':>15}{'vs baseline':>13}")
    for r in results:
        b = baselines[r["format"]]
        r["vs_baseline"] = r["seconds"] / b["seconds"]
        # the app (torch, faiss, the bundle) is resident before the job starts
        r["rss_added_mb"] = r["peak_rss_mb"] - r["rss_before_mb"]
        label = r["format"] + (f" {r['options']['cutout_size']} px" if r["options"] else "")
        print(f"{label:<24}{r['objects_per_s']:>10.0f}{r['seconds']:>9.1f}"
              f"{r['bytes'] / 1e6:>8.0f}{r['peak_rss_mb']:>13.0f}{r['rss_added_mb']:>15.0f}"
              f"{r['vs_baseline']:>12.2f}x")
    for b in baselines.values():
        label = "read images (baseline)" if b["images"] else "read catalog (baseline)"
        print(f"{label:<24}{b['objects_per_s']:>10.0f}{b['seconds']:>9.1f}{'':>8}"
              f"{b['peak_rss_mb']:>13.0f}{'':>15}{1.0:>12.2f}x")

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    record = {
        "benchmark": "export", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "parameters": {"n": n, "base_cutouts": base, "image_size": SIZE, "labels": setup["labels"],
                       "representation_dim": DIM, "database": "sqlite"},
        "figures": {"exports": results, "baselines": baselines, "setup_s": setup_s},
        "notes": "pixels: a virtual dataset repeating a block of real cutouts (see the "
                 "docstring), held in the page cache; each export is the real job in a fresh "
                 "process (peak RSS = its VmHWM, including the app, the bundle and the "
                 "survey); the time includes fsync, the SHA-256 pass and the rename; "
                 f"load average {load_before[0]:.1f} before and {load_after[0]:.1f} after: the "
                 "2-core machine was shared with other engineers' jobs",
        "machine": {
            "cores": os.cpu_count(), "memory_gb": round(pages / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "h5py": package_version("h5py"), "torch": package_version("torch"),
            "faiss": package_version("faiss-cpu"), "astropy": package_version("astropy"),
        },
    }
    write_results("export", record, quick=args.quick)


if __name__ == "__main__":
    main()
