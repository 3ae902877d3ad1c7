"""The production server for the HTTP benchmarks and scripted checks: a scratch database and
gunicorn with ``server.gunicorn_conf`` on a free loopback port.

Used by ``benchmarks/load.py``, ``benchmarks/api.py`` and ``benchmarks/faults.py``. Nothing
listens beyond 127.0.0.1.

- :func:`scratch_database`: a PostgreSQL database of its own on the server of
  ``TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``), dropped at the
  end (other people use that server: nothing else on it is touched), or a SQLite file.
- :class:`Gunicorn`: ``gunicorn -c python:server.gunicorn_conf`` as in production (preloaded
  app, gthread workers, ``GALSEARCH_ENV=production``), its log in a file; its processes' CPU
  time can be read while it runs (:meth:`Gunicorn.cpu_seconds`).
- :func:`setup_app`: ``create_app`` in this process on the same database, to make users and
  campaigns before the server starts and to read what it stored afterwards;
  :func:`make_people`: users in campaigns of a few members, with object seeds.
- :func:`served`: all of that at once (scratch database, people, gunicorn on the bundle).
- :class:`Browser`: one person's HTTP/1.1 client on asyncio streams (keep-alive connections, at
  most 6 at once as a browser opens per origin, the session cookie, the CSRF header on writes),
  so that hundreds of simulated people run on one event loop in the benchmark's process with
  the standard library only; :func:`timed` measures one request into a :class:`Latencies`.
- :class:`CpuMeter`: who used the cores during a phase (server, this client, everything else
  on the shared machine) and the load average.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET_KEY = "benchmark-" + secrets.token_hex(8)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# every simulated person's password; hashed once with the production parameters (below)
PASSWORD = "benchmark-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_admin_url() -> str:
    """The PostgreSQL server benchmarks use: ``TEST_POSTGRES_URL`` or the local default."""
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextlib.contextmanager
def scratch_database(kind: str, folder: Path) -> Iterator[str]:
    """A new empty database; yields its URL. ``kind``: ``postgresql`` or ``sqlite``."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'galsearch.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin = postgres_admin_url()
    name = f"galsearch_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_app(database_url: str, instance: Path, **settings: Any):
    """``create_app`` on ``database_url`` (migrated on creation), with cheap password hashing
    (:func:`make_people` stores production-strength hashes itself)."""
    from argon2 import profiles

    from server.app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET_KEY,
                       "PASSWORD_HASH_PARAMETERS": profiles.CHEAPEST,
                       "CUTOUT_CACHE_DIR": str(instance / "cutouts"),
                       "EXPORTS_DIR": str(instance / "exports"), **settings})


def dispose(app) -> None:
    """Give the setup app's connections back (before the server or a restart needs them)."""
    from server.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def make_people(app, count: int, per_campaign: int, n_objects: int, seeds: int = 2,
                seed: int = 0) -> list[tuple[str, int]]:
    """``count`` users (``person0000``, ...; password :data:`PASSWORD`) in campaigns of
    ``per_campaign`` members (the first one owns it, the others label), each campaign with
    ``seeds`` random object seeds; returns (username, campaign id) per person.

    Every user gets the same argon2 hash made once with the server's production parameters, so
    signing in costs the server one verification (as for a real user) and no re-hash.
    """
    from argon2 import PasswordHasher

    from server.auth.accounts import create_user
    from server.auth.passwords import DEFAULT_PARAMETERS
    from server.extensions import db
    from server.models import Campaign, CampaignSeed, Membership, Role, SeedKind

    strong_hash = PasswordHasher.from_parameters(DEFAULT_PARAMETERS).hash(PASSWORD)
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    with app.app_context():
        users = [create_user(f"person{i:04d}", PASSWORD) for i in range(count)]
        for user in users:
            user.password_hash = strong_hash
        db.session.flush()
        for start in range(0, count, per_campaign):
            team = users[start:start + per_campaign]
            campaign = Campaign(name=f"bench {start // per_campaign}", target="lens",
                                settings={}, created_by_id=team[0].id)
            db.session.add(campaign)
            db.session.flush()
            db.session.add_all(Membership(campaign_id=campaign.id, user_id=u.id,
                                          role=Role.OWNER if u is team[0] else Role.LABELER)
                               for u in team)
            db.session.add_all(CampaignSeed(campaign_id=campaign.id, kind=SeedKind.OBJECT,
                                            object_id=rng.randrange(n_objects),
                                            added_by_id=team[0].id) for _ in range(seeds))
            out += [(u.username, campaign.id) for u in team]
        db.session.commit()
        db.session.remove()
    return out


@dataclass
class Served:
    """What :func:`served` set up."""

    server: Gunicorn | Fronted
    app: Any  # the setup app, on the same database (reads what the server stored)
    people: list[tuple[str, int]]  # (username, campaign id)
    database: str  # postgresql or sqlite
    instance: Path
    database_url: str  # the scratch database (DATABASE_URL)
    env: dict[str, str]  # gunicorn's environment beyond Gunicorn's own (bundle, survey, ...)


@contextlib.contextmanager
def served(database: str, survey: Path, bundle: Path, people: int, per_campaign: int,
           n_objects: int, workers: int | None = None,
           threads: int | None = None, front: str | None = None,
           env: dict[str, str] | None = None) -> Iterator[Served]:
    """A scratch database with ``people`` users in campaigns, and gunicorn serving ``bundle``
    and ``survey`` over it (everything removed afterwards). ``front="nginx"``: behind nginx,
    configured by ``server.front`` as ``galsearch nginx-config`` would (the production set-up:
    cached cutouts sent by nginx); ``Served.server`` is then both. ``env``: more environment
    for gunicorn (after ``workers`` and ``threads``).

    SIGTERM (``kill``, ``pkill``) ends the benchmark as Ctrl-C does, through the clean-up below:
    Python's default would leave the servers running and the scratch database behind."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="galsearch-bench-") as tmp, \
            scratch_database(database, Path(tmp)) as url:
        instance = Path(tmp)
        app = setup_app(url, instance, BUNDLE_PATH=str(bundle), SURVEY_PATH=str(survey))
        made = make_people(app, people, per_campaign, n_objects)
        dispose(app)
        server_env = {"GALSEARCH_BUNDLE": str(bundle), "GALSEARCH_SURVEY": str(survey)}
        if workers:
            server_env["GALSEARCH_WORKERS"] = str(workers)
        if threads:
            server_env["GALSEARCH_THREADS"] = str(threads)
        if front is not None:  # as server/front.py advises: nginx logs every request
            server_env |= {"GALSEARCH_PROXY_COUNT": "1", "GALSEARCH_ACCESS_LOG": "off"}
        server_env |= env or {}
        try:
            with Gunicorn(url, instance, server_env) as server, \
                    _front(front, app, server, instance) as outside:
                try:
                    yield Served(outside, app, made, database, instance, url, server_env)
                except BaseException:
                    print(f"gunicorn's log ends:\n{server.log_path.read_text()[-3000:]}",
                          file=sys.stderr)
                    raise
        finally:
            dispose(app)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _front(front: str | None, app: Any, server: Gunicorn, instance: Path) -> Iterator[Any]:
    if front is None:
        yield server
        return
    if front != "nginx":
        raise ValueError(f"front {front!r}: only nginx is known")
    from server.front import Nginx, front_settings

    settings = front_settings(app, f"127.0.0.1:{free_port()}", f"127.0.0.1:{server.port}")
    with Nginx(settings, instance / "nginx") as nginx:
        yield Fronted(server, nginx)


class Fronted:
    """gunicorn behind nginx, seen as one server: nginx's URL, both one's CPU time."""

    def __init__(self, gunicorn: Gunicorn, nginx: Any) -> None:
        self.gunicorn, self.nginx = gunicorn, nginx
        self.url = nginx.url
        self.log_path = gunicorn.log_path

    def cpu_seconds(self) -> float:
        return self.gunicorn.cpu_seconds() + sum(map(process_cpu_seconds, self.nginx.pids()))


class Gunicorn:
    """gunicorn with the production configuration, on a free loopback port.

    Args:
        database_url: ``DATABASE_URL``.
        instance: the instance folder (cutout cache, exports, log).
        env: more environment (``GALSEARCH_BUNDLE``, ``GALSEARCH_WORKERS``, ...).
        repo: the checkout whose ``server`` package runs (another commit's ``git worktree``, to
            compare two versions; this one by default).
    """

    def __init__(self, database_url: str, instance: Path, env: dict[str, str] | None = None,
                 ready_timeout_s: float = 120.0, repo: Path = REPO) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = instance / "gunicorn.log"
        self.env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY,
                    "GALSEARCH_INSTANCE": str(instance), "GALSEARCH_ENV": "production",
                    "GALSEARCH_BIND": f"127.0.0.1:{self.port}",
                    "GALSEARCH_COOKIE_SECURE": "0",  # plain HTTP on loopback
                    **(env or {})}
        self.ready_timeout_s = ready_timeout_s
        self.repo = Path(repo)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        import requests

        self._log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf"],
            cwd=self.repo, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            try:
                if requests.get(f"{self.url}/api/openapi.json", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"gunicorn did not start; its log:\n"
                                   f"{self.log_path.read_text()[-4000:]}")
            time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def worker_pids(self) -> list[int]:
        """The master's worker processes now."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers so far (a worker that
        exited and was replaced counts from its replacement's start)."""
        assert self.process is not None
        return sum(process_cpu_seconds(pid)
                   for pid in [self.process.pid, *self.worker_pids()])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def percentiles(seconds: list[float]) -> dict[str, float | int | None]:
    """count, p50, p90, p99 and max of latencies, in milliseconds."""
    if not seconds:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(seconds) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"count": len(seconds), "p50_ms": round(float(p50), 2),
            "p90_ms": round(float(p90), 2), "p99_ms": round(float(p99), 2),
            "max_ms": round(float(ms.max()), 2)}



def results_path(name: str, quick: bool) -> Path:
    """``benchmarks/results/<name>.json`` (``<name>_quick.json`` in quick mode)."""
    return REPO / "benchmarks" / "results" / (f"{name}_quick.json" if quick else f"{name}.json")


def write_results(name: str, quick: bool, results: dict[str, Any]) -> Path:
    """Write :func:`results_path`."""
    path = results_path(name, quick)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")
    return path


def load_average() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages (what ``uptime`` shows)."""
    return [round(x, 2) for x in os.getloadavg()]


def _machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _postgres_cpu_seconds() -> float:
    """CPU seconds of the machine's PostgreSQL processes: the live ones, and those that exited
    (counted in the postmaster's children's times)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name != "postgres" and not name.startswith("postgres:"):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] == "1" or not _is_postgres(int(fields[1])):  # the postmaster
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / CLK_TCK


def _postgres_checkpoints() -> tuple[int, int] | None:
    """PostgreSQL's checkpoints so far (timed, requested), from ``pg_stat_bgwriter`` on the
    server of ``TEST_POSTGRES_URL`` (None: not reachable). A checkpoint flushes every changed
    page, and commits meanwhile wait longer for their WAL flush."""
    import psycopg

    try:
        with psycopg.connect(postgres_admin_url(), autocommit=True,
                             connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else (int(row[0]), int(row[1]))


def _is_postgres(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.index("(") + 1:text.rindex(")")].startswith("postgres")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _CollectorPauses:
    """The garbage collector's pauses in this process (the load generator): every request in
    flight during one seems that much slower."""

    def __init__(self) -> None:
        self.pauses_s: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses_s.append(time.perf_counter() - self._started)


_COLLECTOR_PAUSES = _CollectorPauses()


def freeze_client_heap() -> None:
    """Put everything this load generator holds so far (the setup app with its survey and
    bundle, the signed-in browsers) out of the garbage collector's reach, as gunicorn's workers
    do (``server.gunicorn_conf.pre_fork``). Otherwise a collection walks it all while requests
    are in flight: in ``benchmarks/api.py`` one took 47 ms, and the label writes in flight then
    made a cluster of the phase's slowest 2%."""
    gc.collect()
    gc.freeze()


class CpuMeter:
    """Who used the cores between :meth:`start` and :meth:`stop`: the server's processes,
    PostgreSQL, this process (the load generator), and everything else (on the shared machine:
    other people's jobs), each as a share of all cores; the load average at both ends; the
    longest and total pause of this process's garbage collector (client time that looks like
    server latency); and PostgreSQL's checkpoints meanwhile (every database on the server)."""

    def __init__(self, server: Gunicorn | Fronted) -> None:
        self.server = server
        self._pauses = _COLLECTOR_PAUSES

    def start(self) -> None:
        self._pauses0 = len(self._pauses.pauses_s)
        self._checkpoints0 = _postgres_checkpoints()
        self._t0 = time.perf_counter()
        self._server0 = self.server.cpu_seconds()
        self._own0 = _own_cpu_seconds()
        self._busy0 = _machine_busy_seconds()
        self._postgres0 = _postgres_cpu_seconds()
        self._load0 = load_average()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self._t0
        capacity = wall * (os.cpu_count() or 1)
        server = self.server.cpu_seconds() - self._server0
        own = _own_cpu_seconds() - self._own0
        busy = _machine_busy_seconds() - self._busy0
        # every PostgreSQL process of the machine (other people's databases included)
        postgres = _postgres_cpu_seconds() - self._postgres0
        pauses = self._pauses.pauses_s[self._pauses0:]
        now, before = _postgres_checkpoints(), self._checkpoints0
        checkpoints = (None if now is None or before is None else
                       {"timed": now[0] - before[0], "requested": now[1] - before[1]})
        return {"wall_s": round(wall, 2),
                "server_cpu_share": round(server / capacity, 3),
                "postgres_cpu_share": round(postgres / capacity, 3),
                "client_cpu_share": round(own / capacity, 3),
                "others_cpu_share": round(max(0.0, busy - server - postgres - own) / capacity,
                                          3),
                "load_average_before": self._load0, "load_average_after": load_average(),
                "client_gc_pause_ms": {"max": round(1e3 * max(pauses, default=0.0), 1),
                                       "total": round(1e3 * sum(pauses), 1)},
                "postgres_checkpoints": checkpoints}


CPU_HEADER = f"{'server':>7}{'pg':>5}{'client':>7}{'others':>7}{'load':>6}"
CPU_LEGEND = ("server, pg, client, others: the share of all cores used by gunicorn, PostgreSQL, "
              "this load generator and the rest of the machine (other people's jobs); load: "
              "the 1-min load average")


def cpu_columns(row: dict[str, Any]) -> str:
    """A table's CPU columns (:data:`CPU_HEADER`) of a :meth:`CpuMeter.stop` result."""
    return (f"{row['server_cpu_share']:>7.0%}{row['postgres_cpu_share']:>5.0%}"
            f"{row['client_cpu_share']:>7.0%}{row['others_cpu_share']:>7.0%}"
            f"{row['load_average_after'][0]:>6.1f}")


# -- the simulated browser ----------------------------------------------------------------------
class HttpError(Exception):
    """The server's answer could not be read (connection closed, malformed)."""


class _StaleConnection(HttpError):
    """A kept-alive connection the server had closed before it read the request."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    waited_s: float = 0.0  # for a free connection of the browser, before sending

    def data(self) -> Any:
        """The body: parsed JSON, or the bytes."""
        if self.headers.get("content-type", "").startswith("application/json"):
            return json.loads(self.body)
        return self.body


class Browser:
    """One person's HTTP/1.1 client: keep-alive connections (at most ``connections`` at once,
    each dropped after ``keepalive_s`` idle, before gunicorn's 5 s close it), the cookies the
    server sets, and the CSRF header on writes once signed in (:func:`sign_in`)."""

    WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, base_url: str, connections: int = 6, timeout_s: float = 30.0,
                 keepalive_s: float = 4.0) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.timeout_s, self.keepalive_s = timeout_s, keepalive_s
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      json_body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        """Send one request and read the whole answer (``timeout_s`` in all).

        Raises:
            HttpError, OSError, TimeoutError: no (complete) answer.
        """
        target = path + ("?" + urlencode(params) if params else "")
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if json_body is not None:
            lines.append("Content-Type: application/json")
        if body or method in self.WRITES:
            lines.append(f"Content-Length: {len(body)}")
        if self.csrf and method in self.WRITES:
            lines.append(f"X-CSRF-Token: {self.csrf}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        t0 = time.perf_counter()
        async with asyncio.timeout(self.timeout_s):
            async with self._slots:
                waited = time.perf_counter() - t0
                reply = await self._exchange(method, message)
        reply.waited_s = waited
        return reply

    async def _exchange(self, method: str, message: bytes) -> Reply:
        while True:
            reader, writer, reused = await self._connection()
            try:
                writer.write(message)
                await writer.drain()
                reply, keep = await _read_reply(reader, method)
            except _StaleConnection:
                writer.close()
                if reused:
                    continue  # as browsers do: once more on a new connection
                raise
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            self._take_cookies(reply)
            return reply

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self._idle:
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since < self.keepalive_s and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    def _take_cookies(self, reply: Reply) -> None:
        for line in reply.headers.get("set-cookie", "").split("\n"):
            if not line:
                continue
            pair, _, attributes = line.partition(";")
            name, _, value = pair.strip().partition("=")
            if "max-age=0" in attributes.lower().replace(" ", ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


async def _read_reply(reader: asyncio.StreamReader, method: str) -> tuple[Reply, bool]:
    """One response (status, headers, body) and whether the connection may be used again."""
    status_line = await reader.readline()
    if not status_line:
        raise _StaleConnection("the server closed the connection")
    try:
        version, status_text = status_line.decode("latin-1").split(" ", 2)[:2]
        status = int(status_text)
    except ValueError:
        raise HttpError(f"not an HTTP status line: {status_line[:80]!r}") from None
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise HttpError("the connection closed inside the headers")
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        # Set-Cookie may repeat: kept one per line
        headers[name] = (headers[name] + "\n" if name in headers and name == "set-cookie"
                         else "") + value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    try:
        if method == "HEAD" or status in (204, 304) or status < 200:
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body, keep = await reader.read(), False
    except (asyncio.IncompleteReadError, ValueError) as error:
        raise HttpError(f"incomplete body: {error}") from None
    return Reply(status, headers, body), keep


@dataclass
class Latencies:
    """Request latencies by kind (while ``measuring``) and request errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    measuring: bool = True
    on_wire: bool = False  # also note each request's time on the wire (timed)
    # requests sent from this perf_counter time on are also noted as kind + AFTER (load.py:
    # the steady state once every labeler has arrived); None: not split
    split_at: float | None = None

    def note(self, kind: str, seconds: float, status: int) -> None:
        if self.measuring:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 1000:
            self.errors.append(text)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per kind: count, p50/p90/p99/max in ms, and the statuses seen."""
        return {kind: {**percentiles(values),
                       "statuses": {str(k): v for k, v in sorted(self.statuses[kind].items())}}
                for kind, values in sorted(self.latencies.items())}


WIRE = "_on_wire"
AFTER = "_after_split"


async def timed(record: Latencies, kind: str, browser: Browser, method: str, path: str,
                ok: tuple[int, ...] = (200,), **kwargs: Any) -> tuple[int, Any]:
    """One request, its latency noted as ``kind``; returns (status, JSON body or bytes), status
    0 when no answer came. A status outside ``ok`` counts as a request error.

    The latency is what the person waits, from the click; with ``record.on_wire`` the time
    from sending the request to the whole answer (what the server and the network took,
    without waiting for one of the browser's connections) is also noted, as
    ``kind + "_on_wire"``."""
    t0 = time.perf_counter()
    try:
        reply = await browser.request(method, path, **kwargs)
    except (HttpError, OSError, TimeoutError) as error:
        record.error(f"{method} {path}: {type(error).__name__}: {error}")
        return 0, None
    seconds = time.perf_counter() - t0
    kinds = (kind, kind + AFTER) if record.split_at is not None and t0 >= record.split_at \
        else (kind,)
    for noted in kinds:
        record.note(noted, seconds, reply.status)
        if record.on_wire:
            record.note(noted + WIRE, seconds - reply.waited_s, reply.status)
    try:
        data = reply.data()
    except ValueError:
        data = reply.body
    if reply.status not in ok:
        record.error(f"{method} {path}: {reply.status} "
                     f"{data.get('detail', '') if isinstance(data, dict) else ''}")
    return reply.status, data


async def sign_in_all(base_url: str, usernames: list[str], record: Latencies,
                      at_once: int = 8, **browser_options: Any) -> list[Browser]:
    """A signed-in :class:`Browser` per username (``at_once`` sign-ins in flight: each costs
    the server a 64 MiB argon2 verification). Raises RuntimeError when one fails."""

    gate = asyncio.Semaphore(at_once)

    async def one(username: str) -> Browser:
        browser = Browser(base_url, **browser_options)
        for attempt in range(3):  # as the app does after a 503 (database unavailable)
            if attempt:
                await asyncio.sleep(2.0)
            async with gate:
                status, body = await timed(record, "sign_in", browser, "POST", "/api/session",
                                           ok=(200, 503),
                                           json_body={"username": username, "password": PASSWORD})
            if status != 503:
                break
        if status != 200:
            raise RuntimeError(f"{username} could not sign in: {status} {body}")
        browser.csrf = body["csrf_token"]
        return browser

    return list(await asyncio.gather(*(one(name) for name in usernames)))
