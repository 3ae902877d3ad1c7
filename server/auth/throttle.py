"""Rate-limited sign-in: failed attempts are counted per account and per client address.

``POST /api/session`` first asks :func:`sign_in_retry_after`: when the account has had
``SIGN_IN_ACCOUNT_LIMIT`` failed sign-ins (default 10) within the last ``SIGN_IN_WINDOW_S``
seconds (900), or the client address ``SIGN_IN_IP_LIMIT`` (50), the request is refused with
429 and ``Retry-After`` (the seconds until the oldest counted failure leaves the window),
before the password is even hashed — so a guesser gets at most ten guesses per account and
quarter-hour and cannot load the CPU with argon2 either. A correct password then gets 429 too.
A failure counts against both keys (:func:`record_sign_in_failure`); a successful sign-in
clears its account's count (:func:`clear_account_failures`), not its address's.

The counts live in the SQL table ``sign_in_failures`` (:mod:`server.models.security`), so every
gunicorn worker and every app server sees the same ones. Counting per account alone would let
anyone lock a known user out for the window; the limit is therefore generous enough for
typos, and the per-address limit stops one client from trying many accounts. Behind a
reverse proxy, set ``GALSEARCH_PROXY_COUNT`` so that the address is the client's
(``X-Forwarded-For``), not the proxy's.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import current_app, request
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.database import utcnow
from server.models.security import THROTTLE_KEY_MAX, SignInFailure


def account_key(username: str) -> str:
    return f"account:{username}"[:THROTTLE_KEY_MAX]


def address_key(address: str | None) -> str:
    return f"ip:{address or 'unknown'}"[:THROTTLE_KEY_MAX]


def client_address() -> str | None:
    return request.remote_addr


def _limits() -> tuple[tuple[str, int], tuple[str, int]]:
    config = current_app.config
    return (("account", int(config["SIGN_IN_ACCOUNT_LIMIT"])),
            ("ip", int(config["SIGN_IN_IP_LIMIT"])))


def _window() -> timedelta:
    return timedelta(seconds=float(current_app.config["SIGN_IN_WINDOW_S"]))


def _retry_after_for(session: Session, key: str, limit: int, now: datetime) -> int | None:
    """Seconds until ``key`` has fewer than ``limit`` failures in the window, or None when it
    has fewer now."""
    since = now - _window()
    recent = SignInFailure.key == key, SignInFailure.failed_at > since
    count = session.scalar(select(func.count()).select_from(SignInFailure).where(*recent))
    if count < limit:
        return None
    # once the (count - limit + 1) oldest failures have left the window, one more try is allowed
    freeing = session.scalar(select(SignInFailure.failed_at).where(*recent)
                             .order_by(SignInFailure.failed_at).offset(count - limit).limit(1))
    return max(1, math.ceil((freeing + _window() - now).total_seconds()))


def sign_in_retry_after(session: Session, username: str) -> tuple[str, int] | None:
    """``(what, seconds)`` when a sign-in to ``username`` from this client must wait
    (``what``: "account" or "ip"), else None."""
    now = utcnow()
    keys = {"account": account_key(username), "ip": address_key(client_address())}
    for what, limit in _limits():
        if limit <= 0:
            continue  # 0 turns that limit off
        wait = _retry_after_for(session, keys[what], limit, now)
        if wait is not None:
            return what, wait
    return None


def record_sign_in_failure(session: Session, username: str) -> None:
    """Count a failed sign-in against the account and the client address, and forget the
    failures that have left the window (the caller commits)."""
    now = utcnow()
    session.execute(delete(SignInFailure).where(SignInFailure.failed_at <= now - _window()))
    session.add_all([SignInFailure(key=account_key(username), failed_at=now),
                     SignInFailure(key=address_key(client_address()), failed_at=now)])


def clear_account_failures(session: Session, username: str) -> None:
    """A successful sign-in: the account's failures no longer count (the caller commits)."""
    session.execute(delete(SignInFailure).where(SignInFailure.key == account_key(username)))
