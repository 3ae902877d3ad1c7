"""``/api/survey``: the survey and bundle described, and random objects drawn under filters."""

from __future__ import annotations

import numpy as np
import pytest

from ml.index import SearchBundle
from ml.survey import Survey
from ml.survey_writer import SurveyWriter
from server.probe.serving import bundle_sha256


@pytest.fixture
def alice(people):
    return people.session("alice")


def test_survey_and_bundle_are_described(alice, bundle_path, survey_path):
    body = alice.get("/api/survey").json
    bundle = SearchBundle.open(bundle_path)
    with Survey(survey_path) as survey:
        assert body["n"] == survey.n
        assert body["image_size"] == survey.image_shape[-1]
        assert body["columns"] == list(survey.columns)
    assert body["bands"] == ["g", "r", "z"] and body["pixel_scale_arcsec"] == 0.262
    assert body["source_types"] is None  # this survey has no source_type column
    mag = np.asarray(bundle.mag_r, dtype=np.float64)
    finite = mag[np.isfinite(mag)]
    assert body["mag_r"] == pytest.approx({"min": finite.min(), "max": finite.max(),
                                           "median": np.median(finite),
                                           "missing": mag.size - finite.size})
    info = body["bundle"]
    assert (info["n"], info["dim"], info["representation"]) == (bundle.n, bundle.dim, "prehead")
    assert info["neighbours_stored"] == 10 and info["mag_window"] == 0.5
    assert info["manifest_sha256"] == bundle_sha256(bundle)
    assert info["model_sha256"] == bundle.manifest["checkpoint"]["sha256"]


def test_random_objects_are_distinct_reproducible_and_filtered(alice, bundle_path):
    mag = np.asarray(SearchBundle.open(bundle_path).mag_r, dtype=np.float64)
    drawn = alice.get("/api/survey/random?count=12&seed=7").json
    ids = [item["object_id"] for item in drawn["items"]]
    assert len(set(ids)) == 12 and all(0 <= i < mag.size for i in ids)
    assert drawn["matching"] == mag.size
    assert alice.get("/api/survey/random?count=12&seed=7").json == drawn
    assert alice.get("/api/survey/random?count=12&seed=8").json != drawn
    assert len(alice.get("/api/survey/random").json["items"]) == 1

    low, high = np.nanpercentile(mag, [25, 75])
    filtered = alice.get(f"/api/survey/random?count=100&mag_r_min={low}&mag_r_max={high}").json
    inside = np.flatnonzero((mag >= low) & (mag <= high))
    assert filtered["matching"] == inside.size
    assert sorted(item["object_id"] for item in filtered["items"]) == inside.tolist()
    assert all(low <= item["mag_r"] <= high for item in filtered["items"])


def test_random_objects_refuse_impossible_filters(alice):
    nothing = alice.get("/api/survey/random?mag_r_min=39&mag_r_max=40")
    assert nothing.status_code == 422 and "no object matches" in nothing.json["detail"]
    crossed = alice.get("/api/survey/random?mag_r_min=22&mag_r_max=18")
    assert crossed.status_code == 422 and "mag_r_min" in crossed.json["errors"]["query"]
    untyped = alice.get("/api/survey/random?source_type=DEV")
    assert untyped.status_code == 422 and "no source_type column" in untyped.json["detail"]
    assert alice.get("/api/survey/random?count=101").status_code == 422


def test_source_types_counted_and_no_bundle_means_no_random_objects(make_app, tmp_path):
    rng = np.random.default_rng(0)
    n = 10
    types = np.array([b"DEV", b"EXP", b"DEV", b"PSF", b"DEV", b"EXP", b"REX", b"DEV", b"PSF",
                      b"EXP"])
    with SurveyWriter(tmp_path / "typed", image_size=8,
                      extra_columns={"source_type": ("S3", ())}) as writer:
        writer.append(rng.normal(0, 0.01, (n, 3, 8, 8)).astype(np.float32), {
            "ra": rng.uniform(0, 1, n), "dec": rng.uniform(0, 1, n),
            "ebv": np.full(n, 0.02, np.float32), "flux": np.ones((n, 3), np.float32),
            "psfsize": np.full((n, 3), 1.3, np.float32),
            "psfdepth": np.full((n, 3), 1e4, np.float32), "source_type": types})
    app = make_app(SURVEY_PATH=str(tmp_path / "typed"))
    from server.auth.accounts import create_user
    from server.extensions import db

    with app.app_context():
        create_user("bob", "bob-password")
        db.session.commit()
    client = app.test_client()
    assert client.get("/api/survey").status_code == 401
    client.post("/api/session", json={"username": "bob", "password": "bob-password"})
    body = client.get("/api/survey").json
    assert body["source_types"] == [{"type": "DEV", "count": 4}, {"type": "EXP", "count": 3},
                                    {"type": "PSF", "count": 2}, {"type": "REX", "count": 1}]
    assert body["n"] == n and body["image_size"] == 8
    assert body["bundle"] is None and body["mag_r"] is None
    no_bundle = client.get("/api/survey/random")
    assert no_bundle.status_code == 503 and "search bundle" in no_bundle.json["detail"]
