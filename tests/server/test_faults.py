"""Faults the labeling server must survive without losing or duplicating a label:

- a web worker (gunicorn, production configuration) killed with SIGKILL in the middle of a
  label write: the client sees its request fail, the master forks a new worker, and the
  retried write is stored once, with one history row (the interrupted one left nothing, or,
  on PostgreSQL, where a first label is one statement that commits itself, all of itself);
- PostgreSQL going away while people label (its connections ended, as a restart ends them;
  then the server unreachable, behind a TCP proxy the test stops and starts again, so the
  shared PostgreSQL server itself is never touched): the API answers 503 with Retry-After
  (JSON), and answers again as soon as the database is back, without a restart;
- a connection ended in the middle of a request: that request is a 503, the next one works.

The probe worker killed mid-run: tests/server/test_probe_faults.py. A full disk during an
export: tests/server/test_exports.py. A missing or damaged bundle file at start:
tests/server/test_api_seeds.py and tests/ml/index/test_bundle.py.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
import pytest
import requests
from gunicorn_testing import free_port, gunicorn
from sqlalchemy.engine import make_url

from server import database
from server.auth.accounts import create_user
from server.database import libpq_url
from server.extensions import db
from server.models import Campaign, Membership, Role

pytestmark = pytest.mark.slow


def make_campaign(app, *names: str) -> int:
    """Users ``names`` (password ``<name>-password``), labelers of a new campaign."""
    with app.app_context():
        users = [create_user(name, f"{name}-password") for name in names]
        campaign = Campaign(name="faults", created_by=users[0])
        campaign.memberships = [Membership(user=u, role=Role.LABELER) for u in users]
        db.session.add(campaign)
        db.session.commit()
        return campaign.id


def stored_labels(url: str) -> list[tuple[int, int]]:
    """(object_id, history rows) of every stored label, read straight from the database."""
    sql = ("SELECT l.object_id, (SELECT count(*) FROM label_history h WHERE h.campaign_id = "
           "l.campaign_id AND h.object_id = l.object_id AND h.user_id = l.user_id) "
           "FROM labels l ORDER BY l.object_id")
    if url.startswith("sqlite"):
        with sqlite3.connect(make_url(url).database) as connection:
            return [tuple(row) for row in connection.execute(sql)]
    with psycopg.connect(libpq_url(url)) as connection:
        return [tuple(row) for row in connection.execute(sql)]


@contextmanager
def labels_locked(url: str) -> Iterator[None]:
    """Hold a lock that makes every label write wait (a write that is surely in progress)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    with psycopg.connect(libpq_url(url)) as connection:
        connection.execute("LOCK TABLE labels IN EXCLUSIVE MODE")  # reads still pass
        try:
            yield
        finally:
            connection.rollback()


class Request(threading.Thread):
    """One HTTP request in a thread of its own; ``outcome`` is its status or exception."""

    def __init__(self, call) -> None:
        super().__init__(daemon=True)
        self.call, self.outcome = call, None

    def run(self) -> None:
        try:
            self.outcome = self.call().status_code
        except Exception as error:
            self.outcome = error


def wait_for(predicate, timeout_s: float = 30, what: str = "it") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_web_worker_killed_mid_request_loses_and_duplicates_nothing(
        empty_database_url, make_app, tmp_path):
    app = make_app(empty_database_url)
    cid = make_campaign(app, "alice")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    with gunicorn(empty_database_url, tmp_path, workers=2) as served, requests.Session() as http:
        signed_in = http.post(f"{served.base}/api/session", timeout=30,
                              json={"username": "alice", "password": "alice-password"})
        http.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        url = f"{served.base}/api/campaigns/{cid}/labels"
        assert http.put(f"{url}/1", json={"value": "accept"}, timeout=30).status_code == 200
        workers = served.worker_pids()
        assert len(workers) == 2
        with labels_locked(empty_database_url):
            write = Request(lambda: http.put(f"{url}/2", json={"value": "reject"}, timeout=30))
            write.start()
            time.sleep(1.0)  # the write has reached a worker and waits for the lock
            assert write.is_alive()
            for pid in workers:  # whichever took it
                os.kill(pid, signal.SIGKILL)
            write.join(timeout=30)
        assert isinstance(write.outcome, requests.ConnectionError), write.outcome
        # the master forks new workers; the same session (signed cookie) goes on
        wait_for(lambda: len(set(served.worker_pids()) - set(workers)) == 2,
                 what="gunicorn to fork new workers")
        retried = http.put(f"{url}/2", json={"value": "reject"}, timeout=30)
        assert retried.status_code == 200 and retried.json()["value"] == "reject"
        # SQLite: the killed write's transaction never committed, so the retry stores it. On
        # PostgreSQL a first label is one statement, committed by itself
        # (server.labeling_fast), which PostgreSQL may finish after its worker died: whole
        # (label, history row, probe job) or not at all, as the stored rows below show
        assert retried.json()["changed"] is True or not empty_database_url.startswith("sqlite")
        again = http.put(f"{url}/2", json={"value": "reject"}, timeout=30)
        assert again.status_code == 200 and again.json()["changed"] is False
    assert stored_labels(empty_database_url) == [(1, 1), (2, 1)]
    assert "SIGKILL" in served.log() or "was sent SIGKILL" in served.log() \
        or "Booting worker" in served.log()


# -- PostgreSQL going away -------------------------------------------------------------------
class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that can be stopped (every connection cut, new ones
    refused, as when the server is down) and started again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._running.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        self._running.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._open:
                self._close(s)
            self._open.clear()

    @staticmethod
    def _close(s: socket.socket) -> None:
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                self._close(s)


@pytest.fixture
def proxied_postgres(postgres) -> Iterator[tuple[str, str, TcpProxy]]:
    """A scratch database: (its URL, the same through a proxy, the proxy)."""
    url = postgres.create_database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    proxy.start()
    through = parsed.set(host="127.0.0.1", port=proxy.port,
                         query={**parsed.query, "connect_timeout": "3"})
    try:
        yield url, through.render_as_string(hide_password=False), proxy
    finally:
        proxy.stop()


def end_connections(url: str, only_waiting: bool = False) -> int:
    """pg_terminate_backend every other connection to this scratch database (as a restart
    does); ``only_waiting``: only those waiting for a lock. Returns how many."""
    waiting = " AND wait_event_type = 'Lock'" if only_waiting else ""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        return len(connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
            f"current_database() AND pid <> pg_backend_pid(){waiting}").fetchall())


def labeler_of_new_campaign(app):
    """A test client signed in as alice, labeler of a new campaign: (client, campaign, CSRF)."""
    cid = make_campaign(app, "alice")
    client = app.test_client()
    csrf = client.post("/api/session", json={"username": "alice",
                                              "password": "alice-password"}).json["csrf_token"]
    return client, cid, csrf


def _assert_503(response) -> None:
    assert response.status_code == 503, response.json
    assert set(response.json) == {"status", "title", "detail"}
    assert "retry" in response.json["detail"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.postgres
def test_postgres_going_away_is_503_with_retry_after_and_the_app_recovers(
        proxied_postgres, make_app, monkeypatch):
    direct, through, proxy = proxied_postgres
    client, cid, csrf = labeler_of_new_campaign(make_app(through))
    url = f"/api/campaigns/{cid}/labels"
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 0.2)

    def label(object_id: int):
        return client.put(f"{url}/{object_id}", json={"value": "accept"},
                          headers={"X-CSRF-Token": csrf})

    acknowledged = {i for i in (1, 2) if label(i).status_code == 200}
    # a restart while idle ends every pooled connection: the next request notices (the idle
    # connection is checked before use) and answers from a new one
    assert end_connections(direct) >= 1
    time.sleep(0.3)
    assert label(3).status_code == 200
    acknowledged.add(3)
    # a restart under load (connections used moments ago, not checked): the request on the
    # old connection is a 503, the next one gets a new connection
    assert end_connections(direct) >= 1
    _assert_503(label(5))
    assert label(5).status_code == 200
    acknowledged.add(5)
    # the server is down: reads and writes answer 503 with Retry-After, quickly
    proxy.stop()
    started = time.monotonic()
    _assert_503(label(4))
    _assert_503(client.get(url))
    _assert_503(client.get("/api/session"))  # even who is signed in cannot be read
    assert time.monotonic() - started < 10
    # it is back: the same app answers again, no restart
    proxy.start()
    assert label(4).status_code == 200
    acknowledged.add(4)
    listed = client.get(url)
    assert listed.status_code == 200 and len(listed.json["items"]) == len(acknowledged)
    assert stored_labels(direct) == [(i, 1) for i in sorted(acknowledged)]


@pytest.mark.postgres
def test_a_connection_ended_mid_request_is_503_and_the_next_request_works(
        proxied_postgres, make_app):
    direct, through, _ = proxied_postgres
    client, cid, csrf = labeler_of_new_campaign(make_app(through))
    url = f"/api/campaigns/{cid}/labels/5"
    with labels_locked(direct):
        write = Request(lambda: client.put(url, json={"value": "reject"},
                                           headers={"X-CSRF-Token": csrf}))
        write.start()
        wait_for(lambda: end_connections(direct, only_waiting=True) == 1, timeout_s=20,
                 what="the write to wait for the lock, then its connection to be ended")
        write.join(timeout=30)
    assert write.outcome == 503
    assert stored_labels(direct) == []  # nothing of it was written
    retried = client.put(url, json={"value": "reject"}, headers={"X-CSRF-Token": csrf})
    assert retried.status_code == 200 and retried.json["changed"] is True
    assert stored_labels(direct) == [(5, 1)]


# -- the search bundle at start --------------------------------------------------------------
def _damage(folder, name: str, how: str) -> None:
    path = folder / name
    if how == "missing":
        path.unlink()
    elif how == "garbage":  # the same size, other bytes
        path.write_bytes(os.urandom(path.stat().st_size))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(("name", "how"), [
    ("manifest.json", "garbage"), ("manifest.json", "missing"), ("index.faiss", "garbage"),
    ("index.faiss", "truncated"), ("vectors.npy", "truncated"), ("mag_r.npy", "missing"),
    ("knn_ids.npy", "garbage"),
])
def test_a_damaged_bundle_file_stops_the_start_naming_it(make_app, bundle_path, tmp_path,
                                                         name, how):
    import shutil

    damaged = tmp_path / "bundle"
    shutil.copytree(bundle_path, damaged)
    _damage(damaged, name, how)
    with pytest.raises(Exception, match=re.escape(name)):
        make_app(BUNDLE_PATH=str(damaged))
