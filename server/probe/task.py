"""Training a campaign's probe: the worker's ``probe`` job and the functions it is made of.

:func:`train_campaign_probe` reads the campaign's labels and seeds (:mod:`server.probe.labels`)
and fits the probe (:func:`ml.probe.train_probe`, the recipe the campaign benchmark measures),
returning it unsaved;
:func:`store_probe_run` writes it as the campaign's next version. :func:`run_probe_job` is the
job handler (:mod:`server.jobs.kinds`), :func:`retrain` the same steps in one call for scripts
and tests. A campaign whose labels cannot train a probe (no reject yet, say) makes the job fail
with a message that says what is missing, which the API shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ml.index import SearchBundle
from ml.probe import Probe, ProbeDataError, ProbeLabels, train_probe
from server.extensions import db
from server.jobs.queue import ClaimedJob
from server.jobs.worker import JobContext, JobError, Outcome
from server.models import Campaign, ProbeRun
from server.models.probes import COEF_DTYPE
from server.probe.labels import seed_positives, training_labels
from server.probe.serving import bundle_sha256
from server.probe.settings import ProbeCampaignSettings
from server.sources import sources

NO_BUNDLE = ("this worker has no search bundle to train on: set GALSEARCH_BUNDLE as for the "
             "web server and restart the worker")


@dataclass(frozen=True)
class TrainedProbe:
    """A probe fitted for a campaign, not yet stored."""

    campaign_id: int
    probe: Probe
    label_watermark: int
    bundle_sha256: str
    representation: str
    timings_s: dict[str, float] = field(default_factory=dict)


def _step(context: JobContext | None, fraction: float, message: str) -> None:
    if context is not None:
        context.check()
        context.progress(fraction, message)


def train_campaign_probe(campaign_id: int, bundle: SearchBundle, unlabeled: int,
                         context: JobContext | None = None) -> TrainedProbe:
    """Fit the campaign's probe on its current labels and seeds.

    Args:
        campaign_id: the campaign.
        bundle: the representations to train on (the server's bundle).
        unlabeled: how many unlabeled objects to draw as weak negatives.
        context: the running job's context (progress, stop checks), if any.

    Raises:
        ml.probe.ProbeDataError: the labels cannot train a probe (the message says why).
        LookupError: the campaign does not exist.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise LookupError(f"campaign {campaign_id} does not exist (deleted?)")
    settings = ProbeCampaignSettings.of(campaign.settings)
    _step(context, 0.05, "reading labels")
    labels = training_labels(campaign_id)
    model = bundle.manifest.get("checkpoint", {}).get("sha256")
    seeds = seed_positives(campaign_id, bundle.n, bundle.dim, model)
    timings["labels"] = time.perf_counter() - started

    probe_labels = ProbeLabels(labels.positive, labels.negative, labels.disputed,
                               seeds.object_ids, seeds.vectors)
    _step(context, 0.2, f"fitting ({len(probe_labels.positive_ids()) + len(seeds.vectors)} "
                        f"positive, {len(labels.negative)} rejected, up to {unlabeled} "
                        "unlabeled)")
    t0 = time.perf_counter()
    probe = train_probe(bundle, probe_labels, unlabeled, settings.unlabeled_weight,
                        seed=campaign_id * 1_000_003 + labels.watermark)
    timings["fit"] = time.perf_counter() - t0
    timings.update({f"fit_{k}": v for k, v in probe.timings_s.items()})
    timings["total"] = time.perf_counter() - started
    _step(context, 0.95, "storing")
    return TrainedProbe(campaign_id, probe, labels.watermark, bundle_sha256(bundle),
                        str(bundle.manifest.get("representation", "")),
                        {k: round(v, 4) for k, v in timings.items()})


def store_probe_run(session: Session, trained: TrainedProbe, job_id: int | None) -> ProbeRun:
    """Add ``trained`` as the campaign's next version (flushed, not committed)."""
    # the campaign's row lock (PostgreSQL) makes two runs finishing at once take turns
    session.execute(select(Campaign.id).where(Campaign.id == trained.campaign_id)
                    .with_for_update())
    version = session.scalar(select(func.coalesce(func.max(ProbeRun.version), 0)).where(
        ProbeRun.campaign_id == trained.campaign_id)) + 1
    probe, metrics = trained.probe, trained.probe.metrics
    run = ProbeRun(
        campaign_id=trained.campaign_id, version=version, job_id=job_id,
        bundle_sha256=trained.bundle_sha256, representation=trained.representation,
        dim=int(probe.coef.size), coef=probe.coef.astype(COEF_DTYPE).tobytes(),
        intercept=probe.intercept, C=probe.C, label_watermark=trained.label_watermark,
        n_positive=metrics["n_positive"], n_negative=metrics["n_negative"],
        n_unlabeled=metrics["n_unlabeled"], unlabeled_weight=metrics["unlabeled_weight"],
        metrics=metrics, timings=trained.timings_s)
    session.add(run)
    session.flush()
    return run


def run_probe_job(job: ClaimedJob, context: JobContext) -> Outcome:
    """The ``probe`` job handler: train the campaign's probe; stored when the job succeeds."""
    bundle = sources(current_app).bundle
    if bundle is None:
        raise JobError(NO_BUNDLE)
    try:
        trained = train_campaign_probe(job.campaign_id, bundle,
                                       current_app.config["PROBE_UNLABELED"], context)
    except (ProbeDataError, LookupError) as error:
        raise JobError(str(error)) from None

    def store(session: Session) -> dict[str, Any]:
        run = store_probe_run(session, trained, job.id)
        return {"version": run.version}

    return Outcome(result={"label_watermark": trained.label_watermark,
                           "seconds": trained.timings_s.get("total")}, store=store)


def retrain(campaign_id: int) -> ProbeRun:
    """Train and store the campaign's next probe now, in this process (scripts and tests).

    Raises:
        ml.probe.ProbeDataError: the labels cannot train a probe.
    """
    bundle = sources(current_app).bundle
    if bundle is None:
        raise RuntimeError(NO_BUNDLE)
    trained = train_campaign_probe(campaign_id, bundle, current_app.config["PROBE_UNLABELED"])
    run = store_probe_run(db.session, trained, None)
    db.session.commit()
    return run
