"""Seeds: an object id, a sky position (nearest object within a tolerance), an uploaded cutout."""

from __future__ import annotations

import io

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from server.extensions import db
from server.models import CampaignSeed
from server.sources import sources


@pytest.fixture
def seeding(people):
    """alice owns a campaign; returns (alice, campaign id, seeds url)."""
    alice = people.session("alice")
    cid = people.campaign("alice")
    return alice, cid, f"/api/campaigns/{cid}/seeds"


@pytest.fixture
def survey(app):
    return sources(app).survey


@pytest.fixture
def bundle(app):
    return sources(app).bundle


def npy_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, image)
    return buffer.getvalue()


def upload(client, url: str, data: bytes, name: str = "cutout.npy", **fields):
    return client.post(f"{url}/upload", data={"file": (io.BytesIO(data), name), **fields},
                       content_type="multipart/form-data")


def test_object_seed(seeding):
    alice, _, url = seeding
    response = alice.post(url, json={"object_id": 4, "note": "a nice ring"})
    assert response.status_code == 201
    assert response.json == {**response.json, "kind": "object", "object_id": 4,
                             "note": "a nice ring", "added_by": "alice", "ra": None}
    listed = alice.get(url).json
    assert [(s["id"], s["object_id"]) for s in listed] == [(response.json["id"], 4)]


def test_object_seed_errors(seeding, bundle):
    alice, _, url = seeding
    assert alice.post(url, json={"object_id": bundle.n}).status_code == 404
    for body in ({}, {"object_id": 1, "ra": 1.0, "dec": 1.0}, {"ra": 1.0},
                 {"object_id": "4"}, {"object_id": -1}, {"ra": 400.0, "dec": 0.0}):
        response = alice.post(url, json=body)
        assert response.status_code == 422, body


def test_sky_seed_finds_the_nearest_object_and_its_separation(seeding, survey):
    alice, _, url = seeding
    ra, dec = float(survey.read_column("ra")[9]), float(survey.read_column("dec")[9])
    exact = alice.post(url, json={"ra": ra, "dec": dec})
    assert exact.status_code == 201
    assert exact.json["kind"] == "sky" and exact.json["object_id"] == 9
    assert exact.json["separation_arcsec"] == pytest.approx(0.0, abs=1e-6)
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(0 * u.deg, 2 * u.arcsec)
    near = alice.post(url, json={"ra": moved.ra.deg, "dec": moved.dec.deg}).json
    assert near["object_id"] == 9 and near["separation_arcsec"] == pytest.approx(2.0, rel=1e-3)
    assert (near["ra"], near["dec"]) == pytest.approx((moved.ra.deg, moved.dec.deg))


def test_sky_seed_outside_the_tolerance(seeding, survey):
    alice, _, url = seeding
    ra, dec = float(survey.read_column("ra")[9]), float(survey.read_column("dec")[9])
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(90 * u.deg, 8 * u.arcsec)
    body = {"ra": moved.ra.deg, "dec": moved.dec.deg}
    refused = alice.post(url, json=body)
    assert refused.status_code == 422
    assert "object 9, is 8.0″ away" in refused.json["detail"]
    accepted = alice.post(url, json={**body, "tolerance_arcsec": 10})
    assert accepted.status_code == 201 and accepted.json["object_id"] == 9


def test_uploaded_cutout_is_embedded_by_the_bundles_model(seeding, survey, bundle, app):
    alice, _, url = seeding
    response = upload(alice, url, npy_bytes(survey.read_images([11])[0]), note="from my disk")
    assert response.status_code == 201, response.json
    assert response.json == {**response.json, "kind": "vector", "object_id": None,
                             "vector_dim": bundle.dim, "note": "from my disk"}
    with app.app_context():
        seed = db.session.get(CampaignSeed, response.json["id"])
        vector = np.frombuffer(seed.vector, dtype="<f4")
        assert seed.vector_model_sha256 == bundle.manifest["checkpoint"]["sha256"]
    cosine = vector @ bundle.vector(11) / np.linalg.norm(vector)
    assert cosine > 0.999  # the same pixels through the same model: the same representation


def test_uploaded_fits_cutout(seeding, survey):
    alice, _, url = seeding
    buffer = io.BytesIO()
    fits.PrimaryHDU(survey.read_images([3])[0].astype(">f4")).writeto(buffer)
    response = upload(alice, url, buffer.getvalue(), name="legacy-cutout.fits")
    assert response.status_code == 201, response.json
    assert response.json["note"] == "legacy-cutout.fits"


@pytest.mark.parametrize(("data", "message"), [
    (b"hello, this is text", "neither FITS nor NumPy"),
    (npy_bytes(np.zeros((4, 32, 32), np.float32)), "shape (3, H, W)"),
    (npy_bytes(np.full((3, 32, 32), np.nan, np.float32)), "NaN"),
    (npy_bytes(np.zeros((3, 16, 16), np.float32)), "central 24 x 24"),
    (npy_bytes(np.array(["a", "b", "c"])), "must be numbers"),
    (b"\x93NUMPY broken", ".npy file cannot be read"),
])
def test_bad_uploads_are_refused_clearly(seeding, data, message):
    alice, _, url = seeding
    response = upload(alice, url, data)
    assert response.status_code == 422
    assert message in response.json["detail"]
    assert alice.get(url).json == []


def test_upload_needs_a_file(seeding):
    alice, _, url = seeding
    response = alice.post(f"{url}/upload", data={"note": "x"}, content_type="multipart/form-data")
    assert response.status_code == 422 and "file" in str(response.json["errors"])


def test_removing_seeds(seeding, people):
    alice, cid, url = seeding
    people.add_users({"leo": False})
    alice.post(f"/api/campaigns/{cid}/members", json={"username": "leo", "role": "labeler"})
    leo = people.session("leo")
    mine = leo.post(url, json={"object_id": 2}).json["id"]
    theirs = alice.post(url, json={"object_id": 3}).json["id"]
    assert leo.delete(f"{url}/{theirs}").status_code == 403
    assert leo.delete(f"{url}/{mine}").status_code == 204
    assert alice.delete(f"{url}/{theirs}").status_code == 204
    assert alice.delete(f"{url}/{theirs}").status_code == 404
    assert alice.get(url).json == []


def test_without_a_bundle_search_answers_503(make_app, survey_path):
    app = make_app(SURVEY_PATH=str(survey_path))
    with app.app_context():
        from server.auth.accounts import create_user

        create_user("alice", "alice-password")
        db.session.commit()
    client = app.test_client()
    csrf = client.post("/api/session", json={"username": "alice",
                                              "password": "alice-password"}).json["csrf_token"]
    cid = client.post("/api/campaigns", json={"name": "x"},
                      headers={"X-CSRF-Token": csrf}).json["id"]
    for response in (client.post(f"/api/campaigns/{cid}/seeds", json={"object_id": 1},
                                 headers={"X-CSRF-Token": csrf}),
                     client.get(f"/api/campaigns/{cid}/candidates")):
        assert response.status_code == 503
        assert "GALSEARCH_BUNDLE" in response.json["detail"]
    # without a bundle an object has no neighbours, but its catalog is there
    detail = client.get("/api/objects/1").json
    assert detail["neighbours"] is None and detail["mag_r"] is None


def test_a_damaged_bundle_stops_the_start_naming_the_file(make_app, bundle_path, tmp_path):
    import shutil

    from ml.index import BundleFileMissingError

    damaged = tmp_path / "bundle"
    shutil.copytree(bundle_path, damaged)
    (damaged / "index.faiss").unlink()
    with pytest.raises(BundleFileMissingError, match=r"index\.faiss"):
        make_app(BUNDLE_PATH=str(damaged))
