"""The app factory: ``create_app()`` builds the galsearch web app (API and, later, the SPA).

Development: ``galsearch serve``. Production: ``gunicorn -c python:server.gunicorn_conf``
(which calls ``server.app:create_app()`` once in the master and forks the workers from it).
Configuration comes from the environment (:mod:`server.config`); tests pass overrides.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

import server.models  # noqa: F401  (every table on the metadata before the engine is used)
from server import spa
from server.api import register_blueprints
from server.auth.identity import SECURITY_SCHEMES, SessionCookies, load_identity
from server.auth.image_pass import register_image_pass
from server.config import load_config
from server.database import configure_engine
from server.db_upgrade import upgrade_database
from server.errors import HTTP_ERROR_SCHEMA, VALIDATION_ERROR_SCHEMA, register_error_handlers
from server.extensions import db, migrate
from server.input_checks import register_input_checks
from server.security_headers import register_security_headers
from server.sources import open_sources

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR.parent / "migrations"
API_DESCRIPTION = """\
The galsearch labeling API: campaigns, their members and labels.

Sign in with `POST /api/session` (a session cookie; writes then need the `X-CSRF-Token`
header) or send an API token (`Authorization: Bearer ...`, from `POST /api/tokens`).
Errors are JSON objects `{status, title, detail}`; validation errors (422) add `errors`.
"""


def _version() -> str:
    try:
        return version("galsearch")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


def _instance_path() -> str:
    """GALSEARCH_INSTANCE, else ``instance/`` of the source checkout, else (an installed
    package) ``<prefix>/var/galsearch-instance`` as Flask does."""
    path = os.environ.get("GALSEARCH_INSTANCE")
    if path:
        return os.path.abspath(path)  # Flask wants it absolute
    if PACKAGE_DIR.parent.name == "site-packages":
        return os.path.join(sys.prefix, "var", "galsearch-instance")
    return str(PACKAGE_DIR.parent / "instance")


def create_app(config: Mapping[str, Any] | None = None) -> APIFlask:
    """Build the app.

    Args:
        config: Flask settings that win over the environment, e.g. ``{"TESTING": True,
            "SQLALCHEMY_DATABASE_URI": ...}``. ``AUTO_UPGRADE_DATABASE: False`` leaves the
            database as it is (the ``galsearch db`` commands use this).

    Raises:
        server.config.ConfigError: the environment is not a usable configuration.
    """
    app = APIFlask(
        "server",
        root_path=str(PACKAGE_DIR),
        title="galsearch",
        version=_version(),
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
        json_errors=False,  # server.errors answers every error itself
        instance_path=_instance_path(),
    )
    app.config.update(load_config(Path(app.instance_path), overrides=config))
    app.config.update(
        DESCRIPTION=API_DESCRIPTION,
        SECURITY_SCHEMES=SECURITY_SCHEMES,
        HTTP_ERROR_SCHEMA=HTTP_ERROR_SCHEMA,
        VALIDATION_ERROR_SCHEMA=VALIDATION_ERROR_SCHEMA,
    )
    app.json.sort_keys = False

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), compare_type=True,
                     render_as_batch=True)
    with app.app_context():
        configure_engine(db.engine)

    if app.config["PROXY_COUNT"]:  # the client's address and scheme, as the proxies saw them
        proxies = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    register_error_handlers(app)
    register_security_headers(app)
    app.session_interface = SessionCookies()
    register_image_pass(app)
    app.before_request(load_identity)
    register_input_checks(app)  # after who is calling: 401 before 422
    register_blueprints(app)
    app.register_blueprint(spa.bp)  # last: its catch-all route serves the app's client routes

    if app.config["AUTO_UPGRADE_DATABASE"]:
        upgrade_database(app)
    open_sources(app)
    return app
