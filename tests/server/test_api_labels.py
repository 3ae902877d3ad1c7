"""Labels: write, idempotent rewrite, clear, bulk (atomic), undo, history, pages, concurrency."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select, update

from server.auth.image_pass import IMAGE_PASS_COOKIE
from server.extensions import db
from server.models import Job, JobStatus, Label, LabelHistory, User
from server.schemas.labels import LabelOut


@pytest.fixture
def labeling(people):
    """alice owns a campaign; returns (alice's client, campaign id, labels url)."""
    alice = people.session("alice")
    cid = people.campaign("alice")
    return alice, cid, f"/api/campaigns/{cid}/labels"


def history_of(client, url: str, **params) -> list[tuple]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    items = client.get(f"{url}/history?{query}").json["items"]
    return [(h["object_id"], h["action"], h["old_value"], h["new_value"]) for h in items]


def test_create_change_and_rewrite(labeling, people):
    alice, cid, url = labeling
    created = alice.put(f"{url}/42", json={"value": "accept"})
    assert created.status_code == 200
    assert created.json == {**created.json, "campaign_id": cid, "object_id": 42,
                            "user_id": people.ids["alice"], "value": "accept", "changed": True}
    same = alice.put(f"{url}/42", json={"value": "accept"})
    assert same.status_code == 200 and same.json["changed"] is False
    assert same.json["updated_at"] == created.json["updated_at"]
    changed = alice.put(f"{url}/42", json={"value": "reject"}).json
    assert changed["value"] == "reject" and changed["changed"] is True
    assert changed["created_at"] == created.json["created_at"]
    assert alice.get(f"{url}/42").json["value"] == "reject"
    # one history entry per real change, newest first
    assert history_of(alice, url) == [(42, "change", "accept", "reject"),
                                      (42, "create", None, "accept")]


def test_clear_is_idempotent(labeling):
    alice, _, url = labeling
    alice.put(f"{url}/7", json={"value": "unsure"})
    cleared = alice.delete(f"{url}/7")
    assert cleared.status_code == 200
    assert cleared.json["value"] is None and cleared.json["changed"] is True
    again = alice.delete(f"{url}/7").json
    assert again["value"] is None and again["changed"] is False
    assert alice.get(f"{url}/7").status_code == 404
    assert history_of(alice, url) == [(7, "delete", "unsure", None), (7, "create", None, "unsure")]


def test_bad_label_writes(labeling):
    alice, _, url = labeling
    assert alice.put(f"{url}/1", json={"value": "maybe"}).status_code == 422
    assert alice.put(f"{url}/1", json={}).status_code == 422
    assert alice.put(f"{url}/1", json={"value": None}).status_code == 422
    assert alice.put(f"{url}/-1", json={"value": "accept"}).status_code == 404  # not a route
    assert alice.put(f"{url}/1", data="accept", content_type="text/plain").status_code == 422
    bad_json = alice.put(f"{url}/1", data="{not json", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json["errors"]


def test_bulk_is_atomic_and_idempotent(labeling):
    alice, _, url = labeling
    alice.put(f"{url}/1", json={"value": "accept"})
    items = [{"object_id": 1, "value": "accept"}, {"object_id": 2, "value": "reject"},
             {"object_id": 3, "value": None}]
    response = alice.post(f"{url}/bulk", json={"labels": items})
    assert response.status_code == 200
    assert [(x["object_id"], x["value"], x["changed"]) for x in response.json] == [
        (1, "accept", False), (2, "reject", True), (3, None, False)]
    # one invalid item: nothing is written
    broken = [*items[:2], {"object_id": 4, "value": "accept"}, {"object_id": 5, "value": "yes"}]
    rejected = alice.post(f"{url}/bulk", json={"labels": broken})
    assert rejected.status_code == 422
    assert alice.get(f"{url}/4").status_code == 404
    duplicates = alice.post(f"{url}/bulk", json={"labels": [
        {"object_id": 9, "value": "accept"}, {"object_id": 9, "value": "reject"}]})
    assert duplicates.status_code == 422 and "9" in str(duplicates.json["errors"])
    assert alice.post(f"{url}/bulk", json={"labels": []}).status_code == 422
    too_many = [{"object_id": i, "value": "accept"} for i in range(1001)]
    assert alice.post(f"{url}/bulk", json={"labels": too_many}).status_code == 422


def test_bulk_of_the_largest_size(labeling, app):
    alice, cid, url = labeling
    items = [{"object_id": i, "value": "reject"} for i in range(1000)]
    assert alice.post(f"{url}/bulk", json={"labels": items}).status_code == 200
    with app.app_context():
        assert db.session.query(Label).filter_by(campaign_id=cid).count() == 1000
        batches = {h.batch for h in db.session.query(LabelHistory).filter_by(campaign_id=cid)}
        assert len(batches) == 1


def test_undo_walks_back_one_write_at_a_time(labeling):
    alice, _, url = labeling
    alice.put(f"{url}/1", json={"value": "accept"})
    alice.put(f"{url}/1", json={"value": "reject"})
    alice.post(f"{url}/bulk", json={"labels": [{"object_id": 2, "value": "unsure"},
                                                {"object_id": 1, "value": None}]})
    undone = alice.post(f"{url}/undo").json  # the bulk write, as a whole
    assert sorted((x["object_id"], x["value"]) for x in undone) == [(1, "reject"), (2, None)]
    assert alice.post(f"{url}/undo").json[0]["value"] == "accept"  # reject -> accept
    assert alice.post(f"{url}/undo").json[0]["value"] is None  # accept -> nothing
    assert alice.post(f"{url}/undo").json == []  # nothing left
    assert alice.get(f"{url}?user=me").json["items"] == []
    entries = alice.get(f"{url}/history").json["items"]
    undos = [e for e in entries if e["undo_of_id"] is not None]
    assert len(undos) == 4 and len(entries) == 8


def test_undo_after_new_writes_reverts_the_newest(labeling):
    alice, _, url = labeling
    alice.put(f"{url}/5", json={"value": "accept"})
    alice.post(f"{url}/undo")
    alice.put(f"{url}/6", json={"value": "reject"})
    assert [x["object_id"] for x in alice.post(f"{url}/undo").json] == [6]
    assert alice.post(f"{url}/undo").json == []  # the write to 5 was already undone


def test_undo_is_per_user(labeling, people):
    alice, cid, url = labeling
    people.user("bob")
    bob = people.session("bob")
    alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "labeler"})
    alice.put(f"{url}/1", json={"value": "accept"})
    bob.put(f"{url}/1", json={"value": "reject"})
    assert [x["user_id"] for x in alice.post(f"{url}/undo").json] == [people.ids["alice"]]
    assert bob.get(f"{url}/1").json["value"] == "reject"


def test_pages_and_filters(labeling, people):
    alice, cid, url = labeling
    bob = people.session("bob")
    alice.post(f"/api/campaigns/{cid}/members", json={"username": "bob", "role": "labeler"})
    alice.post(f"{url}/bulk", json={"labels": [
        {"object_id": i, "value": "accept" if i % 2 else "reject"} for i in range(10)]})
    bob.put(f"{url}/3", json={"value": "unsure"})
    seen, after = [], 0
    while True:
        page = alice.get(f"{url}?limit=4&after={after}").json
        seen += [x["object_id"] for x in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == list(range(10))
    accepts = alice.get(f"{url}?value=accept").json["items"]
    assert [x["object_id"] for x in accepts] == [1, 3, 5, 7, 9]
    assert len(alice.get(f"{url}?user=all&limit=100").json["items"]) == 11
    bobs = alice.get(f"{url}?user={people.ids['bob']}").json["items"]
    assert [(x["object_id"], x["value"]) for x in bobs] == [(3, "unsure")]
    assert alice.get(f"{url}?user=someone").status_code == 422
    assert alice.get(f"{url}?limit=0").status_code == 422


def test_history_pages_go_back_in_time(labeling):
    alice, _, url = labeling
    for i in range(5):
        alice.put(f"{url}/{i}", json={"value": "accept"})
    first = alice.get(f"{url}/history?limit=2").json
    assert [h["object_id"] for h in first["items"]] == [4, 3]
    second = alice.get(f"{url}/history?limit=2&before={first['next_before']}").json
    assert [h["object_id"] for h in second["items"]] == [2, 1]
    assert [h["object_id"] for h in alice.get(f"{url}/history?object_id=2").json["items"]] == [2]


@pytest.mark.parametrize("values", [["accept"] * 8, ["accept", "reject", "unsure", "reject"] * 2])
def test_concurrent_writes_keep_one_label_and_a_consistent_history(people, app, values):
    cid = people.campaign("alice")
    clients = [people.bearer("alice") for _ in values]
    url = f"/api/campaigns/{cid}/labels/99"

    def write(pair):
        client, value = pair
        return client.put(url, json={"value": value}).status_code

    with ThreadPoolExecutor(max_workers=len(values)) as pool:
        statuses = list(pool.map(write, zip(clients, values, strict=True)))
    assert statuses == [200] * len(values)
    with app.app_context():
        labels = db.session.query(Label).filter_by(campaign_id=cid).all()
        history = db.session.query(LabelHistory).filter_by(campaign_id=cid).order_by(
            LabelHistory.id).all()
    assert len(labels) == 1
    # every entry starts where the previous one ended, and the last one is the stored value
    previous = None
    for entry in history:
        assert entry.old_value == previous
        previous = entry.new_value
    assert previous == labels[0].value
    if len(set(values)) == 1:
        assert len(history) == 1


@contextlib.contextmanager
def sql_statements(app) -> Iterator[list[str]]:
    """The SQL statements the app sends meanwhile (whitespace collapsed, upper case)."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()).upper())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _on_labels(statement: str) -> bool:
    """Whether a statement reads or writes the labels or label_history table."""
    return re.search(r"\b(FROM|INTO|UPDATE) (LABELS|LABEL_HISTORY)\b", statement) is not None


def test_a_label_write_reads_the_user_once(labeling, app):
    """Who is calling is read once per request (load_identity, with the membership): nothing
    after the commit reloads the user (the image pass's hook once did, a query per write)."""
    alice, _, url = labeling
    with sql_statements(app) as statements:
        assert alice.put(f"{url}/6", json={"value": "accept"}).status_code == 200
    assert len([s for s in statements if "FROM USERS" in s]) == 1, statements


def test_a_first_label_takes_the_fast_path_and_a_rewrite_the_locking_one(labeling, app):
    """A new label is one INSERT ... ON CONFLICT DO NOTHING and its history row (no locking
    SELECT); on PostgreSQL the whole request is one statement, which also checks the session
    and membership and queues the probe (server.labeling_fast). An existing label is read FOR
    UPDATE and changed. Both store the same things."""
    alice, _, url = labeling
    with sql_statements(app) as statements:
        assert alice.put(f"{url}/5", json={"value": "accept"}).json["changed"] is True
        everything = list(statements)
        first = [s for s in statements if _on_labels(s)]
        statements.clear()
        assert alice.put(f"{url}/5", json={"value": "reject"}).json["changed"] is True
        second = [s for s in statements if _on_labels(s)]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        assert [s.split(" (")[0] for s in first] == ["INSERT INTO LABELS",
                                                      "INSERT INTO LABEL_HISTORY"]
    else:
        assert [s.split(" (")[0] for s in everything] == ["WITH CALLER AS"], everything
        statement = first[0]
        assert "FROM USERS LEFT OUTER JOIN MEMBERSHIPS" in statement
        assert "INSERT INTO LABEL_HISTORY" in statement and "FROM CREATED" in statement
        assert "INSERT INTO JOBS" in statement
    assert "INSERT INTO LABELS" in first[0]
    assert "ON CONFLICT" in first[0] and "DO NOTHING" in first[0]
    assert any(s.startswith("SELECT") and "FOR UPDATE" in s for s in second) or \
        app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")  # SQLite drops FOR UPDATE
    assert any(s.startswith("UPDATE LABELS") for s in second)
    assert history_of(alice, url) == [(5, "change", "accept", "reject"),
                                      (5, "create", None, "accept")]


@pytest.mark.parametrize("ended_by", ["new session version", "deactivation"])
def test_a_label_write_checks_the_session_in_the_database(labeling, people, app, ended_by):
    """A session ended in another process (its user's session version raised, or the user
    deactivated, in the database only: this process has not seen it) cannot write a label,
    even though this process checked the session a moment ago: 401, nothing stored."""
    alice, cid, url = labeling
    assert alice.put(f"{url}/1", json={"value": "accept"}).status_code == 200
    change = ({"session_version": User.session_version + 1} if ended_by == "new session version"
              else {"is_active": False})
    with app.app_context():
        db.session.execute(update(User).where(User.id == people.ids["alice"]).values(change))
        db.session.commit()
    refused = alice.put(f"{url}/2", json={"value": "accept"})
    assert refused.status_code == 401, refused.json
    with app.app_context():
        assert db.session.scalars(select(Label.object_id).where(
            Label.campaign_id == cid)).all() == [1]
        assert db.session.scalar(select(func.count()).select_from(LabelHistory)) == 1


def test_a_first_label_queues_the_probe_as_the_general_path_does(labeling, app):
    """Both ways of writing a label join the campaign's one queued probe job, counting each
    change (on PostgreSQL the first label's statement runs the job's upsert itself)."""
    alice, cid, url = labeling
    assert alice.put(f"{url}/1", json={"value": "accept"}).json["changed"] is True  # first
    assert alice.put(f"{url}/1", json={"value": "reject"}).json["changed"] is True  # change
    assert alice.put(f"{url}/2", json={"value": "unsure"}).json["changed"] is True  # first
    with app.app_context():
        jobs = db.session.execute(select(Job.kind, Job.requests, Job.status).where(
            Job.campaign_id == cid)).all()
    assert [tuple(job) for job in jobs] == [("probe", 3, JobStatus.QUEUED)]


def test_a_refused_label_write_leaves_the_image_pass_alone(labeling):
    """A write whose session was never checked (a bad body: 422 before the view) neither
    renews nor deletes the image pass."""
    alice, _, url = labeling
    response = alice.put(f"{url}/1", json={"value": "maybe"})
    assert response.status_code == 422
    assert not any(c.startswith(f"{IMAGE_PASS_COOKIE}=")
                   for c in response.headers.getlist("Set-Cookie"))


def test_a_label_write_answers_as_its_schema_writes(labeling, people):
    """PUT sends its answer without LabelOut's dump: every field of its type, and dumping what
    the schema reads gives the same JSON back (a new label, the same value again, a change,
    and a token caller, which goes the general way)."""
    alice, _, url = labeling
    schema = LabelOut()
    token = people.bearer("alice")
    bodies = [alice.put(f"{url}/8", json={"value": "accept"}).json,
              alice.put(f"{url}/8", json={"value": "accept"}).json,
              alice.put(f"{url}/8", json={"value": "unsure"}).json,
              token.put(f"{url}/9", json={"value": "reject"}).json]
    assert [b["changed"] for b in bodies] == [True, False, True, True]
    for body in bodies:
        assert set(body) == set(schema.fields)
        assert schema.dump(schema.load(body)) == body
