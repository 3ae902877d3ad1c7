"""API latency: a 48-candidate page, a label write and a cutout (rendered, and from the disk
cache) through gunicorn + PostgreSQL, one kind of request at a time, 20 clients at once.

The server is the production one (``server.gunicorn_conf``: preloaded app, 2 x cores + 1
workers of one request at a time, behind nginx) on a scratch PostgreSQL database, serving a
synthetic survey and search bundle of 1,000,000 objects (``benchmarks/http_data.py``: the
search benchmark's representation mixture, d = 128, HNSW index; 152-px g, r, z cutouts). Each client is a signed-in person
(session cookie, CSRF header; ``benchmarks/serving.py``), 10 per campaign with two object seeds.

Phases, each a closed loop (every client sends its next request as soon as the last one is
answered) bounded by ``--seconds`` and ``--max-requests``, first with one client (the service
time) and then with ``--clients`` (20):

- ``candidate_page``: ``GET /api/campaigns/{id}/candidates?limit=48``, following the cursor
  10 pages deep and starting over;
- ``label_write``: ``PUT /api/campaigns/{id}/labels/{object}``, a new label each time;
- ``cutout_uncached``: ``GET /api/objects/{id}/cutout.png`` of objects never rendered (pixels
  read from the survey file, stretched, PNG-encoded, written to the disk cache);
- ``cutout_cached``: the same request for objects rendered in the phase before (the disk
  cache; no ``If-None-Match``, so the PNG bytes are sent).

Not measured: sign-in, and a warm-up of every kind (it pages in the index and imports the
renderer in every worker). The synthetic survey repeats 1,024 distinct cutouts (object i shows
those of i mod 1024), so their pixels sit in the page cache: an uncached cutout here costs the
rendering, not a cold disk read. Run::

    .venv/bin/python benchmarks/api.py --quick   # a 5,000-object bundle, about 30 s
    .venv/bin/python benchmarks/api.py           # 1,000,000 objects (built once: ~10 min)

By default the clients speak to nginx in front of gunicorn, as in production
(``server/front.py``: nginx sends cached cutouts itself and proxies the rest); ``--front none``
sends them straight to gunicorn. Writes ``benchmarks/results/api.json`` (``api_direct.json``
with ``--front none``; ``_quick`` with ``--quick``) and prints a table. The load average and
the other processes' CPU share are recorded per phase: on a shared machine they say how much of
the latency is queueing behind other work. So are this process's garbage-collector pauses (its
heap is frozen after the warm-up: a pause delays every request in flight) and PostgreSQL's
checkpoints (commits wait longer for their WAL flush while one runs).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import machine
from http_data import survey_and_bundle
from serving import (
    CPU_HEADER,
    CPU_LEGEND,
    Browser,
    CpuMeter,
    Latencies,
    cpu_columns,
    freeze_client_heap,
    load_average,
    percentiles,
    served,
    sign_in_all,
    timed,
    write_results,
)

PAGE_SIZE = 48
PAGE_DEPTH = 10  # pages followed before starting over
VALUES = ("accept", "reject", "unsure")
TARGETS_P99_MS = {"candidate_page": 150.0, "label_write": 50.0, "cutout_uncached": 30.0,
                  "cutout_cached": 5.0}
KINDS = tuple(TARGETS_P99_MS)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Client:
    """One signed-in person and where they are."""

    browser: Browser
    campaign: int
    rng: random.Random
    cursor: str | None = None
    depth: int = 0
    labeled: set[int] = field(default_factory=set)


class Workload:
    """The request of each kind, and what the phases share (objects to render, rendered)."""

    def __init__(self, n_objects: int, seed: int = 0) -> None:
        self.n = n_objects
        order = list(range(n_objects))
        random.Random(seed).shuffle(order)
        self.unrendered = iter(order)  # every object at most once: never in the disk cache
        self.rendered: list[int] = []
        self.label_writes = 0
        # page latencies by depth (1: the first page), with all clients: the index search
        # behind page p looks for p * 48 + 1 objects, so deeper pages cost more
        self.page_s_by_depth: dict[int, list[float]] = defaultdict(list)

    async def candidate_page(self, client: Client, record: Latencies) -> None:
        params = {"limit": str(PAGE_SIZE)} | ({"cursor": client.cursor} if client.cursor else {})
        t0 = time.perf_counter()
        status, body = await timed(record, "candidate_page", client.browser, "GET",
                                   f"/api/campaigns/{client.campaign}/candidates", params=params)
        if record.measuring and status == 200:
            self.page_s_by_depth[client.depth + 1].append(time.perf_counter() - t0)
        if status != 200:
            client.cursor, client.depth = None, 0
            return
        if len(body["items"]) != PAGE_SIZE:
            record.error(f"a page of {len(body['items'])} candidates, not {PAGE_SIZE}")
        client.depth += 1
        client.cursor = body["next_cursor"] if client.depth < PAGE_DEPTH else None
        if client.cursor is None:
            client.depth = 0

    async def label_write(self, client: Client, record: Latencies) -> None:
        object_id = client.rng.randrange(self.n)
        while object_id in client.labeled:
            object_id = client.rng.randrange(self.n)
        client.labeled.add(object_id)
        value = client.rng.choice(VALUES)
        status, body = await timed(record, "label_write", client.browser, "PUT",
                                   f"/api/campaigns/{client.campaign}/labels/{object_id}",
                                   json_body={"value": value})
        if status == 200:
            if body.get("value") != value or body.get("changed") is not True:
                record.error(f"label write answered {body}, not a new {value!r} label")
            self.label_writes += 1

    async def _cutout(self, client: Client, record: Latencies, kind: str,
                      object_id: int) -> bool:
        status, body = await timed(record, kind, client.browser, "GET",
                                   f"/api/objects/{object_id}/cutout.png")
        if status == 200 and not body.startswith(PNG_MAGIC):
            record.error(f"cutout {object_id}: not a PNG")
            return False
        return status == 200

    async def cutout_uncached(self, client: Client, record: Latencies) -> None:
        object_id = next(self.unrendered)
        if await self._cutout(client, record, "cutout_uncached", object_id):
            self.rendered.append(object_id)

    async def cutout_cached(self, client: Client, record: Latencies) -> None:
        await self._cutout(client, record, "cutout_cached", client.rng.choice(self.rendered))


async def closed_loop(clients: list[Client], seconds: float, max_requests: int,
                      step: Callable[[Client, Latencies], Awaitable[None]],
                      record: Latencies) -> None:
    """Every client sends ``step`` again and again until the time or the count runs out."""
    end = time.perf_counter() + seconds
    left = itertools.count(max_requests, -1)

    async def loop(client: Client) -> None:
        while time.perf_counter() < end and next(left) > 0:
            await step(client, record)

    await asyncio.gather(*(loop(client) for client in clients))


async def measure(base_url: str, people: list[tuple[str, int]], n_objects: int,
                  concurrencies: list[int], seconds: dict[int, float], max_requests: int,
                  warmup_s: float, meter: CpuMeter) -> tuple[list[dict[str, Any]], dict]:
    signing = Latencies()
    t0 = time.perf_counter()
    browsers = await sign_in_all(base_url, [name for name, _ in people], signing)
    sign_in_s = time.perf_counter() - t0
    rng = random.Random(1)
    clients = [Client(browser, campaign, random.Random(rng.random()))
               for browser, (_, campaign) in zip(browsers, people, strict=True)]
    work = Workload(n_objects)
    steps = {kind: getattr(work, kind) for kind in KINDS}

    warm = Latencies()
    for kind in KINDS:  # every worker and thread: index pages, renderer import, connections
        await closed_loop(clients, warmup_s, 10 * len(clients), steps[kind], warm)
    freeze_client_heap()
    phases = []
    errors: list[str] = list(warm.errors)
    for count in concurrencies:
        work.page_s_by_depth.clear()
        for kind in KINDS:
            record = Latencies()
            meter.start()
            await closed_loop(clients[:count], seconds[count], max_requests, steps[kind],
                              record)
            cost = meter.stop()
            latency = record.summary().get(kind, {"count": 0})
            target = TARGETS_P99_MS[kind]
            phases.append({
                "kind": kind, "clients": count, "latency": latency,
                "requests_per_s": round(latency["count"] / cost["wall_s"], 1),
                "errors": record.error_count, "target_p99_ms": target,
                "met": (record.error_count == 0 and latency.get("p99_ms") is not None
                        and latency["p99_ms"] <= target), **cost})
            errors += record.errors
            print(f"  {kind:<16} {count:>3} clients: {latency['count']:>6} requests, p50 "
                  f"{latency.get('p50_ms')} ms, p99 {latency.get('p99_ms')} ms; errors "
                  f"{record.error_count}; load {cost['load_average_after'][0]}; this "
                  f"process's longest GC pause {cost['client_gc_pause_ms']['max']} ms; "
                  f"PostgreSQL checkpoints {cost['postgres_checkpoints']}",
                  flush=True)
    for browser in browsers:
        await browser.close()
    by_depth = {depth: {k: v for k, v in percentiles(seconds).items()
                        if k in ("count", "p50_ms", "p99_ms")}
                for depth, seconds in sorted(work.page_s_by_depth.items())}
    print("  page p50 by depth, all clients: " + ", ".join(
        f"{d}: {v['p50_ms']:.0f} ms" for d, v in by_depth.items()), flush=True)
    extra = {"candidate_page_by_depth": by_depth,"sign_in_s": round(sign_in_s, 1), "warmup_errors": warm.error_count,
             "label_writes": work.label_writes, "objects_rendered": len(work.rendered),
             "error_examples": errors[:10]}
    return phases, extra


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def print_table(phases: list[dict[str, Any]]) -> None:
    one = {p["kind"]: p["latency"].get("p50_ms") for p in phases if p["clients"] == 1}
    print(f"\n{'request':<17}{'clients':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'target':>8}{'met':>5}{'p99/p50@1':>10}{CPU_HEADER}")
    for p in phases:
        lat = p["latency"]
        p50 = "-" if lat.get("p50_ms") is None else f"{lat['p50_ms']:.1f}"
        p99 = "-" if lat.get("p99_ms") is None else f"{lat['p99_ms']:.1f}"
        ratio = (f"{lat['p99_ms'] / one[p['kind']]:.1f}"
                 if lat.get("p99_ms") is not None and one.get(p["kind"]) else "-")
        print(f"{p['kind']:<17}{p['clients']:>8}{p['requests_per_s']:>8.0f}{p50:>9}{p99:>9}"
              f"{p['target_p99_ms']:>8.0f}{'yes' if p['met'] else 'NO':>5}{ratio:>10}"
              f"{cpu_columns(p)}")
    print(f"(p99/p50@1: p99 over the one-client median, i.e. queueing; {CPU_LEGEND})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5,000 objects, a few seconds per phase (make bench)")
    parser.add_argument("--n", type=int, default=1_000_000, help="objects in the survey")
    parser.add_argument("--dim", type=int, default=128, help="representation dimension")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-campaign", type=int, default=10, help="clients per campaign")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="seconds per phase with all clients (with one: a third)")
    parser.add_argument("--max-requests", type=int, default=5000, help="requests per phase")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, help="GALSEARCH_WORKERS (default: the config's)")
    parser.add_argument("--threads", type=int, help="GALSEARCH_THREADS (default: the config's)")
    parser.add_argument("--front", choices=("nginx", "none"), default="nginx",
                        help="nginx in front of gunicorn, as in production (server/front.py: "
                             "it sends cached cutouts itself), or clients straight to gunicorn")
    args = parser.parse_args()
    base = 1024
    warmup_s = 3.0
    if args.quick:
        args.n, args.dim, args.seconds, args.max_requests, base = 5000, 64, 3.0, 500, 256
        warmup_s = 1.0
    concurrencies = sorted({1, args.clients})
    seconds = {c: args.seconds if c == args.clients else max(2.0, args.seconds / 3)
               for c in concurrencies}
    started = time.perf_counter()
    survey, bundle = survey_and_bundle(args.n, dim=args.dim, base=base)
    uptime_before, load_before = uptime(), load_average()
    front = None if args.front == "none" else args.front
    print(f"-- {args.database}, N = {args.n:,}, {args.clients} clients, front: {args.front} "
          f"({uptime_before})", flush=True)
    with served(args.database, survey, bundle, args.clients, args.per_campaign, args.n,
                args.workers, args.threads, front=front) as setup:
        phases, extra = asyncio.run(measure(
            setup.server.url, setup.people, args.n, concurrencies, seconds,
            args.max_requests, warmup_s, CpuMeter(setup.server)))
    print_table(phases)
    results = {
        "benchmark": "api", "quick": args.quick,
        "parameters": {"database": args.database, "front": args.front,
                       "n_objects": args.n, "dim": args.dim,
                       "distinct_cutouts": base, "clients": args.clients,
                       "per_campaign": args.per_campaign, "page_size": PAGE_SIZE,
                       "page_depth": PAGE_DEPTH, "seconds": seconds,
                       "max_requests": args.max_requests, "warmup_s": warmup_s,
                       "workers": args.workers, "threads": args.threads},
        "targets_p99_ms": TARGETS_P99_MS,
        "all_met": all(p["met"] for p in phases if p["clients"] == args.clients),
        "phases": phases, **extra,
        "uptime_before": uptime_before, "uptime_after": uptime(),
        "load_average_before": load_before, "load_average_after": load_average(),
        "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
        "nice": os.nice(0),  # of this process and of the server it started
        "notes": "shared 2-core machine: client, server, PostgreSQL and other people's jobs "
                 "share the cores (others_cpu_share, load averages per phase)",
    }
    # api.json: the production set-up (nginx in front); api_direct.json: clients to gunicorn
    write_results("api" if front else "api_direct", args.quick, results)


if __name__ == "__main__":
    main()
