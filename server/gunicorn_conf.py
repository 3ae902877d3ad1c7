"""gunicorn settings for production: ``gunicorn -c python:server.gunicorn_conf``.

Sized for a small machine (2 cores): ``workers = 2 x cores + 1`` processes (gunicorn's own
advice), each taking one request at a time (``gthread`` with one thread and one connection,
no keep-alive). Fewer workers are cheaper per request but less robust under many people:
with 3 against 5, side by side in closed loops of one kind (``benchmarks/api_ab.py``, 20
clients), each kind cost the server 4-17% less CPU, but under 250 people labeling at once
(``benchmarks/load.py``, 5-minute runs) 3 workers once fell behind the rendering (pages p99
17 s, cutouts timing out after 30 s) and in the next pair had a label-write p99 of 320 against
126 ms (likely: with one worker a core and one more, a worker waiting on the disk or the
database leaves a core idle while cutouts queue; ``benchmarks/results/api_trials.md``).

A worker accepts a connection only when it is free, so the requests waiting for one queue in
the kernel's accept queue, shared by all workers and served first come, first served. With 4
threads and keep-alive (the set-up before), each worker accepted every connection it was
offered and queued their requests behind its own threads, and a thread back from the database
waited for its process's GIL: under 20 clients a request's
latency then depended on which worker it met, not on the load (``benchmarks/api.py``, 1M
objects, nginx in front: p99 2.7-4.9 x p50, against 1.3-1.6 x now, at the same pages and
label writes per second and 13% fewer rendered cutouts; ``benchmarks/results/api_trials.md``).
Each response closes its connection: nginx in front (``galsearch nginx-config``) opens one per
request over the loopback, and buffers slow clients, so no worker waits on a slow network.
Without nginx, browsers reconnect for every request; ``GALSEARCH_THREADS`` above 1 lets a
worker take that many requests at once.

The app is loaded once in the master before forking (``preload_app``), so the search bundle's
memory-mapped files are opened once and their pages shared by every worker, and the database is
upgraded once. Override with the environment:

| variable | default |
|---|---|
| ``GALSEARCH_BIND`` | ``127.0.0.1:8000`` (put a TLS-terminating proxy in front) |
| ``GALSEARCH_WORKERS`` | 2 x cores + 1 |
| ``GALSEARCH_THREADS`` | 1 (requests a worker serves at once) |
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
threads = int(os.environ.get("GALSEARCH_THREADS", 1))
# a worker holds at most one connection per thread, so it accepts only when it can serve at once
worker_connections = threads
preload_app = True
timeout = int(os.environ.get("GALSEARCH_TIMEOUT", 60))
graceful_timeout = 30  # in-flight requests finish on reload/shutdown
# no keep-alive: an idle connection kept open would hold its worker's only slot
keepalive = 0
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


def pre_fork(server, worker) -> None:
    """Move everything the master has loaded (the app, torch, Faiss, SQLAlchemy: 400,000
    objects) out of the garbage collector's reach before a worker is forked.

    Otherwise each worker's full collections walk all of it: 240-280 ms on this 2-core machine,
    during which the worker's one request waits (a latency spike at every full collection), and
    writing the collector's bookkeeping into every object copies the master's memory pages
    into each worker. Frozen objects are never collected (they live as long as the app anyway);
    what a worker allocates is collected as usual. With it, 20 clients got 408-424 label writes
    a second against 336-337 without (``benchmarks/api.py``, alternating runs). The Python
    documentation advises this for servers that fork (``gc.freeze``).
    """
    import gc

    gc.collect()  # not the garbage: only what is still alive is frozen (fast after the first)
    gc.freeze()
