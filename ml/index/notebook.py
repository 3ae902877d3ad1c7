"""Cutout grids for notebooks: look at a query's neighbours the way the paper's Figure 2 does.

    from ml.index import open_bundle
    b = open_bundle("bundle")
    ids, sims = b.neighbours(1234, k=16)
    b.show(ids, sims)          # a matplotlib Figure: Jupyter shows it inline

Pixels come from the survey recorded in the bundle's manifest (``ml.survey.Survey``) and are
stretched with ``ml.render.rgb_uint8``, the same stretch as the network input and the web app.
The figure is built without pyplot, so it is not also drawn a second time by the inline backend
and nothing global is left behind.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ml.render import DEFAULT_STRETCH, Stretch, rgb_uint8


def show_grid(survey: Any, ids: np.ndarray, sims: np.ndarray | None = None, ncols: int = 8,
              panel_inches: float = 1.6, stretch: Stretch = DEFAULT_STRETCH,
              title: str | None = None) -> Figure:
    """A grid of cutouts with object ids (and similarities) under each panel.

    Args:
        survey: an ``ml.survey.Survey`` to read pixels from.
        ids: object ids (ints); -1 (padding) entries are skipped.
        sims: similarities or scores, one per id, printed under the ids.
        ncols: panels per row.
        panel_inches: size of one panel.
        stretch: the arcsinh stretch.
        title: figure title.

    Returns:
        the matplotlib Figure.
    """
    ids = np.asarray(ids, dtype=np.int64).ravel()
    keep = ids >= 0
    values = None if sims is None else np.asarray(sims, dtype=np.float64).ravel()[keep]
    ids = ids[keep]
    if ids.size == 0:
        raise ValueError("no objects to show")
    rgb = rgb_uint8(survey.read_images(ids), stretch)  # (n, H, W, 3)
    ncols = max(1, min(ncols, ids.size))
    nrows = math.ceil(ids.size / ncols)
    fig = Figure(figsize=(ncols * panel_inches, nrows * (panel_inches + 0.3)),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i >= ids.size:
            continue
        ax.imshow(rgb[i], interpolation="nearest")
        label = str(ids[i]) if values is None else f"{ids[i]}  {values[i]:.3f}"
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
