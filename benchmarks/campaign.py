"""The headline figure: how many objects a person inspects to find most of a rare class.

An oracle labeler (the survey's ``truth.h5``) starts from one seed of a class and inspects
candidate pages of 48, accepting the objects of the class and rejecting the rest, as a person
would in the labeling app. Found-versus-inspected is recorded for

- ``random``: pages in a random order (the survey as it comes);
- ``similarity``: pages by cosine similarity to the seed alone (the paper's search);
- ``probe-<strategy>``: the first page by similarity, then after every page the campaign's
  probe is retrained on all labels so far and orders the next page (``top``, ``uncertainty``,
  ``mix``): what a campaign with a worker does.

It drives the server's code, not a copy: pages come from :func:`server.candidates.page` (the
similarity order :class:`server.candidates.SimilarityOrder`, the probe's
:class:`ml.probe.ProbeOrder`), probes from :func:`ml.probe.train_probe` with the server's
defaults (weak negatives, their weight, C by cross-validation). The figure of merit is the
number of inspections needed to find 80% of the class (the seed not counted), and its ratio to
similarity alone and to random.

Run on a simulated survey with a model trained by the pipeline::

    .venv/bin/python benchmarks/campaign.py --bundle data/campaign/bundle
    .venv/bin/python benchmarks/campaign.py --bundle B --survey S --classes lens,ring --seeds 3
    .venv/bin/python benchmarks/campaign.py --quick   # synthetic representations, < 1 min

``--quick`` without ``--bundle`` plants three rare classes in synthetic representations
(:mod:`ml.index.synthetic`) to exercise the same code in seconds; its numbers say nothing
about a trained model. Writes ``benchmarks/results/campaign.json`` (``campaign_quick.json``
with ``--quick``) and a PNG plot beside it, and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.index import SearchBundle, build_bundle
from ml.index.synthetic import RepresentationMixture
from ml.probe import (
    DEFAULT_UNLABELED_COUNT,
    DEFAULT_UNLABELED_WEIGHT,
    STRATEGIES,
    ProbeDataError,
    ProbeLabels,
    ProbeOrder,
    train_probe,
)
from server.candidates import QuerySeed, Ranking, SimilarityOrder, page

RESULTS = Path(__file__).resolve().parent / "results"
PAGE = 48
FOUND_FRACTION = 0.8
DEFAULT_CLASSES = ("lens", "ring", "merger")


# -- the simulated campaign --------------------------------------------------------------------
@dataclass
class Curve:
    """Found versus inspected, one point per page, for one method and one seed."""

    method: str
    inspected: list[int] = field(default_factory=lambda: [0])
    found: list[int] = field(default_factory=lambda: [0])
    train_s: list[float] = field(default_factory=list)  # each probe fit
    page_s: list[float] = field(default_factory=list)  # each page's ordering

    def add(self, inspected: int, found: int) -> None:
        self.inspected.append(self.inspected[-1] + inspected)
        self.found.append(self.found[-1] + found)

    def inspections_to(self, wanted: int) -> int | None:
        """Inspections when ``wanted`` objects had been found (None: never, within the run)."""
        for inspected, found in zip(self.inspected, self.found, strict=True):
            if found >= wanted:
                return inspected
        return None


def similarity_order(bundle: SearchBundle, seed_id: int) -> SimilarityOrder:
    """What a campaign with one object seed and default settings pages by."""
    vector = np.asarray(bundle.vector(seed_id), dtype=np.float32)
    seed = QuerySeed(seed_id=1, vector=vector / np.linalg.norm(vector), mag_r=None,
                     object_id=seed_id)
    return SimilarityOrder(bundle, Ranking((seed,), mag_window=None, allowed=None,
                                           filter_key="[]"))


def run_random(is_target: np.ndarray, seed_id: int, wanted: int, budget: int,
               rng: np.random.Generator) -> Curve:
    curve = Curve("random")
    order = rng.permutation(np.flatnonzero(np.arange(is_target.size) != seed_id))
    for start in range(0, min(budget, order.size), PAGE):
        curve.add(len(order[start:start + PAGE]), int(is_target[order[start:start + PAGE]].sum()))
        if curve.found[-1] >= wanted:
            break
    return curve


def run_similarity(bundle: SearchBundle, is_target: np.ndarray, seed_id: int, wanted: int,
                   budget: int) -> Curve:
    curve = Curve("similarity")
    order = similarity_order(bundle, seed_id)
    labeled = np.zeros(0, dtype=np.int64)
    while curve.inspected[-1] < budget and curve.found[-1] < wanted:
        t0 = time.perf_counter()
        ids, _, _ = page(bundle, order, PAGE, labeled, None)
        curve.page_s.append(time.perf_counter() - t0)
        if not len(ids):
            break
        labeled = np.union1d(labeled, ids)
        curve.add(len(ids), int(is_target[ids].sum()))
    return curve


def run_probe(bundle: SearchBundle, is_target: np.ndarray, seed_id: int, wanted: int,
              budget: int, strategy: str, unlabeled: int, weight: float) -> Curve:
    """Similarity for the first page, then the probe retrained after every page."""
    curve = Curve(f"probe-{strategy}")
    accepted, rejected = np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = similarity_order(bundle, seed_id)
    step = 0
    while curve.inspected[-1] < budget and curve.found[-1] < wanted:
        labeled = np.union1d(accepted, rejected)
        t0 = time.perf_counter()
        ids, _, _ = page(bundle, order, PAGE, labeled, None)
        curve.page_s.append(time.perf_counter() - t0)
        if not len(ids):
            break
        hits = is_target[ids]
        accepted, rejected = np.union1d(accepted, ids[hits]), np.union1d(rejected, ids[~hits])
        curve.add(len(ids), int(hits.sum()))
        step += 1
        t0 = time.perf_counter()
        try:
            probe = train_probe(bundle, ProbeLabels(accepted, rejected, seed_ids=[seed_id]),
                                unlabeled, weight, seed=step)
        except ProbeDataError:  # e.g. a first page of targets only: keep to similarity
            continue
        curve.train_s.append(time.perf_counter() - t0)
        order = ProbeOrder(bundle, probe.coef, probe.intercept, strategy, key=str(step),
                           never=[seed_id])
    return curve


# -- inputs ------------------------------------------------------------------------------------
def plant_rare_classes(vectors: np.ndarray, rng: np.random.Generator, rate: float,
                       classes: tuple[str, ...] = DEFAULT_CLASSES,
                       clumps: int = 12) -> np.ndarray:
    """Make ``rate`` of the rows of ``vectors`` (N, d) (changed in place) into each rare class;
    returns the (N,) class names ("common" for the rest).

    Each class is a few small clumps near ordinary objects, displaced along a direction of its
    own: one seed finds its clump by similarity, a linear probe can learn the direction.
    """
    n, dim = vectors.shape
    sample = np.asarray(vectors[:min(n, 10_000)], dtype=np.float64)
    spread = np.sqrt(np.mean(np.var(sample, axis=0)))
    labels = np.full(n, "common", dtype=object)
    per_class = max(2, round(rate * n))
    chosen = np.sort(rng.choice(n, size=per_class * len(classes), replace=False))
    rng.shuffle(chosen)
    for c, name in enumerate(classes):
        members = np.sort(chosen[c * per_class:(c + 1) * per_class])
        direction = rng.normal(size=dim)
        direction *= spread * np.sqrt(dim) / np.linalg.norm(direction)
        centres = np.asarray(vectors[np.sort(rng.choice(n, clumps, replace=False))],
                             dtype=np.float64) + direction
        vectors[members] = centres[rng.integers(0, clumps, members.size)] + rng.normal(
            scale=0.6 * spread, size=(members.size, dim))
        labels[members] = name
    return labels.astype(str)


def synthetic_setup(folder: Path, n: int = 6000, dim: int = 32,
                    seed: int = 0) -> tuple[SearchBundle, np.ndarray]:
    """A flat bundle of synthetic representations with three planted rare classes of 1%
    (:func:`plant_rare_classes`), and the (N,) class names."""
    rng = np.random.default_rng(seed)
    mixture = RepresentationMixture.synthetic(dim, n_clusters=60, latent_dim=16, seed=seed)
    vectors = mixture.sample(n, rng).astype(np.float64)
    labels = plant_rare_classes(vectors, rng, rate=0.01)
    mag = rng.uniform(16, 21, n).astype(np.float32)
    path = build_bundle(folder / "bundle", vectors.astype(np.float32), mag, folder / "survey",
                        "synthetic", "external:synthetic", index="flat", k=0,
                        mag_window=None, progress=False)
    return SearchBundle.open(path), labels


def machine() -> dict:
    import faiss
    import sklearn
    import torch

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "memory_gb": round(mem_gb, 1),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__,
            "faiss": faiss.__version__, "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- report ------------------------------------------------------------------------------------
def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(results["classes"])
    fig, axes = plt.subplots(1, len(classes), figsize=(5 * len(classes), 4.2), squeeze=False)
    colours = {"random": "0.6", "similarity": "tab:blue", "probe-top": "tab:red",
               "probe-uncertainty": "tab:green", "probe-mix": "tab:purple"}
    for ax, name in zip(axes[0], classes, strict=True):
        entry = results["classes"][name]
        for method, runs in entry["curves"].items():
            for i, run in enumerate(runs):
                # from the first page on: a log axis has no zero
                ax.plot(run["inspected"][1:], run["found"][1:], color=colours.get(method, "k"),
                        alpha=1.0 if i == 0 else 0.35, lw=1.6 if i == 0 else 0.8,
                        label=method if i == 0 else None)
        ax.axhline(entry["wanted"], color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{name}: {entry['n_class']} in {results['n']:,} objects")
        ax.set_xlabel("objects inspected")
        ax.set_ylabel("found")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("found vs inspected from one seed (dotted: 80% of the class; faint: other "
                 "seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _median(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    if len(known) < len(values) or not known:
        return None
    return float(np.median(known))


def summarise(entry: dict) -> dict:
    """Median inspections to 80% per method and the ratios the issue targets."""
    needed = {method: _median([run["to_wanted"] for run in runs])
              for method, runs in entry["curves"].items()}
    summary: dict = {"inspections_to_80pct": needed}
    similarity, random_ = needed.get("similarity"), needed.get("random")
    for method, value in needed.items():
        if method.startswith("probe-") and value:
            summary[f"{method}_speedup_vs_similarity"] = (
                None if similarity is None else similarity / value)
            summary[f"{method}_speedup_vs_random"] = None if random_ is None else random_ / value
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", help="a search bundle of a simulated survey (with truth.h5)")
    parser.add_argument("--survey", help="the survey folder (default: the bundle's)")
    parser.add_argument("--classes", default=",".join(DEFAULT_CLASSES))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=3, help="seed objects per class")
    parser.add_argument("--budget", type=int, default=None,
                        help="most objects one simulated campaign inspects (default: N)")
    parser.add_argument("--unlabeled", type=int, default=DEFAULT_UNLABELED_COUNT)
    parser.add_argument("--unlabeled-weight", type=float, default=DEFAULT_UNLABELED_WEIGHT)
    parser.add_argument("--rng", type=int, default=0, help="seed of the seed choice")
    parser.add_argument("--quick", action="store_true",
                        help="synthetic representations unless --bundle; one seed per class")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/campaign.json)")
    args = parser.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    classes = [c for c in args.classes.split(",") if c]
    load_before = load_average()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        if args.bundle:
            bundle = SearchBundle.open(args.bundle, survey=args.survey)
            truth = bundle.survey.truth()
            if truth is None:
                sys.exit(f"{bundle.survey.path} has no truth.h5: the oracle needs a simulated "
                         "survey")
            labels, source = truth.labels, {"bundle": str(bundle.path),
                                            "survey": str(bundle.survey.path),
                                            "representation": bundle.manifest["representation"],
                                            "checkpoint": bundle.manifest["checkpoint"]}
        elif args.quick:
            bundle, labels = synthetic_setup(Path(tmp))
            source = {"synthetic": "ml.index.synthetic mixture, 3 planted classes of 1%"}
        else:
            sys.exit("give --bundle (a bundle of a simulated survey), or --quick")
        seeds_per_class = 1 if args.quick and not args.bundle else args.seeds
        budget = args.budget or bundle.n
        rng = np.random.default_rng(args.rng)
        results: dict = {"benchmark": "campaign", "quick": args.quick, "n": bundle.n,
                         "dim": bundle.dim, "page": PAGE, "found_fraction": FOUND_FRACTION,
                         "parameters": {"strategies": strategies, "seeds_per_class":
                                        seeds_per_class, "budget": budget,
                                        "unlabeled": args.unlabeled,
                                        "unlabeled_weight": args.unlabeled_weight,
                                        "rng": args.rng, **source},
                         "machine": machine(), "load_average_before": load_before,
                         "classes": {}}
        for name in classes:
            is_target = labels == name
            members = np.flatnonzero(is_target)
            if members.size < 2:
                print(f"{name}: {members.size} objects, skipped")
                continue
            wanted = math.ceil(FOUND_FRACTION * (members.size - 1))
            entry = {"n_class": int(members.size), "wanted": wanted, "seeds": [],
                     "curves": {}}
            for seed_id in rng.choice(members, size=min(seeds_per_class, members.size),
                                      replace=False).tolist():
                entry["seeds"].append(seed_id)
                curves = [run_random(is_target, seed_id, wanted, budget, rng),
                          run_similarity(bundle, is_target, seed_id, wanted, budget)]
                for strategy in strategies:
                    curves.append(run_probe(bundle, is_target, seed_id, wanted, budget,
                                            strategy, args.unlabeled, args.unlabeled_weight))
                for curve in curves:
                    entry["curves"].setdefault(curve.method, []).append({
                        "seed": seed_id, "inspected": curve.inspected, "found": curve.found,
                        "to_wanted": curve.inspections_to(wanted),
                        "train_s_median": float(np.median(curve.train_s)) if curve.train_s
                        else None,
                        "page_s_median": float(np.median(curve.page_s)) if curve.page_s
                        else None})
                    print(f"  {name} seed {seed_id} {curve.method:18s} "
                          f"80% after {curve.inspections_to(wanted)} inspections", flush=True)
            entry.update(summarise(entry))
            results["classes"][name] = entry
        results["seconds"] = round(time.perf_counter() - started, 1)
        results["load_average_after"] = load_average()

    out = Path(args.out) if args.out else RESULTS / ("campaign_quick.json" if args.quick
                                                     else "campaign.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    plot(results, out.with_suffix(".png"))
    print(f"\nN = {bundle.n:,}, d = {bundle.dim}, pages of {PAGE}; median inspections to find "
          f"{FOUND_FRACTION:.0%} of the class (load {load_before} -> "
          f"{results['load_average_after']})")
    methods = ["random", "similarity"] + [f"probe-{s}" for s in strategies]
    print(f"{'class':8s} {'n':>5s} " + " ".join(f"{m:>18s}" for m in methods)
          + "  probe-top vs sim / vs random")
    for name, entry in results["classes"].items():
        cells = [entry["inspections_to_80pct"].get(m) for m in methods]
        ratio_sim = entry.get("probe-top_speedup_vs_similarity")
        ratio_rnd = entry.get("probe-top_speedup_vs_random")
        print(f"{name:8s} {entry['n_class']:5d} "
              + " ".join(f"{'-' if c is None else int(c):>18}" for c in cells)
              + f"  {'-' if ratio_sim is None else f'{ratio_sim:.2f}x'} / "
                f"{'-' if ratio_rnd is None else f'{ratio_rnd:.1f}x'}")
    print(f"wrote {out} and {out.with_suffix('.png')} in {results['seconds']} s")


if __name__ == "__main__":
    main()
