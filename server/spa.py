"""The single-page labeling app at ``/``, as built by Vite from ``frontend/``.

``npm run build`` (run by ``make demo`` and ``make test``) writes the app to
``server/static/app/`` (git-ignored; ``SPA_DIR`` in the config points elsewhere):
``index.html``, a few top-level files (the icon) and ``assets/`` with content-hashed names.

- ``/assets/<file>``: a hashed file never changes under its name, so browsers may keep it for
  a year without asking again (``immutable``).
- Every other path outside ``/api`` is a client-side route (``/campaigns/7``, ...): the app's
  ``index.html``, which browsers must revalidate (``no-cache``) so that a new build is picked
  up on the next load. A top-level file of the build (``/favicon.svg``) is served as itself.
- Paths under ``/api`` never fall through to the app (the catch-all route's converter does not
  match them): an unknown one is the API's JSON 404, a known one with another method 405.

Before the app is built, ``/`` answers 503 with a page that says how to build it.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory
from werkzeug.routing import PathConverter

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_SPA_DIR = PACKAGE_DIR / "static" / "app"
ASSET_MAX_AGE_S = 365 * 24 * 3600
TOP_LEVEL_MAX_AGE_S = 3600
INDEX = "index.html"

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>galsearch: app not built</title></head>
<body><h1>The galsearch web app has not been built</h1>
<p>The API is running (<a href="/api/docs">/api/docs</a>), but the labeling app's files are
missing from <code>{spa_dir}</code>.</p>
<p>Build it with <code>make demo</code>, or with <code>npm ci &amp;&amp; npm run build</code> in
the repository, then reload this page.</p></body></html>
"""

bp = Blueprint("spa", __name__)


class ClientRouteConverter(PathConverter):
    """A path outside the API: the catch-all route never matches ``/api`` or ``/api/...``, so
    an API path's allowed methods (405, OPTIONS' ``Allow``) are the API routes' alone."""

    regex = r"(?!api(?:/|$))[^/].*?"


@bp.record_once
def _register_converter(state) -> None:
    state.app.url_map.converters["client_route"] = ClientRouteConverter


def spa_dir() -> Path:
    """The folder of the built app (``SPA_DIR``, default ``server/static/app``)."""
    return Path(current_app.config.get("SPA_DIR") or DEFAULT_SPA_DIR)


@bp.get("/assets/<path:filename>")
def asset(filename: str) -> Response:
    """A content-hashed file of the build, cached for a year."""
    response = send_from_directory(spa_dir() / "assets", filename, max_age=ASSET_MAX_AGE_S)
    response.cache_control.immutable = True
    return response


@bp.get("/", defaults={"path": ""})
@bp.get("/<client_route:path>")
def page(path: str) -> Response:
    """The app's ``index.html`` for a client route, or a top-level file of the build."""
    root = spa_dir()
    if path and "/" not in path and path != INDEX and (root / path).is_file():
        return send_from_directory(root, path, max_age=TOP_LEVEL_MAX_AGE_S)
    if not (root / INDEX).is_file():
        return Response(NOT_BUILT_PAGE.format(spa_dir=root), status=503,
                        mimetype="text/html", headers={"Retry-After": "60"})
    response = send_from_directory(root, INDEX, max_age=0)
    response.cache_control.no_cache = True
    return response
