"""``/api/campaigns/{id}/exports``: files of a campaign's labels, made by background jobs.

Owners and labelers start exports; every member (viewers included) may list and download
them: an export holds what members can read through the API anyway. Owners, and the person
who started an export, may delete it.
"""

from __future__ import annotations

import re

from apiflask import APIBlueprint, abort
from flask import current_app, send_file
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.exports.files import FORMATS, export_path
from server.exports.table import ExportFilters, labeler_ids
from server.exports.task import start_export
from server.extensions import db
from server.models import Role
from server.models.exports import Export
from server.schemas.exports import ExportIn, ExportOut
from server.schemas.labels import OBJECT_ID_MAX
from server.sources import current_survey

bp = APIBlueprint("exports", __name__, url_prefix="/api/campaigns/<int:campaign_id>/exports",
                  tag="Exports")


def export_body(export: Export) -> dict:
    job = export.job
    if export.sha256 is not None:
        status = "succeeded"
    elif job is not None:
        status = job.status.value
        if status == "succeeded":  # the job ended but its record was not written
            status = "failed"
    else:
        status = "failed"
    done = status == "succeeded"
    return {
        "id": export.id, "campaign_id": export.campaign_id, "format": export.format,
        "filters": export.filters, "options": export.options,
        "probe_version": export.probe_version,
        "created_by": export.created_by.username if export.created_by else None,
        "created_at": export.created_at, "status": status,
        "progress": 1.0 if done else (job.progress if job else None),
        "message": job.message if job else None,
        "error": (job.error if job and status == "failed" else None),
        "row_count": export.row_count, "byte_size": export.byte_size, "sha256": export.sha256,
        "finished_at": export.finished_at,
        "download": (f"/api/campaigns/{export.campaign_id}/exports/{export.id}/file"
                     if done else None),
    }


def _export(campaign_id: int, export_id: int) -> Export:
    # ids beyond 64 bits cannot exist (and would overflow the database's integer)
    export = db.session.get(Export, export_id) if export_id <= OBJECT_ID_MAX else None
    if export is None or export.campaign_id != campaign_id:
        abort(404, f"campaign {campaign_id} has no export {export_id}")
    return export


@bp.post("")
@bp.input(ExportIn, arg_name="body")
@bp.output(ExportOut, status_code=202)
@bp.doc(security=SIGNED_IN, responses={
    403: "viewers cannot start exports",
    422: "bad filters or options (unknown labeler, crop larger than the cutouts, a probe "
         "filter without a probe)",
    503: "the server has no survey"})
def create(campaign_id: int, body: dict) -> dict:
    """Start an export (labelers)

    Queues a background job that writes the file; poll the export (or the list) until its
    status is `succeeded`, then download it. The probe version of the moment is recorded
    and used for the scores, whatever is trained meanwhile.
    """
    campaign, _ = campaign_access(campaign_id, Role.LABELER)
    survey = current_survey()
    filters_in, options = body["filters"], body["options"]
    labelers = None
    if "labelers" in filters_in:
        found = labeler_ids(filters_in["labelers"])
        missing = sorted(set(u.lower() for u in filters_in["labelers"]) - set(found))
        if missing:
            abort(422, f"no such users: {', '.join(missing)}", extra_data={
                "errors": {"json": {"filters": {"labelers": [f"unknown: {missing}"]}}}})
        labelers = tuple(found.values())
    side = survey.image_shape[1]
    if options.get("cutout_size", 0) > side:
        abort(422, f"cutout_size {options['cutout_size']} is larger than the survey's "
                   f"{side}-pixel cutouts", extra_data={
                       "errors": {"json": {"options": {"cutout_size": [f"at most {side}"]}}}})
    filters = ExportFilters(tuple(filters_in["consensus"]) if "consensus" in filters_in
                            else None, labelers, filters_in.get("min_probe_score"))
    try:
        export = start_export(campaign, current_user().id, body["format"], filters, options)
    except ValueError as error:
        abort(422, str(error))
    return export_body(export)


@bp.get("")
@bp.output(ExportOut(many=True))
@bp.doc(security=SIGNED_IN)
def list_exports(campaign_id: int) -> list[dict]:
    """The campaign's exports, newest first (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    exports = db.session.scalars(
        select(Export).where(Export.campaign_id == campaign_id)
        .options(selectinload(Export.job), selectinload(Export.created_by))
        .order_by(Export.id.desc()))
    return [export_body(e) for e in exports]


@bp.get("/<int:export_id>")
@bp.output(ExportOut)
@bp.doc(security=SIGNED_IN)
def get(campaign_id: int, export_id: int) -> dict:
    """One export, with its job's status and progress (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    return export_body(_export(campaign_id, export_id))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "campaign"


@bp.get("/<int:export_id>/file")
@bp.doc(security=SIGNED_IN, responses={
    200: {"description": "the file (Content-Disposition: attachment)", "content": {
        f.mimetype: {"schema": {"type": "string", "format": "binary"}}
        for f in FORMATS.values()}},
    409: "the export is not finished, or failed"})
def download(campaign_id: int, export_id: int):
    """Download an export's file (members)

    The file is addressed by the export's id only; its SHA-256 is the ETag (and in the
    export's record), so a download can be checked.
    """
    campaign, _ = campaign_access(campaign_id, Role.VIEWER)
    export = _export(campaign_id, export_id)
    body = export_body(export)
    if body["status"] != "succeeded":
        detail = f": {body['error']}" if body["error"] else ""
        abort(409, f"export {export_id} is {body['status']}{detail}; download it once its "
                   "status is succeeded")
    fmt = FORMATS[export.format]
    path = export_path(current_app.config["EXPORTS_DIR"], campaign_id, export_id, fmt)
    if not path.is_file():
        abort(404, f"the file of export {export_id} is gone from the server (removed by "
                   "hand?); start the export again")
    return send_file(path, mimetype=fmt.mimetype, as_attachment=True,
                     download_name=f"{_slug(campaign.name)}-export-{export_id}.{fmt.extension}",
                     etag=export.sha256, conditional=True, max_age=0)


@bp.delete("/<int:export_id>")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN, responses=[403])
def delete(campaign_id: int, export_id: int) -> tuple[str, int]:
    """Delete an export and its file (owners, or who started it)

    A running export is cancelled.
    """
    _, role = campaign_access(campaign_id, Role.VIEWER)
    export = _export(campaign_id, export_id)
    if role != Role.OWNER and export.created_by_id != current_user().id:
        abort(403, "only the campaign's owners and the person who started an export may "
                   "delete it")
    if export.job is not None and not export.job.status.finished:
        export.job.cancel_requested = True
    fmt = FORMATS[export.format]
    db.session.delete(export)
    db.session.commit()
    export_path(current_app.config["EXPORTS_DIR"], campaign_id, export_id, fmt).unlink(missing_ok=True)
    return "", 204
