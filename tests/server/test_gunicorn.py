"""The production setup: gunicorn with server.gunicorn_conf (preloaded app, forked workers)
serving concurrent labelers over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from gunicorn_testing import gunicorn

from server.extensions import db
from server.models import Label, LabelHistory

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def served(empty_database_url, make_app, tmp_path):
    """gunicorn on a free port over a database with users alice..henry and a campaign."""
    app = make_app(empty_database_url)
    with app.app_context():
        from server.auth.accounts import create_user
        from server.models import Campaign, Membership, Role

        users = [create_user(name, f"{name}-password") for name in
                 ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "henry")]
        campaign = Campaign(name="lenses", created_by=users[0])
        campaign.memberships = [Membership(user=u, role=Role.LABELER) for u in users]
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
        db.session.remove()  # give the connection back before the pool goes
        db.engine.dispose()
    with gunicorn(empty_database_url, tmp_path) as served:
        yield served.base, campaign_id, app


def test_gunicorn_serves_concurrent_labelers(served, tmp_path):
    base, campaign_id, app = served
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "henry"]

    def labeler(name: str) -> list[int]:
        with requests.Session() as http:
            signed_in = http.post(f"{base}/api/session", timeout=30,
                                  json={"username": name, "password": f"{name}-password"})
            assert signed_in.status_code == 200
            cookie = signed_in.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "Secure" not in cookie
            headers = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
            statuses = []
            for object_id in range(10):
                value = ("accept", "reject")[object_id % 2]
                statuses.append(http.put(f"{base}/api/campaigns/{campaign_id}/labels/{object_id}",
                                         json={"value": value}, headers=headers,
                                         timeout=30).status_code)
            return statuses

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(labeler, names))
    assert results == [[200] * 10] * len(names)
    with app.app_context():
        assert db.session.query(Label).filter_by(campaign_id=campaign_id).count() == 80
        assert db.session.query(LabelHistory).filter_by(campaign_id=campaign_id).count() == 80
        db.session.remove()
        db.engine.dispose()
    assert "Booting worker" in (tmp_path / "gunicorn.log").read_text()


@pytest.mark.parametrize(("value", "expected"), [(None, "-"), ("off", None), ("", None),
                                                 ("/var/log/galsearch.log",
                                                  "/var/log/galsearch.log")])
def test_the_access_log_can_be_left_to_nginx(monkeypatch, value, expected):
    import importlib

    # first: importing the configuration sets GALSEARCH_ENV when it is unset, which would
    # outlive this test (monkeypatch restores what it set itself)
    monkeypatch.setenv("GALSEARCH_ENV", "production")
    if value is None:
        monkeypatch.delenv("GALSEARCH_ACCESS_LOG", raising=False)
    else:
        monkeypatch.setenv("GALSEARCH_ACCESS_LOG", value)
    import server.gunicorn_conf as conf

    assert importlib.reload(conf).accesslog == expected


def test_a_worker_closes_each_connection_so_waiting_requests_queue_for_any_worker(served):
    """One request per worker at a time (server.gunicorn_conf): a kept-alive connection would
    hold its worker's only slot, so every response closes its connection."""
    base, _, _ = served
    with requests.Session() as http:
        for _ in range(3):
            response = http.get(f"{base}/api/openapi.json", timeout=30)
            assert response.status_code == 200
            assert response.headers["Connection"] == "close"


def test_the_master_freezes_what_it_loaded_before_forking(monkeypatch):
    import gc
    import importlib

    monkeypatch.setenv("GALSEARCH_ENV", "production")
    monkeypatch.delenv("GALSEARCH_THREADS", raising=False)
    import server.gunicorn_conf as conf

    conf = importlib.reload(conf)
    assert (conf.threads, conf.worker_connections, conf.keepalive) == (1, 1, 0)
    assert gc.get_freeze_count() == 0
    try:
        conf.pre_fork(None, None)
        assert gc.get_freeze_count() > 10_000  # this test process: pytest, the app's modules
    finally:
        gc.unfreeze()
