"""Linear probes for active learning: train on a campaign's labels, rank the whole survey.

Pure maths on a search bundle, no web server: the server's worker and the campaign benchmark
both call these functions, so what the benchmark measures is what users get.

    from ml.probe import assemble_training_set, fit_probe, ProbeOrder
    data = assemble_training_set(bundle, accepted_ids, rejected_ids, unlabeled_count=2000,
                                 unlabeled_weight=0.1, seed=0)
    probe = fit_probe(data)                              # C by cross-validation when it can
    order = ProbeOrder(bundle, probe.coef, probe.intercept, strategy="top")
    ids, values, complete = order.first(48, exclude=labeled_ids)

- :mod:`ml.probe.data`: the training set (labels, seeds, unlabeled objects as weak negatives).
- :mod:`ml.probe.fit`: class-balanced logistic regression, C by cross-validation, metrics.
- :mod:`ml.probe.orders`: top score, uncertainty and mix orders via the bundle's index.
"""

from ml.probe.data import (
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
    "STRATEGIES",
    "Probe",
    "ProbeDataError",
    "ProbeOrder",
    "ProbeSettings",
    "TrainingSet",
    "assemble_training_set",
    "balanced_weights",
    "fit_probe",
    "sample_unlabeled",
    "unit_rows",
]
