"""Every API error has one shape, {status, title, detail} (+ errors for validation)."""

from __future__ import annotations

from sqlalchemy import text

from server.app import create_app
from server.extensions import db

SHAPE = {"status", "title", "detail"}


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nothing/here")
    assert response.status_code == 404
    assert response.is_json and set(response.json) == SHAPE
    assert response.json == {**response.json, "status": 404, "title": "Not Found"}


def test_wrong_method_is_json_405_with_allow(client):
    response = client.put("/api/session")
    assert response.status_code == 405
    assert set(response.json) == SHAPE
    assert {"GET", "POST", "DELETE"} <= set(response.headers["Allow"].split(", "))


def test_too_large_body_is_json_413(app, people):
    alice = people.session("alice")
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = alice.post("/api/campaigns", data=b"x" * (limit + 1),
                          content_type="application/json")
    assert response.status_code == 413
    assert set(response.json) == SHAPE


def test_validation_error_lists_fields(people):
    alice = people.session("alice")
    response = alice.post("/api/campaigns", json={"name": 5, "extra": 1})
    assert response.status_code == 422
    assert set(response.json) == SHAPE | {"errors"}
    assert set(response.json["errors"]["json"]) == {"name", "extra"}


def test_query_validation_error(people):
    alice = people.session("alice")
    cid = people.campaign("alice")
    response = alice.get(f"/api/campaigns/{cid}/labels?limit=many")
    assert response.status_code == 422
    assert "limit" in response.json["errors"]["query"]


def test_outside_the_api_errors_stay_html(client):
    response = client.post("/campaigns/1")  # the web app's pages are GET only
    assert response.status_code == 405
    assert response.mimetype == "text/html"


def test_wrong_method_on_an_unknown_api_path_is_404(client):
    # the web app's catch-all page matches the path for GET; the API has no such route
    response = client.put("/api/no/such/thing", json={})
    assert response.status_code == 404
    assert set(response.json) == SHAPE


def test_unexpected_exception_is_json_500_without_internals(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/boom")
    assert response.status_code == 500
    assert set(response.json) == SHAPE
    assert "secret" not in response.get_data(as_text=True)


def test_sql_bug_is_500_not_503(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/api/bad-sql")
    def bad_sql():
        db.session.execute(text("SELECT * FROM no_such_table"))

    assert app.test_client().get("/api/bad-sql").status_code == 500


def test_unreachable_database_is_503_with_retry_after(tmp_path):
    # nothing listens on port 1: every connection attempt is refused at once
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "AUTO_UPGRADE_DATABASE": False,
                      "SQLALCHEMY_DATABASE_URI":
                          "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2"})
    response = app.test_client().get("/api/campaigns",
                                     headers={"Authorization": "Bearer gst_anything"})
    assert response.status_code == 503
    assert set(response.json) == SHAPE
    assert int(response.headers["Retry-After"]) > 0
