"""Writing labels: set, clear, in bulk, and undo, each change recorded in the label history.

Every write goes through :func:`write_labels`, which makes the API idempotency-friendly:
writing the value a label already has changes nothing and records nothing (so a client may
safely retry), and each real change appends one :class:`~server.models.LabelHistory` row with
the old and new value. All changes of one call share a ``batch`` id and commit together (a
bulk write is atomic: all of it or none). A write that changed something also marks the
campaign's probe for retraining in the same transaction
(:func:`server.probe.schedule.mark_for_retraining`).

:func:`undo_last` reverts the caller's most recent batch in a campaign that has not been
undone yet, by writing the inverse changes as new history rows that point at the rows they
revert (``undo_of_id``). Repeated undos walk further back; an undo is not itself undoable (there
is no redo).

Concurrency: a label row is locked while it is changed (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite write requests hold the database's write lock from ``BEGIN IMMEDIATE``). Two requests
creating the same new label race on the unique constraint; the loser retries once and then sees
the winner's row.

Speed: most writes label an object for the first time, one at a time (a person in the web app).
Those take a fast path of prebuilt Core statements, ``INSERT ... ON CONFLICT DO NOTHING
RETURNING id`` and the history row's ``INSERT`` (on PostgreSQL one statement: the history is
inserted from the first's ``RETURNING`` in a ``WITH``), instead of a locking ``SELECT`` and the
ORM's unit of work (with the probe job's upsert also on Core: 2.7 -> 0.7 ms of CPU per write
under PostgreSQL). When the label exists already, the insert does nothing and the write goes the
general way. On PostgreSQL a concurrent insert of the same label waits for the other
transaction and then finds its row, so the race above does not arise on this path.

A person's first label on an object, sent with the web app's session cookie to a PostgreSQL
server, goes faster still: :mod:`server.labeling_fast` checks the session and membership,
creates the label and its history row and queues the probe in one statement, and comes here
only when that statement did nothing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from server.database import bound_values, dialect_insert, typed_values, utcnow
from server.extensions import db
from server.models import Label, LabelAction, LabelHistory, LabelValue
from server.probe.schedule import mark_for_retraining

MAX_BULK_LABELS = 1000
_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class LabelState:
    """One user's label on one object after a write (``value`` None: no label)."""

    campaign_id: int
    object_id: int
    user_id: int
    value: LabelValue | None
    created_at: datetime | None
    updated_at: datetime | None
    changed: bool  # whether this write changed anything


@dataclass(frozen=True)
class _Change:
    object_id: int
    value: LabelValue | None
    undo_of_id: int | None = None


def _state(campaign_id: int, user_id: int, object_id: int, label: Label | None,
           changed: bool) -> LabelState:
    if label is None:
        return LabelState(campaign_id, object_id, user_id, None, None, None, changed)
    return LabelState(campaign_id, object_id, user_id, label.value, label.created_at,
                      label.updated_at, changed)


def _existing(campaign_id: int, user_id: int, object_ids: Sequence[int]) -> dict[int, Label]:
    found: dict[int, Label] = {}
    for start in range(0, len(object_ids), _IN_CHUNK):
        chunk = object_ids[start:start + _IN_CHUNK]
        rows = db.session.scalars(
            select(Label)
            .where(Label.campaign_id == campaign_id, Label.user_id == user_id,
                   Label.object_id.in_(chunk))
            .with_for_update()
        )
        found.update((label.object_id, label) for label in rows)
    return found


LABEL_COLUMNS = ("campaign_id", "object_id", "user_id", "value", "created_at", "updated_at")
HISTORY_COLUMNS = ("campaign_id", "object_id", "user_id", "action", "old_value", "new_value",
                   "batch", "undo_of_id", "created_at")
# a person's label on an object is unique (the labels table's unique constraint)
LABEL_KEY = ("campaign_id", "object_id", "user_id")


@functools.cache
def _insert_if_new(dialect: str):
    """``INSERT`` a label unless the campaign, object and user have one; ``RETURNING id`` (no
    row: it exists). Built once per dialect with named parameters, so that SQLAlchemy reuses
    its compiled form (building it per call costs more than running it)."""
    table = Label.__table__
    return (dialect_insert(dialect)(table).values(bound_values(table, LABEL_COLUMNS))
            .on_conflict_do_nothing(index_elements=list(LABEL_KEY))
            .returning(table.c.id))


@functools.cache
def _insert_history():
    table = LabelHistory.__table__
    return insert(table).values(bound_values(table, HISTORY_COLUMNS))


@functools.cache
def _create_with_history():
    """PostgreSQL: :func:`_insert_if_new` and its history row in one statement (one round trip
    less), ``WITH created AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id) INSERT INTO
    label_history (...) SELECT ... FROM created RETURNING id``: no row, no history, nothing
    returned. The history's parameters are cast to their columns' types (a bare parameter in a
    SELECT list would reach PostgreSQL as text)."""
    created = _insert_if_new("postgresql").cte("created")
    return history_of(created).returning(LabelHistory.__table__.c.id)


def history_of(created):
    """``INSERT INTO label_history ... SELECT ... FROM created``: a history row (the
    :data:`HISTORY_COLUMNS` parameters, cast to their columns' types) for each row of
    ``created``, a CTE of the labels a statement inserted (none: no history)."""
    table = LabelHistory.__table__
    return insert(table).from_select(list(HISTORY_COLUMNS),
                                     select(*typed_values(table, HISTORY_COLUMNS))
                                     .select_from(created))


def creation_values(campaign_id: int, user_id: int, object_id: int, value: LabelValue,
                    batch: str, now: datetime, undo_of_id: int | None = None
                    ) -> tuple[dict[str, object], dict[str, object]]:
    """The parameters (:data:`LABEL_COLUMNS`, :data:`HISTORY_COLUMNS`) of a new label and of
    its history row."""
    label = dict(campaign_id=campaign_id, object_id=object_id, user_id=user_id, value=value,
                 created_at=now, updated_at=now)
    history = dict(campaign_id=campaign_id, object_id=object_id, user_id=user_id,
                   action=LabelAction.CREATE, old_value=None, new_value=value, batch=batch,
                   undo_of_id=undo_of_id, created_at=now)
    return label, history


def _create_if_new(campaign_id: int, user_id: int, change: _Change, batch: str,
                   now: datetime) -> LabelState | None:
    """The fast path: create the label if it does not exist (None: it does, nothing done)."""
    assert change.value is not None
    dialect = db.session.get_bind().dialect.name
    label, history = creation_values(campaign_id, user_id, change.object_id, change.value,
                                     batch, now, change.undo_of_id)
    if dialect == "postgresql":
        created = db.session.execute(_create_with_history(), label | history).first()
    else:
        created = db.session.execute(_insert_if_new(dialect), label).first()
        if created is not None:
            db.session.execute(_insert_history(), history)
    if created is None:
        return None
    return LabelState(campaign_id, change.object_id, user_id, change.value, now, now,
                      changed=True)


def _apply(campaign_id: int, user_id: int, changes: Sequence[_Change]) -> list[LabelState]:
    """Apply ``changes`` in the current transaction (not committed)."""
    batch = uuid.uuid4().hex
    now = utcnow()
    if len(changes) == 1 and changes[0].value is not None:
        state = _create_if_new(campaign_id, user_id, changes[0], batch, now)
        if state is not None:
            return [state]
    labels = _existing(campaign_id, user_id, [c.object_id for c in changes])
    states: list[LabelState] = []
    for change in changes:
        label = labels.get(change.object_id)
        old = label.value if label is not None else None
        if old == change.value:
            states.append(_state(campaign_id, user_id, change.object_id, label, changed=False))
            continue
        if label is None:
            action = LabelAction.CREATE
            label = Label(campaign_id=campaign_id, object_id=change.object_id, user_id=user_id,
                          value=change.value, created_at=now, updated_at=now)
            db.session.add(label)
            labels[change.object_id] = label
        elif change.value is None:
            action = LabelAction.DELETE
            db.session.delete(label)
            del labels[change.object_id]
            label = None
        else:
            action = LabelAction.CHANGE
            label.value, label.updated_at = change.value, now
        db.session.add(LabelHistory(
            campaign_id=campaign_id, object_id=change.object_id, user_id=user_id,
            action=action, old_value=old, new_value=change.value, batch=batch,
            undo_of_id=change.undo_of_id, created_at=now))
        states.append(_state(campaign_id, user_id, change.object_id, label, changed=True))
    db.session.flush()
    return states


def _commit_with_retry(campaign_id: int, user_id: int, plan) -> list[LabelState]:
    """Run ``plan()`` (which returns changes) and apply them; retry once on a lost insert race."""
    for attempt in range(2):
        try:
            states = _apply(campaign_id, user_id, plan())
            changed = sum(state.changed for state in states)
            if changed:  # last, so that the queued job's row is locked only until the commit
                mark_for_retraining(campaign_id, changed)
            db.session.commit()
            return states
        except IntegrityError:
            db.session.rollback()
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def write_labels(campaign_id: int, user_id: int,
                 items: Sequence[tuple[int, LabelValue | None]]) -> list[LabelState]:
    """Set (or, with value None, clear) ``user_id``'s labels on the given objects, atomically.

    Args:
        campaign_id: the campaign.
        user_id: whose labels (the caller: labels are per user).
        items: (object_id, value) pairs, each object at most once.

    Returns:
        the stored state of each item, in the order given.

    Raises:
        ValueError: an object appears twice, or more than :data:`MAX_BULK_LABELS` items.
    """
    object_ids = [object_id for object_id, _ in items]
    if len(set(object_ids)) != len(object_ids):
        raise ValueError("each object may appear only once in one write")
    if len(items) > MAX_BULK_LABELS:
        raise ValueError(f"at most {MAX_BULK_LABELS} labels per write, got {len(items)}")
    changes = [_Change(object_id, value) for object_id, value in items]
    return _commit_with_retry(campaign_id, user_id, lambda: changes)


def _undo_plan(campaign_id: int, user_id: int) -> list[_Change]:
    undo = aliased(LabelHistory)
    undoable = (
        select(LabelHistory)
        .where(LabelHistory.campaign_id == campaign_id, LabelHistory.user_id == user_id,
               LabelHistory.undo_of_id.is_(None),
               ~exists().where(undo.undo_of_id == LabelHistory.id))
    )
    last = db.session.scalars(undoable.order_by(LabelHistory.id.desc()).limit(1)).first()
    if last is None:
        return []
    # a batch changes each object at most once (write_labels refuses duplicates)
    entries = db.session.scalars(
        undoable.where(LabelHistory.batch == last.batch).order_by(LabelHistory.id))
    return [_Change(e.object_id, e.old_value, undo_of_id=e.id) for e in entries]


def undo_last(campaign_id: int, user_id: int) -> list[LabelState]:
    """Revert ``user_id``'s most recent not-yet-undone write in the campaign.

    Returns:
        the stored state of each object the undo touched (empty: nothing left to undo).
    """
    return _commit_with_retry(campaign_id, user_id, lambda: _undo_plan(campaign_id, user_id))
