"""Alembic migrations: `upgrade head` on an empty database matches the models, `downgrade base`
empties it, and several apps starting at once upgrade it exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from server.db_upgrade import current_revision, head_revision
from server.extensions import db, migrate

REPO = Path(__file__).resolve().parents[2]


def _diff(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_head_matches_the_models_and_downgrade_base_works(make_app,
                                                                   empty_database_url):
    app = make_app(empty_database_url)  # upgrades on start
    with app.app_context():
        assert current_revision(db.engine) == head_revision()
        assert set(inspect(db.engine).get_table_names()) >= set(db.metadata.tables)
    assert _diff(app) == []

    with app.app_context():
        config = migrate.get_config()
        config.attributes["configure_logging"] = False
        command.downgrade(config, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        assert current_revision(db.engine) is None
        command.upgrade(config, "head")
    assert _diff(app) == []


def test_every_revision_downgrades_and_upgrades_again(make_app, empty_database_url):
    app = make_app(empty_database_url)
    with app.app_context():
        config = migrate.get_config()
        config.attributes["configure_logging"] = False
        revisions = [r.revision for r in
                     reversed(list(migrate_script(config).walk_revisions()))]
        for revision in reversed(revisions[:-1]):
            command.downgrade(config, revision)
            assert current_revision(db.engine) == revision
        command.upgrade(config, "head")
    assert _diff(app) == []


def migrate_script(config) -> ScriptDirectory:
    return ScriptDirectory.from_config(config)


def test_revisions_form_one_line(make_app):
    app = make_app()
    with app.app_context():
        script = migrate_script(migrate.get_config())
        assert len(script.get_heads()) == 1, "two heads: merge them (galsearch db merge)"


# one app started in a process of its own, as a gunicorn worker is; after its imports it says
# so and waits for the go file, so that all of them reach the migration lock together
_START_ONE_APP = """
import sys, time
from pathlib import Path
from argon2 import profiles
from server.app import create_app
url, go = sys.argv[1], Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
create_app({"TESTING": True, "SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": url,
            "PASSWORD_HASH_PARAMETERS": profiles.CHEAPEST})
"""


def test_apps_starting_together_upgrade_once(empty_database_url, make_app, tmp_path):
    """Like gunicorn workers without preload, several apps start on an empty database at
    once, each in its own process; the lock lets one migrate while the others wait, then find
    nothing to do. (Processes, not threads: CPython 3.11.7 can fail compiling in several
    threads at once, "AST constructor recursion depth mismatch", which is not what is tested.)"""
    go = tmp_path / "go"
    runs = [subprocess.Popen([sys.executable, "-c", _START_ONE_APP, empty_database_url, str(go)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
            for _ in range(4)]
    for run in runs:
        assert run.stdout.readline().strip() == "ready", run.stdout.read()
    go.touch()
    for run in runs:
        output, _ = run.communicate(timeout=120)
        assert run.returncode == 0, output
    app = make_app(empty_database_url)
    with app.app_context():
        versions = db.session.execute(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [(head_revision(),)]
    assert _diff(app) == []
