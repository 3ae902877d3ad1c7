"""Configuration from the environment (server.config) and the app factory's use of it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.app import create_app
from server.config import ConfigError, load_config, normalise_database_url
from server.extensions import db


def test_defaults_use_sqlite_in_the_instance_folder(tmp_path):
    config = load_config(tmp_path, env={})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'galsearch.db'}"
    assert config["GALSEARCH_ENV"] == "development"
    assert config["BUNDLE_PATH"] is None
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert config["SURVEY_PATH"] is None
    assert config["CUTOUT_CACHE_DIR"] == str(tmp_path / "cutouts")


def test_development_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = load_config(tmp_path, env={})["SECRET_KEY"]
    second = load_config(tmp_path, env={})["SECRET_KEY"]
    assert first == second and len(first) == 64
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_config(tmp_path, env={"GALSEARCH_ENV": "production"})
    assert not (tmp_path / "secret_key").exists()
    config = load_config(tmp_path, env={"GALSEARCH_ENV": "production", "SECRET_KEY": "s3cret"})
    assert config["SECRET_KEY"] == "s3cret"
    assert config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(("env", "message"), [
    ({"GALSEARCH_ENV": "staging"}, "GALSEARCH_ENV"),
    ({"GALSEARCH_COOKIE_SECURE": "perhaps"}, "GALSEARCH_COOKIE_SECURE"),
    ({"GALSEARCH_MAX_UPLOAD_MB": "lots"}, "GALSEARCH_MAX_UPLOAD_MB"),
    ({"GALSEARCH_CUTOUT_CACHE_MB": "-1"}, "GALSEARCH_CUTOUT_CACHE_MB"),
])
def test_bad_environment_values_are_named(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env={"SECRET_KEY": "k", **env})


def test_environment_values_are_read(tmp_path):
    config = load_config(tmp_path, env={
        "DATABASE_URL": "postgres://u:p@db:5432/galsearch", "GALSEARCH_BUNDLE": "/data/bundle",
        "SECRET_KEY": "k", "GALSEARCH_COOKIE_SECURE": "1", "GALSEARCH_MAX_UPLOAD_MB": "2",
        "GALSEARCH_SURVEY": "/data/survey", "GALSEARCH_CUTOUT_CACHE_MB": "0"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db:5432/galsearch"
    assert config["BUNDLE_PATH"] == "/data/bundle"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["MAX_CONTENT_LENGTH"] == 2 * 1024 * 1024
    assert config["SURVEY_PATH"] == "/data/survey"
    assert config["CUTOUT_CACHE_MAX_MB"] == 0


def test_overrides_win_and_skip_the_secret_file(tmp_path):
    config = load_config(tmp_path, env={}, overrides={"SECRET_KEY": "given",
                                                      "SQLALCHEMY_DATABASE_URI": "postgresql:///x"})
    assert config["SECRET_KEY"] == "given"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg:///x"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://h/db", "postgresql+psycopg://h/db"),
    ("postgres://h/db", "postgresql+psycopg://h/db"),
    ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_database_url_driver(url, expected):
    assert normalise_database_url(url) == expected


def test_create_app_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GALSEARCH_INSTANCE", str(tmp_path / "inst"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("GALSEARCH_ENV", raising=False)
    app = create_app()
    assert Path(app.instance_path) == tmp_path / "inst"
    assert (tmp_path / "inst" / "galsearch.db").exists()
    assert (tmp_path / "inst" / "secret_key").exists()
    assert app.test_client().get("/api/openapi.json").status_code == 200
    with app.app_context():
        db.engine.dispose()
