"""Security headers on every response, the web app's pages and the API alike.

- ``Content-Security-Policy``: the built app (``server/static/app``) is one module script, one
  stylesheet and same-origin images (cutout PNGs from ``/api``), so the policy allows only
  ``'self'``: no inline script or style, no ``eval``, no ``data:`` or other origin (the browser
  tests, ``tests/e2e``, fail on any violation of it). Svelte sets styles through the CSSOM,
  which ``style-src 'self'`` permits. ``frame-ancestors
  'none'`` keeps every page out of other sites' frames (clickjacking), ``form-action 'self'``,
  ``base-uri 'none'`` and ``object-src 'none'`` close the remaining injection routes.
  The one exception is the API's interactive documentation (``/api/docs``): APIFlask's Swagger
  UI page loads its script and styles from ``cdn.jsdelivr.net`` and starts them with an inline
  script, so that page alone gets a policy that allows them.
- ``X-Frame-Options: DENY`` (the same as ``frame-ancestors`` for older browsers),
  ``X-Content-Type-Options: nosniff`` (an uploaded or exported file is never run as a script),
  ``Referrer-Policy: same-origin`` (campaign URLs do not leak to the sky viewer's site),
  ``Cross-Origin-Opener-Policy: same-origin`` and a ``Permissions-Policy`` that turns off the
  devices the app never uses.
- ``Strict-Transport-Security`` when the session cookie is HTTPS-only (``SESSION_COOKIE_SECURE``,
  on in production), that is, when the app is served over HTTPS.
- API responses (JSON, cutouts, export files) carry ``Cache-Control: no-store`` unless the view
  chose a caching policy itself (cutouts are cached privately, the app's assets publicly).

A header a view set itself is kept.
"""

from __future__ import annotations

from apiflask import APIFlask
from flask import Response, current_app, request

APP_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = "; ".join((
    "default-src 'self'",
    f"script-src 'self' {DOCS_CDN} 'unsafe-inline' 'unsafe-eval'",
    f"style-src 'self' {DOCS_CDN} 'unsafe-inline'",
    f"img-src 'self' data: {DOCS_CDN} https://apiflask.com",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
DOCS_PATH = "/api/docs"
HSTS = "max-age=31536000; includeSubDomains"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def add_security_headers(response: Response) -> Response:
    """The ``after_request`` hook of the module docstring."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy",
                       DOCS_CSP if request.path == DOCS_PATH else APP_CSP)
    for name, value in COMMON_HEADERS.items():
        headers.setdefault(name, value)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.path.startswith("/api/") and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


def register_security_headers(app: APIFlask) -> None:
    app.after_request(add_security_headers)
