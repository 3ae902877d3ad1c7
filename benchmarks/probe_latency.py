"""Latency from a label to candidate pages reordered by the retrained probe, at N objects.

The real pieces, end to end: the app (SQLite in a temporary folder, or ``--database-url``),
a ``galsearch worker`` process beside it, and a labeler (Flask's test client: the same views,
without sockets) who labels the probe's candidates one request at a time. Each round:

1. the labeler writes ``GALSEARCH_PROBE_DEBOUNCE_LABELS`` (8) labels on the current page,
   about ``--label-interval`` s apart (1 s: a fast person; 0.5-1.5 times it, at random, so that
   labels do not keep step with the worker's polls); the 8th makes the campaign's queued probe
   run due (debounce by count);
2. the worker claims it (woken by PostgreSQL's NOTIFY, or at its next poll every ``--poll`` s
   on SQLite), trains the probe (C by cross-validation, 2000 weak negatives), stores the
   version;
3. the labeler's client polls the probe's state every 20 ms and, when the version changes,
   asks for the next page: the latency ends when that page, ordered by the new version
   (``probe_version``), has been served.

"Pause" rounds write 2 labels and stop: the run becomes due ``GALSEARCH_PROBE_DEBOUNCE_S``
(1.5 s) after the last one (debounce by time), so their latency includes that wait by design.
Beside every latency: the time to serve a similarity page and a probe page of 48 (baselines
measured in the same run), and where the time went (waiting for a claim, training, storing,
serving).

Representations are synthetic (:mod:`ml.index.synthetic`, a rare class planted at 0.4% as in
``benchmarks/campaign.py``) with a survey of tiny cutouts for the catalog; both are built once
and cached under ``--data-dir``. Run::

    .venv/bin/python benchmarks/probe_latency.py --quick
    .venv/bin/python benchmarks/probe_latency.py --sizes 100000,1000000 --dim 128
    .venv/bin/python benchmarks/probe_latency.py --sizes 100000 --database-url postgresql://...

Writes ``benchmarks/results/probe_latency.json`` (``probe_latency_quick.json`` with
``--quick``; ``--merge`` keeps rows of other sizes) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaign import load_average, machine, plant_rare_classes

from ml.index import build_bundle
from ml.index.cli import survey_mag_r
from ml.index.synthetic import RepresentationMixture
from ml.photometry import mag_to_flux
from ml.survey import Survey
from ml.survey_writer import SurveyWriter
from server.database import utcnow

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
RATE = 0.004  # the planted class: 1 in 250, as in the campaign benchmark's survey
POLL_STATE_S = 0.02
TIMEOUT_S = 120.0


# -- data --------------------------------------------------------------------------------------
def synthetic_inputs(data_dir: Path, n: int, dim: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A bundle of N synthetic representations over a survey of 4-px cutouts (cached), and
    the (N,) planted class names."""
    folder = data_dir / f"latency_{n}_{dim}"
    bundle, labels_file = folder / "bundle", folder / "labels.npy"
    if (bundle / "manifest.json").exists() and labels_file.exists():
        return bundle, np.load(labels_file)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    print(f"  building N = {n:,}, d = {dim} under {folder} (once)", flush=True)
    mixture = RepresentationMixture.synthetic(dim, n_clusters=min(2000, n // 50), seed=seed)
    mixture.write(folder / "vectors.npy", n, seed=seed, progress=False)
    vectors = np.load(folder / "vectors.npy", mmap_mode="r+")
    labels = plant_rare_classes(vectors, rng, RATE)
    vectors.flush()
    survey_dir = folder / "survey"
    if not survey_dir.exists():
        with SurveyWriter(survey_dir, image_size=4) as writer:
            for lo in range(0, n, 100_000):
                m = min(n, lo + 100_000) - lo
                flux = mag_to_flux(rng.uniform(16, 21, (m, 1))).astype(np.float32)
                writer.append(np.zeros((m, 3, 4, 4), np.float32), {
                    "ra": rng.uniform(0, 360, m), "dec": rng.uniform(-30, 30, m),
                    "ebv": np.full(m, 0.03, np.float32),
                    "flux": np.repeat(flux, 3, axis=1),
                    "psfsize": np.full((m, 3), 1.3, np.float32),
                    "psfdepth": np.full((m, 3), 1000.0, np.float32)})
    with Survey(survey_dir) as survey:
        build_bundle(bundle, np.load(folder / "vectors.npy", mmap_mode="r"),
                     survey_mag_r(survey), survey.path, survey.fingerprint(),
                     "external:synthetic", k=0, mag_window=None, overwrite=True)
    np.save(labels_file, labels)
    (folder / "vectors.npy").unlink()  # the bundle holds its own normalised copy
    return bundle, labels


# -- the labeler -------------------------------------------------------------------------------
class Labeler:
    """A signed-in session of the app's test client (cookie and CSRF token)."""

    def __init__(self, app, name: str = "bench") -> None:
        from server.auth.accounts import create_user
        from server.extensions import db

        with app.app_context():
            create_user(name, f"{name}-password-long", is_admin=False)
            db.session.commit()
        self.client = app.test_client()
        body = self.client.post("/api/session", json={"username": name,
                                                      "password": f"{name}-password-long"}).json
        self.headers = {"X-CSRF-Token": body["csrf_token"]}

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.client.open(path, method=method, headers=self.headers, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.json}")
        return response.json


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def wait_for_version(labeler: Labeler, cid: int, after: int) -> tuple[float, datetime, dict]:
    """Poll the probe's state until a version newer than ``after`` that has read every label
    exists (a run the debounce started on part of a page does not count), then fetch the page
    it orders; returns when the page was served (perf_counter and UTC) and the page."""
    deadline = time.perf_counter() + TIMEOUT_S
    while time.perf_counter() < deadline:
        state = labeler.call("GET", f"/api/campaigns/{cid}/probe")
        current = state["current"]
        if (current is not None and current["version"] > after
                and state["label_changes_since"] == 0):
            page = labeler.call("GET", f"/api/campaigns/{cid}/candidates")
            if page["probe_version"] and page["probe_version"] > after:
                return time.perf_counter(), utcnow(), page
        job = state["job"]
        if job is not None and job["status"] == "failed":
            raise RuntimeError(f"the probe run failed: {job['error']}")
        time.sleep(POLL_STATE_S)
    raise TimeoutError(f"no probe version after {after} within {TIMEOUT_S} s")


def job_breakdown(app, t0_wall, campaign_id: int, version: int) -> dict:
    """Where the time of the probe job that made ``version`` went (seconds)."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Job, ProbeRun

    with app.app_context():
        job_id = db.session.scalar(select(ProbeRun.job_id).where(
            ProbeRun.campaign_id == campaign_id, ProbeRun.version == version))
        job = db.session.get(Job, job_id)
        due = max(job.run_after, t0_wall)
        return {"wait_for_claim": (job.started_at - due).total_seconds(),
                "train": (job.result or {}).get("seconds"),
                "claim_to_stored": (job.finished_at - job.started_at).total_seconds(),
                "finished_at": job.finished_at}


def percentiles(values: list[float]) -> dict:
    return {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
            "max": float(np.max(values)), "n": len(values)}


def measure(n: int, dim: int, args) -> dict:
    from server.app import create_app

    bundle_path, truth = synthetic_inputs(Path(args.data_dir), n, dim)
    target = np.flatnonzero(truth == "lens")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/latency.db"
        config = {"SQLALCHEMY_DATABASE_URI": url, "BUNDLE_PATH": str(bundle_path),
                  "SECRET_KEY": "benchmark", "CUTOUT_CACHE_DIR": f"{tmp}/cutouts"}
        app = create_app(config)
        env = {**os.environ, "DATABASE_URL": url, "GALSEARCH_BUNDLE": str(bundle_path),
               "GALSEARCH_INSTANCE": tmp, "SECRET_KEY": "benchmark",
               "PYTHONPATH": str(REPO)}
        log = open(f"{tmp}/worker.log", "w")  # noqa: SIM115  (closed with the worker)
        worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--poll",
                                   str(args.poll)], env=env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=log)
        try:
            labeler = Labeler(app, f"bench-{n}-{dim}-{os.getpid()}")  # a database may be reused
            cid = labeler.call("POST", "/api/campaigns", json={"name": "latency",
                                                              "target": "lens"})["id"]
            labeler.call("POST", f"/api/campaigns/{cid}/seeds",
                         json={"object_id": int(target[0])})
            similarity_s = [timed(lambda: labeler.call(
                "GET", f"/api/campaigns/{cid}/candidates"))[0] for _ in range(5)]
            # similarity pages, labeled in bulk until both classes are there, train version 1
            # (and warm the worker up)
            values: set[str] = set()
            while values != {"accept", "reject"}:
                page = labeler.call("GET", f"/api/campaigns/{cid}/candidates")
                labels = [{"object_id": c["object_id"],
                           "value": "accept" if truth[c["object_id"]] == "lens" else "reject"}
                          for c in page["items"]]
                labeler.call("POST", f"/api/campaigns/{cid}/labels/bulk",
                             json={"labels": labels})
                values |= {label["value"] for label in labels}
            _, _, page = wait_for_version(labeler, cid, 0)
            version = page["probe_version"]
            probe_page_s = {strategy: [timed(lambda s=strategy: labeler.call(
                "GET", f"/api/campaigns/{cid}/candidates?strategy={s}"))[0] for _ in range(3)]
                for strategy in ("top", "uncertainty", "mix")}
            rounds: dict[str, list[dict]] = {"count": [], "pause": []}
            pace = np.random.default_rng(1)
            plan = ["count"] * args.rounds + ["pause"] * args.pause_rounds
            for kind in plan:
                writes = app.config["PROBE_DEBOUNCE_LABELS"] if kind == "count" else 2
                items = page["items"][:writes]
                for i, item in enumerate(items):
                    if i:  # a person's pace varies: 0.5-1.5 times the interval
                        time.sleep(args.label_interval * pace.uniform(0.5, 1.5))
                    object_id = item["object_id"]
                    labeler.call("PUT", f"/api/campaigns/{cid}/labels/{object_id}", json={
                        "value": "accept" if truth[object_id] == "lens" else "reject"})
                t0, t0_wall = time.perf_counter(), utcnow()
                served, served_wall, page = wait_for_version(labeler, cid, version)
                version = page["probe_version"]
                parts = job_breakdown(app, t0_wall, cid, version)
                # the client's state polling (every 20 ms) and the page's own time
                parts["serve_after_stored"] = (served_wall
                                               - parts.pop("finished_at")).total_seconds()
                rounds[kind].append({"latency_s": served - t0, **parts})
                print(f"    {kind:5s} round: {served - t0:.2f} s "
                      f"(claim wait {parts['wait_for_claim']:.2f}, train {parts['train']:.2f})",
                      flush=True)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
            log.close()
            from server.extensions import db

            with app.app_context():
                db.engine.dispose()
    similarity_ms = float(np.median(similarity_s) * 1e3)
    row = {"n": n, "dim": dim, "database": "postgresql" if args.database_url else "sqlite",
           "poll_s": args.poll, "label_interval_s": args.label_interval,
           "debounce_labels": app.config["PROBE_DEBOUNCE_LABELS"],
           "debounce_s": app.config["PROBE_DEBOUNCE_S"],
           "unlabeled": app.config["PROBE_UNLABELED"],
           "similarity_page_ms": similarity_ms,
           "probe_page_ms": {k: float(np.median(v) * 1e3) for k, v in probe_page_s.items()}}
    for kind, entries in rounds.items():
        if not entries:
            continue
        latency = percentiles([e["latency_s"] for e in entries])
        row[f"{kind}_latency_s"] = latency
        row[f"{kind}_latency_over_similarity_page"] = latency["p50"] * 1e3 / similarity_ms
        row[f"{kind}_breakdown_median_s"] = {
            key: float(np.median([e[key] for e in entries if e[key] is not None]))
            for key in ("wait_for_claim", "train", "claim_to_stored", "serve_after_stored")}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated N")
    parser.add_argument("--dim", type=int, default=128,
                        help="representation dimension (the demo model's pre-head: 128)")
    parser.add_argument("--rounds", type=int, default=10, help="count-debounced rounds per N")
    parser.add_argument("--pause-rounds", type=int, default=3, help="time-debounced rounds")
    parser.add_argument("--poll", type=float, default=1.0, help="the worker's --poll")
    parser.add_argument("--label-interval", type=float, default=1.0,
                        help="seconds between one person's labels")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--data-dir", default=str(REPO / "data" / "bench_probe"))
    parser.add_argument("--quick", action="store_true",
                        help="N = 20,000, d = 64, 3 rounds, labels 0.2 s apart")
    parser.add_argument("--merge", action="store_true", help="keep rows of other sizes")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.dim, args.rounds, args.pause_rounds = "20000", 64, 3, 1
        args.label_interval = min(args.label_interval, 0.2)
    out = RESULTS / ("probe_latency_quick.json" if args.quick else "probe_latency.json")
    load_before = load_average()
    rows = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        print(f"N = {n:,}, d = {args.dim}", flush=True)
        rows.append(measure(n, args.dim, args))
    if args.merge and out.exists():
        keep = {(r["n"], r["dim"], r["database"]) for r in rows}
        rows = [r for r in json.loads(out.read_text())["rows"]
                if (r["n"], r["dim"], r["database"]) not in keep] + rows
    result = {"benchmark": "probe_latency", "quick": args.quick, "machine": machine(),
              "load_average_before": load_before, "load_average_after": load_average(),
              "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nlabel -> page served by the retrained probe (load {load_before} -> "
          f"{result['load_average_after']})")
    print(f"{'N':>9s} {'d':>5s} {'db':>10s} {'p50 s':>7s} {'p90 s':>7s} {'x sim page':>10s} "
          f"{'claim':>6s} {'train':>6s} {'pause p50':>9s} {'sim page ms':>11s} "
          "probe page ms (top/unc/mix)")
    for r in rows:
        count, parts = r.get("count_latency_s"), r.get("count_breakdown_median_s", {})
        pause = r.get("pause_latency_s")
        print(f"{r['n']:9,d} {r['dim']:5d} {r['database']:>10s} "
              f"{count['p50'] if count else float('nan'):7.2f} "
              f"{count['p90'] if count else float('nan'):7.2f} "
              f"{r.get('count_latency_over_similarity_page', float('nan')):10.1f} "
              f"{parts.get('wait_for_claim', float('nan')):6.2f} "
              f"{parts.get('train', float('nan')):6.2f} "
              f"{pause['p50'] if pause else float('nan'):9.2f} "
              f"{r['similarity_page_ms']:11.1f} "
              + "/".join(f"{v:.0f}" for v in r["probe_page_ms"].values()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
