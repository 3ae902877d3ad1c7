"""gunicorn settings for production: ``gunicorn -c python:server.gunicorn_conf``.

Sized for a small machine (2 cores): ``workers = 2 x cores + 1`` processes (gunicorn's own
advice), each with 4 threads (``gthread``). Label writes and page requests mostly wait on the
database, so threads keep the cores busy; but a thread whose database answer has come back must
then wait for its process's GIL while a sibling thread computes (up to 5 ms per answer, and a
label write waits for 4 answers), so processes carry the concurrency rather than threads. Under
200 simulated labelers (``benchmarks/load.py``, 100 s) label writes took p50 526 ms with 3
processes of 8 threads and 43 ms with 6 of 4, on the same CPU. Behind nginx, 20 sync workers
(one request each, queued in the kernel's FIFO accept queue) were tried against 5 of 4 threads
(``benchmarks/api.py``, 1M objects, 20 clients, two alternating runs each): pages' p99 193-220
ms against 244-408 ms, but label writes' p99 200-205 ms against 100-285 ms (probably more
transactions at once waiting for the lock on the campaign's probe-job row, the main lock wait in
``pg_stat_activity`` under this load) and no more requests per second in either; gthread stays.
The app is loaded once in the master before forking (``preload_app``), so the search bundle's
memory-mapped files are opened once and their pages shared by every worker, and the database is
upgraded once. Override with the environment:

| variable | default |
|---|---|
| ``GALSEARCH_BIND`` | ``127.0.0.1:8000`` (put a TLS-terminating proxy in front) |
| ``GALSEARCH_WORKERS`` | 2 x cores + 1 |
| ``GALSEARCH_THREADS`` | 4 |
| ``GALSEARCH_TIMEOUT`` | 60 s (a worker silent this long is restarted) |
| ``GALSEARCH_ACCESS_LOG`` | ``-`` (standard output); a file, or ``off`` behind nginx (``galsearch nginx-config``), whose own access log has every request |
| ``GALSEARCH_CONTROL_SOCKET`` | none: gunicorn's control socket (for ``gunicornc``) is off, since its default path is shared by every gunicorn of the user |

``GALSEARCH_ENV`` defaults to ``production`` here: ``SECRET_KEY`` must then be set, and the
session cookie is sent over HTTPS only (``GALSEARCH_COOKIE_SECURE=0`` for a plain-HTTP
intranet).
"""

from __future__ import annotations

import os

os.environ.setdefault("GALSEARCH_ENV", "production")

wsgi_app = "server.app:create_app()"
bind = os.environ.get("GALSEARCH_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GALSEARCH_WORKERS", 2 * (os.cpu_count() or 1) + 1))
worker_class = "gthread"
threads = int(os.environ.get("GALSEARCH_THREADS", 4))
preload_app = True
timeout = int(os.environ.get("GALSEARCH_TIMEOUT", 60))
graceful_timeout = 30  # in-flight requests finish on reload/shutdown
keepalive = 5  # seconds an idle keep-alive connection waits (the SPA makes bursts of calls)
# request line/header bounds (gunicorn's defaults; uploads are bounded by MAX_CONTENT_LENGTH)
limit_request_line = 8190
# one line per request on standard output; "off" behind nginx, which logs every request itself
# (in C: gunicorn's line cost a fifth of the Python time of a cutout rendered under load)
_access_log = os.environ.get("GALSEARCH_ACCESS_LOG", "-")
accesslog = None if _access_log in ("", "off") else _access_log
errorlog = "-"
loglevel = os.environ.get("GALSEARCH_LOG_LEVEL", "info")
control_socket_disable = not os.environ.get("GALSEARCH_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GALSEARCH_CONTROL_SOCKET"]
# X-Forwarded-* are trusted only from the local proxy
forwarded_allow_ips = os.environ.get("GALSEARCH_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker) -> None:
    """Workers render cutouts on their own threads: torch's intra-op thread pool would only add
    contention for 3 x 152 x 152 images."""
    from server.cutouts import render_on_one_thread

    render_on_one_thread()
