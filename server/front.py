"""nginx in front of gunicorn: cached cutouts sent without Python, everything else proxied.

``galsearch nginx-config`` writes the configuration (:func:`nginx_site`): an ``upstream`` for
gunicorn (a connection per request: each gunicorn worker takes one request at a time and then
closes, so that waiting requests queue fairly in front of all workers; ``server.gunicorn_conf``),
and one ``server`` that

- sends a cutout PNG from the app's disk cache itself when the request carries a valid image
  pass (:mod:`server.auth.image_pass`, checked by nginx's ``secure_link`` module) and the file
  of exactly the rendering asked for exists: ``<cache>/current/<last 3 digits of the
  id>/<id>_<size>_<brightness>.png`` (:mod:`server.cutouts`), with the headers the app would
  send (``Cache-Control``, the security headers);
- passes every other request to the app, which answers as it does without nginx: no pass, an
  expired or forged one, a cutout not rendered yet, a query the map below does not recognise
  (``?brightness=1.234``: the app validates and rounds it). nginx only ever adds a shortcut to
  a file the app wrote for that very URL, so it cannot answer differently from the app, bar
  the ``ETag`` (nginx's own, also strong);
- adds ``X-Forwarded-For`` and ``-Proto`` (set ``GALSEARCH_PROXY_COUNT=1`` so that the app
  trusts them: the sign-in limits count per client address) and answers a body over the
  upload limit with the API's JSON error.

:func:`nginx_standalone` writes a whole ``nginx.conf`` that runs in the foreground as the
app's user, with its pid, logs and temporary files under one folder: for the benchmarks, the
tests, and a one-machine deployment without root (:class:`Nginx` runs one). A system nginx
(:func:`nginx_site` in ``/etc/nginx/conf.d/``) runs its workers as ``www-data``, which must be
able to read the cutout cache (``<instance>/cutouts``: give the folders to its group).

Measured with ``benchmarks/api.py`` (20 clients, 1M objects): see the README's server section.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from server.auth.image_pass import IMAGE_PASS_COOKIE
from server.cutouts import CURRENT_LINK, CUTOUT_CACHE_CONTROL
from server.security_headers import APP_CSP, COMMON_HEADERS, HSTS

NGINX = "/usr/sbin/nginx"
CUTOUT_SOURCE_HEADER = "X-Cutout-Source"  # "cache" on the files nginx sent itself
_BASE64URL_MD5 = "[A-Za-z0-9_-]{22}"
_SIZE, _BRIGHTNESS = "size=[0-9]+", "brightness=[0-9.]+"
_QUERY = (f"({_SIZE}|{_BRIGHTNESS}|{_SIZE}&{_BRIGHTNESS}|{_BRIGHTNESS}&{_SIZE})?")


@dataclass(frozen=True)
class FrontSettings:
    """What the configuration needs to know.

    Args:
        listen: nginx's address (``host:port``, or a port).
        app: gunicorn's address (``GALSEARCH_BIND``).
        cache_dir: the app's cutout cache (``CUTOUT_CACHE_DIR``: ``<instance>/cutouts``).
        native_size: the survey's cutout size (the size of a cutout asked for without one).
        pass_key: :func:`server.auth.image_pass.image_pass_key` of the app's ``SECRET_KEY``.
        max_body_bytes: the app's ``MAX_CONTENT_LENGTH``.
        https: whether clients reach the site over HTTPS (the app's
            ``SESSION_COOKIE_SECURE``): nginx then sends ``Strict-Transport-Security`` too.
    """

    listen: str
    app: str
    cache_dir: Path
    native_size: int
    pass_key: str
    max_body_bytes: int
    https: bool = False


def _quote(value: str) -> str:
    """An nginx string literal (double quotes; the values here hold no variables)."""
    if any(c in value for c in '"\\$\n'):
        raise ValueError(f"cannot quote {value!r} for nginx")
    return f'"{value}"'


def _cutout_headers(https: bool) -> list[str]:
    headers = {"Cache-Control": CUTOUT_CACHE_CONTROL, "Content-Security-Policy": APP_CSP,
               **COMMON_HEADERS, CUTOUT_SOURCE_HEADER: "cache"}
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return [f"add_header {name} {_quote(value)} always;" for name, value in headers.items()]


def nginx_site(settings: FrontSettings) -> str:
    """The ``http``-level part: maps, upstream and server (for ``/etc/nginx/conf.d/``)."""
    s = settings
    root = (Path(s.cache_dir).resolve() / CURRENT_LINK).as_posix()
    too_large = json.dumps({"status": 413, "title": "Request Entity Too Large",
                            "detail": f"the request body is larger than the server accepts "
                                      f"({s.max_body_bytes // 2**20} MB)"})
    cookie = f"$cookie_{IMAGE_PASS_COOKIE}"
    lines = [
        "# galsearch behind nginx (written by `galsearch nginx-config`; see server/front.py)",
        "upstream galsearch_app {",
        f"    server {s.app};",
        "}",
        "# the image pass <user>.<expires>.<md5>: its parts, for secure_link",
        f"map {cookie} $galsearch_pass_user {{",
        f'    "~^(?<galsearch_u>[0-9]+)\\.[0-9]+\\.{_BASE64URL_MD5}$" $galsearch_u;',
        '    default "";',
        "}",
        f"map {cookie} $galsearch_pass {{",
        f'    "~^[0-9]+\\.(?<galsearch_e>[0-9]+)\\.(?<galsearch_h>{_BASE64URL_MD5})$"'
        ' "$galsearch_h,$galsearch_e";',
        '    default "";',
        "}",
        "# the cache file's size and brightness parts of a query; anything else: the app",
        "map $arg_size $galsearch_size {",
        f'    "" {s.native_size};',
        '    "~^(?<galsearch_s>[1-9][0-9]{1,2})$" $galsearch_s;',
        '    default "";',
        "}",
        "map $arg_brightness $galsearch_brightness {",
        '    "" "1.00";',
        '    "~^(?<galsearch_bi>[0-9]{1,2})$" "$galsearch_bi.00";',
        '    "~^(?<galsearch_bd>[0-9]{1,2}\\.[0-9])$" "${galsearch_bd}0";',
        '    "~^(?<galsearch_bf>[0-9]{1,2}\\.[0-9]{2})$" $galsearch_bf;',
        '    default "";',
        "}",
        "# a GET or HEAD with a valid pass, and at most one size and one brightness in the",
        "# query: the file to try",
        'map "$request_method|$secure_link|$galsearch_size|$galsearch_brightness|$args"'
        " $galsearch_cutout {",
        f'    "~^(GET|HEAD)\\|1\\|(?<galsearch_z>[0-9]+)\\|(?<galsearch_b>[0-9.]+)\\|{_QUERY}$"'
        ' "/$galsearch_shard/${galsearch_id}_${galsearch_z}_${galsearch_b}.png";',
        '    default "/.none";',
        "}",
        "server {",
        f"    listen {s.listen};",
        f"    client_max_body_size {s.max_body_bytes + 2**16};",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_read_timeout 120s;",
        "    error_page 413 = @galsearch_too_large;",
        "",
        '    location ~ "^/api/objects/(?<galsearch_id>[0-9]*?(?<galsearch_shard>[0-9]{1,3}))'
        '/cutout\\.png$" {',
        f"        root {_quote(root)};",
        "        secure_link $galsearch_pass;",
        f'        secure_link_md5 "$secure_link_expires $galsearch_pass_user {s.pass_key}";',
        "        default_type image/png;",
        "        etag on;",
        *(f"        {line}" for line in _cutout_headers(s.https)),
        "        try_files $galsearch_cutout @galsearch_app;",
        "    }",
        "    location @galsearch_app {",
        "        proxy_pass http://galsearch_app;",
        "    }",
        "    location / {",
        "        proxy_pass http://galsearch_app;",
        "    }",
        "    location @galsearch_too_large {",
        "        default_type application/json;",
        f"        return 413 '{too_large}';",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def nginx_standalone(settings: FrontSettings, prefix: Path, workers: int = 1) -> str:
    """A whole ``nginx.conf`` run in the foreground, its files under ``prefix``."""
    p = Path(prefix).resolve().as_posix()
    temp = " ".join(f"{kind}_temp_path {p}/tmp/{kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # as root nginx would drop its workers to "nobody", who may not read the app's cache (the
    # instance folder is often private): its workers run as the app's user instead
    user = [f"user {pwd.getpwuid(os.geteuid()).pw_name};"] if os.geteuid() == 0 else []
    return "\n".join([
        "daemon off;",
        *user,
        f"worker_processes {workers};",
        f"pid {p}/nginx.pid;",
        f"error_log {p}/error.log warn;",
        "events { worker_connections 4096; }",
        "http {",
        f"    access_log {p}/access.log combined buffer=64k flush=1s;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    keepalive_timeout 65s;",
        "    server_tokens off;",
        "    types { image/png png; }",
        f"    {temp}",
        *(f"    {line}" for line in nginx_site(settings).splitlines()),
        "}",
    ]) + "\n"


def front_settings(app, listen: str, app_address: str) -> FrontSettings:
    """The settings of ``app`` (a :func:`server.app.create_app`) behind nginx on ``listen``.

    Raises:
        ValueError: the app has no survey or no cutout cache, so nginx has nothing to send.
    """
    from server.sources import sources

    cutouts = sources(app).cutouts
    if cutouts is None or cutouts.cache_root is None:
        raise ValueError("the app has no survey (GALSEARCH_SURVEY) or its cutout cache is off "
                         "(GALSEARCH_CUTOUT_CACHE_MB=0): nginx would have no cutouts to send")
    return FrontSettings(listen=listen, app=app_address,
                         cache_dir=Path(app.config["CUTOUT_CACHE_DIR"]),
                         native_size=cutouts.native_size,
                         pass_key=app.config["IMAGE_PASS_KEY"],
                         max_body_bytes=int(app.config["MAX_CONTENT_LENGTH"]),
                         https=bool(app.config["SESSION_COOKIE_SECURE"]))


class Nginx:
    """nginx in the foreground with a standalone configuration (a context manager).

    Args:
        settings: the configuration's settings (``listen`` must be a free ``host:port``).
        prefix: folder of its configuration, pid, logs and temporary files.
    """

    def __init__(self, settings: FrontSettings, prefix: Path,
                 ready_timeout_s: float = 20.0) -> None:
        if not Path(NGINX).exists():
            raise FileNotFoundError(f"{NGINX} not found: install Debian's nginx package "
                                    "(apt-get install nginx)")
        self.settings = settings
        self.prefix = Path(prefix)
        self.ready_timeout_s = ready_timeout_s
        host, _, port = settings.listen.rpartition(":")
        self.url = f"http://{host or '127.0.0.1'}:{port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Nginx:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "tmp" / kind).mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(nginx_standalone(self.settings, self.prefix))
        self._log = open(self.prefix / "stderr.log", "ab")
        self.process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(self.prefix)],
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        host, _, port = self.settings.listen.rpartition(":")
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self.process.poll() is not None:
                self.__exit__(None, None, None)
                raise RuntimeError(f"nginx exited with {self.process.returncode}: "
                                   f"{(self.prefix / 'error.log').read_text()[-2000:]}")
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise TimeoutError(f"nginx did not listen on {self.settings.listen}") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def pids(self) -> list[int]:
        """The master's pid and its workers'."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [self.process.pid, *map(int, children.read_text().split())]
        except OSError:
            return [self.process.pid]
