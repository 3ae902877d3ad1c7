"""``/api/session``: sign in, see who you are, sign out, change your password."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from flask import g
from sqlalchemy import select

from server.auth.identity import SIGNED_IN, csrf_token, current_user, end_session, start_session
from server.auth.passwords import hash_password, needs_rehash, verify_password
from server.auth.throttle import (
    clear_account_failures,
    record_sign_in_failure,
    sign_in_retry_after,
)
from server.extensions import db
from server.models import User
from server.schemas.users import PasswordChangeIn, SessionOut, SignInIn

bp = APIBlueprint("session", __name__, url_prefix="/api/session", tag="Session")


def _session_body(user: User) -> dict:
    return {"user": user, "auth": g.auth, "csrf_token": csrf_token()}


@bp.post("")
@bp.input(SignInIn, arg_name="body")
@bp.output(SessionOut)
@bp.doc(responses={401: "wrong username or password, or a deactivated account",
                   429: "too many failed sign-ins to this account or from this address "
                        "recently: wait the Retry-After seconds"})
def sign_in(body: dict) -> dict:
    """Sign in

    Sets the session cookie (HttpOnly, SameSite=Lax) and returns the CSRF token that writes
    made with that cookie must send in the X-CSRF-Token header. After 10 failed sign-ins to an
    account (or 50 from one address) within 15 minutes, further attempts answer 429 with
    Retry-After until the oldest of them is 15 minutes old.
    """
    username = body["username"]
    waiting = sign_in_retry_after(db.session, username)
    if waiting is not None:
        what, seconds = waiting
        db.session.rollback()
        whose = "to this account" if what == "account" else "from your address"
        abort(429, f"too many failed sign-ins {whose}: try again in {seconds} s",
              headers={"Retry-After": str(seconds)})
    user = db.session.scalar(select(User).where(User.username == username))
    if not verify_password(user.password_hash if user else None, body["password"]) \
            or not user.is_active:
        record_sign_in_failure(db.session, username)
        db.session.commit()
        abort(401, "wrong username or password (or the account is deactivated: ask an "
                   "administrator)")
    clear_account_failures(db.session, username)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(body["password"])
    g.user, g.auth = user, "session"
    start_session(user)
    db.session.commit()
    return _session_body(user)


@bp.get("")
@bp.output(SessionOut)
@bp.doc(security=SIGNED_IN)
def who_am_i() -> dict:
    """The signed-in user

    For the session cookie, also the CSRF token (a reloaded page gets it here).
    """
    return _session_body(current_user())


@bp.delete("")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN)
def sign_out() -> tuple[str, int]:
    """Sign out

    Ends the cookie session. API tokens are revoked with DELETE /api/tokens/{id} instead.
    """
    current_user()
    end_session()
    return "", 204


@bp.post("/password")
@bp.input(PasswordChangeIn, arg_name="body")
@bp.output(SessionOut)
@bp.doc(security=SIGNED_IN, responses={403: "the current password is wrong"})
def change_password(body: dict) -> dict:
    """Change your password

    Ends your other sessions; this one continues with a new CSRF token.
    """
    user = current_user()
    if not verify_password(user.password_hash, body["current_password"]):
        abort(403, "the current password is wrong")
    user.password_hash = hash_password(body["new_password"])
    user.session_version += 1
    if g.auth == "session":
        start_session(user)
    db.session.commit()
    return _session_body(user)
