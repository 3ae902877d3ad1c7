"""The built single-page app at ``/`` (server.spa): client routes, cache headers, API 404s."""

from __future__ import annotations

from pathlib import Path

import pytest

INDEX_HTML = "<!doctype html><title>galsearch</title><script type=module src=/assets/a.js>"


@pytest.fixture
def spa_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX_HTML)
    (folder / "assets" / "index-3f9a1c2b.js").write_text("console.log(1)")
    (folder / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return folder


class BufferedClient:
    """A test client that reads (and so closes) every response: files are sent streamed."""

    def __init__(self, app) -> None:
        self.client = app.test_client()

    def get(self, path: str, **kwargs):
        return self.client.get(path, buffered=True, **kwargs)


@pytest.fixture
def client(make_app, spa_dir: Path) -> BufferedClient:
    return BufferedClient(make_app(SPA_DIR=str(spa_dir)))


@pytest.mark.parametrize("path", ["/", "/campaigns/new", "/campaigns/7/members", "/campaigns"])
def test_client_routes_get_index_html_revalidated_on_every_load(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == INDEX_HTML
    assert response.mimetype == "text/html"
    assert response.cache_control.no_cache
    assert not response.cache_control.immutable


def test_index_answers_304_to_a_matching_etag(client):
    etag = client.get("/campaigns/3").headers["ETag"]
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 304


def test_hashed_assets_are_cached_for_a_year(client):
    response = client.get("/assets/index-3f9a1c2b.js")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "console.log(1)"
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.immutable
    assert response.cache_control.public


def test_a_missing_asset_is_404_not_the_app(client):
    response = client.get("/assets/index-00000000.js")
    assert response.status_code == 404
    assert INDEX_HTML not in response.get_data(as_text=True)


def test_top_level_files_of_the_build_are_served_as_themselves(client):
    response = client.get("/favicon.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.cache_control.max_age == 3600


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/no-such-thing", "/api/campaigns/1/nope"])
def test_unknown_api_paths_are_json_404s_not_the_app(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.is_json
    assert response.json["status"] == 404
    assert response.json["detail"]


def test_the_api_still_answers_beside_the_app(client):
    assert client.get("/api/session").status_code == 401
    assert client.get("/api/openapi.json").is_json


def test_an_unbuilt_app_says_how_to_build_it(make_app, tmp_path):
    client = BufferedClient(make_app(SPA_DIR=str(tmp_path / "never-built")))
    response = client.get("/campaigns/1")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "make demo" in text
    assert "npm run build" in text
