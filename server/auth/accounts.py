"""Creating and changing user accounts: one implementation for the API and the CLI."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from server.auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, hash_password
from server.extensions import db
from server.models import User
from server.models.users import USERNAME_PATTERN


class AccountError(ValueError):
    """A request about an account cannot be done; the message says why and what to do."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status the API answers with


def normalise_username(username: str) -> str:
    """Usernames are compared in lower case, so 'Alice' and 'alice' are one account."""
    return username.strip().lower()


def check_password(password: str) -> None:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise AccountError(f"a password needs {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} "
                           "characters")


def create_user(username: str, password: str, is_admin: bool = False) -> User:
    """Add a new active user to the session (the caller commits).

    Raises:
        AccountError: the username is malformed or taken (409), or the password too short.
    """
    username = normalise_username(username)
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise AccountError(f"username {username!r}: use 1-64 lower-case letters, digits, '.', "
                           "'_' and '-', starting with a letter or digit")
    check_password(password)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"a user named {username!r} already exists", status=409)
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin,
                is_active=True, session_version=1)
    db.session.add(user)
    return user


def set_password(user: User, password: str) -> None:
    """Replace ``user``'s password and end all their sessions."""
    check_password(password)
    user.password_hash = hash_password(password)
    user.session_version += 1


def update_flags(user: User, *, is_admin: bool | None = None,
                 is_active: bool | None = None) -> None:
    """Grant or withdraw administration, deactivate or reactivate, keeping one active admin.

    Raises:
        AccountError (409): the change would leave no active administrator.
    """
    losing_admin = user.is_admin and user.is_active and (is_admin is False or is_active is False)
    if losing_admin:
        others = db.session.scalar(select(func.count()).select_from(User).where(
            User.is_admin.is_(True), User.is_active.is_(True), User.id != user.id))
        if not others:
            raise AccountError(f"{user.username!r} is the last active administrator; make "
                               "someone else an administrator first", status=409)
    if is_admin is not None:
        user.is_admin = is_admin
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if not is_active:
            user.session_version += 1  # ends their cookie sessions at once
