"""gunicorn with the production configuration (server.gunicorn_conf) in a process of the test's
own, on a free loopback port: for the tests that need real HTTP and real worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    process: subprocess.Popen
    base: str  # http://127.0.0.1:PORT
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The worker processes the master has forked now (its children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def gunicorn(database_url: str, folder: Path, workers: int = 2, threads: int | None = None,
             **env: str) -> Iterator[Served]:
    """gunicorn serving ``database_url`` until the block ends (then SIGTERM); ``threads``: a
    worker's (None: the configuration's own)."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "gunicorn-test",
                   "GALSEARCH_INSTANCE": str(folder), "GALSEARCH_BIND": f"127.0.0.1:{port}",
                   "GALSEARCH_WORKERS": str(workers), "GALSEARCH_COOKIE_SECURE": "0",
                   **({} if threads is None else {"GALSEARCH_THREADS": str(threads)}), **env}
    environment.pop("GALSEARCH_ENV", None)  # the config's own default (production) applies
    log_path = folder / "gunicorn.log"
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf"],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
    served = Served(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{served.base}/api/openapi.json", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(served.log())
            time.sleep(0.2)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
