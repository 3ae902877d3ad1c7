"""Who is calling, resolved once per API request, and the CSRF check for cookie sessions.

Two ways in:

- a session cookie (the web app), set by ``POST /api/session``: Flask's signed cookie holds the
  user id, the user's ``session_version`` at sign-in and a random CSRF token. The cookie is
  HttpOnly and SameSite=Lax; every write (POST, PUT, PATCH, DELETE) made with it must repeat the
  CSRF token in an ``X-CSRF-Token`` header, which a page on another site cannot read or send.
- a bearer token (scripts, notebooks): ``Authorization: Bearer gst_...``. No cookie is involved,
  so no CSRF token is needed. A request that sends an Authorization header is judged by it alone.

:func:`load_identity` runs before every ``/api`` request and sets ``g.user`` (or None) and
``g.auth`` (``"session"``, ``"token"`` or None). Views then call :func:`current_user` or
:func:`require_admin`, or :func:`server.auth.access.campaign_access`.

A request to a campaign's URL (``/api/campaigns/<campaign_id>/...``: label writes, candidate
pages, the busiest requests) made with the session cookie reads the user, the campaign and the
user's membership in one query, kept in ``g.membership`` for
:func:`server.auth.access.campaign_access`: one round trip less per request.

Cutout images (``GET /api/objects/<id>/cutout.png``, about one per label written; every
signed-in user may see every image) skip the database when this process checked the same
session (user id and session version) against it in the last :data:`RECHECK_IMAGES_S`
seconds: they were a third of the server's CPU under load, most of it this lookup. Ending a
user's sessions (deactivation, a new password, "sign out everywhere") raises their
``session_version``, which forgets them here at once; in the other web processes a session
that was just ended may still fetch images for at most those seconds. Everything else is
checked against the database at every request.

A label write (``PUT /api/campaigns/<id>/labels/<object>``, :data:`DEFERRED_ENDPOINTS`) with
the session cookie and its CSRF token is not looked up here at all: ``g.auth`` is
``"deferred"``, and the view's own statement checks the user, the session version and the
membership while it writes (:mod:`server.labeling_fast`). When that statement writes nothing,
:func:`current_user` loads the user then, and the request is decided as any other.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apiflask import abort
from flask import Flask, Request, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature
from sqlalchemy import Integer, and_, bindparam, event, select

from server.auth.tokens import authenticate_token
from server.config import SESSION_COOKIE_NAME
from server.database import WRITE_METHODS, utcnow
from server.errors import API_PREFIX
from server.extensions import db
from server.models import Campaign, Membership, Role, User

CSRF_HEADER = "X-CSRF-Token"
# the OpenAPI security requirement of signed-in endpoints: either scheme will do
SIGNED_IN = ["BearerAuth", "SessionCookie"]
SECURITY_SCHEMES = {
    "BearerAuth": {
        "type": "http", "scheme": "bearer",
        "description": "an API token (POST /api/tokens), for scripts and notebooks",
    },
    "SessionCookie": {
        "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE_NAME,
        "description": "the session cookie set by POST /api/session; writes also need the "
                       "X-CSRF-Token header (the csrf_token of the session)",
    },
}
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="galsearch"'}
# endpoints a cookie may write to without the CSRF token: signing in replaces the session
CSRF_EXEMPT_ENDPOINTS = frozenset({"session.sign_in"})
SQL_INTEGER_MAX = 2**63 - 1  # the largest id a database integer column holds
# endpoints that trust a session this process checked in the last RECHECK_IMAGES_S seconds
# image responses (48 to a page): never given a cookie (the session's, the image pass)
IMAGE_ENDPOINTS = frozenset({"objects.cutout"})
RECENT_SESSION_ENDPOINTS = IMAGE_ENDPOINTS
RECHECK_IMAGES_S = 10.0
# endpoints whose cookie-session identity is checked only when it is needed (``g.auth ==
# "deferred"``): a first label write checks it inside its own statement (server.labeling_fast)
DEFERRED_ENDPOINTS = frozenset({"labels.put"})
# a session cookie older than this is re-signed and re-sent (SessionCookies)
SESSION_REFRESH_AFTER = timedelta(hours=1)




@dataclass(frozen=True)
class CampaignMembership:
    """What :func:`load_identity` read about the URL's campaign along with the user
    (``g.membership``): the campaign (None: there is none of that id) and the user's role in
    it (None: not a member)."""

    campaign_id: int
    user_id: int
    campaign: Campaign | None
    role: Role | None


@functools.cache
def _user_with_membership():
    """The user, the campaign and the user's role in it, by ``user_id`` and ``campaign_id``
    (built once: SQLAlchemy reuses its compiled form)."""
    campaign_id = bindparam("campaign_id", type_=Integer)
    return (select(User, Campaign, Membership.role)
            .select_from(User)
            .outerjoin(Campaign, Campaign.id == campaign_id)
            .outerjoin(Membership, and_(Membership.campaign_id == Campaign.id,
                                        Membership.user_id == User.id))
            .where(User.id == bindparam("user_id", type_=Integer)))


def start_session(user: User) -> str:
    """Start a cookie session for ``user``; returns its CSRF token."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["ver"] = user.session_version
    session["csrf"] = secrets.token_urlsafe(32)
    user.last_sign_in_at = utcnow()
    return session["csrf"]


def end_session() -> None:
    session.clear()


def csrf_token() -> str | None:
    """The CSRF token of the current cookie session (None for token or anonymous callers)."""
    return session.get("csrf") if g.get("auth") == "session" else None


class SignedSession(SecureCookieSession):
    """A cookie session that knows when its cookie was signed (None: a new session)."""

    signed_at: datetime | None = None


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie sessions (``PERMANENT_SESSION_LIFETIME`` after the last refresh),
    re-signed and re-sent only when the session changed or its cookie is older than
    :data:`SESSION_REFRESH_AFTER`, and never on image responses.

    Flask's ``SESSION_REFRESH_EACH_REQUEST`` re-signs the cookie on every response: about 6%
    of the CPU of a label write in py-spy, and a page of 48 cutouts would send the same cookie 48
    times. The session still expires 14 days after the last use, give or take
    :data:`SESSION_REFRESH_AFTER`.
    """

    session_class = SignedSession

    def open_session(self, app: Flask, request: Request) -> SignedSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        try:
            data, signed_at = serializer.loads(
                value, max_age=int(app.permanent_session_lifetime.total_seconds()),
                return_timestamp=True)
        except BadSignature:  # tampered with, expired, or signed with another key: a new one
            return self.session_class()
        opened = self.session_class(data)
        opened.signed_at = signed_at
        return opened

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        if request.endpoint in IMAGE_ENDPOINTS:
            return False
        signed_at = getattr(session, "signed_at", None)
        return signed_at is None or datetime.now(UTC) - signed_at >= SESSION_REFRESH_AFTER


class _RecentSessions:
    """Sessions (user id, session version) this process found valid in the database, and when."""

    def __init__(self) -> None:
        self._checked: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()

    def add(self, user_id: int, version: int) -> None:
        with self._lock:
            if len(self._checked) > 100_000:  # users come and go: start afresh now and then
                self._checked.clear()
            self._checked[user_id, version] = time.monotonic()

    def valid(self, user_id: object, version: object) -> bool:
        checked = self._checked.get((user_id, version))  # type: ignore[index]
        return checked is not None and time.monotonic() - checked < RECHECK_IMAGES_S

    def forget(self, user_id: int) -> None:
        with self._lock:
            for key in [key for key in self._checked if key[0] == user_id]:
                del self._checked[key]


recent_sessions = _RecentSessions()


@event.listens_for(User.session_version, "set")
def _sessions_ended(user: User, value: int, old: object, initiator: object) -> None:
    """A new session version ends the user's sessions: this process forgets them at once."""
    if user.id is not None:
        recent_sessions.forget(user.id)


def _url_campaign_id() -> int | None:
    campaign_id = (request.view_args or {}).get("campaign_id")
    if isinstance(campaign_id, int) and 0 <= campaign_id <= SQL_INTEGER_MAX:
        return campaign_id
    return None


def _user_from_session() -> User | None:
    uid = session.get("uid")
    if uid is None:
        return None
    campaign_id = _url_campaign_id()
    if campaign_id is None:
        user = db.session.get(User, uid)
    else:
        row = db.session.execute(_user_with_membership(),
                                 {"user_id": uid, "campaign_id": campaign_id}).first()
        user = None if row is None else row.User
        if user is not None:
            g.membership = CampaignMembership(campaign_id, user.id, row.Campaign, row.role)
    if user is None or not user.is_active or session.get("ver") != user.session_version:
        # deactivated, password reset, or a cookie from another database: sign out quietly
        session.clear()
        return None
    recent_sessions.add(user.id, user.session_version)
    return user


def session_checked(user_id: int, version: int) -> None:
    """Record that the database has just confirmed this request's cookie session (user id and
    session version) without loading the user: ``g.auth`` becomes ``"session"``."""
    g.auth = "session"
    recent_sessions.add(user_id, version)


def _csrf_sent() -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), session.get("csrf", "").encode())


def load_identity() -> None:
    """Set ``g.user`` and ``g.auth`` for an ``/api`` request; refuse bad credentials (401) and
    cookie writes without the CSRF token (403).

    On :data:`DEFERRED_ENDPOINTS`, a signed session cookie sent with its CSRF token is not
    checked against the database here: ``g.auth`` is ``"deferred"`` and ``g.user`` None until
    :func:`current_user` loads the user (or the view checks the session itself and calls
    :func:`session_checked`). Every other case is decided here as on any endpoint."""
    g.user, g.auth, g.token, g.membership = None, None, None, None
    if not request.path.startswith(API_PREFIX):
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            abort(401, "the Authorization header must be 'Bearer <token>' with an API token "
                       "from POST /api/tokens", headers=_UNAUTHORIZED_HEADERS)
        found = authenticate_token(secret.strip())
        if found is None:
            abort(401, "the API token is not valid: it is unknown, revoked, or its user is "
                       "deactivated. Create a new one with POST /api/tokens.",
                  headers={"WWW-Authenticate": 'Bearer realm="galsearch", error="invalid_token"'})
        g.user, g.token = found
        g.auth = "token"
        return
    if (request.endpoint in RECENT_SESSION_ENDPOINTS and request.method == "GET"
            and recent_sessions.valid(session.get("uid"), session.get("ver"))):
        g.auth = "session"  # checked moments ago (module docstring); g.user stays unloaded
        return
    if (request.endpoint in DEFERRED_ENDPOINTS and session.get("uid") is not None
            and _csrf_sent()):
        g.auth = "deferred"
        return
    user = _user_from_session()
    if user is None:
        return
    g.user, g.auth = user, "session"
    if (request.method in WRITE_METHODS and request.endpoint not in CSRF_EXEMPT_ENDPOINTS
            and not _csrf_sent()):
        abort(403, f"missing or wrong {CSRF_HEADER} header: writes made with the session "
                   "cookie must send the csrf_token returned by POST /api/session or "
                   "GET /api/session")


def current_user() -> User:
    """The signed-in user, or a 401 error."""
    user = g.get("user")
    if user is None and g.get("auth") == "deferred":
        user = _user_from_session()
        g.user, g.auth = user, None if user is None else "session"
    if user is None:
        abort(401, "sign in first (POST /api/session) or send an API token "
                   "(Authorization: Bearer ...)", headers=_UNAUTHORIZED_HEADERS)
    return user


def require_signed_in() -> None:
    """Refuse (401) an anonymous caller, without loading the user when the session was
    checked moments ago (:data:`RECENT_SESSION_ENDPOINTS`)."""
    if g.get("user") is None and g.get("auth") != "session":
        current_user()


def require_admin() -> User:
    """The signed-in user if they are an administrator, or a 401/403 error."""
    user = current_user()
    if not user.is_admin:
        abort(403, "only administrators may do this")
    return user
