"""Two server set-ups side by side: which is faster, measured in one run.

On this shared 2-core machine the host's speed drifts by 30-60% within minutes, so two
``api.py`` runs one after the other compare the hours as much as the set-ups. Here gunicorn A
and gunicorn B run at once on one scratch PostgreSQL database (the 1M-object bundle of
``api.py``), and the same ``--clients`` signed-in people send one kind of request to A, then
to B, then to B and to A again, in closed loops of ``--cycle-seconds``, for ``--cycles``
cycles: the drift falls on both alike. The idle server's workers wait in ``accept``.

A set-up is environment for gunicorn (``--a`` / ``--b``, e.g. ``GALSEARCH_WORKERS=3`` or
``GALSEARCH_THREADS=2``) and, for B, optionally the code of another checkout (``--b-repo``: a
``git worktree`` of another commit, run with this checkout's ``.venv``). Both are reached
straight, without nginx (the requests compared here all reach gunicorn behind nginx too).

Per kind and set-up: the medians over the cycles of requests/s, p50, p99 and the server's CPU
per request (gunicorn's master and workers); and B/A of the CPU per request in each cycle (its
median and range: the figure to quote). Calibrated against itself (B = A): B/A per cycle
0.92-1.25, median 1.09, over ten 2-second cycles of one client: differences under about 10%
are not resolved. Run::

    .venv/bin/python benchmarks/api_ab.py --b GALSEARCH_WORKERS=3
    .venv/bin/python benchmarks/api_ab.py --b-repo /tmp/before --kinds label_write --cycles 10
    .venv/bin/python benchmarks/api_ab.py --quick       # 5,000 objects, B = A, ~1 minute

Writes ``benchmarks/results/api_ab.json`` (``_quick`` with ``--quick``) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from api import Client, Workload, closed_loop
from campaign import machine
from http_data import survey_and_bundle
from serving import (
    REPO,
    Gunicorn,
    Latencies,
    freeze_client_heap,
    load_average,
    served,
    sign_in_all,
    write_results,
)

KINDS = ("label_write", "candidate_page", "cutout_uncached")


def environment(text: str) -> dict[str, str]:
    """``NAME=value,NAME=value`` as a dict (argparse type)."""
    pairs = [item for item in text.split(",") if item]
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise argparse.ArgumentTypeError(
                f"{pair!r}: expected NAME=value (several separated by commas)")
        env[name] = value
    return env


async def _clients(url: str, people: list[tuple[str, int]], seed: int,
                   labeled: list[set[int]] | None) -> list[Client]:
    browsers = await sign_in_all(url, [name for name, _ in people], Latencies())
    rng = random.Random(seed)
    return [Client(browser, campaign, random.Random(rng.random()),
                   labeled=set() if labeled is None else labeled[i])
            for i, (browser, (_, campaign)) in enumerate(zip(browsers, people, strict=True))]


async def compare(servers: dict[str, Gunicorn], people: list[tuple[str, int]], n: int,
                  kinds: list[str], cycle_s: float, cycles: int,
                  warmup_s: float) -> dict[str, Any]:
    """Per kind: every cycle's figures for each server, and B/A of the CPU per request."""
    work = Workload(n)
    clients_a = await _clients(servers["A"].url, people, 1, None)
    # one person's A and B clients share the objects they labeled: a second label on the same
    # object would be a change, not the first label measured
    clients = {"A": clients_a,
               "B": await _clients(servers["B"].url, people, 2,
                                   [client.labeled for client in clients_a])}
    for kind in kinds:  # every worker: index pages, the renderer's import, connections
        for name in servers:
            await closed_loop(clients[name], warmup_s, 10 * len(people), getattr(work, kind),
                              Latencies())
    freeze_client_heap()
    results: dict[str, Any] = {}
    for kind in kinds:
        step = getattr(work, kind)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for cycle in range(cycles):
            for name in ("A", "B") if cycle % 2 == 0 else ("B", "A"):
                server, record = servers[name], Latencies()
                cpu0, t0 = server.cpu_seconds(), time.perf_counter()
                await closed_loop(clients[name], cycle_s, 10**9, step, record)
                wall, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
                latency = record.summary().get(kind, {"count": 0})
                count = latency["count"]
                rows[name].append({
                    "requests": count, "requests_per_s": round(count / wall, 1),
                    "p50_ms": latency.get("p50_ms"), "p99_ms": latency.get("p99_ms"),
                    "cpu_ms_per_request": round(1e3 * cpu / count, 3) if count else None,
                    "errors": record.error_count, "error_examples": record.errors[:3]})
        ratios = [b["cpu_ms_per_request"] / a["cpu_ms_per_request"]
                  for a, b in zip(rows["A"], rows["B"], strict=True)
                  if a["cpu_ms_per_request"] and b["cpu_ms_per_request"]]
        results[kind] = {
            **{name: _medians(rows[name]) for name in servers},
            "b_over_a_cpu_per_request": {
                "median": round(statistics.median(ratios), 3) if ratios else None,
                "min": round(min(ratios), 3) if ratios else None,
                "max": round(max(ratios), 3) if ratios else None,
                "per_cycle": [round(r, 3) for r in ratios]},
            "cycles": rows}
        summary = results[kind]["b_over_a_cpu_per_request"]
        print(f"  {kind:<16} B/A CPU per request: median {summary['median']} "
              f"({summary['min']}-{summary['max']}); load {load_average()[0]}", flush=True)
    for browser in [client.browser for group in clients.values() for client in group]:
        await browser.close()
    return results


def _medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {"requests_per_s": median("requests_per_s"), "p50_ms": median("p50_ms"),
            "p99_ms": median("p99_ms"), "cpu_ms_per_request": median("cpu_ms_per_request"),
            "errors": sum(row["errors"] for row in rows)}


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'request':<17}{'set-up':>7}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'CPU ms/req':>12}{'errors':>8}{'B/A CPU (range)':>24}")
    for kind, result in results.items():
        ratio = result["b_over_a_cpu_per_request"]
        for name in ("A", "B"):
            row = result[name]
            spread = (f"{ratio['median']} ({ratio['min']}-{ratio['max']})"
                      if name == "B" and ratio["median"] is not None else "")
            print(f"{kind if name == 'A' else '':<17}{name:>7}{row['requests_per_s']:>8.0f}"
                  f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['cpu_ms_per_request']:>12.3f}"
                  f"{row['errors']:>8}{spread:>24}")
    print("(medians over the cycles; CPU: gunicorn's master and workers per request; B/A: the "
          "CPU per request of B over A's in the same cycle)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", type=environment, default={}, metavar="NAME=value,...",
                        help="gunicorn environment of set-up A (e.g. GALSEARCH_WORKERS=5)")
    parser.add_argument("--b", type=environment, default={}, metavar="NAME=value,...",
                        help="gunicorn environment of set-up B")
    parser.add_argument("--b-repo", type=Path, default=None,
                        help="run B's server from this checkout (default: this one)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"request kinds, comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-campaign", type=int, default=10, help="clients per campaign")
    parser.add_argument("--cycle-seconds", type=float, default=5.0,
                        help="seconds of each set-up's closed loop in a cycle")
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 objects, B = A unless set, 2 cycles of 2 s (make bench)")
    args = parser.parse_args()
    kinds = [kind for kind in args.kinds.split(",") if kind]
    if not kinds or any(kind not in KINDS for kind in kinds):
        parser.error(f"--kinds {args.kinds!r}: choose from {', '.join(KINDS)}")
    if args.b_repo is not None and not (args.b_repo / "server" / "gunicorn_conf.py").exists():
        parser.error(f"--b-repo {args.b_repo}: not a galsearch checkout (no "
                     "server/gunicorn_conf.py)")
    n, dim, base, warmup_s = 1_000_000, 128, 1024, 3.0
    if args.quick:
        n, dim, base, warmup_s = 5000, 64, 256, 1.0
        args.cycles, args.cycle_seconds = min(args.cycles, 2), min(args.cycle_seconds, 2.0)
    started = time.perf_counter()
    survey, bundle = survey_and_bundle(n, dim=dim, base=base)
    print(f"-- A: {args.a or 'the configuration'}; B: {args.b or 'the configuration'}"
          f"{f' from {args.b_repo}' if args.b_repo else ''}; {args.clients} clients, "
          f"{args.cycles} cycles of {args.cycle_seconds:g} s", flush=True)
    with served("postgresql", survey, bundle, args.clients, args.per_campaign, n,
                env=args.a) as setup:
        other = Gunicorn(setup.database_url, setup.instance,
                         _b_env(setup.env, args.a, args.b),
                         repo=args.b_repo or REPO)
        with other:
            results = asyncio.run(compare({"A": setup.server, "B": other}, setup.people, n,
                                          kinds, args.cycle_seconds, args.cycles, warmup_s))
            # what each set-up ran with (B's defaults may be another commit's), counted once
            # every worker has served
            workers = {"A": len(setup.server.worker_pids()), "B": len(other.worker_pids())}
    print_table(results)
    write_results("api_ab", args.quick, {
        "benchmark": "api_ab", "quick": args.quick,
        "parameters": {"a": args.a, "b": args.b,
                       "b_repo": None if args.b_repo is None else str(args.b_repo),
                       "kinds": kinds, "clients": args.clients,
                       "per_campaign": args.per_campaign, "cycle_seconds": args.cycle_seconds,
                       "cycles": args.cycles, "n_objects": n, "dim": dim, "front": "none",
                       "workers": workers},
        "kinds": results, "machine": machine(), "nice": os.nice(0),
        "seconds": round(time.perf_counter() - started, 1)})


def _b_env(served_env: dict[str, str], a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    """B's gunicorn environment: what ``served`` gave A, without A's own settings, plus B's."""
    return {**{k: v for k, v in served_env.items() if k not in a}, **b}


if __name__ == "__main__":
    main()
