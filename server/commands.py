"""The server's ``galsearch`` sub-commands: ``serve``, ``create-user`` and ``db``."""

from __future__ import annotations

import sys

import click
from flask.cli import ScriptInfo
from flask_migrate.cli import db as flask_migrate_db

from server.config import ConfigError


def _app(**config):
    from server.app import create_app

    try:
        return create_app(config or None)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (0.0.0.0: every interface)")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--debug", is_flag=True, help="reload on code changes and show tracebacks")
def serve(host: str, port: int, debug: bool) -> None:
    """Run the development web server (production: gunicorn -c python:server.gunicorn_conf).

    Configuration comes from the environment: DATABASE_URL (default: a SQLite file in
    instance/), GALSEARCH_BUNDLE, SECRET_KEY.
    """
    from sqlalchemy.engine import make_url

    from server.cutouts import render_on_one_thread

    app = _app()
    render_on_one_thread()  # as gunicorn's workers: cutouts render on request threads
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(
        hide_password=True)
    click.echo(f"galsearch on http://{host}:{port}/ (database: {database})", err=True)
    app.run(host=host, port=port, debug=debug, use_reloader=debug, threaded=True)


@click.command("create-user")
@click.argument("name")
@click.option("--admin", is_flag=True, help="make the user an administrator")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of standard input (for scripts)")
def create_user(name: str, admin: bool, password_stdin: bool) -> None:
    """Create user NAME (asks for the password unless --password-stdin)."""
    from server.auth.accounts import AccountError
    from server.auth.accounts import create_user as add_user
    from server.extensions import db

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    app = _app()
    with app.app_context():
        try:
            user = add_user(name, password, is_admin=admin)
        except AccountError as error:
            raise click.ClickException(str(error)) from None
        db.session.commit()
        click.echo(f"created {'administrator' if admin else 'user'} {user.username!r}")


# Flask-Migrate's commands (upgrade, downgrade, current, history, migrate, ...) against the
# app of the environment, which is built without upgrading itself first
db = click.Group(
    "db",
    commands=flask_migrate_db.commands,
    params=flask_migrate_db.params,
    callback=flask_migrate_db.callback,
    help="Database migrations (Alembic via Flask-Migrate): upgrade, downgrade, current, ...",
    context_settings={"obj": ScriptInfo(create_app=lambda: _app(AUTO_UPGRADE_DATABASE=False))},
)
