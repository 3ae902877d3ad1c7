"""Stein et al. (2021)'s augmentations: re-observe a cutout under new, survey-like conditions.

Public API (shapes and units in each docstring):

- :class:`AugmentStats` — distributions of E(B−V), PSF σ and noise σ; ``fit``, ``save``,
  ``load`` (``<survey>/augment_stats.json``), ``as_uniform``, ``dr9_south``.
- :func:`observing_conditions` — catalog columns -> per-object E(B−V), PSF σ, noise σ.
- :class:`AugmentConfig`, :class:`Augment` — the batched pipeline, cutouts -> network views.
- :func:`center_view` — the deterministic view for embedding and evaluation.
"""

from ml.augment.conditions import CONDITION_COLUMNS, observing_conditions
from ml.augment.pipeline import Augment, AugmentConfig, AugmentDraw, center_view, finish_view
from ml.augment.stats import AugmentStats, AugmentStatsError

__all__ = [
    "CONDITION_COLUMNS",
    "Augment",
    "AugmentConfig",
    "AugmentDraw",
    "AugmentStats",
    "AugmentStatsError",
    "center_view",
    "finish_view",
    "observing_conditions",
]
