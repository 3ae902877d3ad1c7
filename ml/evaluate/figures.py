"""Figures of a search bundle: query + nearest neighbours per class, and a 2-D map.

- :func:`neighbour_grid`: one row per query, the query on the left (framed) and its nearest
  neighbours from the bundle (:meth:`ml.index.SearchBundle.neighbours`, what the app shows) to
  its right, each titled with its cosine similarity and class, like Figure 2 of Stein et al.
  (2021). One seeded query per class by default. Cutouts are the survey's full cutouts through
  :func:`ml.render.rgb_uint8`, the stretch of the web app.
- :func:`representation_map`: a 2-D embedding of a class-stratified sample of the bundle's
  vectors (scikit-learn's t-SNE after a 50-component PCA, or the PCA's first two components),
  coloured by class.

Both return a matplotlib Figure built without pyplot (nothing global, safe in servers and
notebooks); :func:`save` writes a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ml.index.vectors import as_float32
from ml.render import rgb_uint8

MAP_METHODS = ("tsne", "pca")
SAME_CLASS_COLOUR = "#1a9850"
OTHER_CLASS_COLOUR = "#d73027"


def pick_queries(labels: np.ndarray, classes: Sequence[str], per_class: int,
                 seed: int = 0) -> list[tuple[str, int]]:
    """(class, object id) of up to ``per_class`` seeded random members of each class."""
    rng = np.random.default_rng(seed)
    out = []
    for name in classes:
        members = np.flatnonzero(labels == name)
        if members.size:
            chosen = rng.choice(members, size=min(per_class, members.size), replace=False)
            out += [(name, int(i)) for i in np.sort(chosen)]
    return out


def neighbour_grid(bundle: Any, survey: Any, labels: np.ndarray, classes: Sequence[str],
                   n_neighbours: int = 8, queries_per_class: int = 1, seed: int = 0,
                   panel_inches: float = 1.15) -> Figure:
    """Query + nearest-neighbour rows, one (or more) per class.

    Args:
        bundle: an opened search bundle.
        survey: the survey to read cutouts from.
        labels: (N,) class of every object.
        classes: classes to show, in row order (classes without members are left out).
        n_neighbours: neighbours per row.
        queries_per_class: rows per class.
        seed: seed of the query draw.
        panel_inches: size of one cutout.
    """
    queries = pick_queries(labels, classes, queries_per_class, seed)
    if not queries:
        raise ValueError("no object of the given classes to query")
    rows = []
    for name, qid in queries:
        ids, sims = bundle.neighbours(qid, k=n_neighbours)
        rows.append((name, qid, ids, sims))
    all_ids = np.unique(np.concatenate([[qid, *ids] for _, qid, ids, _ in rows]).astype(np.int64))
    rgb = dict(zip(all_ids.tolist(), rgb_uint8(survey.read_images(all_ids)), strict=True))

    ncols = n_neighbours + 1
    fig = Figure(figsize=(ncols * panel_inches, len(rows) * (panel_inches + 0.28)),
                 layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (name, qid, ids, sims) in enumerate(rows):
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        query_ax = axes[r, 0]
        query_ax.imshow(rgb[qid], interpolation="nearest")
        query_ax.set_title(f"{name}\nquery {qid}", fontsize=7, fontweight="bold")
        for spine in query_ax.spines.values():
            spine.set_edgecolor("black")
            spine.set_linewidth(2.5)
        for c in range(n_neighbours):
            ax = axes[r, c + 1]
            if c >= ids.size:
                ax.set_axis_off()
                continue
            oid = int(ids[c])
            same = labels[oid] == name
            colour = SAME_CLASS_COLOUR if same else OTHER_CLASS_COLOUR
            ax.imshow(rgb[oid], interpolation="nearest")
            ax.set_title(f"{sims[c]:.3f}\n{labels[oid]}", fontsize=6.5, color=colour)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(1.5 if same else 0.8)
    fig.suptitle("Nearest neighbours by cosine similarity (green: same class as the query)",
                 fontsize=9)
    return fig


def map_sample(labels: np.ndarray, classes: Sequence[str], per_class: int,
               seed: int = 0) -> np.ndarray:
    """Sorted object ids: up to ``per_class`` of each class, so rare classes are visible."""
    rng = np.random.default_rng(seed)
    picked = []
    for name in classes:
        members = np.flatnonzero(labels == name)
        if members.size > per_class:
            members = rng.choice(members, size=per_class, replace=False)
        picked.append(members)
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.zeros(0, np.int64)


def project_2d(vectors: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(m, d) unit vectors -> (m, 2) coordinates by t-SNE (on a 50-d PCA) or PCA."""
    from sklearn.decomposition import PCA

    if method not in MAP_METHODS:
        raise ValueError(f"map method must be one of {MAP_METHODS}, got {method!r}")
    x = np.asarray(vectors, dtype=np.float32)
    m = x.shape[0]
    if method == "pca" or m < 5:
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=min(50, m - 1, x.shape[1]), random_state=seed).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=min(30.0, (m - 1) / 3.0), init="pca",
                random_state=seed, metric="cosine")
    return tsne.fit_transform(reduced).astype(np.float32)


def representation_map(bundle: Any, labels: np.ndarray, classes: Sequence[str],
                       method: str = "tsne", per_class: int = 400, seed: int = 0,
                       ) -> tuple[Figure, dict[str, Any]]:
    """A 2-D map of a class-stratified sample of the bundle's vectors, coloured by class.

    Returns:
        the Figure and what was drawn (``method``, ``objects``, ``per_class``).
    """
    ids = map_sample(labels, classes, per_class, seed)
    if ids.size < 3:
        raise ValueError("too few labelled objects for a map")
    coords = project_2d(as_float32(bundle.vectors[ids]), method, seed)
    fig = Figure(figsize=(7.5, 6.2), layout="constrained")
    ax = fig.subplots()
    cmap = _class_colours(len(classes))
    counts = {name: int(np.sum(labels[ids] == name)) for name in classes}
    handles = {}
    # common classes first, rare ones on top and larger, so a handful of lenses stays visible
    for i, name in sorted(enumerate(classes), key=lambda item: -counts[item[1]]):
        sel = labels[ids] == name
        if sel.any():
            rare = counts[name] < 0.25 * per_class
            handles[name] = ax.scatter(coords[sel, 0], coords[sel, 1], s=22 if rare else 6, alpha=0.85,
                       color=cmap[i], label=f"{name} ({counts[name]})",
                       edgecolors="black" if rare else "none", linewidths=0.4 if rare else 0,
                       zorder=3 if rare else 2)
    ax.set_xticks([])
    ax.set_yticks([])
    title = "t-SNE" if method == "tsne" else "PCA"
    ax.set_title(f"{title} of the {bundle.manifest.get('representation', '')} representations "
                 f"(up to {per_class} objects per class)", fontsize=9)
    ax.legend(handles=[handles[c] for c in classes if c in handles], fontsize=7, markerscale=2,
              loc="best", frameon=False)
    return fig, {"method": method, "objects": int(ids.size), "per_class": per_class}


def _class_colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
