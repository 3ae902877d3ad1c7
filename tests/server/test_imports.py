"""Imports: CSV and FITS tables of object ids or positions into seeds or a source's labels, the
match report (unmatched, ambiguous, conflicting) and clear errors for malformed files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from sqlalchemy import select

import server.imports
from ml.survey import Survey
from ml.survey_writer import SurveyWriter
from server.extensions import db
from server.imports import ImportFileError, match, parse_table
from server.models import CampaignSeed, Job, Role, SeedKind, SourceLabel
from server.sky_match import SkyMatcher
from server.sources import sources

ARCSEC = 1 / 3600


# -- the matching, on a survey of chosen positions -------------------------------------------
@pytest.fixture(scope="module")
def close_pair_survey(tmp_path_factory) -> Path:
    """Four objects: a close pair 0.5" apart at (150, 2), one at (151, 2), one at (152, 2.5)."""
    ra = np.array([150.0, 150.0 + 0.5 * ARCSEC / np.cos(np.radians(2.0)), 151.0, 152.0])
    dec = np.array([2.0, 2.0, 2.0, 2.5])
    n = len(ra)
    out = tmp_path_factory.mktemp("pair") / "survey"
    with SurveyWriter(out, image_size=8) as writer:
        writer.append(np.ones((n, 3, 8, 8), np.float32), {
            "ra": ra, "dec": dec, "ebv": np.full(n, 0.02, np.float32),
            "flux": np.ones((n, 3), np.float32), "psfsize": np.full((n, 3), 1.3, np.float32),
            "psfdepth": np.full((n, 3), 1e3, np.float32)})
    return out


def csv_bytes(text: str) -> bytes:
    return text.strip().encode() + b"\n"


def test_positions_match_within_the_tolerance_and_ambiguity_is_reported(close_pair_survey):
    table = parse_table(csv_bytes(f"""
RA,Dec,note
{150.0 + 0.25 * ARCSEC / np.cos(np.radians(2.0)):.9f},2.0,between the pair
151.0,{2.0 + 0.3 * ARCSEC:.9f},0.3 arcsec from object 2
10:04:00.0,+02:00:00,object 2 in sexagesimal
160.0,0.0,nothing near
,,no position
"""))
    sky = SkyMatcher(Survey(close_pair_survey))
    report = match(table, 4, sky, tolerance_arcsec=1.0)
    assert report.rows == 5
    assert report.matched_rows == [2, 3] and report.object_ids == [2, 2]
    assert report.separations_arcsec[0] == pytest.approx(0.3, abs=1e-3)
    assert report.separations_arcsec[1] == pytest.approx(0.0, abs=1e-3)
    [ambiguous] = report.ambiguous
    assert ambiguous["row"] == 1 and ambiguous["nearest_object_id"] in (0, 1)
    assert ambiguous["separation_arcsec"] == pytest.approx(0.25, abs=1e-3)
    assert ambiguous["second_separation_arcsec"] == pytest.approx(0.25, abs=1e-3)
    unmatched = {u["row"]: u for u in report.unmatched}
    assert set(unmatched) == {4, 5}
    assert unmatched[4]["nearest_object_id"] == 3 and unmatched[4]["separation_arcsec"] > 3600
    assert unmatched[5]["reason"] == "no usable ra/dec"
    # with a tolerance below the pair's half-separation nothing is within reach of row 1
    tight = match(table, 4, sky, tolerance_arcsec=0.2)
    assert 1 in {u["row"] for u in tight.unmatched} and tight.ambiguous == []


def test_object_ids_are_checked_against_the_survey():
    table = parse_table(csv_bytes("object_id,label\n3,accept\n99,reject\n0,Unsure"))
    assert table.values == ["accept", "reject", "unsure"]
    report = match(table, 10, None, 1.0)
    assert report.object_ids == [3, 0]
    assert report.unmatched[0]["row"] == 2 and "not in the survey" in \
        report.unmatched[0]["reason"]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "neither FITS nor UTF-8"),
    (b"object_id\n", "no rows"),
    (b"name,mag\nx,1\n", "needs an object id column"),
    (b"object_id\n1.5\n", "integer object ids"),
    (b"object_id,label\n1,lens\n2,accept\n", "row 1: 'lens'"),
    (b"SIMPLE  =                    T / not really FITS", "cannot be read as a FITS"),
])
def test_malformed_files_are_refused_with_a_reason(data, message):
    with pytest.raises(ImportFileError, match=message):
        parse_table(data, "upload")


def test_too_many_rows(monkeypatch):
    monkeypatch.setattr(server.imports, "IMPORT_MAX_ROWS", 2)
    with pytest.raises(ImportFileError, match="at most 2"):
        parse_table(b"object_id\n1\n2\n3\n")


# -- the API ----------------------------------------------------------------------------------
def upload(client, cid: int, data: bytes, name: str = "list.csv", **fields):
    form = {"file": (io.BytesIO(data), name), **{k: str(v) for k, v in fields.items()}}
    return client.post(f"/api/campaigns/{cid}/imports", data=form,
                       content_type="multipart/form-data")


def fits_bytes(columns: dict) -> bytes:
    buffer = io.BytesIO()
    Table(columns).write(buffer, format="fits")
    return buffer.getvalue()


def test_a_catalog_of_known_objects_becomes_source_labels_and_consensus(people):
    cid = people.campaign("olga", {"leo": Role.LABELER})
    olga = people.session("olga")
    body = upload(olga, cid, csv_bytes("object_id,label\n5,accept\n7,reject\n5,accept\n"
                                       "9,accept\n9,reject\n480,accept"),
                  into="labels", source="Jacobs+2019").json
    assert (body["rows"], body["matched"], body["written"]) == (6, 5, 2)
    assert body["conflicting"] == [{"object_id": 9, "rows": [4, 5],
                                    "reason": "rows give this object different labels"}]
    assert body["unmatched_count"] == 1 and body["unmatched"][0]["row"] == 6
    with people.app.app_context():
        stored = dict(db.session.execute(select(SourceLabel.object_id, SourceLabel.value)).all())
    assert stored == {5: "accept", 7: "reject"}
    consensus = olga.get(f"/api/campaigns/{cid}/consensus").json["items"]
    assert [(c["object_id"], c["consensus"], c["basis"]) for c in consensus] == \
        [(5, "accept", "source"), (7, "reject", "source")]
    # the team's vote overrides the catalog; a second import of the source replaces its label
    people.session("leo").put(f"/api/campaigns/{cid}/labels/7", json={"value": "accept"})
    upload(olga, cid, csv_bytes("object_id\n5"), into="labels", source="Jacobs+2019",
           value="unsure")
    consensus = olga.get(f"/api/campaigns/{cid}/consensus").json["items"]
    assert [(c["object_id"], c["consensus"], c["basis"]) for c in consensus] == \
        [(5, "unsure", "source"), (7, "accept", "labels")]
    with people.app.app_context():  # imported labels queue a probe run
        assert db.session.scalar(select(Job.requests).where(
            Job.campaign_id == cid, Job.kind == "probe", Job.status == "queued")) >= 3
    listed = olga.get(f"/api/campaigns/{cid}/sources").json
    assert [(s["source"], s["objects"], s["counts"]) for s in listed] == \
        [("Jacobs+2019", 2, {"accept": 0, "reject": 1, "unsure": 1})]
    assert olga.delete(f"/api/campaigns/{cid}/sources/Jacobs+2019").status_code == 204
    assert olga.get(f"/api/campaigns/{cid}/sources").json == []
    assert olga.delete(f"/api/campaigns/{cid}/sources/Jacobs+2019").status_code == 404


def test_positions_from_a_fits_table_with_a_dry_run(people, app):
    survey = sources(app).survey
    ra, dec = survey.read_column("ra"), survey.read_column("dec")
    cid = people.campaign("olga")
    olga = people.session("olga")
    data = fits_bytes({"RA": [ra[3], ra[8] + 0.4 * ARCSEC, 200.0],
                       "DEC": [dec[3], dec[8], -40.0]})
    dry = upload(olga, cid, data, "known.fits", into="labels", source="SuGOHI",
                 dry_run="true").json
    assert (dry["dry_run"], dry["matched"], dry["written"]) == (True, 2, 2)
    assert dry["unmatched"][0]["row"] == 3 and "nearest_object_id" in dry["unmatched"][0]
    with people.app.app_context():
        assert db.session.query(SourceLabel).count() == 0
    body = upload(olga, cid, data, "known.fits", into="labels", source="SuGOHI").json
    assert body["written"] == 2
    with people.app.app_context():
        assert sorted(db.session.scalars(select(SourceLabel.object_id))) == [3, 8]


def test_seeds_from_ids_and_positions(people, app, monkeypatch):
    survey = sources(app).survey
    ra, dec = survey.read_column("ra"), survey.read_column("dec")
    cid = people.campaign("olga", {"leo": Role.LABELER})
    leo = people.session("leo")
    body = upload(leo, cid, csv_bytes("object_id\n4\n11\n4"), into="seeds").json
    assert (body["matched"], body["written"], body["already_seeds"]) == (3, 2, 0)
    body = upload(leo, cid, csv_bytes(f"ra,dec\n{ra[11]},{dec[11]}\n{ra[20]},{dec[20]}"),
                  into="seeds").json
    assert (body["written"], body["already_seeds"]) == (1, 1)
    with people.app.app_context():
        seeds = db.session.scalars(select(CampaignSeed).order_by(CampaignSeed.id)).all()
        assert [(s.kind, s.object_id) for s in seeds] == [
            (SeedKind.OBJECT, 4), (SeedKind.OBJECT, 11), (SeedKind.SKY, 20)]
        assert seeds[2].separation_arcsec == pytest.approx(0, abs=1e-3)
        assert seeds[0].note == "import list.csv"
    assert leo.get(f"/api/campaigns/{cid}/candidates?limit=3").status_code == 200
    monkeypatch.setattr(server.imports, "SEED_IMPORT_MAX", 2)
    response = upload(leo, cid, csv_bytes("object_id\n1\n2\n3"), into="seeds")
    assert response.status_code == 422 and "at most 2" in response.json["detail"]


def test_errors_say_what_is_wrong(people, app, monkeypatch):
    cid = people.campaign("olga", {"leo": Role.LABELER})
    olga, leo = people.session("olga"), people.session("leo")
    response = upload(olga, cid, b"name\nx\n", into="labels", source="cat")
    assert response.status_code == 422
    assert "object id column" in response.json["errors"]["files"]["file"][0]
    assert upload(olga, cid, csv_bytes("object_id\n1"), into="labels").status_code == 422
    assert upload(olga, cid, csv_bytes("object_id\n1"), into="labels",
                  source="../etc").status_code == 422
    assert upload(leo, cid, csv_bytes("object_id\n1"), into="labels",
                  source="cat").status_code == 403
    assert upload(olga, cid, csv_bytes("object_id\n1"), into="everything").status_code == 422
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    response = upload(olga, cid, b"object_id\n" + b"1\n" * 2000, into="seeds")
    assert response.status_code == 413 and response.json["detail"]
