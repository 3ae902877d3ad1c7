"""The production setup: gunicorn with server.gunicorn_conf (preloaded app, forked workers)
serving concurrent labelers over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from server.extensions import db
from server.models import Label, LabelHistory

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": empty_database_url, "SECRET_KEY": "gunicorn-test",
           "GALSEARCH_INSTANCE": str(tmp_path), "GALSEARCH_BIND": f"127.0.0.1:{port}",
           "GALSEARCH_WORKERS": "2", "GALSEARCH_THREADS": "4", "GALSEARCH_COOKIE_SECURE": "0"}
    env.pop("GALSEARCH_ENV", None)  # the config's own default (production) applies
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/api/openapi.json", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "gunicorn.log").read_text())
            time.sleep(0.2)
        yield base, campaign_id, app
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


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
