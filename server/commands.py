"""The server's ``galsearch`` sub-commands: ``serve``, ``create-user`` and ``db``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


@click.command("nginx-config")
@click.option("--listen", default="127.0.0.1:8080", show_default=True,
              help="nginx's address (host:port)")
@click.option("--app", "app_address", default=None,
              help="gunicorn's address  [default: GALSEARCH_BIND or 127.0.0.1:8000]")
@click.option("--standalone", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write a whole nginx.conf into this folder, with nginx's pid, logs and "
                   "temporary files there too (run: nginx -c DIR/nginx.conf -p DIR)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the configuration here  [default: standard output]")
def nginx_config(listen: str, app_address: str | None, standalone: Path | None,
                 out: Path | None) -> None:
    """Write nginx's configuration for this app: cached cutouts sent by nginx, the rest proxied.

    Reads the same environment as the app (SECRET_KEY, GALSEARCH_SURVEY, GALSEARCH_INSTANCE).
    The file holds a key derived from SECRET_KEY, so it is written readable by its owner only.
    Run gunicorn behind it with GALSEARCH_PROXY_COUNT=1 and GALSEARCH_ACCESS_LOG=off.
    """
    from server.front import front_settings, nginx_site, nginx_standalone

    app = _app()
    address = app_address or os.environ.get("GALSEARCH_BIND", "127.0.0.1:8000")
    try:
        settings = front_settings(app, listen, address)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if standalone is not None:
        standalone.mkdir(parents=True, exist_ok=True)
        text = nginx_standalone(settings, standalone)
        out = out or standalone / "nginx.conf"
    else:
        text = nginx_site(settings)
    if out is None:
        click.echo(text, nl=False)
    else:
        tmp = out.with_name(f".{out.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
        click.echo(f"wrote {out}", err=True)
    if not app.config["PROXY_COUNT"]:
        click.echo("note: run gunicorn with GALSEARCH_PROXY_COUNT=1 so that the app sees the "
                   "clients' addresses (the sign-in limits count per address), and with "
                   "GALSEARCH_ACCESS_LOG=off: nginx logs every request", err=True)
    if not app.config["IMAGE_PASS_LIFETIME_S"]:
        click.echo("note: GALSEARCH_IMAGE_PASS_S=0: no image passes are issued, so every "
                   "cutout goes through the app", err=True)


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
