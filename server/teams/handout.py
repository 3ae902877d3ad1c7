"""Hand-out: candidate pages shared out so that labelers of a team do not see the same objects.

In a campaign whose settings ask for it (``handout: true``, :mod:`server.teams.rules`), a
labeler's candidate page is a set of objects *handed* to them: each object goes to at most
``overlap`` labelers at a time (1 by default; 2 or more so that agreement can be measured), and
an object not labeled within ``handout_minutes`` of being handed out returns to the pool.

An object counts against the overlap once per person who has labeled it or holds an unexpired
hand-out of it (a union: a holder who labels it still counts once). Labels imported from a
source (:class:`~server.models.SourceLabel`) do not count: the overlap is about people looking.

A request for a page (``hand_out``):

1. lists the caller's outstanding hand-outs (unexpired, not labeled by them) after the cursor,
   in hand-out order: so a page reload gives the same objects back first, and a labeler who
   left keeps their objects until the time limit;
2. if the page is not full, asks the ranking (the campaign's candidate order, a
   :data:`Ranker`) for the best objects that are not full, not labeled by the caller and not
   already theirs, with a margin for objects others take meanwhile;
3. claims them in a short write transaction that counts each object's takers again under a
   per-campaign lock and hands out only those still below the overlap, then repeats 2 and 3 a
   few times if others took some in between.

The lock: on PostgreSQL a transaction-level advisory lock per campaign (label writes do not
take it, so labeling never waits for a hand-out); on SQLite the database's write lock, taken by
the transaction's first statement, the sweep of expired hand-outs (a transaction that begins
with a write waits for the lock like ``BEGIN IMMEDIATE``, even in a GET request). The count and
the insert therefore never interleave with another hand-out in the campaign, so no object is
ever handed to more than ``overlap`` people; the unique (campaign, object, user) constraint
backs this up for one person.

Cursors: a hand-out page's cursor is the last hand-out id served (ids only grow: the table is
AUTOINCREMENT on SQLite, a sequence on PostgreSQL, and one labeler's hand-outs are created
under the campaign lock). It is a :class:`server.candidates.Cursor` of the ranking
``"handout"``, so a similarity cursor sent after the campaign switched to hand-out (or the
reverse) is refused as stale (409) and the client starts again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import case, delete, exists, func, insert, or_, select, union

from server.candidates import Cursor
from server.database import utcnow
from server.extensions import db
from server.models import Handout, Label
from server.teams.rules import TeamRules

# (objects to leave out (E,) int64, how many) -> (ids (<= k,) int64, scores (<= k,)) best first
Ranker = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

HANDOUT_RANKING = "handout"  # the cursor's ranking name
# pg_advisory_xact_lock(key1, key2) namespace of the per-campaign hand-out lock: b"hand"
PG_HANDOUT_LOCK_CLASS = 0x68616E64
MAX_ROUNDS = 4  # rank-and-claim rounds per request when others keep taking objects
_IN_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class HandedObject:
    """One object handed to the caller."""

    handout_id: int
    object_id: int
    score: float  # the ranking's score when it was handed out
    expires_at: datetime


@dataclass(frozen=True)
class HandoutPage:
    items: list[HandedObject]
    next_cursor: str | None  # None: nothing more to hand out now


def encode_cursor(last_handout_id: int) -> str:
    return Cursor(0.0, last_handout_id, 1, HANDOUT_RANKING).encode()


def decode_cursor(text: str) -> int:
    """The last hand-out id a cursor served.

    Raises:
        server.candidates.InvalidCursor: not a cursor this server made.
        server.candidates.StaleCursor: a cursor of a similarity page (not a hand-out page).
    """
    return Cursor.decode(text, HANDOUT_RANKING).object_id


def _takers(campaign_id: int, now: datetime, object_ids: Sequence[int] | None = None):
    """(object_id, user_id) of each person who labeled an object or holds an unexpired
    hand-out of it, once each (a UNION, not UNION ALL)."""
    labels = select(Label.object_id, Label.user_id).where(Label.campaign_id == campaign_id)
    held = select(Handout.object_id, Handout.user_id).where(
        Handout.campaign_id == campaign_id, Handout.expires_at > now)
    if object_ids is not None:
        labels = labels.where(Label.object_id.in_(object_ids))
        held = held.where(Handout.object_id.in_(object_ids))
    return union(labels, held).subquery()


def unavailable(campaign_id: int, user_id: int, overlap: int, now: datetime) -> np.ndarray:
    """Objects the ranking must skip for ``user_id``: full (``overlap`` takers), or labeled or
    held by the user already. (E,) int64, sorted."""
    takers = _takers(campaign_id, now)
    mine = func.sum(case((takers.c.user_id == user_id, 1), else_=0))
    rows = db.session.scalars(
        select(takers.c.object_id).group_by(takers.c.object_id)
        .having(or_(func.count() >= overlap, mine > 0)))
    return np.sort(np.fromiter(rows, dtype=np.int64))


def outstanding(campaign_id: int, user_id: int, now: datetime, after: int = 0,
                limit: int | None = None) -> list[HandedObject]:
    """The user's unexpired hand-outs that they have not labeled, in hand-out order."""
    labeled = exists().where(Label.campaign_id == campaign_id, Label.user_id == user_id,
                             Label.object_id == Handout.object_id)
    statement = (select(Handout)
                 .where(Handout.campaign_id == campaign_id, Handout.user_id == user_id,
                        Handout.id > after, Handout.expires_at > now, ~labeled)
                 .order_by(Handout.id))
    if limit is not None:
        statement = statement.limit(limit)
    return [HandedObject(h.id, h.object_id, h.score, h.expires_at)
            for h in db.session.scalars(statement)]


def _lock_and_sweep(campaign_id: int, now: datetime) -> None:
    """Take the campaign's hand-out lock and delete its expired hand-outs (see module doc)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(PG_HANDOUT_LOCK_CLASS,
                                                             campaign_id)))
    # on SQLite this write is the transaction's first statement: it takes the write lock
    db.session.execute(delete(Handout).where(Handout.campaign_id == campaign_id,
                                             Handout.expires_at <= now))


def _claim(campaign_id: int, user_id: int, rules: TeamRules, ids: np.ndarray,
           scores: np.ndarray, want: int, now: datetime) -> int:
    """Hand up to ``want`` of ``ids`` (best first) to the user, each only if it is still below
    the overlap; one transaction under the lock. Returns how many were handed out."""
    _lock_and_sweep(campaign_id, now)
    count: dict[int, int] = {}
    mine: set[int] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        takers = _takers(campaign_id, now, [int(i) for i in ids[start:start + _IN_CHUNK]])
        for object_id, user_id_ in db.session.execute(select(takers.c.object_id,
                                                             takers.c.user_id)):
            count[object_id] = count.get(object_id, 0) + 1
            if user_id_ == user_id:
                mine.add(object_id)
    rows = []
    expires = now + rules.handout_ttl
    for object_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
        if len(rows) == want:
            break
        if object_id in mine or count.get(object_id, 0) >= rules.overlap:
            continue
        rows.append({"campaign_id": campaign_id, "object_id": object_id, "user_id": user_id,
                     "score": score, "handed_at": now, "expires_at": expires})
    if rows:
        db.session.execute(insert(Handout), rows)  # in rank order: ids follow it
    db.session.commit()
    return len(rows)


def hand_out(campaign_id: int, user_id: int, rules: TeamRules, limit: int, after: int,
             rank: Ranker, now: datetime | None = None) -> HandoutPage:
    """The user's next page of hand-outs after hand-out id ``after`` (0: from the start).

    The caller must have ended any transaction that read (the session is committed here
    before the claim, so values read earlier must not be lazily loaded afterwards).

    Args:
        campaign_id: a campaign whose rules ask for hand-out.
        user_id: the labeler.
        rules: the campaign's rules (overlap, time limit).
        limit: objects per page.
        after: the last hand-out id of the previous page (the decoded cursor).
        rank: the campaign's candidate order.
        now: the time (tests); defaults to the current time.
    """
    now = utcnow() if now is None else now
    items = outstanding(campaign_id, user_id, now, after, limit)
    exhausted = False
    for _ in range(MAX_ROUNDS):
        want = limit - len(items)
        if want <= 0:
            break
        asked = 2 * want  # a margin for objects others take between ranking and claim
        ids, scores = rank(unavailable(campaign_id, user_id, rules.overlap, now), asked)
        db.session.commit()  # end the read: the claim must begin with its write (SQLite)
        if len(ids) == 0:
            exhausted = True
            break
        handed = _claim(campaign_id, user_id, rules, np.asarray(ids, dtype=np.int64),
                        np.asarray(scores, dtype=np.float64), want, now)
        items = outstanding(campaign_id, user_id, now, after, limit)
        if len(ids) < asked and handed < want:
            exhausted = True  # the ranking had no more, and others hold the rest
            break
    more = len(items) == limit and not exhausted
    return HandoutPage(items, encode_cursor(items[-1].handout_id) if more else None)


def holders(campaign_id: int, now: datetime | None = None) -> dict[int, list[int]]:
    """Object id -> users holding an unexpired hand-out of it (progress, tests)."""
    now = utcnow() if now is None else now
    out: dict[int, list[int]] = {}
    for object_id, user_id in db.session.execute(
            select(Handout.object_id, Handout.user_id)
            .where(Handout.campaign_id == campaign_id, Handout.expires_at > now)
            .order_by(Handout.object_id, Handout.user_id)):
        out.setdefault(object_id, []).append(user_id)
    return out
