"""Schemathesis over /api/openapi.json: every operation, valid and invalid requests, run against
the app in-process (WSGI) on SQLite and PostgreSQL by a signed-in administrator. No request may
get a server error (5xx), and every response must be one the document describes: its status,
its content type and its body's schema.

Most generated ids name nothing (404), so three of four generated path ids are replaced by ids
of a real campaign, export, job, seed, user and probe version of the caller's world (the
authorization matrix's, tests/server/test_authorization.py): the request then reaches the
view's own checks. After a write that succeeded the world is built again, so a deleted
campaign or revoked token does not turn the rest of the run into 404s and 401s.

Examples per operation: ``GALSEARCH_FUZZ_EXAMPLES`` (5 in ``make test``; ``make
check-reliability`` runs 100). ``GALSEARCH_FUZZ_REPORT=path.json`` writes the counts (requests
per operation and status) there.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from test_authorization import World, build_world

from server.app import create_app
from server.auth.tokens import create_token
from server.extensions import db
from server.models import User

# Every check of schemathesis runs (server errors, status codes, content types, response
# schemas and headers, Allow, authentication ignored, ...) but two that judge the server's
# input rules rather than its answers: the API coerces as marshmallow does ("5" for 5, 0/1 for
# booleans), which negative_data_rejection counts as accepting invalid data, and it checks what
# JSON Schema cannot say (mag_r_min <= mag_r_max, a cursor the server made, an existing user)
# with a 422 naming the field, which positive_data_acceptance counts as rejecting valid data.
EXCLUDED_CHECKS = [negative_data_rejection, positive_data_acceptance]
EXAMPLES = int(os.environ.get("GALSEARCH_FUZZ_EXAMPLES", "5"))
# the coverage phase (schemathesis's boundary values and mutations of each parameter, many
# requests per operation) runs in the long mode only
COVERAGE = os.environ.get("GALSEARCH_FUZZ_COVERAGE", "1" if EXAMPLES > 10 else "0") == "1"
REPORT = os.environ.get("GALSEARCH_FUZZ_REPORT")
CALLER = "root"  # an administrator who is not a member of the campaign: acts as its owner
SUBSTITUTE_RATE = 0.75

pytestmark = pytest.mark.slow


class FuzzState:
    """The caller's world, its bearer token, and what was sent and answered."""

    def __init__(self, people, app) -> None:
        self.people, self.app = people, app
        self.random = random.Random(0)
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.rebuild()

    def rebuild(self) -> None:
        self.people.reset()
        self.world: World = build_world(self.people, self.app)
        with self.app.app_context():
            _, self.secret = create_token(db.session.get(User, self.world.users[CALLER]),
                                          "fuzz")
            db.session.commit()

    def real_ids(self) -> dict[str, object]:
        w = self.world
        return {"campaign_id": w.campaign, "export_id": w.export, "job_id": w.job,
                "seed_id": w.owner_seed, "token_id": w.owner_token,
                "user_id": w.users["target"], "version": 1, "source": "catalog"}

    def aim(self, case) -> None:
        """Point most generated ids at the world's real ones (valid ones only: an id generated
        to be invalid stays as it is)."""
        real = self.real_ids()
        for name, value in list((case.path_parameters or {}).items()):
            valid = (isinstance(value, int) and value >= 0) or (
                name == "source" and isinstance(value, str))
            if name in real and valid and self.random.random() < SUBSTITUTE_RATE:
                case.path_parameters[name] = real[name]

    def record(self, case, status: int) -> None:
        self.statuses[(f"{case.method.upper()} {case.path}", status)] += 1
        if case.method.upper() != "GET" and status < 400:
            self.rebuild()


@pytest.fixture
def fuzz_state(people, app):
    state = FuzzState(people, app)
    yield state
    if REPORT:  # added to what the other operations' tests wrote
        path = Path(REPORT)
        report = json.loads(path.read_text()) if path.exists() else {}
        backend = app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0].split("+")[0]
        mine = report.setdefault(backend, {"examples_per_operation": EXAMPLES,
                                           "coverage_phase": COVERAGE, "operations": {}})
        for (operation, status), count in state.statuses.items():
            statuses = mine["operations"].setdefault(operation, {})
            statuses[str(status)] = statuses.get(str(status), 0) + count
        counts = [(int(s), c) for o in mine["operations"].values() for s, c in o.items()]
        mine["requests"] = sum(c for _, c in counts)
        mine["server_errors"] = sum(c for s, c in counts if s >= 500)
        path.write_text(json.dumps(report, indent=1, sort_keys=True))


def _document() -> dict:
    """/api/openapi.json, as an app without a database serves it (the document does not depend
    on the database; the requests go to each backend's app)."""
    app = create_app({"TESTING": True, "SECRET_KEY": "openapi", "AUTO_UPGRADE_DATABASE": False,
                      "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    document = app.test_client().get("/api/openapi.json").json
    with app.app_context():
        db.engine.dispose()
    return document


class BackendApp:
    """A WSGI app that forwards to the backend app of the running test (the schema is made
    once, at collection, for both backends)."""

    target = None

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


BACKEND = BackendApp()
schema = schemathesis.openapi.from_dict(_document(), config=SchemathesisConfig.from_dict({
    "generation": {"mode": "all", "max-examples": EXAMPLES},
    # the coverage phase's boundary values, then Hypothesis's random ones
    "phases": {"coverage": {"enabled": COVERAGE}, "fuzzing": {"enabled": True}},
}))
schema.app = BACKEND


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error_or_breaks_the_schema(case, fuzz_state):
    fuzz_state.aim(case)
    headers = {"Authorization": f"Bearer {fuzz_state.secret}"}
    BACKEND.target = fuzz_state.app
    response = case.call(headers=headers, buffered=True)  # a file download is closed
    try:
        case.validate_response(response, headers=headers, excluded_checks=EXCLUDED_CHECKS)
    finally:
        fuzz_state.record(case, response.status_code)
