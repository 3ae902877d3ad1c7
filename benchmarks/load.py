"""Load: simulated labelers against gunicorn + PostgreSQL (and the SQLite default), then a check
that every acknowledged label is stored exactly once.

Each labeler is what the web app does for a fast person (``frontend/src/lib``):

- signs in (session cookie + CSRF token), before the measured window;
- arrives at a time of its own in the first ``--ramp`` seconds (60 by default: 200 people do
  not open the app in the same second; all arriving at once makes the first minute a queue of
  ~20,000 cutouts, which the p99 of a short run then measures), as load tools' spawn rates do;
  every request from the first arrival on is measured;
- asks for a page of 48 candidates, loads its 48 cutouts (at most 6 requests at once, as a
  browser does on one origin), then prefetches the next page and its cutouts while the person
  labels;
- labels one object about every second (0.5-1.5 s apart, at random): the writes go one at a
  time in the person's order (``LabelBook``), so a slow write delays the next one; 5% of the
  writes change an earlier label of the same person to another value.

``--per-campaign`` labelers (10) share a campaign (two object seeds), so they see overlapping
pages, as a team does. No probe worker runs (the label writes still queue the probe's
retraining in their transaction, as in production). The survey and bundle are those of
``benchmarks/api.py`` (``benchmarks/http_data.py``: 1,000,000 synthetic objects, d = 128).

The HTTP client (``benchmarks/serving.py``'s :class:`Browser`, asyncio streams) runs every
labeler on one event loop in this process; its CPU share and the loop's lag are reported so
that the client's own cost is visible: on the 2-core machine it shares the cores with gunicorn
and PostgreSQL.

After each step the database is read: every acknowledged write's value must be the stored
label (one row per campaign, object and person: the unique constraint; a write that got no
answer may or may not have landed, and then either value passes), every acknowledged write that
changed something must have exactly one history row, and no label may exist that was never
sent.

Steps: the number of labelers goes up (20, 50, 100, 200, 300, 400) until label-write p99 exceeds
100 ms or anything fails; then the SQLite default with 20 labelers. Run::

    .venv/bin/python benchmarks/load.py --quick          # < 2 min: 20 labelers, 15 s, both DBs
    .venv/bin/python benchmarks/load.py                  # 5 min per step (about 40 min)
    .venv/bin/python benchmarks/load.py --steps 200 --no-sqlite --merge  # redo one step

Writes ``benchmarks/results/load.json`` (``load_quick.json`` with ``--quick``) and prints a
table; the machine's load average and the other processes' CPU share are recorded per step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import machine
from http_data import survey_and_bundle
from serving import (
    AFTER,
    CPU_HEADER,
    CPU_LEGEND,
    WIRE,
    Browser,
    CpuMeter,
    Latencies,
    Served,
    cpu_columns,
    freeze_client_heap,
    load_average,
    percentiles,
    results_path,
    served,
    sign_in_all,
    timed,
    write_results,
)

P99_TARGET_MS = 100.0
# the steady state starts this long after the last arrival (drive)
STEADY_AFTER_ARRIVALS_S = 10.0
PAGE_SIZE = 48
BROWSER_CONNECTIONS = 6
CHANGE_FRACTION = 0.05
REQUEST_TIMEOUT_S = 30.0
VALUES = ("accept", "reject", "unsure")

Key = tuple[str, int, int]  # username, campaign, object


@dataclass
class Record(Latencies):
    """Latencies and errors, and every label write with its outcome."""

    acknowledged: dict[Key, str] = field(default_factory=dict)  # the newest answered value
    # values of writes that got no answer since the newest answered one (may have landed)
    unanswered: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    changed_writes: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    writes_sent: int = 0
    writes_acknowledged: int = 0


class Labeler:
    """One simulated person in one campaign."""

    def __init__(self, browser: Browser, username: str, campaign: int, record: Record,
                 rng: random.Random, arrival_s: float = 0.0) -> None:
        self.browser, self.username, self.campaign = browser, username, campaign
        self.record, self.rng, self.arrival_s = record, rng, arrival_s
        self.labeled: list[int] = []

    async def page(self, cursor: str | None) -> tuple[list[int], str | None]:
        """A candidate page and its cutouts (as the browser loads them)."""
        params = {"limit": str(PAGE_SIZE)} | ({"cursor": cursor} if cursor else {})
        status, body = await timed(self.record, "candidate_page", self.browser, "GET",
                                   f"/api/campaigns/{self.campaign}/candidates", params=params,
                                   ok=(200, 409))
        if status == 409:  # a stale cursor: start over, as the app does
            return await self.page(None)
        if status != 200:
            return [], cursor
        ids = [item["object_id"] for item in body["items"]]
        # the browser's connection limit queues them (Browser: 6 at once)
        await asyncio.gather(*(timed(self.record, "cutout", self.browser, "GET",
                                     f"/api/objects/{object_id}/cutout.png")
                               for object_id in ids))
        return ids, body["next_cursor"]

    async def write(self, object_id: int, value: str) -> None:
        key = (self.username, self.campaign, object_id)
        record = self.record
        record.writes_sent += 1
        status, body = await timed(record, "label_write", self.browser, "PUT",
                                   f"/api/campaigns/{self.campaign}/labels/{object_id}",
                                   json_body={"value": value})
        if status == 200 and body.get("value") == value:
            record.writes_acknowledged += 1
            record.acknowledged[key] = value
            record.changed_writes[key] += bool(body.get("changed"))
            record.unanswered.pop(key, None)
        else:
            if status == 200:
                record.error(f"label write of {value!r} answered {body}")
            record.unanswered[key].add(value)

    async def run(self, end: float) -> None:
        """Label until ``end`` (perf_counter)."""
        upcoming: asyncio.Task | None = None
        try:
            await asyncio.sleep(self.arrival_s)  # people do not start in step
            ids, cursor = await self.page(None)
            next_at = time.perf_counter()
            while time.perf_counter() < end:
                upcoming = asyncio.create_task(self.page(cursor))
                for object_id in ids:
                    next_at += self.rng.uniform(0.5, 1.5)
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    if time.perf_counter() >= end:
                        break
                    if self.labeled and self.rng.random() < CHANGE_FRACTION:
                        earlier = self.rng.choice(self.labeled)
                        current = self.record.acknowledged.get(
                            (self.username, self.campaign, earlier))
                        await self.write(earlier, self.rng.choice(
                            [v for v in VALUES if v != current]))
                        next_at += self.rng.uniform(0.5, 1.5)
                        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    await self.write(object_id, self.rng.choice(VALUES))
                    self.labeled.append(object_id)
                ids, cursor = await upcoming
                upcoming = None
                if not ids and time.perf_counter() < end:  # the page failed: wait, try again
                    await asyncio.sleep(1.0)
                    ids, cursor = await self.page(cursor)
                next_at = max(next_at, time.perf_counter())
        finally:
            if upcoming is not None:  # the prefetch of a page nobody will label
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upcoming
            await self.browser.close()


async def loop_lag(end: float, lags: list[float]) -> None:
    """How late the event loop wakes up (the client's own saturation)."""
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(0.05)
        lags.append(time.perf_counter() - t0 - 0.05)


async def drive(setup: Served, duration_s: float, record: Record,
                ramp_s: float) -> dict[str, Any]:
    """Sign everyone in (not measured), then label for ``duration_s``, the labelers arriving
    one by one over the first ``ramp_s`` seconds (in random order)."""
    t_sign = time.perf_counter()
    record.measuring = False
    browsers = await sign_in_all(setup.server.url, [name for name, _ in setup.people], record,
                                 connections=BROWSER_CONNECTIONS, timeout_s=REQUEST_TIMEOUT_S)
    sign_in_s = time.perf_counter() - t_sign
    freeze_client_heap()
    rng = random.Random(1)
    n = len(browsers)
    arrivals = [max(ramp_s, 1.0) * (i + rng.random()) / n for i in range(n)]
    rng.shuffle(arrivals)
    labelers = [Labeler(browser, name, campaign, record, random.Random(rng.random()), arrival)
                for browser, (name, campaign), arrival
                in zip(browsers, setup.people, arrivals, strict=True)]
    lags: list[float] = []
    meter = CpuMeter(setup.server)
    meter.start()
    start = time.perf_counter()
    end = start + duration_s
    # the steady state: requests sent once everyone has arrived (and had 10 s to load their
    # first two pages), reported beside the whole run, which the target judges
    record.split_at = start + ramp_s + STEADY_AFTER_ARRIVALS_S
    record.measuring = True
    await asyncio.gather(*(labeler.run(end) for labeler in labelers), loop_lag(end, lags))
    record.measuring = False
    return {"sign_in_s": round(sign_in_s, 1), **meter.stop(), "loop_lag": percentiles(lags)}


# -- the check ---------------------------------------------------------------------------------
def check_labels(app, record: Record) -> dict[str, Any]:
    """Compare what the labelers were told with what the database holds."""
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models import Label, LabelHistory, User

    with app.app_context():
        stored: dict[Key, str] = {}
        rows = 0
        for username, campaign, object_id, value in db.session.execute(
                select(User.username, Label.campaign_id, Label.object_id, Label.value)
                .join(User, User.id == Label.user_id)):
            stored[(username, campaign, object_id)] = value.value
            rows += 1
        history = {(u, c, o): n for u, c, o, n in db.session.execute(
            select(User.username, LabelHistory.campaign_id, LabelHistory.object_id,
                   func.count()).join(User, User.id == LabelHistory.user_id)
            .group_by(User.username, LabelHistory.campaign_id, LabelHistory.object_id))}
        db.session.remove()
    acknowledged, unanswered = record.acknowledged, record.unanswered
    lost = [k for k in acknowledged if k not in stored]
    wrong = [k for k in acknowledged if k in stored and stored[k] != acknowledged[k]
             and stored[k] not in unanswered.get(k, ())]
    never_sent = [k for k in stored if k not in acknowledged and k not in unanswered]
    history_off = [k for k in acknowledged if k not in unanswered
                   and history.get(k, 0) != record.changed_writes[k]]
    return {
        "writes_sent": record.writes_sent,
        "writes_acknowledged": record.writes_acknowledged,
        "labels_acknowledged": len(acknowledged),
        "label_rows_stored": rows,
        "duplicates": rows - len(stored),
        "lost": len(lost),
        "wrong_value": len(wrong),
        "stored_not_acknowledged": len([k for k in stored if k not in acknowledged
                                        and k in unanswered]),
        "stored_never_sent": len(never_sent),
        "history_mismatches": len(history_off),
        "examples": [list(k) for k in (lost + wrong + never_sent + history_off)[:5]],
    }


# -- one step ----------------------------------------------------------------------------------
def run_step(database: str, labelers: int, duration_s: float, survey: Path, bundle: Path,
             n_objects: int, per_campaign: int, workers: int | None,
             threads: int | None, ramp_s: float, front: str = "nginx") -> dict[str, Any]:
    print(f"-- {database}: {labelers} labelers for {duration_s:.0f} s, front: {front} "
          f"(load average {load_average()})", flush=True)
    record = Record(on_wire=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with served(database, survey, bundle, labelers, per_campaign, n_objects, workers,
                threads, front=None if front == "none" else front) as setup:
        cost = asyncio.run(drive(setup, duration_s, record, ramp_s))
        check = check_labels(setup.app, record)
    latencies = record.summary()
    # judged on the time on the wire: the browser's own queue (6 connections shared with the
    # cutouts over HTTP/1.1) is reported beside it but is not the server's doing
    writes = latencies.get("label_write" + WIRE, percentiles([]))
    steady = latencies.get("label_write" + AFTER + WIRE, percentiles([]))
    correct = (check["lost"] == 0 and check["wrong_value"] == 0 and check["duplicates"] == 0
               and check["history_mismatches"] == 0 and check["stored_never_sent"] == 0)
    step = {"database": database, "labelers": labelers, "front": front,
            "duration_s": duration_s,
            "ramp_s": ramp_s, "started_utc": started,
            "latency": latencies, "errors": record.error_count,
            "error_examples": record.errors[:5], "check": check, **cost,
            "label_writes_per_s": round(writes["count"] / cost["wall_s"], 1),
            "held": (correct and record.error_count == 0 and writes["p99_ms"] is not None
                     and writes["p99_ms"] <= P99_TARGET_MS),
            "correct": correct}
    print(f"   writes {writes['count']} ({step['label_writes_per_s']}/s) p50 "
          f"{writes['p50_ms']} ms p99 {writes['p99_ms']} ms (after the arrivals: p50 "
          f"{steady['p50_ms']} ms p99 {steady['p99_ms']} ms); errors {record.error_count}; "
          f"acknowledged {check['labels_acknowledged']} stored {check['label_rows_stored']} "
          f"lost {check['lost']}; CPU: server {cost['server_cpu_share']:.0%}, client "
          f"{cost['client_cpu_share']:.0%}, PostgreSQL {cost['postgres_cpu_share']:.0%}, others "
          f"{cost['others_cpu_share']:.0%}", flush=True)
    return step


def print_table(steps: list[dict[str, Any]]) -> None:
    print()
    print(f"{'database':<11}{'front':>6}{'labelers':>9}{'writes/s':>9}{'write p50':>10}"
          f"{'write p99':>10}{'(seen)':>8}{'steady':>8}{'page p99':>9}{'cutout p99':>11}{'errors':>7}"
          f"{'acked':>7}"
          f"{'stored':>7}{'lost':>5}{CPU_HEADER}  held")
    for s in steps:
        lat = s["latency"]

        def p(kind: str, q: str, lat: dict = lat) -> str:
            value = lat.get(kind, {}).get(q)
            return "-" if value is None else f"{value:.0f}"

        print(f"{s['database']:<11}{s.get('front', 'none'):>6}{s['labelers']:>9}"
              f"{s['label_writes_per_s']:>9}"
              f"{p('label_write' + WIRE, 'p50_ms'):>10}{p('label_write' + WIRE, 'p99_ms'):>10}"
              f"{p('label_write', 'p99_ms'):>8}{p('label_write' + AFTER + WIRE, 'p99_ms'):>8}"
              f"{p('candidate_page' + WIRE, 'p99_ms'):>9}{p('cutout' + WIRE, 'p99_ms'):>11}"
              f"{s['errors']:>7}{s['check']['labels_acknowledged']:>7}"
              f"{s['check']['label_rows_stored']:>7}{s['check']['lost']:>5}"
              f"{cpu_columns(s)}  {'yes' if s['held'] else 'NO'}")
    print("(milliseconds on the wire, from sending a request to its whole answer; (seen): the "
          "write p99 the person saw, waiting for one of the browser's 6 connections included; "
          f"steady: the write p99 of the requests sent {STEADY_AFTER_ARRIVALS_S:.0f} s or more "
          "after the last arrival; "
          f"{CPU_LEGEND})")


def merged_steps(quick: bool, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``steps`` and those of the results file of other (database, labelers), in order."""
    path = results_path("load", quick)
    def key(s: dict[str, Any]) -> tuple:
        return s["database"], s.get("front", "none"), s["labelers"]

    done = {key(s) for s in steps}
    old = json.loads(path.read_text())["steps"] if path.exists() else []
    return sorted([s for s in old if key(s) not in done] + steps,
                  key=lambda s: (s["database"] != "postgresql", s.get("front", "none"),
                                 s["labelers"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20 labelers for 15 s on each database, 5,000 objects (< 2 min)")
    parser.add_argument("--steps", default="20,50,100,200,300,400",
                        help="labeler counts on PostgreSQL, tried in order until one fails")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per step")
    parser.add_argument("--ramp", type=float, default=60.0,
                        help="seconds over which the labelers arrive (within --duration)")
    parser.add_argument("--sqlite-labelers", type=int, default=20)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite step")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL steps")
    parser.add_argument("--n", type=int, default=1_000_000, help="objects in the survey")
    parser.add_argument("--dim", type=int, default=128, help="representation dimension")
    parser.add_argument("--per-campaign", type=int, default=10, help="labelers per campaign")
    parser.add_argument("--workers", type=int, help="GALSEARCH_WORKERS (default: the config's)")
    parser.add_argument("--threads", type=int, help="GALSEARCH_THREADS (default: the config's)")
    parser.add_argument("--front", choices=("nginx", "none"), default="nginx",
                        help="nginx in front of gunicorn, as in production (it sends cached "
                             "cutouts itself), or the labelers straight to gunicorn")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every step, also after one that did not hold")
    parser.add_argument("--merge", action="store_true",
                        help="keep the steps of the results file that this run does not redo")
    args = parser.parse_args()
    base = 1024
    if args.quick:
        args.steps, args.duration, args.n, args.dim, base = "20", 15.0, 5000, 64, 256
        args.ramp = min(args.ramp, 5.0)
    survey, bundle = survey_and_bundle(args.n, dim=args.dim, base=base)
    started = time.perf_counter()
    load_before = load_average()
    done: list[dict[str, Any]] = []

    def save(final: bool) -> list[dict[str, Any]]:
        """The results file, rewritten after every step (a stopped run keeps its steps)."""
        steps = merged_steps(args.quick, done) if args.merge else list(done)
        held = [s["labelers"] for s in steps if s["database"] == "postgresql" and s["held"]
                and s.get("front", "none") == args.front]
        write_results("load", args.quick, {
            "benchmark": "load", "quick": args.quick, "complete": final,
            "parameters": {"n_objects": args.n, "dim": args.dim, "distinct_cutouts": base,
                           "page_size": PAGE_SIZE, "per_campaign": args.per_campaign,
                           "duration_s": args.duration, "ramp_s": args.ramp,
                           "label_interval_s": [0.5, 1.5],
                           "change_fraction": CHANGE_FRACTION,
                           "browser_connections": BROWSER_CONNECTIONS,
                           "workers": args.workers, "threads": args.threads,
                           "p99_target_ms": P99_TARGET_MS},
            "front": args.front,
            "largest_held_postgresql": max(held) if held else None,
            "steps": steps, "machine": machine(),
            "nice": os.nice(0),  # of this process and of the server it started
            "load_average_before": load_before, "load_average_after": load_average(),
            "seconds": round(time.perf_counter() - started, 1),
            "notes": "client, server and PostgreSQL share the machine's cores; what else ran "
                     "meanwhile shows in the load averages and others_cpu_share of each step",
        })
        return steps

    if not args.no_postgres:
        for count in (int(c) for c in args.steps.split(",")):
            done.append(run_step("postgresql", count, args.duration, survey, bundle, args.n,
                                 args.per_campaign, args.workers, args.threads, args.ramp,
                                 args.front))
            save(final=False)
            if not done[-1]["held"] and not args.keep_going:
                break
    if not args.no_sqlite:
        done.append(run_step("sqlite", args.sqlite_labelers, args.duration, survey, bundle,
                             args.n, args.per_campaign, args.workers, args.threads, args.ramp,
                             args.front))
    steps = save(final=True)
    held = [s["labelers"] for s in steps if s["database"] == "postgresql" and s["held"]
            and s.get("front", "none") == args.front]
    print_table(steps)
    print(f"largest number of labelers held on PostgreSQL (label-write p99 <= "
          f"{P99_TARGET_MS:.0f} ms, no error, every acknowledged label stored once; front "
          f"{args.front}): "
          f"{max(held) if held else 'none'}")


if __name__ == "__main__":
    main()
