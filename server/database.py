"""The SQL layer's shared pieces: the declarative base, UTC timestamps and per-engine settings.

Every model derives from :class:`Base`, whose metadata carries a naming convention so that
constraints have stable names: Alembic can then drop or alter them by name, which SQLite's
batch mode needs. Timestamps are stored as UTC and always come back timezone-aware
(:class:`UTCDateTime`), whatever the database keeps.

:func:`configure_engine` is called once per engine by the app factory:

- SQLite runs in WAL mode (readers do not block the writer), with a busy timeout (a writer
  waits for the lock instead of failing at once), ``synchronous=NORMAL`` (durable at each
  checkpoint, the documented setting for WAL) and foreign keys enforced.
- SQLite transactions are begun by us rather than by the ``sqlite3`` module, so that a write
  request takes the write lock at ``BEGIN IMMEDIATE``. A deferred transaction that reads and
  then writes fails at once with "database is locked" when another writer committed since its
  read (SQLITE_BUSY_SNAPSHOT ignores the busy timeout); taking the lock first makes writers
  queue for it instead. Read requests begin deferred transactions and never wait for writers.
- A PostgreSQL connection that sat in the pool for more than :data:`PING_AFTER_IDLE_S` is
  checked before use (a ``SELECT 1``; a dead one is replaced), so that the app recovers by
  itself after the server restarted while it was idle. ``pool_pre_ping`` would check every
  checkout: one more round trip per request (about 4% of a label write's CPU in py-spy). A
  restart under load instead fails the requests that were using the old connections (503 with
  Retry-After: the web app retries them); SQLAlchemy then drops the pool's other connections
  of that time, so the next requests get new ones.

:func:`is_database_unavailable` tells the error handler which database errors mean "try again
later" (503) rather than a bug (500).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import JSON, DateTime, Dialect, Engine, MetaData, Table, bindparam, cast, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator

# a pooled PostgreSQL connection idle for longer is checked before use (module docstring)
PING_AFTER_IDLE_S = 1.0

# Constraint names: "uq_labels_campaign_id_object_id_user_id", "fk_labels_user_id_users", ...
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for the lock before giving up (503)
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# methods whose requests write: their SQLite transactions take the write lock up front
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of time the models hold)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware.

    PostgreSQL keeps ``timestamptz`` and returns aware values; SQLite keeps text without an
    offset, so values are converted to UTC before they are stored and marked UTC when read.
    Naive datetimes are refused: their meaning depends on the machine that made them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text elsewhere
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """The declarative base of every model (``db.Model`` is this class)."""

    # one registry object (rather than class attributes) so that Flask-SQLAlchemy's copy of
    # this class for ``db.Model`` shares the same metadata and type map
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime(), dict[str, Any]: JSONDocument},
    )


def configure_engine(engine: Engine) -> None:
    """Install the per-connection settings described in the module docstring."""
    if engine.dialect.name != "sqlite":
        _ping_idle_connections(engine)
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, connection_record: Any) -> None:
        # hand transaction control to SQLAlchemy's "begin" event (see _on_begin)
        dbapi_connection.isolation_level = None
        for pragma in SQLITE_PRAGMAS:
            dbapi_connection.execute(pragma)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writes = has_request_context() and request.method in WRITE_METHODS
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle for PING_AFTER_IDLE_S."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
        idle_since = connection_record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return  # new, or back in the pool moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # the pool discards this connection and checks out another (or connects anew)
            raise exc.DisconnectionError(f"a pooled connection is dead: {error}") from error


# SQLite errors that mean another process holds the database or the file cannot be reached
_SQLITE_UNAVAILABLE = ("database is locked", "database is busy", "unable to open database",
                       "disk i/o error")


def dialect_insert(dialect: str):
    """The ``insert`` of a dialect that has ``ON CONFLICT`` (PostgreSQL's or SQLite's)."""
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"galsearch stores its data in PostgreSQL or SQLite, not {dialect}")


def bound_values(table: Table, names: Sequence[str]) -> dict[str, Any]:
    """``{column: bindparam(column)}`` for a statement built once and run with named parameters
    (SQLAlchemy then reuses its compiled form: building a tree per call costs more CPU than
    running it)."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


def libpq_url(url: str | URL) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``) as libpq and
    ``psycopg.connect`` read it, password included."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def typed_values(table: Table, names: Sequence[str]) -> list[Any]:
    """:func:`bound_values` cast to their columns' types, for the select list of an ``INSERT ...
    SELECT`` (a bare parameter there would reach PostgreSQL as text)."""
    return [cast(parameter, table.c[name].type)
            for name, parameter in bound_values(table, names).items()]


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached now (retry later), not a bug.

    Connection failures and lost connections (PostgreSQL restarted or unreachable) and a SQLite
    lock held past the busy timeout qualify; SQL errors such as a missing table do not.
    """
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if isinstance(error.orig, sqlite3.OperationalError):
        message = str(error.orig).lower()
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    # psycopg raises OperationalError for connection failures, server shutdown and "the
    # connection is closed"; SQL mistakes are ProgrammingError / DataError
    return isinstance(error, exc.OperationalError | exc.InterfaceError)
