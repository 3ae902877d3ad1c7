"""The SQL layer: SQLite settings per connection, UTC-aware timestamps, error classification."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError, StatementError

from server.database import SQLITE_BUSY_TIMEOUT_MS, UTCDateTime, is_database_unavailable
from server.extensions import db
from server.models import User


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(make_app):
    app = make_app()
    with app.app_context():
        pragma = {name: db.session.execute(text(f"PRAGMA {name}")).scalar()
                  for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
    assert pragma == {"journal_mode": "wal", "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
                      "foreign_keys": 1, "synchronous": 1}


def test_sqlite_enforces_foreign_keys(make_app):
    app = make_app()
    with app.app_context(), pytest.raises(Exception, match="FOREIGN KEY"):
        db.session.execute(text(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
            "VALUES (999, 'x', 'h', 'p', '2025-01-01 00:00:00')"))
        db.session.commit()


def test_timestamps_come_back_aware_in_utc(people, app):
    user_id = people.user("alice")
    with app.app_context():
        user = db.session.get(User, user_id)
        user.last_sign_in_at = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        db.session.commit()
        db.session.expire_all()
        stored = db.session.get(User, user_id)
        assert stored.created_at.tzinfo is not None
        assert stored.last_sign_in_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
        assert stored.last_sign_in_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(people, app):
    user_id = people.user("alice")
    with app.app_context():
        db.session.get(User, user_id).last_sign_in_at = datetime(2025, 3, 1, 12, 0)
        with pytest.raises(StatementError, match="naive datetime"):
            db.session.commit()
        db.session.rollback()


def test_utc_type_round_trips_none():
    column = UTCDateTime()
    assert column.process_bind_param(None, None) is None
    assert column.process_result_value(None, None) is None


def _wrapped(error_class, orig, invalidated=False):
    return error_class("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(("error", "unavailable"), [
    (_wrapped(OperationalError, sqlite3.OperationalError("database is locked")), True),
    (_wrapped(OperationalError, sqlite3.OperationalError("no such table: x")), False),
    (_wrapped(OperationalError, psycopg.OperationalError("connection refused")), True),
    (_wrapped(ProgrammingError, psycopg.ProgrammingError("syntax error")), False),
    (_wrapped(ProgrammingError, psycopg.ProgrammingError("gone"), invalidated=True), True),
    (RuntimeError("not a database error"), False),
])
def test_which_database_errors_mean_retry_later(error, unavailable):
    assert is_database_unavailable(error) is unavailable
