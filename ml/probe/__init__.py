"""Linear probes for active learning: train on a campaign's labels, rank the whole survey.

Pure maths on a search bundle, no web server: the server's worker and the campaign benchmark
both call these functions, so what the benchmark measures is what users get.

    from ml.probe import ProbeLabels, ProbeOrder, train_probe
    probe = train_probe(bundle, ProbeLabels(accepted_ids, rejected_ids, seed_ids=[seed_id]))
    order = ProbeOrder(bundle, probe.coef, probe.intercept, strategy="top")
    ids, values, complete = order.first(48, exclude=labeled_ids)

- :mod:`ml.probe.data`: the training set (labels, seeds, unlabeled objects as weak negatives).
- :mod:`ml.probe.fit`: class-balanced logistic regression, C by cross-validation, metrics.
- :mod:`ml.probe.orders`: top score, uncertainty and mix orders via the bundle's index.
- :mod:`ml.probe.campaign`: a campaign's probe from its labels and seeds (what the worker and
  the campaign benchmark both run).
"""

from ml.probe.campaign import ProbeLabels, train_probe
from ml.probe.data import (
    DEFAULT_UNLABELED_COUNT,
    DEFAULT_UNLABELED_WEIGHT,
    ProbeDataError,
    TrainingSet,
    assemble_training_set,
    sample_unlabeled,
    unit_rows,
)
from ml.probe.fit import Probe, ProbeSettings, balanced_weights, fit_probe
from ml.probe.orders import DEFAULT_STRATEGY, STRATEGIES, ProbeOrder

__all__ = [
    "DEFAULT_STRATEGY",
    "DEFAULT_UNLABELED_COUNT",
    "DEFAULT_UNLABELED_WEIGHT",
    "STRATEGIES",
    "Probe",
    "ProbeDataError",
    "ProbeLabels",
    "ProbeOrder",
    "ProbeSettings",
    "TrainingSet",
    "assemble_training_set",
    "balanced_weights",
    "fit_probe",
    "sample_unlabeled",
    "train_probe",
    "unit_rows",
]
