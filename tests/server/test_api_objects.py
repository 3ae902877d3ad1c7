"""Cutout images: rendering, strong ETags and 304s, the disk cache and its bound, errors."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event

from ml.render import Stretch, png_bytes
from ml.survey import Survey, SurveyError
from server.auth import identity
from server.cutouts import CutoutRenderer
from server.extensions import db
from server.sources import sources


@pytest.fixture
def alice(people):
    return people.session("alice")


@pytest.fixture(scope="module")
def survey_size(survey_path) -> tuple[int, int]:
    """(objects, cutout pixels) of conftest's tiny survey."""
    with Survey(survey_path) as survey:
        return survey.n, survey.image_shape[-1]


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_cutout_is_the_shared_rendering_of_the_survey_pixels(alice, survey_path, survey_size):
    response = alice.get("/api/objects/5/cutout.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert decode(response.data).shape == (survey_size[1], survey_size[1], 3)
    with Survey(survey_path) as survey:
        expected = png_bytes(survey.read_images([5])[0])
    assert response.data == expected
    bigger = alice.get("/api/objects/5/cutout.png?size=96&brightness=2")
    assert decode(bigger.data).shape == (96, 96, 3)
    with Survey(survey_path) as survey:
        assert bigger.data == png_bytes(survey.read_images([5])[0], size=96,
                                        stretch=Stretch(brightness=2.0))


def test_strong_etag_and_conditional_requests(alice):
    first = alice.get("/api/objects/2/cutout.png?size=48")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "private, max-age=86400"
    again = alice.get("/api/objects/2/cutout.png?size=48", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    other = alice.get("/api/objects/2/cutout.png?size=48&brightness=1.5")
    assert other.headers["ETag"] != etag and other.data != first.data
    # brightness is rounded to 0.01: these two are the same image
    a = alice.get("/api/objects/2/cutout.png?brightness=1.234").headers["ETag"]
    b = alice.get("/api/objects/2/cutout.png?brightness=1.2349").headers["ETag"]
    assert a == b


def test_cutouts_are_served_from_the_disk_cache(alice, app):
    renderer = sources(app).cutouts
    first = alice.get("/api/objects/7/cutout.png?size=40").data
    cached = Path(renderer._file_name(renderer.cutout(7, 40, 1.0)))
    assert cached.read_bytes() == first
    cached.write_bytes(b"marker: this came from the cache")
    assert alice.get("/api/objects/7/cutout.png?size=40").data.startswith(b"marker")
    cached.unlink()
    assert alice.get("/api/objects/7/cutout.png?size=40").data == first  # rendered again


def test_cutout_errors(alice, people, survey_size):
    missing = alice.get(f"/api/objects/{survey_size[0]}/cutout.png")
    assert missing.status_code == 404 and "object ids run from 0" in missing.json["detail"]
    for query in ("size=8", "size=600", "brightness=0", "brightness=lots"):
        response = alice.get(f"/api/objects/1/cutout.png?{query}")
        assert response.status_code == 422, query
    assert people.anonymous().get("/api/objects/1/cutout.png").status_code == 401


def test_cutouts_trust_a_session_checked_moments_ago_until_it_ends(people, app, monkeypatch):
    """A cutout right after a checked request reads nothing from the database and sends no
    cookie; ending the user's sessions refuses the next one at once; after
    RECHECK_IMAGES_S the session is checked again."""
    admin = people.session("root", admin=True)
    alice = people.session("alice")
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    assert alice.get("/api/session").status_code == 200  # checked against the database
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = alice.get("/api/objects/1/cutout.png")
        assert response.status_code == 200 and decode(response.data).ndim == 3
        assert statements == [] and "Set-Cookie" not in response.headers
        clock = identity.time.monotonic()
        monkeypatch.setattr(identity.time, "monotonic",
                            lambda: clock + identity.RECHECK_IMAGES_S + 1)
        statements.clear()
        assert alice.get("/api/objects/2/cutout.png").status_code == 200
        assert any("users" in s for s in statements)  # too long ago: checked again
    finally:
        event.remove(engine, "before_cursor_execute", record)
    monkeypatch.undo()
    assert alice.get("/api/objects/1/cutout.png").status_code == 200
    alice_id = people.ids["alice"]
    assert admin.patch(f"/api/users/{alice_id}", json={"is_active": False}).status_code == 200
    assert alice.get("/api/objects/1/cutout.png").status_code == 401  # at once, in this process


def test_without_a_survey_cutouts_answer_503(make_app):
    app = make_app()
    client = app.test_client()
    from server.auth.accounts import create_user
    from server.extensions import db

    with app.app_context():
        create_user("alice", "alice-password")
        db.session.commit()
    signed_in = client.post("/api/session",
                            json={"username": "alice", "password": "alice-password"})
    assert signed_in.status_code == 200
    response = client.get("/api/objects/1/cutout.png")
    assert response.status_code == 503
    assert "GALSEARCH_SURVEY" in response.json["detail"]


def test_a_bad_survey_stops_the_start(make_app, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SurveyError, match="no survey files"):
        make_app(SURVEY_PATH=str(tmp_path / "empty"))


def test_prune_keeps_the_cache_under_its_limit_newest_first(survey_path, survey_size, tmp_path):
    n_objects = survey_size[0]
    with Survey(survey_path) as survey:
        renderer = CutoutRenderer(survey, tmp_path / "cache", cache_max_bytes=10**9)
        sizes = {}
        for object_id in range(n_objects):
            cutout = renderer.cutout(object_id, 64)
            data, from_cache = renderer.png(cutout)
            assert not from_cache
            path = renderer._file_name(cutout)
            sizes[object_id] = len(data)
            stamp = time.time() - 1000 + object_id  # object 0 is the oldest
            os.utime(path, (stamp, stamp))
        total = sum(sizes.values())
        renderer.cache_max_bytes = total // 2
        deleted = renderer.prune()
        left = sorted(int(p.name.split("_")[0]) for p in (tmp_path / "cache").rglob("*.png"))
    assert deleted > total // 2 and total - deleted <= 0.8 * (total // 2)
    assert left == list(range(n_objects - len(left), n_objects))  # the newest stay
    assert renderer.png(renderer.cutout(n_objects - 1, 64))[1] is True


def test_the_cache_is_sharded_by_the_ids_last_digits_and_current_names_it(survey_path, tmp_path):
    """The layout a front server reads (server/front.py): <cache>/current/<last three digits of
    the id>/<id>_<size>_<brightness>.png, ``current`` pointing at the survey's folder, and put
    back when the cache was deleted meanwhile."""
    import shutil

    with Survey(survey_path) as survey:
        renderer = CutoutRenderer(survey, tmp_path / "cache", cache_max_bytes=10**9)
        current = tmp_path / "cache" / "current"
        assert current.is_symlink() and current.resolve() == renderer.cache_root
        data, _ = renderer.png(renderer.cutout(7, 16, 1.5))
        assert (current / "7" / "7_16_1.50.png").read_bytes() == data
        assert renderer._file_name(renderer.cutout(12345, 16)).endswith("/345/12345_16_1.00.png")
        shutil.rmtree(tmp_path / "cache")
        again, from_cache = renderer.png(renderer.cutout(7, 16, 1.5))
        assert not from_cache and again == data
        assert (current / "7" / "7_16_1.50.png").read_bytes() == data
        other = CutoutRenderer(survey, tmp_path / "cache", cache_max_bytes=10**9)
        other._tag = "v0-another"  # another survey or renderer takes the link over
        other._point_current_link()
        assert os.readlink(current) == "v0-another"


def test_object_detail(alice, app):
    bundle = sources(app).bundle
    response = alice.get("/api/objects/9?neighbours=5")
    assert response.status_code == 200
    body = response.json
    survey = sources(app).survey
    assert body["object_id"] == 9
    assert body["ra"] == pytest.approx(float(survey.read_column("ra")[9]))
    assert body["catalog"]["flux"] == pytest.approx(survey.read_column("flux")[9].tolist())
    assert set(body["catalog"]) == set(survey.columns)
    assert body["mag_r"] == pytest.approx(float(bundle.mag_r[9]))
    assert f"ra={body['ra']:.6f}" in body["viewer_url"]
    assert body["viewer_url"].startswith("https://www.legacysurvey.org/viewer?")
    ids, sims = bundle.neighbours(9, 5)
    assert [n["object_id"] for n in body["neighbours"]] == ids.tolist()
    assert [n["score"] for n in body["neighbours"]] == pytest.approx(sims.tolist())
    assert alice.get("/api/objects/9?neighbours=0").json["neighbours"] == []
    windowed = alice.get("/api/objects/9?neighbours=5&mag_window=0.5").json["neighbours"]
    assert [n["object_id"] for n in windowed] == bundle.neighbours(9, 5, mag_window=0.5)[0].tolist()


def test_object_detail_errors(alice, survey_size):
    assert alice.get(f"/api/objects/{survey_size[0]}").status_code == 404
    assert alice.get("/api/objects/1?neighbours=1000").status_code == 422
