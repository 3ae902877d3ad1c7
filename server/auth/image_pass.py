"""The image pass: a short-lived cookie that lets a front server (nginx) hand out cached cutouts.

A page of candidates shows 48 cutout images, so images are most of a labeler's requests. Once
rendered, a cutout is a file in the disk cache (:mod:`server.cutouts`), and sending it through
Python costs far more than the file: the session check, the routing, gunicorn. With nginx in
front (``galsearch nginx-config``, :mod:`server.front`) the file is sent by nginx itself when
the request carries a valid image pass, a cookie the app sets beside the session cookie::

    galsearch_images=<user id>.<expires: unix seconds>.<base64url MD5("<expires> <user id> <key>")>

That is the format of nginx's ``secure_link`` module, which checks it without calling the app.
The key is derived from ``SECRET_KEY`` (HMAC-SHA256), so nginx's configuration never holds the
secret that signs sessions. A request without a valid pass, or for a cutout not rendered yet,
goes to the app, which answers exactly as without nginx (the session decides).

The pass lasts ``GALSEARCH_IMAGE_PASS_S`` seconds (600 by default:
:data:`server.config.IMAGE_PASS_LIFETIME_S`) and is renewed, on any API response to a signed-in
cookie session but an image, once half of that has passed; signing out deletes it.
So a session that was ended elsewhere (deactivation, a new password, "sign out everywhere")
may still fetch *cached* images through nginx for at most that long. Every other request, and
every image behind the app, is checked as before. Every signed-in user may see every cutout, so
the pass names the user only for the audit trail of nginx's access log.

MD5 is what ``secure_link`` offers. Here the secret comes last (no length extension) and every
signed string is chosen by the server, so a forger would need a second preimage, not a
collision; and a forged pass would show only cutouts that every signed-in user may see.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from flask import Flask, Response, current_app, g, request, session

from server.auth.identity import IMAGE_ENDPOINTS

IMAGE_PASS_COOKIE = "galsearch_images"


def image_pass_key(secret_key: str | bytes) -> str:
    """The key of the image pass (32 hex digits), derived from the app's ``SECRET_KEY``."""
    secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(secret, b"galsearch image pass v1", hashlib.sha256).hexdigest()[:32]


def _digest(user_id: int, expires: int, key: str) -> str:
    raw = hashlib.md5(f"{expires} {user_id} {key}".encode(), usedforsecurity=True).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_image_pass(user_id: int, expires: int, key: str) -> str:
    """The cookie value of a pass for ``user_id`` valid until ``expires`` (unix seconds)."""
    return f"{user_id}.{expires}.{_digest(user_id, expires, key)}"


def image_pass_expires(value: str | None, user_id: int, key: str) -> int | None:
    """When the pass ``value`` of ``user_id`` expires (None: no pass, or not a valid one)."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    if int(parts[0]) != user_id:
        return None
    expires = int(parts[1])
    if not hmac.compare_digest(parts[2], _digest(user_id, expires, key)):
        return None
    return expires


def renew_image_pass(response: Response) -> Response:
    """The ``after_request`` hook: set, renew or delete the pass (see the module docstring)."""
    if request.endpoint in IMAGE_ENDPOINTS or not request.path.startswith("/api/"):
        return response
    lifetime = current_app.config["IMAGE_PASS_LIFETIME_S"]
    sent = request.cookies.get(IMAGE_PASS_COOKIE)
    if g.get("auth") == "deferred":  # a request that never checked its session: as it was
        return response
    # "session": the database confirmed the session's user id (load_identity, or the request's
    # own statement: server.labeling_fast); reading g.user.id instead would reload the user
    # after a commit (an expired ORM object): a query per write
    user_id = session.get("uid")
    signed_in = lifetime > 0 and g.get("auth") == "session" and isinstance(user_id, int)
    if not signed_in:
        if sent is not None and g.get("auth") != "token":  # signed out, or not valid
            response.delete_cookie(IMAGE_PASS_COOKIE, path="/",
                                   secure=current_app.config["SESSION_COOKIE_SECURE"],
                                   httponly=True, samesite="Lax")
        return response
    key = current_app.config["IMAGE_PASS_KEY"]
    now = int(time.time())
    expires = image_pass_expires(sent, user_id, key)
    if expires is not None and expires - now > lifetime / 2:
        return response
    expires = now + lifetime
    response.set_cookie(IMAGE_PASS_COOKIE, make_image_pass(user_id, expires, key),
                        max_age=lifetime, path="/", httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def register_image_pass(app: Flask) -> None:
    """Derive the pass's key from ``SECRET_KEY`` and set the pass on API responses."""
    app.config["IMAGE_PASS_KEY"] = image_pass_key(app.config["SECRET_KEY"])
    app.after_request(renew_image_pass)
