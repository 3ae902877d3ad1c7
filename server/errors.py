"""The one place that turns every error under ``/api`` into one JSON shape.

Every API error body is::

    {"status": 404, "title": "Not Found", "detail": "campaign 7 does not exist ..."}

with, for a request that failed validation (422), ``errors``: where (``json``, ``query``,
``path``) → field → messages. Views raise errors with :func:`apiflask.abort` (status and a
sentence for the user); Werkzeug's own errors (404 unknown path, 405, 413 body too large),
validation errors, unexpected exceptions (500) and an unreachable database (503 with
``Retry-After``) all pass through :func:`error_response`. Outside ``/api`` (the single-page
app) Werkzeug's HTML pages are kept.
"""

from __future__ import annotations

import logging
from typing import Any

from apiflask import APIFlask, HTTPError
from apiflask.exceptions import _ValidationError
from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    default_exceptions,
)
from werkzeug.http import HTTP_STATUS_CODES

from server.database import is_database_unavailable
from server.extensions import db

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
DATABASE_RETRY_AFTER_S = 5

# OpenAPI schemas of the error bodies (APIFlask's HTTP_ERROR_SCHEMA / VALIDATION_ERROR_SCHEMA)
HTTP_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "title", "detail"],
    "properties": {
        "status": {"type": "integer", "description": "the HTTP status code"},
        "title": {"type": "string", "description": "the status code's reason phrase"},
        "detail": {"type": "string", "description": "what went wrong and what to do"},
    },
}
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "title", "detail", "errors"],
    "properties": {
        **HTTP_ERROR_SCHEMA["properties"],
        "errors": {
            "type": "object",
            "description": "location (json, query, path) -> field -> messages",
            "additionalProperties": {"type": "object"},
        },
    },
}


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def error_response(status: int, detail: str, headers: Any = None,
                   errors: dict[str, Any] | None = None) -> Response:
    """The JSON error response every API error goes through."""
    body: dict[str, Any] = {
        "status": status,
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "detail": detail,
    }
    if errors is None and status == 422:
        errors = {}  # a 422 always has errors (the documented shape); the detail says it all
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    if headers:
        for name, value in dict(headers).items():
            if name.lower() != "content-type":
                response.headers[name] = value
    return response


def _from_http_error(error: HTTPError) -> Response:
    if isinstance(error, _ValidationError):
        return error_response(
            error.status_code,
            "the request is not valid: see errors for each field",
            error.headers,
            errors=error.detail if isinstance(error.detail, dict) else {"_": [str(error.detail)]},
        )
    # abort(status, "sentence") puts the sentence in message; a bare abort(status) leaves the
    # reason phrase there, so fall back to Werkzeug's description of the status
    detail = error.message
    if not detail or detail == HTTP_STATUS_CODES.get(error.status_code):
        detail = _werkzeug_description(error.status_code)
    return error_response(error.status_code, detail, error.headers,
                          errors=(error.extra_data or {}).get("errors"))


def _werkzeug_description(status: int) -> str:
    exception = default_exceptions.get(status)
    return exception.description if exception else HTTP_STATUS_CODES.get(status, "Error")


def register_error_handlers(app: APIFlask) -> None:
    """Route every error of ``app`` through :func:`error_response` (for ``/api`` paths)."""

    app.spec_processor(document_common_errors)

    @app.error_processor
    def _http_error(error: HTTPError) -> Response:
        return _from_http_error(error)

    @app.errorhandler(HTTPException)
    def _werkzeug_error(error: HTTPException) -> Response | HTTPException:
        if not _is_api_request():
            return error
        if isinstance(error, InternalServerError):
            original = error.original_exception
            if original is not None and is_database_unavailable(original):
                return _database_unavailable(original)
            return error_response(500, "an unexpected error occurred on the server; it has been "
                                       "logged. Try again, and report it if it persists.")
        if isinstance(error, MethodNotAllowed) and not _api_rule_matches(error):
            # only a route outside the API (the app's catch-all page) took the path
            return error_response(404, NotFound.description)
        detail = error.description or HTTP_STATUS_CODES.get(error.code or 500, "Error")
        if isinstance(error, NotFound) and detail == NotFound.description:  # no route matched
            detail = f"there is no API endpoint at {request.path}: see /api/docs for the API"
        if isinstance(error, RequestEntityTooLarge):
            limit_mb = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) / 2**20
            detail = (f"the request body is larger than this server accepts ({limit_mb:g} MB; "
                      "its administrator sets GALSEARCH_MAX_UPLOAD_MB): send a smaller file")
        # webargs reports an unparsable JSON body as 400 with its messages in error.data
        messages = getattr(error, "data", None) and error.data.get("messages")
        if messages:
            return error_response(error.code or 400, "the request body is not valid JSON",
                                  error.get_headers(), errors=messages)
        return error_response(error.code or 500, detail, error.get_headers())

    @app.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError) -> Response:
        if is_database_unavailable(error):
            return _database_unavailable(error)
        raise error  # a bug: let Flask log it and answer 500


# errors any API operation may answer besides those its view documents
_BODY_ERRORS = {
    "400": "the request body is not valid JSON (or not a valid multipart form)",
    "413": "the request body is larger than the server accepts (GALSEARCH_MAX_UPLOAD_MB)",
}
_UNAVAILABLE = ("the database cannot be reached right now (or the search bundle or survey "
                "this needs is not configured): retry after the Retry-After seconds")


def document_common_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Add to every API operation of the OpenAPI document the errors it can answer whatever its
    view does: 400 and 413 where it takes a body, 503 (database unavailable) everywhere."""
    error_ref = {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/HTTPError"}}}}
    for path, item in spec.get("paths", {}).items():
        if not path.startswith(API_PREFIX) or path in ("/api/openapi.json", "/api/docs"):
            continue
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            extra = dict(_BODY_ERRORS) if "requestBody" in operation else {}
            extra["503"] = _UNAVAILABLE
            for status, description in extra.items():
                responses.setdefault(status, {"description": description, **error_ref})
    return spec


def _api_rule_matches(error: MethodNotAllowed) -> bool:
    """Whether an API route matches the request's path (with another method)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in error.valid_methods or ():
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:
            continue
        if rule.rule.startswith(API_PREFIX):
            return True
    return False


def _database_unavailable(error: BaseException) -> Response:
    # the failed transaction must not be reused by the next request on this thread; the
    # rollback itself may fail on a dead connection, which the pool then discards
    try:
        db.session.rollback()
    except DBAPIError:
        log.debug("rollback on an unreachable database failed", exc_info=True)
    log.warning("database unavailable: %s", error)
    return error_response(
        503, "the database cannot be reached right now; retry in a few seconds",
        {"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )
