"""`galsearch demo`: its setup is idempotent, `--no-serve` wires everything, Ctrl-C stops the
web app and the worker."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from server.cli import main
from server.demo.setup import DEMO_PASSWORD, DEMO_USER, setup_demo
from server.extensions import db
from server.models import Campaign, CampaignSeed, Membership, Role, User
from server.sources import current_bundle, current_survey

# the tiny pipeline preset lives with the pipeline tests: one preset for both suites
_spec = importlib.util.spec_from_file_location(
    "pipeline_testdata", Path(__file__).parents[1] / "ml" / "pipeline" / "pipeline_testdata.py")
pipeline_testdata = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline_testdata)
REPO = Path(__file__).parents[2]


def _counts() -> tuple[int, int, int]:
    return (db.session.scalar(select(func.count()).select_from(User)),
            db.session.scalar(select(func.count()).select_from(Campaign)),
            db.session.scalar(select(func.count()).select_from(CampaignSeed)))


def test_setup_is_idempotent(app):
    with app.app_context():
        first = setup_demo(current_bundle(), current_survey(), target="ring")
        assert first.user_created and first.campaign_created
        labels = current_survey().truth().labels
        assert labels[first.seed_object_id] == "ring"
        # the ring whose first page holds the most other rings
        bundle = current_bundle()
        found = {int(r): int((labels[bundle.neighbours(int(r), k=48)[0]] == "ring").sum())
                 for r in (labels == "ring").nonzero()[0]}
        assert first.same_class_on_first_page == max(found.values())
        assert found[first.seed_object_id] == max(found.values())
        again = setup_demo(current_bundle(), current_survey(), target="ring")
        assert not again.user_created and not again.campaign_created
        assert (again.campaign_id, again.seed_object_id) == (first.campaign_id,
                                                              first.seed_object_id)
        assert _counts() == (1, 1, 1)
        campaign = db.session.get(Campaign, first.campaign_id)
        assert campaign.name == "Example: ring" and campaign.target == "ring"
        member = db.session.scalar(select(Membership).where(
            Membership.campaign_id == campaign.id))
        assert member.role == Role.OWNER and member.user.username == DEMO_USER
        assert member.user.is_admin
    # the documented password signs in, and the campaign has candidates at once
    client = app.test_client()
    response = client.post("/api/session", json={"username": DEMO_USER,
                                                  "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.json
    csrf = response.json["csrf_token"]
    page = client.get(f"/api/campaigns/{first.campaign_id}/candidates?limit=5",
                      headers={"X-CSRF-Token": csrf})
    assert page.status_code == 200 and len(page.json["items"]) == 5


def test_setup_without_the_target_class_makes_only_the_user(app):
    with app.app_context():
        setup = setup_demo(current_bundle(), current_survey(), target="lens")  # none here
        assert setup.user_created and setup.campaign_id is None
        assert _counts() == (1, 0, 0)


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    """A tiny preset, and an environment the demo may change (restored afterwards)."""
    pipeline_testdata.simulate_tiny(tmp_path / "survey")
    for key in ("GALSEARCH_BUNDLE", "GALSEARCH_SURVEY", "GALSEARCH_ENV", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GALSEARCH_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("GALSEARCH_BUNDLE", "")  # registered with monkeypatch: restored
    monkeypatch.setenv("GALSEARCH_SURVEY", "")
    monkeypatch.setenv("GALSEARCH_ENV", "development")
    return pipeline_testdata.tiny_toml(tmp_path, evaluate={"enabled": False})


def test_no_serve_wires_everything_and_reruns_fast(demo_env, tmp_path):
    args = ["demo", "--no-serve", "--train", "--config", str(demo_env)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "created the user 'demo'" in result.output
    assert "ready" in result.output and "galsearch serve" in result.output
    database = tmp_path / "instance" / "galsearch.db"
    assert database.is_file()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "created the user" not in again.output
    assert again.output.count("up to date, skipped") == 5  # survey .. index


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serves_and_stops_both_processes_on_ctrl_c(demo_env, tmp_path):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--train", "--port", str(port),
         "--config", str(demo_env)], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 180
        while not any("galsearch is running" in line for line in output):
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(output)[-3000:]
            output.append(line)
            assert time.monotonic() < deadline, "".join(output)[-3000:]
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/session", timeout=10)
        assert answer.value.code == 401  # the app answers: not signed in yet
        answer.value.close()
        # the worker process may still be importing on a busy machine: Ctrl-C once it runs
        worker_log = tmp_path / "instance" / "logs" / "demo-worker.log"
        while "kinds" not in (worker_log.read_text() if worker_log.exists() else ""):
            assert process.poll() is None and time.monotonic() < deadline, "".join(output)
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, "".join(output) + rest
    assert "stopped the web app and the worker" in rest
    with socket.socket() as s:  # nothing listens any more
        assert s.connect_ex(("127.0.0.1", port)) != 0
    logs = tmp_path / "instance" / "logs"
    assert "worker stopped" in (logs / "demo-worker.log").read_text()
    assert json.loads((tmp_path / "run" / "stamps" / "index.json").read_text())["output"]
