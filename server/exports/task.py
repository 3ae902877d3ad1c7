"""Exports as background jobs: :func:`start_export` in a request, :func:`run_export_job` in a
worker (``galsearch worker``, job kind ``export``).

A request only records the export (format, filters, options, the probe version of the moment)
and queues its job; the file is never built in a request. The worker's handler selects the
objects, streams them through the format's writer into a temporary file, and makes the file
appear complete or not at all (:func:`server.exports.files.atomic_output`); the export's row
count, size and SHA-256 are stored in the transaction that marks the job succeeded. A full disk
fails the job at once with a message saying so (another attempt would not help), leaving no
file; any other error is retried by the job machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.database import utcnow
from server.exports.files import FORMATS, ExportWriteError, atomic_output, export_path
from server.exports.table import ExportFilters, ExportTable
from server.exports.tabular import write_csv, write_fits, write_json
from server.exports.training_set import write_training_set
from server.exports.zooniverse import write_subject_set
from server.extensions import db
from server.jobs.queue import ClaimedJob, enqueue
from server.jobs.worker import JobContext, JobError, Outcome
from server.models import Campaign, ProbeRun
from server.models.exports import Export
from server.probe.serving import bundle_sha256, current_probe
from server.sources import sources
from server.teams.rules import TeamRules

EXPORT_KIND = "export"
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0

# format -> writer(path, table, meta, progress, options) -> rows written
WRITERS: dict[str, Callable[..., int]] = {
    "csv": lambda path, table, meta, progress, options: write_csv(path, table, meta, progress),
    "json": lambda path, table, meta, progress, options: write_json(path, table, meta, progress),
    "fits": lambda path, table, meta, progress, options: write_fits(path, table, meta, progress),
    "hdf5": lambda path, table, meta, progress, options: write_training_set(
        path, table, meta, progress, options.get("cutout_size"),
        options.get("validation_fraction", DEFAULT_VALIDATION_FRACTION),
        options.get("seed", DEFAULT_SPLIT_SEED)),
    "zooniverse": lambda path, table, meta, progress, options: write_subject_set(
        path, table, meta, progress, options.get("image_size")),
}


def start_export(campaign: Campaign, user_id: int, fmt: str, filters: ExportFilters,
                 options: dict[str, Any]) -> Export:
    """Record an export and queue its job (committed).

    Raises:
        ValueError: a probe-score filter without a probe (the message says so).
    """
    bundle = sources(current_app).bundle
    probe = current_probe(campaign.id, bundle_sha256(bundle)) if bundle is not None else None
    if filters.min_probe_score is not None and probe is None:
        raise ValueError("this campaign has no probe trained on the server's bundle yet, so it "
                         "cannot be filtered by probe score: label some objects and let the "
                         "worker train one, or leave min_probe_score out")
    export = Export(campaign_id=campaign.id, format=fmt, filters=filters.as_dict(),
                    options=options, probe_version=probe.version if probe else None,
                    created_by_id=user_id, created_at=utcnow())
    db.session.add(export)
    db.session.flush()
    export.job_id = enqueue(db.session, EXPORT_KIND, campaign_id=campaign.id,
                            payload={"export_id": export.id}, created_by_id=user_id)
    db.session.commit()
    return export


def describe(export: Export, campaign: Campaign, n: int) -> dict[str, Any]:
    """What the file says about itself (JSON's ``export``, FITS and HDF5 headers)."""
    return {"export_id": export.id, "campaign_id": campaign.id, "campaign": campaign.name,
            "target": campaign.target, "format": export.format,
            "created_at": export.created_at.isoformat(),
            "created_by": export.created_by.username if export.created_by else None,
            "filters": export.filters, "options": export.options,
            "rules": vars(TeamRules.of(campaign.settings)), "probe_version": export.probe_version,
            "objects": n}


def run_export_job(job: ClaimedJob, context: JobContext) -> Outcome:
    """The ``export`` job handler (module docstring)."""
    export = db.session.get(Export, int(job.payload["export_id"]))
    if export is None:
        raise JobError("the export was deleted before it was written")
    campaign = db.session.get(Campaign, export.campaign_id)
    src = sources(current_app)
    if src.survey is None:
        raise JobError("the worker has no survey to read (set GALSEARCH_BUNDLE or "
                       "GALSEARCH_SURVEY for `galsearch worker` as for the server)")
    probe = None
    if export.probe_version is not None:
        probe = db.session.scalars(select(ProbeRun).where(
            ProbeRun.campaign_id == campaign.id,
            ProbeRun.version == export.probe_version)).first()
        if probe is None:
            raise JobError(f"probe version {export.probe_version} no longer exists")
    try:
        table = ExportTable(campaign.id, TeamRules.of(campaign.settings),
                            ExportFilters.of(export.filters), src.survey, src.bundle, probe)
    except ValueError as error:
        raise JobError(str(error)) from None
    meta = describe(export, campaign, table.n)
    fmt = FORMATS[export.format]
    final = export_path(current_app.config["EXPORTS_DIR"], campaign.id, export.id, fmt)
    context.progress(0.0, f"0 of {table.n} objects")

    def progress(done: int) -> None:
        context.progress(done / max(1, table.n), f"{done} of {table.n} objects")
        context.check()

    rows: list[int] = []

    def write(path) -> None:
        rows.append(WRITERS[export.format](path, table, meta, progress, export.options))

    try:
        written = atomic_output(final, write)
    except ExportWriteError as error:
        raise JobError(str(error)) from None
    finished = utcnow()
    export_id = export.id

    def store(session: Session) -> dict[str, Any]:
        row = session.get(Export, export_id)
        if row is None:  # deleted while it was being written: its file goes too
            final.unlink(missing_ok=True)
        else:
            row.row_count, row.byte_size, row.sha256 = rows[0], written.byte_size, written.sha256
            row.finished_at = finished
        return {"export_id": export_id}

    return Outcome(result={"rows": rows[0], "bytes": written.byte_size,
                           "sha256": written.sha256}, store=store)
