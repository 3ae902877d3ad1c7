"""Regressions found by the schemathesis run (tests/server/test_api_fuzz.py): each answered
500 before its fix (some on PostgreSQL only)."""

from __future__ import annotations

import io

import pytest

from server.input_checks import INT32_MAX, INT64_MAX, NUL_MESSAGE


def test_a_bulk_item_without_an_object_id_is_a_422_naming_the_field(people):
    alice = people.session("alice")
    cid = people.campaign("alice")
    response = alice.post(f"/api/campaigns/{cid}/labels/bulk",
                          json={"labels": [{"value": None}, {"object_id": 1, "value": "accept"}]})
    assert response.status_code == 422
    assert "object_id" in response.json["errors"]["json"]["labels"]["0"]


@pytest.mark.parametrize("path", [
    "/api/campaigns/{big}", "/api/campaigns/{big}/sources/catalog",
    "/api/campaigns/{cid}/members/{big}", "/api/campaigns/{cid}/seeds/{big}",
    "/api/campaigns/{cid}/probe/runs/{big}", "/api/users/{big}", "/api/tokens/{big}",
    "/api/campaigns/{cid}/exports/{huge}", "/api/campaigns/{cid}/jobs/{huge}",
    "/api/objects/{huge}",
])
@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_ids_beyond_their_columns_range_are_404(people, path, method):
    """Campaigns, users, tokens, seeds and probe versions have 32-bit ids (PostgreSQL refused
    2**31 with "integer out of range"), the rest 64-bit."""
    root = people.session("root", admin=True)
    cid = people.campaign("root")
    url = path.format(cid=cid, big=INT32_MAX + 1, huge=INT64_MAX + 1)
    response = root.open(method, url, json={})
    assert response.status_code in (404, 405), (url, response.json)  # 405: no such method
    if response.status_code == 404:
        assert "does not exist" in response.json["detail"]


def test_text_with_a_nul_character_is_a_422_naming_the_field(people):
    """PostgreSQL cannot store U+0000 (psycopg refused the query: a 500); SQLite stored it."""
    alice = people.session("alice")
    cid = people.campaign("alice")
    cases = [
        (alice.post("/api/campaigns", json={"name": "lenses\x00"}), "json", "name"),
        (alice.patch(f"/api/campaigns/{cid}", json={"settings": {"source_types": ["D\x00"]}}),
         "json", "settings.source_types.0"),
        (alice.post(f"/api/campaigns/{cid}/exports",
                    json={"format": "csv", "filters": {"labelers": ["\x00"]}}),
         "json", "filters.labelers.0"),
        (alice.get(f"/api/campaigns/{cid}/labels?user=me%00"), "query", "user"),
        (alice.post(f"/api/campaigns/{cid}/imports", content_type="multipart/form-data",
                    data={"file": (io.BytesIO(b"object_id\n1\n"), "t.csv"), "into": "labels",
                          "source": "cat\x00"}), "form", "source"),
    ]
    for response, where, field in cases:
        assert response.status_code == 422, response.json
        assert response.json["errors"][where][field] == [NUL_MESSAGE]
    assert alice.delete(f"/api/campaigns/{cid}/sources/x%00y").status_code == 404
    assert [c["name"] for c in alice.get("/api/campaigns").json] == ["lenses"]


@pytest.mark.parametrize(("path", "limit"), [
    ("jobs?before={v}", INT64_MAX), ("probe/runs?before={v}", INT32_MAX),
    ("labels/history?before={v}", INT64_MAX), ("labels?after={v}", INT64_MAX),
])
def test_page_cursors_beyond_their_columns_range_are_422(people, path, limit):
    """Overflowed SQLite ("Python int too large") and PostgreSQL ("bigint out of range")."""
    alice = people.session("alice")
    cid = people.campaign("alice")
    assert alice.get(f"/api/campaigns/{cid}/" + path.format(v=limit)).status_code == 200
    response = alice.get(f"/api/campaigns/{cid}/" + path.format(v=limit + 1))
    assert response.status_code == 422
    assert set(response.json["errors"]["query"]) == {path.split("?")[1].split("=")[0]}


def test_candidates_when_no_object_passes_the_filters_are_an_empty_page(people, app):
    """A probe-ordered page over no eligible object asked the index for k = 0 (a 500)."""
    from test_authorization import build_world

    world = build_world(people, app)  # a seed and probe version 1
    olga = people.session("olga")
    for order in ("", "&order=similarity", "&order=probe"):
        response = olga.get(f"/api/campaigns/{world.campaign}/candidates"
                            f"?limit=1&mag_r_min=0&mag_r_max=0{order}")
        assert response.status_code == 200, response.json
        assert response.json["items"] == [] and response.json["next_cursor"] is None


def test_an_upload_over_the_size_limit_is_a_413_saying_the_limit(make_app):
    from test_faults import labeler_of_new_campaign

    limit = 100_000  # the body stays in the test client's memory (no temporary file)
    client, cid, csrf = labeler_of_new_campaign(make_app(MAX_CONTENT_LENGTH=limit))
    for url, extra in ((f"/api/campaigns/{cid}/seeds/upload", {}),
                       (f"/api/campaigns/{cid}/imports", {"into": "seeds"})):
        response = client.post(url, headers={"X-CSRF-Token": csrf},
                               content_type="multipart/form-data",
                               data={"file": (io.BytesIO(b"\0" * (limit + 1)), "big.fits"),
                                     **extra})
        assert response.status_code == 413
        assert f"{limit / 2**20:g} MB" in response.json["detail"]
        assert "GALSEARCH_MAX_UPLOAD_MB" in response.json["detail"]
