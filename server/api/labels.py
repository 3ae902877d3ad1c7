"""``/api/campaigns/{id}/labels``: your labels (write, bulk, undo) and everyone's (read).

Labels are per user: writes always change the caller's own labels. Every write answers with
the stored state; writing the value a label already has is a no-op that answers 200 with
``changed: false``, so clients may retry freely.
"""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from flask import Response, current_app
from sqlalchemy import select

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.extensions import db
from server.labeling import LabelState, undo_last, write_labels
from server.labeling_fast import write_first_label
from server.models import Label, LabelHistory, Role
from server.schemas.labels import (
    BulkIn,
    HistoryPageOut,
    HistoryQuery,
    LabelIn,
    LabelOut,
    LabelPageOut,
    LabelPageQuery,
)

bp = APIBlueprint("labels", __name__, url_prefix="/api/campaigns/<int:campaign_id>/labels",
                  tag="Labels")


def _user_filter(user: str) -> int | None:
    """The user id a 'user' query parameter names (None: all users)."""
    if user == "all":
        return None
    return current_user().id if user == "me" else int(user)


@bp.get("")
@bp.input(LabelPageQuery, location="query", arg_name="query")
@bp.output(LabelPageOut)
@bp.doc(security=SIGNED_IN)
def list_labels(campaign_id: int, query: dict) -> dict:
    """The campaign's labels (members)

    Yours by default (`user=me`), or one member's (`user=<id>`), or everyone's (`user=all`),
    optionally of one value, in pages in the order they were first made.
    """
    campaign_access(campaign_id, Role.VIEWER)
    statement = select(Label).where(Label.campaign_id == campaign_id, Label.id > query["after"])
    user_id = _user_filter(query["user"])
    if user_id is not None:
        statement = statement.where(Label.user_id == user_id)
    if "value" in query:
        statement = statement.where(Label.value == query["value"])
    labels = list(db.session.scalars(statement.order_by(Label.id).limit(query["limit"] + 1)))
    more = len(labels) > query["limit"]
    labels = labels[:query["limit"]]
    return {"items": labels, "next_after": labels[-1].id if more else None}


@bp.get("/history")
@bp.input(HistoryQuery, location="query", arg_name="query")
@bp.output(HistoryPageOut)
@bp.doc(security=SIGNED_IN)
def history(campaign_id: int, query: dict) -> dict:
    """The label history (members)

    Every create, change, delete and undo, newest first: yours by default, one member's, or
    everyone's (`user=all`), optionally for one object.
    """
    campaign_access(campaign_id, Role.VIEWER)
    statement = select(LabelHistory).where(LabelHistory.campaign_id == campaign_id)
    user_id = _user_filter(query["user"])
    if user_id is not None:
        statement = statement.where(LabelHistory.user_id == user_id)
    if "object_id" in query:
        statement = statement.where(LabelHistory.object_id == query["object_id"])
    if "before" in query:
        statement = statement.where(LabelHistory.id < query["before"])
    entries = list(db.session.scalars(
        statement.order_by(LabelHistory.id.desc()).limit(query["limit"] + 1)))
    more = len(entries) > query["limit"]
    entries = entries[:query["limit"]]
    return {"items": entries, "next_before": entries[-1].id if more else None}


@bp.get("/<int:object_id>")
@bp.output(LabelOut)
@bp.doc(security=SIGNED_IN)
def get(campaign_id: int, object_id: int) -> Label:
    """Your label on one object (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    label = db.session.scalar(select(Label).where(
        Label.campaign_id == campaign_id, Label.object_id == object_id,
        Label.user_id == current_user().id))
    if label is None:
        abort(404, f"you have not labeled object {object_id} in campaign {campaign_id}")
    return label


@bp.put("/<int:object_id>")
@bp.input(LabelIn, arg_name="body")
@bp.output(LabelOut)
@bp.doc(security=SIGNED_IN, responses=[403])
def put(campaign_id: int, object_id: int, body: dict) -> Response:
    """Label an object (labelers)

    Creates or changes your label. Writing the value it already has changes nothing.
    """
    state = write_first_label(campaign_id, object_id, body["value"])
    if state is None:
        campaign_access(campaign_id, Role.LABELER)
        [state] = write_labels(campaign_id, current_user().id, [(object_id, body["value"])])
    return _as_label_out(state)


def _as_label_out(state: LabelState) -> Response:
    """``state`` as ``LabelOut`` writes it (tests hold the two equal), sent without the schema's
    dump, which was about 6% of a label write's CPU."""
    return current_app.json.response({
        "campaign_id": state.campaign_id, "object_id": state.object_id,
        "user_id": state.user_id, "value": None if state.value is None else state.value.value,
        "created_at": None if state.created_at is None else state.created_at.isoformat(),
        "updated_at": None if state.updated_at is None else state.updated_at.isoformat(),
        "changed": state.changed})


@bp.delete("/<int:object_id>")
@bp.output(LabelOut)
@bp.doc(security=SIGNED_IN, responses=[403])
def delete(campaign_id: int, object_id: int) -> LabelState:
    """Remove your label from an object (labelers)

    Answers with the stored state (`value: null`); removing a label that does not exist
    changes nothing.
    """
    campaign_access(campaign_id, Role.LABELER)
    [state] = write_labels(campaign_id, current_user().id, [(object_id, None)])
    return state


@bp.post("/bulk")
@bp.input(BulkIn, arg_name="body")
@bp.output(LabelOut(many=True))
@bp.doc(security=SIGNED_IN, responses=[403])
def bulk(campaign_id: int, body: dict) -> list[LabelState]:
    """Label many objects at once (labelers)

    Up to 1000 `{object_id, value}` items (value null removes the label), each object once.
    All are stored or none; one undo reverts them together.
    """
    campaign_access(campaign_id, Role.LABELER)
    items = [(item["object_id"], item["value"]) for item in body["labels"]]
    return write_labels(campaign_id, current_user().id, items)


@bp.post("/undo")
@bp.output(LabelOut(many=True))
@bp.doc(security=SIGNED_IN, responses=[403])
def undo(campaign_id: int) -> list[LabelState]:
    """Undo your last label change (labelers)

    Reverts your most recent write in this campaign that is not undone yet (a bulk write as a
    whole); calling it again goes further back. Answers with the labels it restored; an empty
    list means there is nothing left to undo.
    """
    campaign_access(campaign_id, Role.LABELER)
    return undo_last(campaign_id, current_user().id)
