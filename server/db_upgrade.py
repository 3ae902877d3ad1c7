"""Bring the database to the newest migration when the app starts, once, under a lock.

Several processes may start at once (gunicorn workers without preload, two containers, the
worker beside the web server). Each calls :func:`upgrade_database`; a lock makes them take
turns, so the first runs the pending revisions and the others find nothing left to do:

- PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) held on its own connection;
- SQLite: an exclusive ``flock`` on a file beside the database (in-memory databases belong to
  one process and need none).
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Engine, func, select

from server.extensions import db, migrate

log = logging.getLogger(__name__)

# pg_advisory_lock key: an arbitrary 64-bit constant that names "galsearch schema upgrade"
PG_UPGRADE_LOCK_KEY = 0x67616C7365617263  # b"galsearc"


class DatabaseOutOfDate(RuntimeError):
    """The database is behind the code and the app was told not to upgrade it."""


@contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(select(func.pg_advisory_lock(PG_UPGRADE_LOCK_KEY)))
            connection.commit()  # the lock is the session's, not the transaction's
            try:
                yield
            finally:
                connection.execute(select(func.pg_advisory_unlock(PG_UPGRADE_LOCK_KEY)))
                connection.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock_path = Path(engine.url.database).with_name(Path(engine.url.database).name
                                                        + ".upgrade-lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    else:
        yield


def head_revision() -> str | None:
    """The newest revision of the migrations folder (call within an app context)."""
    config = migrate.get_config()
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(app: Flask) -> None:
    """Run the pending migrations of ``app``'s database, under the lock described above."""
    with app.app_context():
        engine = db.engine
        try:
            head = head_revision()
            if current_revision(engine) == head:  # the common case: no lock taken
                return
            started = time.perf_counter()
            with _upgrade_lock(engine):
                before = current_revision(engine)
                if before != head:
                    # alembic's command, not Flask-Migrate's wrapper, which turns errors into
                    # exit(1)
                    config = migrate.get_config()
                    config.attributes["configure_logging"] = False  # the app's logging stays
                    command.upgrade(config, "head")
                    log.info("database upgraded from %s to %s in %.1f s",
                             before or "empty", head, time.perf_counter() - started)
        finally:
            # pooled connections must not be inherited by gunicorn workers forked after this
            engine.dispose()


def check_database_current(app: Flask) -> None:
    """Raise :class:`DatabaseOutOfDate` when ``app``'s database is not at the newest revision."""
    with app.app_context():
        current, head = current_revision(db.engine), head_revision()
        db.engine.dispose()
    if current != head:
        raise DatabaseOutOfDate(
            f"the database is at revision {current or '(empty)'} but the code expects {head}: "
            "run `galsearch db upgrade`"
        )
