"""The evaluation as files: ``evaluation.json`` (everything) and ``evaluation.md`` (tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPRESENTATIONS = ("trained/prehead", "trained/head", "random/prehead", "random/head", "pca")
BASELINES = ("random/prehead", "random/head", "pca")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def best_baseline_map(result: dict[str, Any], cls: str) -> float | None:
    """The better (higher) mAP of the baselines for a class."""
    values = [result["representations"][b]["classes"][cls]["map"] for b in BASELINES]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def markdown(result: dict[str, Any]) -> str:
    reps = result["representations"]
    args = result["model_args"]
    lines = [
        "# Evaluation",
        "",
        f"- checkpoint: `{result['checkpoint']}` (sha256 {result['checkpoint_sha256'][:16]}…), "
        f"{args['arch']} width {args['width']}, small stem {args['small_stem']}",
        f"- survey: `{result['survey']}`, {result['n_sample']} of {result['n_objects']} objects "
        f"(seed {result['seed']}); augmented copies drawn from the "
        f"{result['augment_stats_source']}'s fitted conditions",
        f"- views: crop {result['augment']['crop']} px, network input "
        f"{result['augment']['out_size'] or result['augment']['crop']} px",
        "- exact cosine search over the sample; baselines through the same code: the same "
        "network with random weights (BN statistics re-estimated on the sample) and PCA "
        f"({reps['pca']['dim']} components, {result['pca_explained_variance']:.1%} of the "
        "pixel variance) of the stretched pixels",
        "",
        "## Invariance (the paper's test)",
        "",
        "Each original queries the pool of all originals and their augmented copies: the "
        "fraction whose own copy is the nearest neighbour, and within the 10 nearest.",
        "",
        "| representation | dim | copy ranked 1st | copy in top 10 |",
        "|---|---:|---:|---:|",
    ]
    for name in REPRESENTATIONS:
        inv = reps[name]["invariance"]
        lines.append(f"| {name} | {reps[name]['dim']} | {inv['top1']:.1%} | {inv['top10']:.1%} |")

    if result.get("class_counts"):
        lines += [
            "",
            "## Same-class retrieval (truth)",
            "",
            "Mean average precision with every object of the class as the query over the whole "
            "sample (chance ≈ the class's fraction). Ratio: trained pre-head mAP over the better "
            "baseline.",
            "",
            "| class | n | " + " | ".join(REPRESENTATIONS) + " | ratio |",
            "|---|---:|" + "---:|" * (len(REPRESENTATIONS) + 1),
        ]
        for cls, count in result["class_counts"].items():
            maps = [reps[name]["classes"][cls]["map"] for name in REPRESENTATIONS]
            best = best_baseline_map(result, cls)
            trained = reps["trained/prehead"]["classes"][cls]["map"]
            ratio = trained / best if trained is not None and best else None
            lines.append(f"| {cls} | {count} | " + " | ".join(_fmt(m) for m in maps)
                         + f" | {_fmt(ratio, 2)} |")
        ks = [key for key in next(iter(reps["trained/prehead"]["classes"].values()))
              if key.startswith("precision@")]
        lines += ["", "Precision@k of the trained pre-head representation (random / PCA in "
                  "brackets):", "", "| class | " + " | ".join(ks) + " |",
                  "|---|" + "---:|" * len(ks)]
        for cls in result["class_counts"]:
            cells = []
            for k in ks:
                t = reps["trained/prehead"]["classes"][cls][k]
                r = reps["random/prehead"]["classes"][cls][k]
                p = reps["pca"]["classes"][cls][k]
                cells.append(f"{_fmt(t)} ({_fmt(r)} / {_fmt(p)})")
            lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    lines += ["", f"Evaluated in {result['minutes']:.1f} min.", ""]
    return "\n".join(lines)


def write(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "evaluation.json", out / "evaluation.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path
