"""Search speed and quality: exact NumPy, Faiss exact and the approximate indexes, at scale.

Vectors come from :class:`ml.index.synthetic.RepresentationMixture`: a few thousand anisotropic
Gaussian clusters in a 64-d latent space with a power-law spectrum, a common direction and a
full-rank tail, L2-normalised (``--fit-to BUNDLE`` fits the mixture to a real bundle's vectors
instead). Isotropic noise would be an unfair test: no index beats a scan on it.

For each N and d: k = 100 query latency p50 / p99 (one query at a time, as the server asks),
recall@100 against exact cosine on the float16 originals, build time and bytes per vector, for

- ``numpy-exact``: chunked float32 BLAS over the float16 memory map (the baseline of the ratios),
- ``faiss-flat``: Faiss exact inner product over float32 vectors,
- ``hnsw`` and ``ivfpq``: the bundle's approximate indexes through the query layer, i.e.
  candidates re-ranked exactly on the float16 originals (what ``Searcher.search_vector`` does).

Plus the all-pairs top-k arrays (N = 100k, d = 2048, k = 1000 in the full run) and lookups from
them (``Searcher.neighbours``). ``--allpairs-pass`` picks the symmetric pass (each block pair
multiplied once), the per-block pass, or ``both``: each timed on the same data, their arrays
checked equal and the per-block / symmetric time ratio recorded. Run::

    .venv/bin/python benchmarks/search.py --quick
    .venv/bin/python benchmarks/search.py --sizes 10000,100000
    .venv/bin/python benchmarks/search.py --sizes 1000000 --dims 2048 --no-allpairs --merge
    .venv/bin/python benchmarks/search.py --only all-pairs --merge  # just the all-pairs figure
    .venv/bin/python benchmarks/search.py --only all-pairs --allpairs 20000:2048:1000 \
        --allpairs-pass both --out /tmp/allpairs_20k.json

Writes ``benchmarks/results/search.json`` (``--merge`` keeps rows of other sizes) and prints a
table. Generated vectors are cached under ``--data-dir`` (4 GB at 1M x 2048).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.index.faiss_index import FaissIndex, build_index, choose_params, omp_threads
from ml.index.knn import all_pairs_topk, exact_topk, symmetric_heap_bytes
from ml.index.query import KnnArrays, Searcher
from ml.index.synthetic import RepresentationMixture
from ml.index.vectors import as_float32, open_vectors

K = 100
RESULTS = Path(__file__).resolve().parent / "results" / "search.json"
FLAT_IN_MEMORY_MAX_BYTES = 2 * 2**30  # above: Faiss scans a float32 memory map on disk
EXACT_QUERY_BUDGET_ELEMENTS = 2e9  # fewer timed exact queries when N * d * queries exceeds


def machine() -> dict:
    import torch

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "memory_gb": round(mem_gb, 1),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "faiss": faiss.__version__, "torch": torch.__version__,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def vectors_for(n: int, dim: int, args, mixture_cache: dict) -> np.ndarray:
    """The cached (n, dim) float16 vectors, sampling them on first use."""
    tag = "fit" if args.fit_to else "synthetic"
    path = Path(args.data_dir) / f"{tag}_{n}_{dim}.npy"
    if path.exists():
        return open_vectors(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if dim not in mixture_cache:
        if args.fit_to:
            mixture_cache[dim] = RepresentationMixture.fit(
                open_vectors(Path(args.fit_to) / "vectors.npy"), n_clusters=args.clusters)
        else:
            mixture_cache[dim] = RepresentationMixture.synthetic(dim, n_clusters=args.clusters)
    return mixture_cache[dim].write(path, n, seed=1)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    return float(np.percentile(seconds, 50) * 1e3), float(np.percentile(seconds, 99) * 1e3)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return np.intersect1d(found[found >= 0], truth).size / truth.size


def time_queries(search, queries: np.ndarray, truth: np.ndarray) -> dict:
    search(queries[0])  # warm-up: page in the first lists / graph levels
    seconds, recalls = [], []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        ids = search(q)
        seconds.append(time.perf_counter() - t0)
        recalls.append(recall(ids, truth[i]))
    p50, p99 = percentiles(seconds)
    return {"p50_ms": p50, "p99_ms": p99, "recall_at_100": float(np.mean(recalls)),
            "min_recall": float(np.min(recalls)), "n_timed": len(queries)}


def bench_size(n: int, dim: int, args, mixture_cache: dict) -> list[dict]:
    vectors = vectors_for(n, dim, args, mixture_cache)
    rng = np.random.default_rng(7)
    query_ids = rng.choice(n, size=min(args.queries, n), replace=False)
    queries = as_float32(vectors[np.sort(query_ids)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    t0 = time.perf_counter()
    truth, _ = exact_topk(queries, vectors, K)
    print(f"  N={n} d={dim}: ground truth for {len(queries)} queries in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    n_exact = int(max(5, min(len(queries), EXACT_QUERY_BUDGET_ELEMENTS // (n * dim))))
    rows = []

    def row(method, timing, build_s, bytes_per_vector, **extra):
        rows.append({"n": n, "dim": dim, "method": method, **timing, "build_s": build_s,
                     "bytes_per_vector": bytes_per_vector, **extra})
        print(f"    {method:12s} p50 {timing['p50_ms']:8.2f} ms  recall {timing['recall_at_100']:.4f}"
              f"  build {build_s:7.1f} s", flush=True)

    timing = time_queries(lambda q: exact_topk(q[None], vectors, K)[0][0],
                          queries[:n_exact], truth[:n_exact])
    row("numpy-exact", timing, 0.0, 2 * dim)

    t0 = time.perf_counter()
    if n * dim * 4 <= FLAT_IN_MEMORY_MAX_BYTES:
        flat = faiss.IndexFlatIP(dim)
        for lo in range(0, n, 65_536):
            flat.add(as_float32(vectors[lo:lo + 65_536]))

        def flat_search(q):
            with omp_threads(1):  # as the query layer runs single queries
                return flat.search(q[None], K)[1][0]
    else:  # Faiss' exact kernel over a float32 memory map, so 8 GB stay in the page cache
        path = Path(args.data_dir) / f"flat32_{n}_{dim}.npy"
        if not path.exists():
            tmp = np.lib.format.open_memmap(str(path) + ".partial", mode="w+",
                                            dtype=np.float32, shape=(n, dim))
            for lo in range(0, n, 65_536):
                tmp[lo:lo + 65_536] = as_float32(vectors[lo:lo + 65_536])
            tmp.flush()
            del tmp
            os.replace(str(path) + ".partial", path)
        xb = np.load(path, mmap_mode="r")

        def flat_search(q):
            return faiss.knn(q[None], xb, K, metric=faiss.METRIC_INNER_PRODUCT)[1][0]
    build_s = time.perf_counter() - t0
    timing = time_queries(flat_search, queries[:n_exact], truth[:n_exact])
    row("faiss-flat", timing, build_s, 4 * dim)
    del flat_search

    for kind in args.kinds:
        params = choose_params(n, dim, kind)
        t0 = time.perf_counter()
        built = build_index(vectors, params, progress=False)
        build_s = time.perf_counter() - t0
        index_path = Path(args.data_dir) / f"index_{kind}_{n}_{dim}.faiss"
        FaissIndex(built, params).save(index_path)
        del built
        searcher = Searcher(vectors, FaissIndex.load(index_path, params, mmap=True))
        timing = time_queries(lambda q, s=searcher: s.search_vector(q, K)[0], queries, truth)
        row(kind, timing, build_s, index_path.stat().st_size / n, params=params.to_json(),
            plus_originals_bytes_per_vector=2 * dim)
    baseline = rows[0]["p50_ms"]
    for r in rows:
        r["speedup_vs_numpy_exact"] = baseline / r["p50_ms"]
    return rows


def bench_allpairs(n: int, dim: int, k: int, window: float | None, args,
                   mixture_cache: dict) -> dict:
    vectors = vectors_for(n, dim, args, mixture_cache)
    rng = np.random.default_rng(3)
    # r magnitudes with galaxy-count-like growth to a z < 20-like limit: dN/dm ~ 10^(0.35 m)
    u = rng.random(n)
    lo_m, hi_m, slope = 14.0, 20.0, 0.35 * np.log(10)
    mag_r = (np.log(np.exp(slope * lo_m) + u * (np.exp(slope * hi_m) - np.exp(slope * lo_m)))
             / slope).astype(np.float32)
    folder = Path(args.data_dir) / f"allpairs_{n}_{dim}_{k}"
    folder.mkdir(parents=True, exist_ok=True)
    passes = {"auto": [None], "symmetric": [True], "per-block": [False],
              "both": [False, True]}[args.allpairs_pass]
    result = {"n": n, "dim": dim, "k": k, "pass": args.allpairs_pass,
              "symmetric_heap_bytes": symmetric_heap_bytes(n, k)}
    arrays = {}
    for name, w in (("knn", None), ("knn_magwin", window)):
        if name == "knn_magwin" and window is None:
            continue
        done = {}
        for symmetric in passes:  # the last pass's files are the ones kept and looked up
            ids = np.lib.format.open_memmap(folder / f"{name}_ids.npy", mode="w+",
                                            dtype=np.int32, shape=(n, k))
            sims = np.lib.format.open_memmap(folder / f"{name}_sims.npy", mode="w+",
                                             dtype=np.float16, shape=(n, k))
            t0, cpu0 = time.perf_counter(), time.process_time()
            all_pairs_topk(vectors, k, ids, sims, mag_r, w, progress=not args.no_progress,
                           symmetric=symmetric)
            seconds = time.perf_counter() - t0
            # CPU seconds of all this process's threads: on a shared machine the steadier figure
            cpu_seconds = time.process_time() - cpu0
            tag = {None: "", True: "_symmetric", False: "_per_block"}[symmetric]
            result[f"{name}{tag}_seconds"] = seconds
            result[f"{name}{tag}_cpu_seconds"] = cpu_seconds
            print(f"  all-pairs {name}{tag} N={n} d={dim} k={k}: {seconds:.1f} s, "
                  f"{cpu_seconds:.1f} CPU s (load {load_average()})", flush=True)
            ids.flush()
            sims.flush()
            done[symmetric] = (np.array(ids), np.array(sims))
            del ids, sims
        if len(done) == 2:
            (ids_a, sims_a), (ids_b, sims_b) = done[False], done[True]
            result[f"{name}_passes_equal"] = bool(
                np.array_equal(ids_a, ids_b) and np.array_equal(sims_a, sims_b, equal_nan=True))
            result[f"{name}_seconds"] = result[f"{name}_symmetric_seconds"]
            result[f"{name}_per_block_over_symmetric"] = (
                result[f"{name}_per_block_seconds"] / result[f"{name}_symmetric_seconds"])
            result[f"{name}_per_block_over_symmetric_cpu"] = (
                result[f"{name}_per_block_cpu_seconds"]
                / result[f"{name}_symmetric_cpu_seconds"])
            print(f"  all-pairs {name}: per-block / symmetric = "
                  f"{result[f'{name}_per_block_over_symmetric']:.2f}x wall, "
                  f"{result[f'{name}_per_block_over_symmetric_cpu']:.2f}x CPU; arrays equal: "
                  f"{result[f'{name}_passes_equal']}", flush=True)
        elif passes != [None]:
            result[f"{name}_seconds"] = result[f"{name}{tag}_seconds"]
        del done
        arrays[name] = KnnArrays(np.load(folder / f"{name}_ids.npy", mmap_mode="r"),
                                 np.load(folder / f"{name}_sims.npy", mmap_mode="r"), w)
    params = choose_params(n, dim, "flat")
    flat = FaissIndex(build_index(vectors, params, progress=False), params)
    searcher = Searcher(vectors, flat, mag_r, arrays["knn"], arrays.get("knn_magwin"))
    lookup_ids = rng.choice(n, size=500, replace=False)
    exclude = rng.choice(n, size=100, replace=False)
    for label, kwargs in (("lookup", {}), ("lookup_exclude100", {"exclude": exclude}),
                          ("lookup_magwin", {"mag_window": window})):
        if kwargs.get("mag_window", 0) is None:
            continue
        seconds = []
        for oid in lookup_ids:
            t0 = time.perf_counter()
            searcher.neighbours(int(oid), k=K, **kwargs)
            seconds.append(time.perf_counter() - t0)
        # how many of these requests the stored rows covered (the rest went to the index)
        stored = searcher.knn if "mag_window" not in kwargs else searcher.knn_magwin
        result[f"{label}_covered_fraction"] = float(np.mean([
            np.isin(stored.ids[oid], np.append(kwargs.get("exclude", []), oid), invert=True)
            .sum() >= K or (stored.ids[oid] < 0).any() for oid in lookup_ids]))
        result[f"{label}_p50_ms"], result[f"{label}_p99_ms"] = percentiles(seconds)
    result["exact_topk_query_p50_ms_same_data"] = percentiles(
        [_timed(lambda i=i: exact_topk(as_float32(vectors[i:i + 1]), vectors, K)) for i in range(5)]
    )[0]
    return result


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def print_table(rows: list[dict], allpairs: list[dict]) -> None:
    print(f"\n{'N':>9} {'d':>5} {'method':12} {'p50 ms':>9} {'p99 ms':>9} {'x numpy':>8} "
          f"{'recall@100':>10} {'build s':>8} {'B/vector':>9}")
    for r in sorted(rows, key=lambda r: (r["dim"], r["n"])):
        print(f"{r['n']:>9} {r['dim']:>5} {r['method']:12} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} "
              f"{r['speedup_vs_numpy_exact']:8.1f} {r['recall_at_100']:10.4f} "
              f"{r['build_s']:8.1f} {r['bytes_per_vector']:9.0f}")
    for a in allpairs:
        one_by_one_s = a["n"] * a["exact_topk_query_p50_ms_same_data"] / 1e3
        parts = [f"all-pairs top-{a['k']} N={a['n']} d={a['dim']}: {a['knn_seconds']:.1f} s "
                 f"({one_by_one_s / a['knn_seconds']:.0f}x faster than N exact queries)"]
        if "knn_magwin_seconds" in a:
            parts.append(f"window {a['knn_magwin_seconds']:.1f} s")
        for name in ("knn", "knn_magwin"):
            if f"{name}_per_block_over_symmetric" in a:
                parts.append(f"{name} per-block pass {a[f'{name}_per_block_seconds']:.1f} s = "
                             f"{a[f'{name}_per_block_over_symmetric']:.2f}x the symmetric one "
                             f"({a[f'{name}_per_block_over_symmetric_cpu']:.2f}x in CPU s; "
                             f"arrays equal: {a[f'{name}_passes_equal']})")
        parts.append(f"lookup p50 {a['lookup_p50_ms']:.3f} ms (p99 {a['lookup_p99_ms']:.3f}; "
                     f"{a['exact_topk_query_p50_ms_same_data'] / a['lookup_p50_ms']:.0f}x faster "
                     "than an exact scan)")
        print("; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, within a minute")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dims", default="2048,128")
    parser.add_argument("--kinds", default="hnsw,ivfpq")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--allpairs", default="100000:2048:1000", help="N:d:k, or none")
    parser.add_argument("--no-allpairs", action="store_true")
    parser.add_argument("--only", choices=["queries", "all-pairs"],
                        help="run only the query-latency table or only the all-pairs figure")
    parser.add_argument("--allpairs-pass", choices=["auto", "symmetric", "per-block", "both"],
                        default="auto", help="all-pairs pass to time (both: compare them)")
    parser.add_argument("--mag-window", type=float, default=0.5)
    parser.add_argument("--fit-to", help="fit the mixture to this bundle's vectors")
    parser.add_argument("--data-dir", default="data/bench_search")
    parser.add_argument("--merge", action="store_true", help="keep other rows of the JSON")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.clusters = "10000", 30, 200
        args.allpairs = "4000:2048:200"
    if args.only == "queries":
        args.no_allpairs = True
    sizes = [] if args.only == "all-pairs" else [int(s) for s in args.sizes.split(",")]
    dims = [int(d) for d in args.dims.split(",")]
    args.kinds = args.kinds.split(",")
    if args.fit_to:
        dims = [json.loads((Path(args.fit_to) / "manifest.json").read_text())["dim"]]
    load_before = load_average()
    mixture_cache: dict = {}
    rows = []
    for dim in dims:
        for n in sizes:
            rows.extend(bench_size(n, dim, args, mixture_cache))
    allpairs = []
    if not args.no_allpairs and args.allpairs != "none":
        n, dim, k = (int(x) for x in args.allpairs.split(":"))
        allpairs.append(bench_allpairs(n, dim, k, args.mag_window, args, mixture_cache))
    out = Path(args.out)
    if args.merge and out.exists():
        old = json.loads(out.read_text())
        keys = {(r["n"], r["dim"], r["method"]) for r in rows}
        rows = [r for r in old["rows"] if (r["n"], r["dim"], r["method"]) not in keys] + rows
        if not allpairs:
            allpairs = old.get("allpairs", [])
    print_table(rows, allpairs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "search", "k": K, "quick": args.quick, "machine": machine(),
        "load_average_before": load_before, "load_average_after": load_average(),
        "data": "fit to " + args.fit_to if args.fit_to else
        f"synthetic mixture, {args.clusters} clusters, latent dim 64",
        "rows": rows, "allpairs": allpairs,
    }, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
