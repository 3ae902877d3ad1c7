"""Fixtures of the server tests: one app per database backend, clients signed in as people.

Every API test runs on SQLite and on PostgreSQL (``TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``). Other people run tests on the same server at
the same time, so each test session creates a database of its own
(``galsearch_test_<pid>_<random>``) from that URL and drops it at the end. Without a reachable
PostgreSQL the PostgreSQL half is skipped, except when ``CI=true``, where it fails.

Each backend's app is built once per session (which migrates its database); between tests
every table is emptied, which is much faster than migrating again.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import torch
from apiflask import APIFlask
from argon2 import profiles
from flask.testing import FlaskClient
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from ml.encoder import Encoder
from ml.index import build_bundle
from ml.index.cli import survey_mag_r
from ml.survey import Survey
from ml.train.config import TrainConfig
from ml.train.loop import train
from server.app import create_app
from server.auth.accounts import create_user
from server.auth.tokens import create_token
from server.extensions import db
from server.models import Campaign, Membership, Role, User

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD_SUFFIX = "-password"  # every test user's password is <name>-password


def app_config(database_url: str, **extra: Any) -> dict[str, Any]:
    """The settings every test app gets: testing mode, a fixed key, cheap password hashing."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PASSWORD_HASH_PARAMETERS": profiles.CHEAPEST,
        **extra,
    }


# -- PostgreSQL: a database of our own per session ----------------------------------------------
@dataclass
class PostgresServer:
    """The PostgreSQL server of TEST_POSTGRES_URL; creates and drops scratch databases."""

    admin_url: str
    created: list[str] = field(default_factory=list)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"galsearch_test_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
            # a scratch database: commits need not wait for the disk (tests commit a lot)
            connection.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
        self.created.append(name)
        return _with_database(self.admin_url, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {url} is not reachable ({error}); set TEST_POSTGRES_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL is required)")
        pytest.skip(message)
    server = PostgresServer(url)
    try:
        yield server
    finally:
        server.drop_all()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend (for migration tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("postgres").create_database()


# -- a tiny survey, model and search bundle -----------------------------------------------------
# the tiny survey writer lives with the training tests: one writer for every suite
_spec = importlib.util.spec_from_file_location(
    "tiny_survey", Path(__file__).parents[1] / "ml" / "train" / "tiny_survey.py")
tiny_survey = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_survey)
SURVEY_OBJECTS = 48


@pytest.fixture(scope="session")
def survey_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 objects (blobs and rings) of 32 x 32 px."""
    return tiny_survey.write_tiny_survey(tmp_path_factory.mktemp("survey") / "survey",
                                         n=SURVEY_OBJECTS)


@pytest.fixture(scope="session")
def bundle_path(survey_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search bundle of the tiny survey, made by a real (2-step, so untrained in effect)
    model whose checkpoint it carries, so that uploaded cutouts can be embedded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = tmp_path_factory.mktemp("run")
        train(TrainConfig.from_dict(dict(
            survey=str(survey_path), out_dir=str(run), arch="resnet10", width=8,
            small_stem=True, queue_size=16, batch_size=8, bn_groups=2, max_steps=2,
            num_workers=0, threads=1, progress=False, augment={"crop": 24, "out_size": 16})))
        encoder = Encoder.from_checkpoint(run / "release.pt")
        with Survey(survey_path) as survey:
            vectors = encoder.embed(survey.read_images(np.arange(survey.n)))["prehead"]
            return build_bundle(tmp_path_factory.mktemp("bundle") / "bundle", vectors,
                                survey_mag_r(survey), survey.path, survey.fingerprint(),
                                "prehead", checkpoint=run / "release.pt", k=10,
                                mag_window=0.5, progress=False)
    finally:
        torch.set_num_threads(threads)


# -- the app, per backend ----------------------------------------------------------------------
@pytest.fixture(scope="session", params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        bundle_path: Path) -> APIFlask:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'api.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    app = create_app(app_config(url, BUNDLE_PATH=str(bundle_path),
                                CUTOUT_CACHE_DIR=str(tmp_path_factory.mktemp("cutouts")),
                                EXPORTS_DIR=str(tmp_path_factory.mktemp("exports"))))
    yield app
    with app.app_context():
        db.engine.dispose()


def empty_tables(app: APIFlask) -> None:
    """Delete every row of every table (children first)."""
    with app.app_context():
        db.session.remove()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table after each test that used the shared app."""
    yield
    if "app" in request.fixturenames:
        empty_tables(request.getfixturevalue("app"))


# -- clients -----------------------------------------------------------------------------------
class ApiClient:
    """A test client that sends what the caller would: the CSRF header of its cookie session,
    or its bearer token."""

    def __init__(self, client: FlaskClient, csrf: str | None = None,
                 token: str | None = None) -> None:
        self.client, self.csrf, self.token = client, csrf, token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.csrf is not None:
            out.setdefault("X-CSRF-Token", self.csrf)
        if self.token is not None:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    def open(self, method: str, path: str, **kwargs):
        kwargs["headers"] = self._headers(kwargs.get("headers"))
        return self.client.open(path, method=method, **kwargs)

    def get(self, path: str, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.open("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.open("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.open("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.open("DELETE", path, **kwargs)


@dataclass
class People:
    """Makes users and clients acting as them (Flask tutorial's ``auth`` fixture, grown up)."""

    app: APIFlask
    ids: dict[str, int] = field(default_factory=dict)

    def user(self, name: str, admin: bool = False) -> int:
        """Create user ``name`` (password ``<name>-password``) once; returns its id."""
        if name not in self.ids:
            self.add_users({name: admin})
        return self.ids[name]

    def add_users(self, admin_of_name: dict[str, bool]) -> None:
        """Create several users in one transaction."""
        with self.app.app_context():
            users = {name: create_user(name, name + PASSWORD_SUFFIX, is_admin=admin)
                     for name, admin in admin_of_name.items() if name not in self.ids}
            db.session.commit()
            self.ids.update((name, user.id) for name, user in users.items())

    def reset(self) -> None:
        """Empty the database and forget the users made so far."""
        empty_tables(self.app)
        self.ids.clear()

    def anonymous(self) -> ApiClient:
        return ApiClient(self.app.test_client())

    def session(self, name: str, admin: bool = False) -> ApiClient:
        """A client signed in as ``name`` with the session cookie (created if needed)."""
        self.user(name, admin)
        client = self.app.test_client()
        response = client.post("/api/session", json={"username": name,
                                                      "password": name + PASSWORD_SUFFIX})
        assert response.status_code == 200, response.json
        return ApiClient(client, csrf=response.json["csrf_token"])

    def bearer(self, name: str, admin: bool = False) -> ApiClient:
        """A client that authenticates as ``name`` with a fresh API token."""
        user_id = self.user(name, admin)
        with self.app.app_context():
            _, secret = create_token(db.session.get(User, user_id), "tests")
            db.session.commit()
        return ApiClient(self.app.test_client(), token=secret)

    def campaign(self, owner: str, members: dict[str, Role] | None = None,
                 name: str = "lenses", **fields: Any) -> int:
        """A campaign owned by ``owner`` with the given other members; returns its id."""
        owner_id = self.user(owner)
        member_ids = {self.user(n): role for n, role in (members or {}).items()}
        with self.app.app_context():
            campaign = Campaign(name=name, description=fields.get("description", ""),
                                target=fields.get("target", "lens"),
                                settings=fields.get("settings", {}), created_by_id=owner_id)
            db.session.add(campaign)
            db.session.flush()
            db.session.add(Membership(campaign_id=campaign.id, user_id=owner_id,
                                      role=Role.OWNER))
            for user_id, role in member_ids.items():
                db.session.add(Membership(campaign_id=campaign.id, user_id=user_id, role=role))
            db.session.commit()
            return campaign.id


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., APIFlask]]:
    """Apps of a test's own (to add routes to, or on another database): ``make_app(url=None,
    **settings)``; the default database is a fresh SQLite file."""
    made: list[APIFlask] = []

    def make(url: str | None = None, **settings: Any) -> APIFlask:
        app = create_app(app_config(url or f"sqlite:///{tmp_path / 'own.db'}",
                                    **{"CUTOUT_CACHE_DIR": str(tmp_path / "cutouts"),
                                       "EXPORTS_DIR": str(tmp_path / "exports"),
                                       **settings}))
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def people(app: APIFlask) -> People:
    return People(app)


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()
