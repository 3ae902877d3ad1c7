"""Fitting a linear probe: class-balanced logistic regression with C chosen by cross-validation.

The model is scikit-learn's ``LogisticRegression`` (L2 penalty, lbfgs) on the training set's
unit rows: p(target | x) = sigmoid(w . x + b). Because the score is linear in x, ranking every
object by it is a maximum-inner-product query on the bundle's index (:mod:`ml.probe.orders`).

Weights. Labeled objects weigh 1, weak negatives ``unlabeled_weight``; then each class is
rescaled so that both carry half of the total weight (scikit-learn's ``class_weight="balanced"``
generalised to weighted rows). A handful of accepts is then not drowned by a thousand negatives.

Regularisation. With at least ``min_per_class_for_cv`` labeled objects of each class, C is the
value of ``c_grid`` with the best mean ROC AUC over stratified folds of the *labeled* objects
(weak negatives always train, never score: they are not labels). Otherwise C is ``default_c``
and no metrics are claimed. The same folds give the reported metrics at the chosen C: the mean
held-out ROC AUC and the precision at the top of the held-out ranking (the fraction of
positives among the k highest-scored held-out labels, k = the number of positives:
R-precision). They are optimistic by the choice of C among a few values.

Threads. The fits are small (thousands of rows), so BLAS and OpenMP run on ``threads`` threads
(one by default): on a busy machine waking a pool of threads costs more than the arithmetic
(measured 10-30x slower fits with two threads on two loaded cores).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from ml.probe.data import TrainingSet


@dataclass(frozen=True)
class ProbeSettings:
    """How a probe is fitted (the campaign-level choices live in :class:`TrainingSet`)."""

    c_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    default_c: float = 10.0  # unit-length inputs need weak regularisation
    cv_folds: int = 5
    min_per_class_for_cv: int = 5
    max_iter: int = 500
    tol: float = 1e-4
    threads: int = 1  # BLAS / OpenMP threads while fitting (module docstring)


@dataclass(frozen=True)
class Probe:
    """A fitted probe: ``coef`` (d,) float32 and ``intercept``; p = sigmoid(x . coef + b)."""

    coef: np.ndarray
    intercept: float
    C: float
    metrics: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """w . x + b for rows x (m, d), float64."""
        return np.asarray(x, dtype=np.float64) @ self.coef.astype(np.float64) + self.intercept

    def probability(self, x: np.ndarray) -> np.ndarray:
        """p(target) for rows x (m, d)."""
        return expit(self.decision(x))


def balanced_weights(y: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Row weights ``raw`` rescaled so that each class of ``y`` (bool) carries half the total."""
    weights = np.asarray(raw, dtype=np.float64).copy()
    total = weights.sum()
    for cls in (True, False):
        mask = y == cls
        weights[mask] *= total / (2 * weights[mask].sum())
    return weights


def _rows(data: TrainingSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x (m, d), y (m,) bool, raw weights (m,), labeled (m,) bool: positives, rejects, weak."""
    x = np.concatenate([data.positives, data.negatives, data.unlabeled])
    n_pos, n_neg, n_weak = len(data.positives), len(data.negatives), len(data.unlabeled)
    y = np.concatenate([np.ones(n_pos, bool), np.zeros(n_neg + n_weak, bool)])
    raw = np.concatenate([np.ones(n_pos + n_neg), np.full(n_weak, data.unlabeled_weight)])
    labeled = np.concatenate([np.ones(n_pos + n_neg, bool), np.zeros(n_weak, bool)])
    keep = raw > 0  # weight 0: the weak negatives take no part
    return x[keep], y[keep], raw[keep], labeled[keep]


class _Fitter:
    """Fits with one model object, warm-starting from the previous C (the grid is a path)."""

    def __init__(self, settings: ProbeSettings) -> None:
        self.settings = settings
        self.converged = True

    def fit(self, x: np.ndarray, y: np.ndarray, raw: np.ndarray, C: float,
            model: LogisticRegression | None = None) -> LogisticRegression:
        if model is None:
            model = LogisticRegression(C=C, max_iter=self.settings.max_iter,
                                       tol=self.settings.tol, warm_start=True)
        model.set_params(C=C)
        with warnings.catch_warnings():
            # recorded in the metrics instead: a probe a few iterations short still ranks well
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y, sample_weight=balanced_weights(y, raw))
        if int(np.max(model.n_iter_)) >= self.settings.max_iter:
            self.converged = False
        return model


def _precision_at_top(y: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """Fraction of positives among the k best-scored rows, k = the number of positives."""
    k = int(y.sum())
    order = np.argsort(-scores, kind="stable")[:k]
    return float(y[order].mean()), k


def _cross_validate(x: np.ndarray, y: np.ndarray, raw: np.ndarray, labeled: np.ndarray,
                    settings: ProbeSettings, fitter: _Fitter, seed: int) -> dict[str, Any]:
    """Per-C held-out AUCs over stratified folds of the labeled rows; the chosen C's metrics."""
    labeled_rows = np.flatnonzero(labeled)
    weak_rows = np.flatnonzero(~labeled)
    y_labeled = y[labeled_rows]
    folds = min(settings.cv_folds, int(y_labeled.sum()), int((~y_labeled).sum()))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    grid = sorted(settings.c_grid)
    aucs = np.zeros((len(grid), folds))
    held_out = np.zeros((len(grid), len(labeled_rows)))  # out-of-fold decision values
    for f, (train, test) in enumerate(splitter.split(labeled_rows, y_labeled)):
        rows = np.concatenate([labeled_rows[train], weak_rows])
        model = None
        for c, C in enumerate(grid):
            model = fitter.fit(x[rows], y[rows], raw[rows], C, model)
            scores = model.decision_function(x[labeled_rows[test]])
            held_out[c, test] = scores
            aucs[c, f] = roc_auc_score(y_labeled[test], scores)
    mean_auc = aucs.mean(axis=1)
    best = int(np.argmax(mean_auc))  # the first best: the strongest regularisation among ties
    precision, k = _precision_at_top(y_labeled, held_out[best])
    return {
        "C": grid[best],
        "folds": folds,
        "roc_auc": float(mean_auc[best]),
        "roc_auc_std": float(aucs[best].std()),
        "precision_at_top": precision,
        "precision_at_top_k": k,
        "roc_auc_by_c": {str(C): float(a) for C, a in zip(grid, mean_auc, strict=True)},
    }


def fit_probe(data: TrainingSet, settings: ProbeSettings = ProbeSettings(),
              seed: int = 0) -> Probe:
    """Fit a probe on ``data`` (see the module docstring).

    Args:
        data: the training rows.
        settings: grid, folds and solver settings.
        seed: the fold shuffling seed.

    Returns:
        the probe; ``metrics`` holds the label counts, C and how it was chosen, the
        cross-validated metrics (``cv``: None when there were too few labels, with
        ``cv_skipped`` saying why) and whether the solver converged.

    Raises:
        ml.probe.data.ProbeDataError: the labels cannot train a probe.
    """
    data.check()
    with threadpool_limits(limits=settings.threads):
        return _fit(data, settings, seed)


def _fit(data: TrainingSet, settings: ProbeSettings, seed: int) -> Probe:
    started = time.perf_counter()
    x, y, raw, labeled = _rows(data)
    fitter = _Fitter(settings)
    metrics: dict[str, Any] = {**data.counts(), "unlabeled_weight": data.unlabeled_weight}
    timings: dict[str, float] = {}
    fewest = min(len(data.positives), len(data.negatives))
    if fewest >= max(2, settings.min_per_class_for_cv):
        cv = _cross_validate(x, y, raw, labeled, settings, fitter, seed)
        C, metrics["c_chosen_by"], metrics["cv"] = cv.pop("C"), "cross-validation", cv
    else:
        C, metrics["c_chosen_by"], metrics["cv"] = settings.default_c, "default", None
        metrics["cv_skipped"] = (f"fewer than {settings.min_per_class_for_cv} labeled objects "
                                 f"of each class ({len(data.positives)} positive, "
                                 f"{len(data.negatives)} rejected)")
    timings["cv"] = time.perf_counter() - started
    t0 = time.perf_counter()
    model = fitter.fit(x, y, raw, C)
    timings["fit"] = time.perf_counter() - t0
    metrics["C"] = C
    metrics["converged"] = fitter.converged
    return Probe(coef=model.coef_.ravel().astype(np.float32), intercept=float(model.intercept_[0]),
                 C=float(C), metrics=metrics, timings_s=timings)
