"""``galsearch evaluate --bundle BUNDLE``: the model's evaluation plus the bundle's own.

For a search bundle this writes, into one folder:

- ``evaluation.json`` / ``evaluation.md``: the model's evaluation by exact search on a sample
  (:mod:`ml.evaluate.evaluation`: invariance, per-class retrieval against the random-weights and
  PCA baselines; run when the bundle carries its checkpoint), and under ``"bundle"`` the
  bundle's: ANN recall@k of its index against exact search and, with the survey's truth,
  per-class retrieval through the index against exact search (:mod:`ml.evaluate.through_index`);
- ``neighbours.png``: query + nearest neighbours per class (:func:`ml.evaluate.figures.neighbour_grid`);
- ``map.png``: a 2-D map of the representations coloured by class
  (:func:`ml.evaluate.figures.representation_map`).

Invariance is a property of the model, not of the index, so it is measured once, by the model
evaluation; the class metrics are measured both ways.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ml.evaluate import report
from ml.evaluate.through_index import bundle_quality

NEIGHBOURS_PNG = "neighbours.png"
MAP_PNG = "map.png"


def evaluate_bundle(bundle_dir: str | Path, out_dir: str | Path, survey_dir: str | Path | None = None,
                    checkpoint: str | Path | None = None, model: bool = True,
                    n_sample: int = 10_000, batch_size: int = 256, device: str = "cpu",
                    queries_per_class: int = 200, depth: int = 1000, recall_queries: int = 1000,
                    recall_k: int = 100, map_method: str | None = "tsne", map_per_class: int = 400,
                    grid_neighbours: int = 8, grid_queries_per_class: int = 1, seed: int = 0,
                    progress: bool = True) -> dict[str, Any]:
    """Evaluate a bundle (and its model) and write the files above into ``out_dir``.

    Args:
        bundle_dir: the search bundle.
        out_dir: where the report and figures go.
        survey_dir: the survey (default: the bundle manifest's; it must match the bundle).
        checkpoint: the model to evaluate (default: the bundle's ``model.pt``, if it has one).
        model: run the model evaluation at all (False: only the bundle's part).
        n_sample, batch_size, device: the model evaluation's (:func:`ml.evaluate.evaluation.evaluate`).
        queries_per_class, depth: retrieval through the index (per class) against exact search.
        recall_queries, recall_k: ANN recall over random queries.
        map_method: ``tsne``, ``pca`` or None (no map).
        map_per_class: objects per class on the map.
        grid_neighbours, grid_queries_per_class: the neighbour grid's columns and rows per class.
        seed: every draw (sample, queries, copies).
        progress: progress bars.

    Returns:
        the JSON-ready result written to ``evaluation.json``.
    """
    from ml.evaluate import figures
    from ml.evaluate.evaluation import evaluate as evaluate_model
    from ml.index import open_bundle
    from ml.survey import Survey

    t0 = time.monotonic()
    out = Path(out_dir)
    bundle = open_bundle(bundle_dir, survey=survey_dir)
    survey = bundle.survey if survey_dir is None else Survey(survey_dir)
    checkpoint = checkpoint if checkpoint is not None else bundle.checkpoint_path
    result: dict[str, Any] = {}
    if model and checkpoint is not None:
        result = evaluate_model(checkpoint, survey.path, n_sample=n_sample, seed=seed,
                                batch_size=batch_size, device=device, progress=progress)

    truth = survey.truth()
    labels = truth.labels if truth is not None else None
    classes = list(truth.classes) if truth is not None else None
    result["bundle"] = bundle_quality(
        bundle, labels, classes, queries_per_class=queries_per_class, depth=depth,
        recall_queries=recall_queries, recall_k=recall_k, seed=seed, progress=progress)

    out.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, Any] = {}
    if labels is not None:
        grid = figures.neighbour_grid(bundle, survey, labels, classes, n_neighbours=grid_neighbours,
                                      queries_per_class=grid_queries_per_class, seed=seed)
        figures.save(grid, out / NEIGHBOURS_PNG)
        drawn["neighbours"] = NEIGHBOURS_PNG
        if map_method is not None:
            fig, info = figures.representation_map(bundle, labels, classes, map_method,
                                                   map_per_class, seed)
            figures.save(fig, out / MAP_PNG)
            drawn["map"] = MAP_PNG
            drawn["map_info"] = info
    result["figures"] = drawn
    result["bundle"]["minutes"] = round((time.monotonic() - t0) / 60, 3)
    write(result, out)
    return result


def markdown(result: dict[str, Any]) -> str:
    """The report: the model's part (when present) and the bundle's."""
    parts = [report.markdown(result)] if "representations" in result else ["# Evaluation", ""]
    b = result["bundle"]
    params = b["index"]
    knn = b.get("knn_arrays") or {}
    recall = b["ann_recall"]
    lines = [
        "## Search bundle",
        "",
        f"- bundle: `{b['bundle']}`, N = {b['n']}, d = {b['dim']}, representation "
        f"`{b['representation']}`",
        f"- index: {params.get('kind')}" + (" (exact: an exact scan is the index at this size)"
                                             if params.get("kind") == "flat" else
                                             ", candidates re-ranked exactly on the float16 "
                                             "originals"),
        f"- precomputed similarity arrays: k = {knn.get('k', 0)} ({knn.get('method', 'none')}), "
        f"magnitude window {knn.get('mag_window')}",
        "",
        "### ANN recall against exact search",
        "",
        "| queries | k | recall@k | lowest | latency p50 | latency p99 |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {recall['n_queries']} | {recall['k']} | {recall['recall_at_k']:.4f} | "
        f"{recall['min_recall']:.3f} | {recall['latency_ms_p50']:.2f} ms | "
        f"{recall['latency_ms_p99']:.2f} ms |",
    ]
    retrieval = b.get("retrieval")
    if retrieval:
        depth = retrieval["depth"]
        s = retrieval["summary"]
        ks = [k for k in next(r for r in retrieval["classes"].values() if r["exact"])["exact"]
              if k.startswith("precision@")]
        lines += [
            "",
            f"### Same-class retrieval through the index against exact search (depth {depth})",
            "",
            f"Up to {retrieval['queries_per_class']} objects of each class query the whole "
            f"bundle for their {depth} nearest others, by exact search and through the index; "
            f"AP@{depth} = Σ P(i) rel(i) over the first {depth}, divided by min(R, {depth}), "
            "R the class's other members (both rankings cut at the same depth).",
            "",
            f"| class | n | queries | exact mAP@{depth} | index mAP@{depth} | index / exact | "
            f"recall@{depth} | " + " | ".join(f"{k} exact / index" for k in ks) + " |",
            "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(ks),
        ]
        for name, r in retrieval["classes"].items():
            if r["exact"] is None:
                lines.append(f"| {name} | {r['n']} | {r['queries']} | — | — | — | — |"
                             + " — |" * len(ks))
                continue
            cells = " | ".join(f"{r['exact'][k]:.3f} / {r['index'][k]:.3f}" for k in ks)
            ratio = "—" if r["map_ratio"] is None else f"{r['map_ratio']:.4f}"
            lines.append(
                f"| {name} | {r['n']} | {r['queries']} | {r['exact'][f'map@{depth}']:.4f} | "
                f"{r['index'][f'map@{depth}']:.4f} | {ratio} | {r[f'recall@{depth}']:.4f} | "
                f"{cells} |")
        loss = s["relative_map_loss"]
        verdict = "within" if s["within_tolerance"] else "NOT within"
        lines += [
            "",
            f"Mean over classes: mAP@{depth} {s[f'exact_map@{depth}']:.4f} exact, "
            f"{s[f'index_map@{depth}']:.4f} through the index: a relative loss of "
            f"{100 * loss:.2f}%, {verdict} the {100 * s['tolerance']:.0f}% tolerance "
            f"(search time {s['seconds']['exact']:.1f} s exact, {s['seconds']['index']:.1f} s "
            "index).",
        ]
    drawn = result.get("figures", {})
    if drawn:
        lines += ["", "### Figures", ""]
        if "neighbours" in drawn:
            lines += [f"![query and nearest neighbours per class]({drawn['neighbours']})", ""]
        if "map" in drawn:
            lines += [f"![2-D map of the representations]({drawn['map']})", ""]
    lines += ["", f"Bundle evaluated in {b['minutes']:.1f} min.", ""]
    return "\n".join(parts + lines)


def write(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "evaluation.json", out / "evaluation.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path
