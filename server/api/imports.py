"""``/api/campaigns/{id}/imports`` and ``/sources``: tables of objects brought into a campaign
as seeds or as labels of a named source (:mod:`server.imports`), and the sources so far."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from sqlalchemy import delete, func, select

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.extensions import db
from server.imports import (
    REPORT_MAX_ROWS,
    ImportFileError,
    import_labels,
    import_seeds,
    match,
    parse_table,
)
from server.models import Role, SourceLabel
from server.probe.schedule import mark_for_retraining
from server.schemas.imports import ImportIn, ImportReportOut, SourceOut
from server.sources import current_bundle, current_sky

bp = APIBlueprint("imports", __name__, url_prefix="/api/campaigns/<int:campaign_id>",
                  tag="Imports")


def _file_error(message: str) -> None:
    abort(422, message, extra_data={"errors": {"files": {"file": [message]}}})


@bp.post("/imports")
@bp.input(ImportIn, location="form_and_files", arg_name="form")
@bp.output(ImportReportOut)
@bp.doc(security=SIGNED_IN, responses={
    403: "seeds need the labeler role, source labels the owner role",
    413: "the file is larger than the server accepts",
    422: "the file cannot be read, lacks the columns, or has bad label values",
    503: "the server has no search bundle"})
def import_table(campaign_id: int, form: dict) -> dict:
    """Import a table of objects as seeds or as a source's labels

    The rows name survey objects by `object_id` or by `ra`/`dec` (cross-matched to the nearest
    object within `tolerance_arcsec`). The report lists rows that matched nothing, matched two
    objects (ambiguous) or gave one object two labels (conflicting); those are left out.
    Source labels (e.g. a published catalog of known lenses) count in the consensus until the
    team has voted on an object, so the probe learns from them at once.
    """
    into = form["into"]
    campaign_access(campaign_id, Role.OWNER if into == "labels" else Role.LABELER)
    if into == "labels" and not form.get("source"):
        abort(422, "labels need a source name (e.g. the catalog they come from)",
              extra_data={"errors": {"form": {"source": ["required for labels"]}}})
    n_objects = current_bundle().n
    upload = form["file"]
    try:
        table = parse_table(upload.read(), upload.filename or "")
        sky = current_sky() if table.object_ids is None else None
        report = match(table, n_objects, sky, form["tolerance_arcsec"])
        user_id = current_user().id
        already = 0
        conflicting: list[dict] = []
        if into == "labels":
            written, conflicting = import_labels(campaign_id, user_id, report, table.values,
                                                 form["value"], form["source"],
                                                 form["dry_run"])
        else:
            note = f"import {upload.filename or ''}".strip()[:200]
            written, already = import_seeds(campaign_id, user_id, report, table, note,
                                            form["dry_run"])
    except ImportFileError as error:
        db.session.rollback()
        _file_error(str(error))
    if into == "labels" and written and not form["dry_run"]:
        # source labels change the consensus the probe trains on
        mark_for_retraining(campaign_id, written)
    db.session.commit()
    return {"into": into, "source": form.get("source"), "dry_run": form["dry_run"],
            "rows": report.rows, "matched": len(report.matched_rows), "written": written,
            "already_seeds": already, "unmatched_count": len(report.unmatched),
            "ambiguous_count": len(report.ambiguous), "conflicting_count": len(conflicting),
            "unmatched": report.unmatched[:REPORT_MAX_ROWS],
            "ambiguous": report.ambiguous[:REPORT_MAX_ROWS],
            "conflicting": conflicting[:REPORT_MAX_ROWS]}


@bp.get("/sources")
@bp.output(SourceOut(many=True))
@bp.doc(security=SIGNED_IN)
def list_sources(campaign_id: int) -> list[dict]:
    """The sources labels were imported from (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    out: dict[str, dict] = {}
    for source, value, n, latest in db.session.execute(
            select(SourceLabel.source, SourceLabel.value, func.count(),
                   func.max(SourceLabel.created_at))
            .where(SourceLabel.campaign_id == campaign_id)
            .group_by(SourceLabel.source, SourceLabel.value)
            .order_by(SourceLabel.source)):
        entry = out.setdefault(source, {"source": source, "objects": 0, "imported_at": latest,
                                        "counts": {"accept": 0, "reject": 0, "unsure": 0}})
        entry["counts"][value] = n
        entry["objects"] += n
        entry["imported_at"] = max(entry["imported_at"], latest)
    return list(out.values())


@bp.delete("/sources/<source>")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN, responses=[403])
def delete_source(campaign_id: int, source: str) -> tuple[str, int]:
    """Remove every label imported from a source (owners)"""
    campaign_access(campaign_id, Role.OWNER)
    removed = db.session.execute(delete(SourceLabel).where(
        SourceLabel.campaign_id == campaign_id, SourceLabel.source == source)).rowcount
    if not removed:
        abort(404, f"campaign {campaign_id} has no labels from source {source!r}")
    mark_for_retraining(campaign_id, removed)
    db.session.commit()
    return "", 204
