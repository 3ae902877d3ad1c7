"""Schemas of users, sessions and API tokens."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, Nested, String
from apiflask.validators import Length, Regexp
from marshmallow import pre_load

from server.auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from server.models.users import TOKEN_NAME_MAX, USERNAME_MAX, USERNAME_PATTERN

_password = Length(PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH,
                   error=f"a password needs {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} "
                         "characters")


def username_field(**kwargs) -> String:
    return String(
        validate=[Length(1, USERNAME_MAX), Regexp(
            USERNAME_PATTERN,
            error="use lower-case letters, digits, '.', '_' and '-', starting with a letter "
                  "or digit")],
        metadata={"description": "lower-case letters, digits, '.', '_', '-' (sign-in is "
                                 "case-insensitive)", "example": "alice"},
        **kwargs,
    )


class _LowerUsername(Schema):
    @pre_load
    def _lower(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("username"), str):
            data = {**data, "username": data["username"].strip().lower()}
        return data


class UserOut(Schema):
    id = Integer(required=True)
    username = String(required=True)
    is_admin = Boolean(required=True)
    is_active = Boolean(required=True)
    created_at = DateTime(required=True)
    last_sign_in_at = DateTime(allow_none=True)


class UserCreateIn(_LowerUsername):
    username = username_field(required=True)
    password = String(required=True, load_only=True, validate=_password)
    is_admin = Boolean(load_default=False)


class UserUpdateIn(Schema):
    is_admin = Boolean(metadata={"description": "grant or withdraw administration"})
    is_active = Boolean(metadata={"description": "false deactivates: sessions and tokens stop "
                                                 "working, labels are kept"})
    password = String(load_only=True, validate=_password,
                      metadata={"description": "a new password (ends the user's sessions)"})


class SignInIn(_LowerUsername):
    username = String(required=True, validate=Length(1, USERNAME_MAX))
    password = String(required=True, load_only=True, validate=Length(1, PASSWORD_MAX_LENGTH))


class SessionUser(UserOut):
    """The signed-in user (a class of its own: a schema is either nested or used directly, so
    that APIFlask and apispec register each under one name)."""


class SessionOut(Schema):
    user = Nested(SessionUser, required=True)
    auth = String(required=True, metadata={"description": "'session' (cookie) or 'token'"})
    csrf_token = String(allow_none=True, metadata={
        "description": "send it as X-CSRF-Token with every write made with the session "
                       "cookie; null for API-token callers"})


class PasswordChangeIn(Schema):
    current_password = String(required=True, load_only=True,
                              validate=Length(1, PASSWORD_MAX_LENGTH))
    new_password = String(required=True, load_only=True, validate=_password)


class TokenIn(Schema):
    name = String(required=True, validate=Length(1, TOKEN_NAME_MAX),
                  metadata={"example": "notebook on my laptop"})


class TokenOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    prefix = String(required=True, metadata={"description": "the token's first characters"})
    created_at = DateTime(required=True)
    last_used_at = DateTime(allow_none=True, metadata={"description": "to 5 minutes"})
    revoked_at = DateTime(allow_none=True)


class TokenCreatedOut(TokenOut):
    token = String(required=True, metadata={
        "description": "the secret, shown only now: send it as 'Authorization: Bearer <token>'"})
