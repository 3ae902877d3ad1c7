"""Password hashing with argon2id (argon2-cffi).

The parameters come from the app's ``PASSWORD_HASH_PARAMETERS`` (an :class:`argon2.Parameters`,
by default RFC 9106's low-memory profile: 64 MiB, 3 passes; the test suite uses argon2-cffi's
cheapest profile so that creating users costs nothing). Hashes are PHC strings carrying their
own parameters, so raising the cost later needs no migration: sign-in stores a fresh hash when
:func:`needs_rehash` says the stored one is weaker than the current setting.
"""

from __future__ import annotations

from dataclasses import astuple
from functools import cache

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024  # bounds the hashing work one request can ask for
DEFAULT_PARAMETERS = profiles.RFC_9106_LOW_MEMORY


@cache
def _hasher(parameters: tuple) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher.from_parameters(Parameters(*parameters))
    # verified against when the user does not exist, so that both cases take the same time
    return hasher, hasher.hash("galsearch: no such user")


def _current() -> tuple[PasswordHasher, str]:
    parameters = current_app.config.get("PASSWORD_HASH_PARAMETERS", DEFAULT_PARAMETERS)
    return _hasher(astuple(parameters))  # a tuple: Parameters is not hashable


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (a PHC string, salt and parameters included)."""
    return _current()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; ``None`` (no such user) never matches."""
    hasher, dummy = _current()
    try:
        hasher.verify(password_hash or dummy, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    return _current()[0].check_needs_rehash(password_hash)
