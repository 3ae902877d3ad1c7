"""The authorization matrix: every API endpoint, called by each kind of caller.

Callers: anonymous, a signed-in user who is not a member of the campaign, its viewer, labeler
and owner, and an administrator who is not a member (administrators act as owners). They call
with the session cookie (and its CSRF token). Reads share one world per endpoint; a write gets a
fresh world after each call that succeeded. A test also checks that the matrix names every API route, so a new
endpoint cannot be added without deciding who may call it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from server.auth.tokens import create_token
from server.database import utcnow
from server.exports.files import FORMATS, atomic_output, export_path
from server.extensions import db
from server.jobs.queue import enqueue
from server.models import (
    CampaignSeed,
    Label,
    LabelValue,
    ProbeRun,
    Role,
    SeedKind,
    SourceLabel,
    User,
)
from server.models.exports import Export
from server.probe.serving import bundle_sha256
from server.sources import sources

ROLES = ("anonymous", "nonmember", "viewer", "labeler", "owner", "admin")
USER_OF_ROLE = {"nonmember": "outsider", "viewer": "vera", "labeler": "leo", "owner": "olga",
                "admin": "root"}


def _expect(anonymous: int, nonmember: int, viewer: int, labeler: int, owner: int,
            admin: int) -> dict[str, int]:
    return dict(zip(ROLES, (anonymous, nonmember, viewer, labeler, owner, admin), strict=True))


def public(ok: int) -> dict[str, int]:
    return _expect(ok, ok, ok, ok, ok, ok)


def signed_in(ok: int) -> dict[str, int]:
    return _expect(401, ok, ok, ok, ok, ok)


def admins(ok: int) -> dict[str, int]:
    return _expect(401, 403, 403, 403, 403, ok)


def readers(ok: int) -> dict[str, int]:
    return _expect(401, 404, ok, ok, ok, ok)


def labelers(ok: int) -> dict[str, int]:
    return _expect(401, 404, 403, ok, ok, ok)


def owners(ok: int) -> dict[str, int]:
    return _expect(401, 404, 403, 403, ok, ok)


@dataclass(frozen=True)
class World:
    """Ids of what the matrix refers to."""

    campaign: int
    users: dict[str, int]
    owner_token: int
    owner_seed: int
    cutout_npy: bytes  # an uploadable cutout
    job: int = 0  # a queued probe job (the campaign also has probe version 1)
    export: int = 0  # a finished export of the owner's, with its file


@dataclass(frozen=True)
class Endpoint:
    method: str
    rule: str  # the Flask rule, as in app.url_map
    path: Callable[[World], str]
    expected: dict[str, int]
    body: Callable[[str], Any] | None = None  # caller's username -> JSON body
    form: Callable[[World], dict] | None = None  # multipart form fields

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


C = "/api/campaigns/<int:campaign_id>"
ENDPOINTS = [
    Endpoint("GET", "/api/openapi.json", lambda w: "/api/openapi.json", public(200)),
    Endpoint("GET", "/api/docs", lambda w: "/api/docs", public(200)),
    Endpoint("POST", "/api/session", lambda w: "/api/session", public(200),
             lambda me: {"username": "target", "password": "target-password"}),
    Endpoint("GET", "/api/session", lambda w: "/api/session", signed_in(200)),
    Endpoint("DELETE", "/api/session", lambda w: "/api/session", signed_in(204)),
    Endpoint("POST", "/api/session/password", lambda w: "/api/session/password",
             signed_in(200), lambda me: {"current_password": f"{me}-password",
                                         "new_password": "another-password"}),
    Endpoint("GET", "/api/tokens", lambda w: "/api/tokens", signed_in(200)),
    Endpoint("POST", "/api/tokens", lambda w: "/api/tokens", signed_in(201),
             lambda me: {"name": "script"}),
    Endpoint("DELETE", "/api/tokens/<int:token_id>", lambda w: f"/api/tokens/{w.owner_token}",
             _expect(401, 404, 404, 404, 204, 404)),
    Endpoint("GET", "/api/users", lambda w: "/api/users", admins(200)),
    Endpoint("POST", "/api/users", lambda w: "/api/users", admins(201),
             lambda me: {"username": "newbie", "password": "newbie-password"}),
    Endpoint("GET", "/api/users/<int:user_id>", lambda w: f"/api/users/{w.users['target']}",
             admins(200)),
    Endpoint("PATCH", "/api/users/<int:user_id>", lambda w: f"/api/users/{w.users['target']}",
             admins(200), lambda me: {"is_active": False}),
    Endpoint("GET", "/api/campaigns", lambda w: "/api/campaigns", signed_in(200)),
    Endpoint("POST", "/api/campaigns", lambda w: "/api/campaigns", signed_in(201),
             lambda me: {"name": "mine"}),
    Endpoint("GET", C, lambda w: f"/api/campaigns/{w.campaign}", readers(200)),
    Endpoint("PATCH", C, lambda w: f"/api/campaigns/{w.campaign}", owners(200),
             lambda me: {"description": "changed"}),
    Endpoint("DELETE", C, lambda w: f"/api/campaigns/{w.campaign}", owners(204)),
    Endpoint("GET", f"{C}/members", lambda w: f"/api/campaigns/{w.campaign}/members",
             readers(200)),
    Endpoint("POST", f"{C}/members", lambda w: f"/api/campaigns/{w.campaign}/members",
             owners(201), lambda me: {"username": "target", "role": "viewer"}),
    Endpoint("PATCH", f"{C}/members/<int:user_id>",
             lambda w: f"/api/campaigns/{w.campaign}/members/{w.users['leo']}", owners(200),
             lambda me: {"role": "viewer"}),
    # the viewer removing themself is leaving, which every member may do
    Endpoint("DELETE", f"{C}/members/<int:user_id>",
             lambda w: f"/api/campaigns/{w.campaign}/members/{w.users['vera']}",
             _expect(401, 404, 204, 403, 204, 204)),
    Endpoint("GET", f"{C}/labels", lambda w: f"/api/campaigns/{w.campaign}/labels",
             readers(200)),
    Endpoint("GET", f"{C}/labels/history",
             lambda w: f"/api/campaigns/{w.campaign}/labels/history", readers(200)),
    Endpoint("GET", f"{C}/labels/<int:object_id>",
             lambda w: f"/api/campaigns/{w.campaign}/labels/1", readers(200)),
    Endpoint("PUT", f"{C}/labels/<int:object_id>",
             lambda w: f"/api/campaigns/{w.campaign}/labels/2", labelers(200),
             lambda me: {"value": "accept"}),
    Endpoint("DELETE", f"{C}/labels/<int:object_id>",
             lambda w: f"/api/campaigns/{w.campaign}/labels/1", labelers(200)),
    Endpoint("POST", f"{C}/labels/bulk", lambda w: f"/api/campaigns/{w.campaign}/labels/bulk",
             labelers(200), lambda me: {"labels": [{"object_id": 3, "value": "reject"}]}),
    Endpoint("POST", f"{C}/labels/undo", lambda w: f"/api/campaigns/{w.campaign}/labels/undo",
             labelers(200)),
    Endpoint("GET", f"{C}/seeds", lambda w: f"/api/campaigns/{w.campaign}/seeds", readers(200)),
    Endpoint("POST", f"{C}/seeds", lambda w: f"/api/campaigns/{w.campaign}/seeds",
             labelers(201), lambda me: {"object_id": 4}),
    Endpoint("POST", f"{C}/seeds/upload", lambda w: f"/api/campaigns/{w.campaign}/seeds/upload",
             labelers(201), form=lambda w: {"file": (io.BytesIO(w.cutout_npy), "seed.npy")}),
    Endpoint("DELETE", f"{C}/seeds/<int:seed_id>",
             lambda w: f"/api/campaigns/{w.campaign}/seeds/{w.owner_seed}",
             _expect(401, 404, 403, 403, 204, 204)),
    # background jobs and the probe
    Endpoint("GET", f"{C}/jobs", lambda w: f"/api/campaigns/{w.campaign}/jobs", readers(200)),
    Endpoint("GET", f"{C}/jobs/<int:job_id>",
             lambda w: f"/api/campaigns/{w.campaign}/jobs/{w.job}", readers(200)),
    Endpoint("POST", f"{C}/jobs/<int:job_id>/cancel",
             lambda w: f"/api/campaigns/{w.campaign}/jobs/{w.job}/cancel", owners(200)),
    Endpoint("GET", f"{C}/probe", lambda w: f"/api/campaigns/{w.campaign}/probe", readers(200)),
    Endpoint("GET", f"{C}/probe/runs", lambda w: f"/api/campaigns/{w.campaign}/probe/runs",
             readers(200)),
    Endpoint("GET", f"{C}/probe/runs/<int:version>",
             lambda w: f"/api/campaigns/{w.campaign}/probe/runs/1", readers(200)),
    Endpoint("POST", f"{C}/probe/retrain",
             lambda w: f"/api/campaigns/{w.campaign}/probe/retrain", labelers(202)),
    Endpoint("GET", f"{C}/candidates", lambda w: f"/api/campaigns/{w.campaign}/candidates",
             readers(200)),
    # team campaigns: members read consensus, agreement and progress
    Endpoint("GET", f"{C}/consensus", lambda w: f"/api/campaigns/{w.campaign}/consensus",
             readers(200)),
    Endpoint("GET", f"{C}/agreement", lambda w: f"/api/campaigns/{w.campaign}/agreement",
             readers(200)),
    Endpoint("GET", f"{C}/progress", lambda w: f"/api/campaigns/{w.campaign}/progress",
             readers(200)),
    # imports: seeds need a labeler, a source's labels an owner
    Endpoint("POST", f"{C}/imports", lambda w: f"/api/campaigns/{w.campaign}/imports",
             owners(200), form=lambda w: {"file": (io.BytesIO(b"object_id\n9\n"), "known.csv"),
                                          "into": "labels", "source": "catalog"}),
    Endpoint("GET", f"{C}/sources", lambda w: f"/api/campaigns/{w.campaign}/sources",
             readers(200)),
    Endpoint("DELETE", f"{C}/sources/<source>",
             lambda w: f"/api/campaigns/{w.campaign}/sources/catalog", owners(204)),
    # exports: labelers start them, members read and download, owners or their maker delete
    Endpoint("POST", f"{C}/exports", lambda w: f"/api/campaigns/{w.campaign}/exports",
             labelers(202), lambda me: {"format": "csv"}),
    Endpoint("GET", f"{C}/exports", lambda w: f"/api/campaigns/{w.campaign}/exports",
             readers(200)),
    Endpoint("GET", f"{C}/exports/<int:export_id>",
             lambda w: f"/api/campaigns/{w.campaign}/exports/{w.export}", readers(200)),
    Endpoint("GET", f"{C}/exports/<int:export_id>/file",
             lambda w: f"/api/campaigns/{w.campaign}/exports/{w.export}/file", readers(200)),
    Endpoint("DELETE", f"{C}/exports/<int:export_id>",
             lambda w: f"/api/campaigns/{w.campaign}/exports/{w.export}", owners(204)),
    Endpoint("GET", "/api/objects/<int:object_id>", lambda w: "/api/objects/3", signed_in(200)),
    Endpoint("GET", "/api/objects/<int:object_id>/cutout.png",
             lambda w: "/api/objects/3/cutout.png?size=32", signed_in(200)),
    Endpoint("GET", "/api/survey", lambda w: "/api/survey", signed_in(200)),
    Endpoint("GET", "/api/survey/random", lambda w: "/api/survey/random?count=3",
             signed_in(200)),
]


def build_world(people, app) -> World:
    """Six people, a campaign with its viewer, labeler and owner, a label of everyone on
    object 1 (so that reading "my label" can succeed) and an API token of the owner."""
    people.add_users({"olga": False, "vera": False, "leo": False, "outsider": False,
                      "target": False, "root": True})
    campaign = people.campaign("olga", {"vera": Role.VIEWER, "leo": Role.LABELER})
    with app.app_context():
        now = utcnow()
        db.session.add_all(Label(campaign_id=campaign, object_id=1, user_id=user_id,
                                 value=LabelValue.UNSURE, created_at=now, updated_at=now)
                           for user_id in people.ids.values())
        token, _ = create_token(db.session.get(User, people.ids["olga"]), "olga's script")
        seed = CampaignSeed(campaign_id=campaign, kind=SeedKind.OBJECT, object_id=5,
                            added_by_id=people.ids["olga"])
        db.session.add(seed)
        db.session.add(SourceLabel(campaign_id=campaign, object_id=2, source="catalog",
                                   value=LabelValue.ACCEPT))
        bundle = sources(app).bundle
        db.session.add(ProbeRun(
            campaign_id=campaign, version=1, bundle_sha256=bundle_sha256(bundle),
            representation="prehead", dim=bundle.dim, coef=np.ones(bundle.dim, "<f4").tobytes(),
            intercept=0.0, C=1.0, n_positive=1, n_negative=1, n_unlabeled=0,
            unlabeled_weight=0.0))
        job = enqueue(db.session, "probe", campaign_id=campaign, coalesce_key="probe:matrix")
        export = Export(campaign_id=campaign, format="csv", created_by_id=people.ids["olga"],
                        row_count=1)
        db.session.add(export)
        db.session.flush()
        written = atomic_output(export_path(app.config["EXPORTS_DIR"], campaign, export.id,
                                            FORMATS["csv"]),
                                lambda path: path.write_text("object_id\n1\n"))
        export.byte_size, export.sha256 = written.byte_size, written.sha256
        db.session.commit()
        buffer = io.BytesIO()
        np.save(buffer, sources(app).survey.read_images([7])[0])
        return World(campaign, dict(people.ids), token.id, seed.id, buffer.getvalue(), job=job,
                     export=export.id)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_matrix(endpoint: Endpoint, people, app) -> None:
    """Each role calls the endpoint; after a write that succeeded the world is built again."""
    statuses: dict[str, int] = {}
    world = build_world(people, app)
    for role in ROLES:
        if statuses and endpoint.method != "GET" and list(statuses.values())[-1] < 400:
            people.reset()
            world = build_world(people, app)
        caller = people.anonymous() if role == "anonymous" else people.session(USER_OF_ROLE[role])
        kwargs: dict[str, Any] = {}
        if endpoint.body:
            kwargs["json"] = endpoint.body(USER_OF_ROLE.get(role, ""))
        if endpoint.form:
            kwargs["data"] = endpoint.form(world)
        response = caller.open(endpoint.method, endpoint.path(world), **kwargs)
        statuses[role] = response.status_code
        response.close()  # a file download's stream
        if response.status_code >= 400 and endpoint.rule != "/api/docs":
            assert set(response.json) >= {"status", "title", "detail"}, (role, response.json)
    assert statuses == endpoint.expected


def test_the_matrix_covers_every_api_route(app) -> None:
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {(e.method, e.rule) for e in ENDPOINTS}
    assert routes - covered == set(), "add these routes to ENDPOINTS"
    assert covered - routes == set(), "these ENDPOINTS are not routes any more"
