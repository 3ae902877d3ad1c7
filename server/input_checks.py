"""Checks every API request gets before its view runs, for input the database cannot hold.

- Ids in URLs that no row can have answer 404 before any SQL is sent. Werkzeug's
  ``<int:...>`` converter takes any size of integer, but the database's integer columns do not:
  PostgreSQL refuses a value beyond its column's type ("integer out of range"), which would be
  a 500. Campaigns, users, API tokens, seeds and probe versions have 32-bit ids (``INTEGER``);
  every other id (exports, jobs, object ids) is 64-bit (``BIGINT``). A URL whose id is beyond its
  column's range names nothing, so it is the same 404 as an id that does not exist.
- Text with a NUL character (U+0000) is refused with 422, wherever it is sent: PostgreSQL's text
  cannot hold it (psycopg raises before the query is sent), so without this check a NUL in a
  campaign name, a labeler filter or a source name would be a 500 on PostgreSQL and stored on
  SQLite. Query parameters, JSON bodies and form fields are checked (the error names the field);
  a NUL in a path segment names nothing (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apiflask import APIFlask, abort
from flask import request

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# path parameters that hold a 32-bit (INTEGER) id; the others are checked against 64 bits
INT32_PARAMETERS = {"campaign_id": "campaign", "user_id": "user", "token_id": "API token",
                    "seed_id": "seed", "version": "probe version"}
NUL = "\x00"
NUL_MESSAGE = "text must not contain NUL (U+0000) characters"


def check_path_values(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """The ``url_value_preprocessor``: ids beyond their column's range, NULs (404)."""
    for name, value in (values or {}).items():
        if isinstance(value, str) and NUL in value:
            abort(404, f"there is no {name.replace('_', ' ')} named {value!r}")
        if not isinstance(value, int):
            continue
        limit = INT32_MAX if name in INT32_PARAMETERS else INT64_MAX
        if value > limit:
            what = INT32_PARAMETERS.get(name, name.removesuffix("_id").replace("_", " "))
            if name == "campaign_id":
                abort(404, f"campaign {value} does not exist or you are not one of its members")
            abort(404, f"{what} {value} does not exist")


def _nul_paths(value: Any, path: str) -> Iterator[str]:
    """Where in a JSON document a string (or an object key) holds a NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                yield where
            yield from _nul_paths(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}" if path else str(index))


def check_text_input() -> None:
    """The ``before_request`` hook: no NUL in query parameters, JSON bodies or form fields."""
    if not request.path.startswith("/api/"):
        return
    errors: dict[str, dict[str, list[str]]] = {}
    for name, value in request.args.items(multi=True):
        if NUL in name or NUL in value:
            errors.setdefault("query", {})[name] = [NUL_MESSAGE]
    if request.is_json:
        body = request.get_json(silent=True)  # unparsable JSON is the view's 400
        for where in _nul_paths(body, ""):
            errors.setdefault("json", {})[where or "_body"] = [NUL_MESSAGE]
    elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for name, value in request.form.items(multi=True):
            if NUL in name or NUL in value:
                errors.setdefault("form", {})[name] = [NUL_MESSAGE]
    if errors:
        abort(422, "the request is not valid: see errors for each field",
              extra_data={"errors": errors})


def register_input_checks(app: APIFlask) -> None:
    app.url_value_preprocessor(check_path_values)
    app.before_request(check_text_input)
