"""Alembic environment: runs the revisions against the Flask app's database.

Run through Flask-Migrate (``galsearch db ...``) or :func:`server.db_upgrade.upgrade_database`,
both inside an app context. On SQLite the whole upgrade is one transaction (the app, not the
``sqlite3`` module, issues BEGIN, so SQLite's DDL is transactional), and foreign-key
enforcement is off while batch mode copies tables, then checked.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

import server.models  # noqa: F401  (registers every table on the metadata)

config = context.config
# configure logging for the command line only: an app that upgrades itself keeps its own
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_ext = current_app.extensions["migrate"]
target_metadata = migrate_ext.db.metadata


def run_migrations_offline() -> None:
    """Write the SQL to stdout (``galsearch db upgrade --sql``) instead of running it."""
    url = migrate_ext.db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      **migrate_ext.configure_args)
    with context.begin_transaction():
        context.run_migrations()


def _skip_empty_autogenerate(context_, revision, directives) -> None:
    # `galsearch db migrate` with no model change writes no empty revision
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_online() -> None:
    conf_args = dict(migrate_ext.configure_args)
    conf_args.setdefault("process_revision_directives", _skip_empty_autogenerate)
    engine = migrate_ext.db.engine
    sqlite = engine.dialect.name == "sqlite"

    with engine.connect() as connection:
        raw = connection.connection.driver_connection if sqlite else None
        if sqlite:
            # batch mode drops and re-creates tables: with enforcement on, dropping a parent
            # table would cascade-delete its children's rows. Must run outside a transaction.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(connection=connection, target_metadata=target_metadata,
                              transactional_ddl=True if sqlite else None, **conf_args)
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = raw.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with dangling foreign keys: {broken}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
