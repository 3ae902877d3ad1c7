"""nginx in front of the app (server/front.py): cached cutouts sent by nginx with a valid image
pass, and every other request answered by the app as without nginx. A real nginx (Debian's,
installed by the Makefile) in front of the app on werkzeug's threaded server."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from server.auth.image_pass import IMAGE_PASS_COOKIE, image_pass_expires, make_image_pass
from server.front import CUTOUT_SOURCE_HEADER, NGINX, Nginx, front_settings
from server.security_headers import APP_CSP
from tests.server.conftest import PASSWORD_SUFFIX, People
from tests.server.gunicorn_testing import free_port

# make test installs nginx; under CI a missing one fails these tests instead of skipping them
pytestmark = pytest.mark.skipif(not Path(NGINX).exists() and os.environ.get("CI") != "true",
                                reason=f"{NGINX} is not installed (make test installs it)")


@dataclass
class Front:
    url: str
    app: object
    people: People
    cache: Path

    def signed_in(self, name: str) -> requests.Session:
        self.people.user(name)
        browser = requests.Session()
        reply = browser.post(f"{self.url}/api/session",
                             json={"username": name, "password": name + PASSWORD_SUFFIX})
        assert reply.status_code == 200, reply.text
        browser.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        return browser


@pytest.fixture
def front(make_app, bundle_path: Path, tmp_path: Path) -> Iterator[Front]:
    app = make_app(BUNDLE_PATH=str(bundle_path), PROXY_COUNT=1)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = front_settings(app, f"127.0.0.1:{free_port()}",
                                  f"127.0.0.1:{server.server_port}")
        with Nginx(settings, tmp_path / "nginx") as nginx:
            yield Front(nginx.url, app, People(app), Path(app.config["CUTOUT_CACHE_DIR"]))
    finally:
        server.shutdown()
        thread.join()


def _cutout(browser: requests.Session, url: str, object_id: int, **params) -> requests.Response:
    return browser.get(f"{url}/api/objects/{object_id}/cutout.png", params=params)


def test_signing_in_sets_a_valid_image_pass_and_signing_out_deletes_it(front: Front) -> None:
    browser = front.signed_in("ada")
    value = browser.cookies.get(IMAGE_PASS_COOKIE)
    expires = image_pass_expires(value, front.people.ids["ada"], front.app.config["IMAGE_PASS_KEY"])
    assert expires is not None and 0 < expires - time.time() <= 600
    assert image_pass_expires(value, front.people.ids["ada"] + 1,
                              front.app.config["IMAGE_PASS_KEY"]) is None
    assert browser.delete(f"{front.url}/api/session").status_code == 204
    assert IMAGE_PASS_COOKIE not in browser.cookies


def test_a_rendered_cutout_is_sent_by_nginx_with_the_apps_bytes_and_headers(front: Front) -> None:
    browser = front.signed_in("ada")
    first = _cutout(browser, front.url, 34)
    assert first.status_code == 200 and CUTOUT_SOURCE_HEADER not in first.headers  # rendered
    again = _cutout(browser, front.url, 34)
    assert again.status_code == 200
    assert again.headers[CUTOUT_SOURCE_HEADER] == "cache"
    assert again.content == first.content
    for header in ("Cache-Control", "Content-Type", "Content-Security-Policy",
                   "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert again.headers[header] == first.headers[header], header
    assert again.headers["Content-Security-Policy"] == APP_CSP
    # the file is the rendering of exactly that URL: <cache>/current/<last 3 digits>/<name>.png
    assert (front.cache / "current" / "34" / "34_32_1.00.png").read_bytes() == first.content


@pytest.mark.parametrize(("first", "second"), [
    ({"size": 16}, {"size": "16"}),
    ({}, {"size": "32"}),  # the survey's own size
    ({"brightness": 1.5}, {"brightness": "1.5"}),
    ({"brightness": 1.5}, {"brightness": "1.50"}),
    ({"brightness": 2}, {"brightness": "2"}),
    ({"size": 96, "brightness": 0.25}, {"brightness": "0.25", "size": "96"}),
])
def test_equal_queries_in_other_spellings_share_the_cached_file(front: Front, first, second) -> None:
    browser = front.signed_in("ada")
    rendered = _cutout(browser, front.url, 7, **first)
    assert rendered.status_code == 200
    cached = _cutout(browser, front.url, 7, **second)
    assert cached.headers.get(CUTOUT_SOURCE_HEADER) == "cache"
    assert cached.content == rendered.content


@pytest.mark.parametrize("params", [
    {"brightness": "1.504"},  # the app rounds it to 1.50: its answer, not a guess
    {"brightness": "1.50", "size": "016"},
    {"brightness": "1.50", "size": "16", "junk": "1"},
    {"brightness": ["1.50", "1.50"], "size": "16"},
])
def test_other_queries_go_to_the_app(front: Front, params) -> None:
    browser = front.signed_in("ada")
    assert _cutout(browser, front.url, 7, size=16, brightness=1.5).status_code == 200
    reply = _cutout(browser, front.url, 7, **params)
    assert CUTOUT_SOURCE_HEADER not in reply.headers


def test_without_a_valid_pass_the_app_decides(front: Front) -> None:
    browser = front.signed_in("ada")
    assert _cutout(browser, front.url, 41).status_code == 200  # now in the cache
    anonymous = requests.get(f"{front.url}/api/objects/41/cutout.png")
    assert anonymous.status_code == 401 and anonymous.json()["status"] == 401
    key = front.app.config["IMAGE_PASS_KEY"]
    user = front.people.ids["ada"]
    now = int(time.time())
    digest = make_image_pass(user, now + 60, key).split(".")[2]
    # the digest's first character carries 6 of its bits (the last one only 2, and padding)
    tampered = ("B" if digest[0] == "A" else "A") + digest[1:]
    for value in (make_image_pass(user, now - 1, key),  # expired
                  make_image_pass(user, now + 60, "0" * 32),  # signed with another key
                  f"{user}.{now + 60}.{tampered}",  # tampered with
                  f"{user + 1}.{now + 60}.{digest}"):  # someone else's
        stranger = requests.get(f"{front.url}/api/objects/41/cutout.png",
                                cookies={IMAGE_PASS_COOKIE: value})
        assert stranger.status_code == 401, value
    # a valid pass alone is enough for nginx: the cached file, and nothing else
    pass_only = requests.get(f"{front.url}/api/objects/41/cutout.png",
                               cookies={IMAGE_PASS_COOKIE: make_image_pass(user, now + 60, key)})
    assert pass_only.status_code == 200
    assert pass_only.headers[CUTOUT_SOURCE_HEADER] == "cache"
    not_rendered = requests.get(f"{front.url}/api/objects/45/cutout.png",
                                cookies={IMAGE_PASS_COOKIE: make_image_pass(user, now + 60, key)})
    assert not_rendered.status_code == 401


def test_writes_an_unknown_object_and_a_post_to_a_cutout_reach_the_app(front: Front) -> None:
    browser = front.signed_in("ada")
    campaign = front.people.campaign("ada")
    put = browser.put(f"{front.url}/api/campaigns/{campaign}/labels/5", json={"value": "accept"})
    assert put.status_code == 200 and put.json()["value"] == "accept"
    missing = _cutout(browser, front.url, 10**9)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert _cutout(browser, front.url, 5).status_code == 200
    post = browser.post(f"{front.url}/api/objects/5/cutout.png")
    assert post.status_code == 405 and post.json()["status"] == 405


def test_a_body_over_the_limit_gets_the_apis_json_error(front: Front) -> None:
    browser = front.signed_in("ada")
    limit = front.app.config["MAX_CONTENT_LENGTH"]
    reply = browser.post(f"{front.url}/api/campaigns/1/seeds/upload",
                         data=b"0" * (limit + 2**17),
                         headers={"Content-Type": "application/octet-stream"})
    assert reply.status_code == 413
    assert reply.json()["status"] == 413 and "larger than" in reply.json()["detail"]


def test_a_client_cannot_spoof_its_address_through_nginx(front: Front) -> None:
    seen = {}

    @front.app.get("/api/_test_address")
    def _address():
        from flask import request

        seen["address"] = request.remote_addr
        return {}

    requests.get(f"{front.url}/api/_test_address", headers={"X-Forwarded-For": "203.0.113.9"})
    # nginx appends the peer it saw; the app trusts one proxy, so it takes nginx's entry
    assert seen["address"] == "127.0.0.1"
