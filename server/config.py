"""The app's configuration, read from the environment.

| variable | meaning | default |
|---|---|---|
| ``GALSEARCH_ENV`` | ``development`` or ``production`` | ``development`` (gunicorn's config sets ``production``) |
| ``DATABASE_URL`` | SQLAlchemy URL; ``postgresql://`` uses psycopg 3 | SQLite file ``galsearch.db`` in the instance folder |
| ``SECRET_KEY`` | signs session cookies | development: generated once into ``instance/secret_key``; production: required |
| ``GALSEARCH_BUNDLE`` | the search bundle folder | none (the bundle-backed endpoints answer 503) |
| ``GALSEARCH_SURVEY`` | the survey folder (pixels and catalog) | none (cutouts answer 503) |
| ``GALSEARCH_CUTOUT_CACHE_MB`` | size limit of the rendered-cutout cache in ``instance/cutouts`` (0: no cache) | 2048 |
| ``GALSEARCH_INSTANCE`` | the instance folder (database, secret key, caches) | ``instance/`` beside the package |
| ``GALSEARCH_COOKIE_SECURE`` | send the session cookie over HTTPS only (``1``/``0``) | ``1`` in production, ``0`` in development |
| ``GALSEARCH_MAX_UPLOAD_MB`` | largest request body | 16 |
| ``GALSEARCH_EXPORTS_DIR`` | where export files are written (the web server and the workers must share it) | ``exports`` in the instance folder |
| ``GALSEARCH_JOB_LEASE_S`` | how long a worker's claim on a job lasts without a heartbeat (renewed every quarter of it) | 30 |
| ``GALSEARCH_PROBE_DEBOUNCE_LABELS`` | label changes after which a campaign's probe is retrained at once | 8 |
| ``GALSEARCH_PROBE_DEBOUNCE_S`` | otherwise, seconds after the campaign's last label change | 1.5 |
| ``GALSEARCH_PROBE_UNLABELED`` | unlabeled objects drawn as weak negatives for each probe | 2000 |
| ``GALSEARCH_SIGN_IN_ACCOUNT_LIMIT`` | failed sign-ins to one account within the window before 429 (0: no limit) | 10 |
| ``GALSEARCH_SIGN_IN_IP_LIMIT`` | failed sign-ins from one client address within the window before 429 (0: no limit) | 50 |
| ``GALSEARCH_SIGN_IN_WINDOW_S`` | the window of those counts, seconds | 900 |
| ``GALSEARCH_IMAGE_PASS_S`` | lifetime of the image pass, the cookie with which nginx sends cached cutouts itself (``server.auth.image_pass``; 0: none) | 600 |
| ``GALSEARCH_PROXY_COUNT`` | reverse proxies in front of the app whose ``X-Forwarded-For`` / ``-Proto`` are trusted | 0 |

The instance folder holds what belongs to one installation and is never committed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from ml.probe.data import DEFAULT_UNLABELED_COUNT

ENVIRONMENTS = ("development", "production")
SECRET_KEY_FILE = "secret_key"
DEFAULT_DATABASE_FILE = "galsearch.db"
SESSION_LIFETIME = timedelta(days=14)
SESSION_COOKIE_NAME = "galsearch_session"
IMAGE_PASS_LIFETIME_S = 600  # seconds (server.auth.image_pass)


class ConfigError(RuntimeError):
    """The environment does not describe a usable configuration; the message says how to fix it."""


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs (SQLAlchemy's default driver, psycopg2, is not installed).

    ``postgres://`` (Heroku-style) and ``postgresql://`` both become ``postgresql+psycopg://``;
    URLs naming a driver explicitly are kept.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a yes/no value: use 1 or 0")


def _megabytes(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a number of megabytes") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    try:
        value = float(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _secret_key(environment: str, instance_path: Path, env: Mapping[str, str]) -> str:
    key = env.get("SECRET_KEY", "")
    if key:
        return key
    if environment == "production":
        raise ConfigError(
            "SECRET_KEY is not set. In production it must be set, the same for every worker, "
            "and kept secret: for example export SECRET_KEY=$(python -c "
            "'import secrets; print(secrets.token_hex(32))')"
        )
    # development: one key per instance folder, kept across restarts so sessions survive
    path = instance_path / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def load_config(instance_path: Path, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Flask configuration for an app whose instance folder is ``instance_path``.

    Args:
        instance_path: where the default SQLite file and the development secret key live.
        env: the environment to read (``os.environ`` by default).
        overrides: Flask settings that win over the environment (tests, embedding); a
            ``SECRET_KEY`` here means none is read or generated.

    Raises:
        ConfigError: an unknown ``GALSEARCH_ENV``, a bad flag, or no ``SECRET_KEY`` in
            production.
    """
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    environment = env.get("GALSEARCH_ENV", "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"GALSEARCH_ENV={environment!r}: use one of {', '.join(ENVIRONMENTS)}")
    production = environment == "production"

    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url = f"sqlite:///{instance_path / DEFAULT_DATABASE_FILE}"
    cookie_secure = _flag(env.get("GALSEARCH_COOKIE_SECURE", "1" if production else "0"),
                          "GALSEARCH_COOKIE_SECURE")
    max_upload_mb = _megabytes(env, "GALSEARCH_MAX_UPLOAD_MB", 16)
    cutout_cache_mb = _megabytes(env, "GALSEARCH_CUTOUT_CACHE_MB", 2048)

    if "SECRET_KEY" not in overrides:
        overrides["SECRET_KEY"] = _secret_key(environment, instance_path, env)
    if "SQLALCHEMY_DATABASE_URI" in overrides:
        overrides["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
            str(overrides["SQLALCHEMY_DATABASE_URI"]))
    return {
        "GALSEARCH_ENV": environment,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # no pool_pre_ping: idle connections are checked instead (server/database.py)
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "BUNDLE_PATH": env.get("GALSEARCH_BUNDLE") or None,
        "SURVEY_PATH": env.get("GALSEARCH_SURVEY") or None,
        "CUTOUT_CACHE_DIR": str(instance_path / "cutouts"),
        "CUTOUT_CACHE_MAX_MB": cutout_cache_mb,
        # export files, one folder per campaign (server.exports.files)
        "EXPORTS_DIR": env.get("GALSEARCH_EXPORTS_DIR") or str(instance_path / "exports"),
        # run pending migrations when the app starts (off for `galsearch db ...`)
        "AUTO_UPGRADE_DATABASE": True,
        "MAX_CONTENT_LENGTH": int(max_upload_mb * 1024 * 1024),
        # background jobs and the probe (server.jobs, server.probe)
        "JOB_LEASE_S": _number(env, "GALSEARCH_JOB_LEASE_S", 30, 1),
        "PROBE_DEBOUNCE_LABELS": int(_number(env, "GALSEARCH_PROBE_DEBOUNCE_LABELS", 8, 1)),
        "PROBE_DEBOUNCE_S": _number(env, "GALSEARCH_PROBE_DEBOUNCE_S", 1.5, 0),
        "PROBE_UNLABELED": int(_number(env, "GALSEARCH_PROBE_UNLABELED",
                                       DEFAULT_UNLABELED_COUNT, 0)),
        # rate-limited sign-in (server.auth.throttle)
        "SIGN_IN_ACCOUNT_LIMIT": int(_number(env, "GALSEARCH_SIGN_IN_ACCOUNT_LIMIT", 10, 0)),
        "SIGN_IN_IP_LIMIT": int(_number(env, "GALSEARCH_SIGN_IN_IP_LIMIT", 50, 0)),
        "SIGN_IN_WINDOW_S": _number(env, "GALSEARCH_SIGN_IN_WINDOW_S", 900, 1),
        "PROXY_COUNT": int(_number(env, "GALSEARCH_PROXY_COUNT", 0, 0)),
        "IMAGE_PASS_LIFETIME_S": int(_number(env, "GALSEARCH_IMAGE_PASS_S",
                                             IMAGE_PASS_LIFETIME_S, 0)),
        "SESSION_COOKIE_NAME": SESSION_COOKIE_NAME,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": cookie_secure,
        "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME,
        **overrides,
    }
