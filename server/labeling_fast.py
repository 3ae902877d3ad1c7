"""A person's first label on an object, in one statement (PostgreSQL, cookie sessions).

Most label writes are a person in the web app labeling an object for the first time, one at a
time. The general way (:func:`server.labeling.write_labels`) costs four statements: the user
and their membership (:func:`server.auth.identity.load_identity`), the label with its history
row, the probe job's upsert (:func:`server.probe.schedule.mark_for_retraining`), and the
commit. Here the first three are one statement of data-modifying ``WITH`` clauses::

    WITH caller AS (SELECT users.id FROM users LEFT OUTER JOIN memberships ...
                    WHERE the session's user is active, the session's version is the user's,
                    and the user labels in the campaign or is an administrator and it exists),
         created AS (INSERT INTO labels ... SELECT ... FROM caller
                     ON CONFLICT DO NOTHING RETURNING labels.id),
         history AS (INSERT INTO label_history ... SELECT ... FROM created),
         queued AS (INSERT INTO jobs ... SELECT ... FROM created ON CONFLICT ... DO UPDATE ...)
    SELECT created.id FROM created

Each clause reads the rows of the one before, so a caller who may not write creates nothing,
and an existing label (the conflict) leaves no history and queues nothing. The statement
checks exactly what :func:`server.auth.access.campaign_access` checks for the labeler role,
against the session cookie's user id and session version, which
:func:`~server.auth.identity.load_identity` left unverified for this request (its identity is
``deferred``; the cookie's signature and the CSRF header are checked). When it returns no row,
the write goes the general way, which loads the user, explains a refusal (401, 403, 404) and
changes an existing label.

The statement runs on its own (autocommit: one round trip, no ``BEGIN`` and ``COMMIT``); one
statement is atomic, so the label, its history row and the job are stored together or not at
all. One consequence: a worker killed while the statement waits for a lock does not undo it,
since PostgreSQL finishes the statement (and with it the write) without its client, where a
transaction would have been rolled back for want of its ``COMMIT``. The client saw its request
fail either way, and a retry finds the label and changes nothing (tests/server/test_faults.py).

Measured (one gunicorn worker, one client, worker CPU per label write, alternating runs):
3.7-4.4 ms the general way, 2.0-3.1 ms in this statement inside a transaction; run on a pooled
connection of its own in autocommit, rather than through the ORM session's transaction, about
10% less again (pairwise 0.83-0.97).
"""

from __future__ import annotations

import functools
import uuid

from flask import g, session
from sqlalchemy import Integer, and_, bindparam, exists, or_, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.auth.identity import SQL_INTEGER_MAX, session_checked
from server.database import typed_values, utcnow
from server.extensions import db
from server.jobs.queue import ENQUEUE_COLUMNS, coalescing
from server.labeling import LABEL_COLUMNS, LABEL_KEY, LabelState, creation_values, history_of
from server.models import Campaign, Job, Label, LabelValue, Membership, Role, User
from server.probe.schedule import retraining_values

# the roles campaign_access lets write labels (administrators aside)
WRITER_ROLES = tuple(role for role in Role if role.rank >= Role.LABELER.rank)


@functools.cache
def _statement(queue_probe: bool, due_by_count: bool):
    """The statement of the module docstring (built once per form; parameters by name)."""
    users, members, labels = User.__table__, Membership.__table__, Label.__table__
    campaign_id = bindparam("campaign_id", type_=Integer)
    caller = (
        select(users.c.id)
        .outerjoin(members, and_(members.c.campaign_id == campaign_id,
                                 members.c.user_id == users.c.id))
        .where(users.c.id == bindparam("user_id", type_=Integer),
               users.c.is_active == true(),
               users.c.session_version == bindparam("session_version", type_=Integer),
               or_(members.c.role.in_(WRITER_ROLES),
                   and_(users.c.is_admin == true(),
                        exists().where(Campaign.__table__.c.id == campaign_id))))
        .cte("caller"))
    created = (
        pg_insert(labels)
        .from_select(list(LABEL_COLUMNS),
                     select(*typed_values(labels, LABEL_COLUMNS)).select_from(caller))
        .on_conflict_do_nothing(index_elements=list(LABEL_KEY))
        .returning(labels.c.id)
        .cte("created"))
    history = history_of(created).cte("history")
    statement = select(created.c.id).add_cte(history)
    if queue_probe:
        jobs = Job.__table__
        queued = coalescing(pg_insert(jobs).from_select(
            list(ENQUEUE_COLUMNS),
            select(*typed_values(jobs, ENQUEUE_COLUMNS)).select_from(created)),
            "postgresql", due_by_count).cte("queued")
        statement = statement.add_cte(queued)
    return statement


def write_first_label(campaign_id: int, object_id: int,
                      value: LabelValue | None) -> LabelState | None:
    """Create the session's user's label on ``object_id`` and commit, if this request's identity
    is deferred, the database is PostgreSQL, the user may label in the campaign and has no
    label on the object yet. None otherwise, having changed nothing: the caller then writes
    the general way."""
    if value is None or g.get("auth") != "deferred":
        return None
    if db.engine.dialect.name != "postgresql":  # the engine the statement runs on (below)
        return None
    user_id, version = session.get("uid"), session.get("ver")
    if not (isinstance(user_id, int) and isinstance(version, int)
            and 0 <= max(campaign_id, object_id, user_id) <= SQL_INTEGER_MAX):
        return None
    now = utcnow()
    label, history = creation_values(campaign_id, user_id, object_id, value, uuid.uuid4().hex,
                                     now)
    probe = retraining_values(campaign_id, 1, now)
    statement = _statement(probe is not None,
                           probe is not None and probe["due_after_requests"] is not None)
    parameters = label | history | (probe or {}) | {"session_version": version}
    # one statement is its own transaction: no BEGIN and COMMIT round trips, on a pooled
    # connection without the ORM session's transaction around it
    with db.engine.connect() as connection:
        created = (connection.execution_options(isolation_level="AUTOCOMMIT")
                   .execute(statement, parameters).first())
    if created is None:
        return None
    session_checked(user_id, version)
    return LabelState(campaign_id, object_id, user_id, value, now, now, changed=True)
