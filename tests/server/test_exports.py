"""Exports: each format is written by the worker, downloaded, read back (csv, json, astropy,
h5py, zipfile) and compared with the database; filters; a full disk; download rules."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import zipfile

import h5py
import numpy as np
import pytest
from astropy.table import Table
from PIL import Image

import server.exports.task
from ml.probe import ProbeOrder
from server.exports.files import FORMATS, atomic_output
from server.exports.training_set import CODES, stratified_split
from server.extensions import db
from server.jobs.worker import Worker
from server.models import Label, LabelValue, Role, SourceLabel
from server.models.exports import Export
from server.probe.task import retrain
from server.sources import sources
from server.teams.consensus import consensus_labels, consensus_select
from server.teams.rules import TeamRules

VOTES = {  # object: {labeler: value}
    10: {"alice": "accept", "bob": "accept", "carol": "reject"},
    11: {"alice": "accept", "bob": "reject"},
    12: {"alice": "reject", "bob": "reject"},
    13: {"carol": "accept"},
    20: {"alice": "reject"},
    21: {"alice": "unsure", "bob": "accept"},
    22: {"bob": "accept"},
    23: {"carol": "reject"},
    24: {"alice": "reject", "carol": "reject"},
    25: {"bob": "accept", "carol": "accept"},
}
SOURCES = {30: "accept", 13: "reject", 31: "reject"}


@pytest.fixture
def world(people, app, tmp_path, monkeypatch):
    """A team campaign with labels of three labelers, a catalog, and a trained probe."""
    monkeypatch.setitem(app.config, "EXPORTS_DIR", str(tmp_path / "exports"))
    cid = people.campaign("olga", {"alice": Role.LABELER, "bob": Role.LABELER,
                                   "carol": Role.LABELER, "vera": Role.VIEWER})
    with app.app_context():
        for object_id, by_user in VOTES.items():
            for name, value in by_user.items():
                db.session.add(Label(campaign_id=cid, object_id=object_id,
                                     user_id=people.ids[name], value=LabelValue(value)))
        for object_id, value in SOURCES.items():
            db.session.add(SourceLabel(campaign_id=cid, object_id=object_id, source="catalog",
                                       value=LabelValue(value)))
        db.session.commit()
        probe = retrain(cid)
        version, coef, intercept = probe.version, probe.weights, probe.intercept
    return {"cid": cid, "probe": (version, coef, intercept), "app": app, "people": people}


def expected_rows(world) -> dict[int, dict]:
    """The database's view of each exported object: consensus, votes, labels, probe score."""
    app, cid = world["app"], world["cid"]
    with app.app_context():
        rows = {r.object_id: r._asdict() for r in db.session.execute(
            consensus_select(cid, TeamRules()))}
    _, coef, intercept = world["probe"]
    ids = np.array(sorted(rows))
    scores = ProbeOrder(sources(app).bundle, coef, intercept).probability(ids)
    survey = sources(app).survey
    for i, object_id in enumerate(ids.tolist()):
        rows[object_id]["probe_score"] = float(scores[i])
        rows[object_id]["ra"] = float(survey.read_column("ra", [object_id])[0])
    return rows


def run_export(world, client, fmt: str, **body) -> dict:
    response = client.post(f"/api/campaigns/{world['cid']}/exports",
                           json={"format": fmt, **body})
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued"
    assert Worker(world["app"], ["export"], lease_s=5, name="test").run(once=True) == 1
    return client.get(f"/api/campaigns/{world['cid']}/exports/{response.json['id']}").json


def download(world, client, export: dict) -> bytes:
    response = client.get(export["download"])
    assert response.status_code == 200
    fmt = FORMATS[export["format"]]
    assert response.mimetype == fmt.mimetype
    assert response.headers["Content-Disposition"] == \
        f"attachment; filename=lenses-export-{export['id']}.{fmt.extension}"
    data = response.get_data()
    response.close()  # send_file's stream
    assert hashlib.sha256(data).hexdigest() == export["sha256"]
    assert len(data) == export["byte_size"]
    return data


def test_csv_holds_every_voted_object_with_labels_consensus_and_probe(world):
    alice = world["people"].session("alice")
    export = run_export(world, alice, "csv")
    assert export["status"] == "succeeded" and export["progress"] == 1.0
    assert export["probe_version"] == world["probe"][0] and export["created_by"] == "alice"
    expected = expected_rows(world)
    assert export["row_count"] == len(expected) == 12
    rows = list(csv.DictReader(io.StringIO(download(world, alice, export).decode())))
    assert [int(r["object_id"]) for r in rows] == sorted(expected)
    for row in rows:
        want = expected[int(row["object_id"])]
        assert row["consensus"] == (want["consensus"] or "")
        assert row["consensus_basis"] == (want["basis"] or "")
        assert int(row["n_votes"]) == want["n_votes"] and int(row["n_source"]) == want["n_source"]
        assert float(row["probe_score"]) == pytest.approx(want["probe_score"], rel=1e-12)
        assert float(row["ra"]) == want["ra"]
        assert int(row["probe_version"]) == world["probe"][0]
        for name in ("alice", "bob", "carol"):
            assert row[f"label_{name}"] == VOTES.get(int(row["object_id"]), {}).get(name, "")
        assert row["source_catalog"] == SOURCES.get(int(row["object_id"]), "")
    assert {"flux_g", "flux_r", "flux_z", "psfdepth_z", "dec", "ebv"} <= set(rows[0])


def test_json_and_fits_hold_the_same_rows(world):
    olga = world["people"].session("olga")
    expected = expected_rows(world)
    document = json.loads(download(world, olga, run_export(world, olga, "json")))
    assert document["export"]["objects"] == 12 and document["export"]["campaign"] == "lenses"
    objects = {o["object_id"]: o for o in document["objects"]}
    assert set(objects) == set(expected)
    assert objects[10]["labels"] == VOTES[10] and objects[30]["sources"] == {"catalog": "accept"}
    assert objects[13]["consensus"] == "accept" and objects[13]["consensus_basis"] == "labels"
    assert objects[31]["consensus_basis"] == "source"
    assert objects[10]["probe_score"] == pytest.approx(expected[10]["probe_score"])
    assert len(objects[10]["catalog"]["flux"]) == 3

    fits_export = run_export(world, olga, "fits")
    table = Table.read(io.BytesIO(download(world, olga, fits_export)), format="fits")
    assert table.meta["EXTNAME"] == "OBJECTS" and table.meta["PROBEVER"] == world["probe"][0]
    assert list(table["object_id"]) == sorted(expected)
    for row in table:
        want = expected[int(row["object_id"])]
        consensus = row["consensus"]
        assert (None if np.ma.is_masked(consensus) else consensus) == want["consensus"]
        assert row["probe_score"] == pytest.approx(want["probe_score"])
        assert int(row["n_accept"]) == want["n_accept"]
        label = row["label_alice"]
        assert (None if np.ma.is_masked(label) else label) == \
            VOTES.get(int(row["object_id"]), {}).get("alice")


@pytest.mark.parametrize("cutout_size", [None, 16])
def test_hdf5_training_set(world, cutout_size):
    olga = world["people"].session("olga")
    options = {"validation_fraction": 0.5, "seed": 3}
    if cutout_size:
        options["cutout_size"] = cutout_size
    export = run_export(world, olga, "hdf5", options=options)
    expected = expected_rows(world)
    survey = sources(world["app"]).survey
    with h5py.File(io.BytesIO(download(world, olga, export)), "r") as f:
        ids = f["object_id"][:]
        assert ids.tolist() == sorted(expected)
        side = cutout_size or 32
        assert f["images"].shape == (12, 3, side, side) and f.attrs["cutout_size"] == side
        start = (32 - side) // 2
        full = survey.read_images(ids)
        np.testing.assert_array_equal(f["images"][:],
                                      full[:, :, start:start + side, start:start + side])
        codes = json.loads(f["consensus"].attrs["codes"])
        for i, object_id in enumerate(ids.tolist()):
            assert f["consensus"][i] == codes[expected[object_id]["consensus"] or "none"]
            assert f["votes"][i].tolist() == [expected[object_id][k] for k in
                                              ("n_accept", "n_reject", "n_unsure")]
        labelers = json.loads(f["labels"].attrs["labelers"])
        assert labelers == ["alice", "bob", "carol"]
        row_10 = ids.tolist().index(10)
        assert f["labels"][row_10].tolist() == [CODES["accept"], CODES["accept"],
                                               CODES["reject"]]
        assert json.loads(f["source_labels"].attrs["sources"]) == ["catalog"]
        np.testing.assert_allclose(f["probe_score"][:],
                                   [expected[o]["probe_score"] for o in ids], rtol=1e-6)
        split = f["split"][:]
        assert f["split"].attrs["seed"] == 3
        np.testing.assert_array_equal(split, stratified_split(f["consensus"][:], 0.5, 3))
        np.testing.assert_allclose(f["ra"][:], survey.read_column("ra", ids))
        assert f["catalog/flux"].shape == (12, 3)


def test_the_split_is_stratified_and_seeded():
    codes = np.array([1] * 10 + [0] * 30 + [-1] * 5, dtype=np.int8)
    split = stratified_split(codes, 0.2, seed=7)
    assert [int(split[codes == c].sum()) for c in (1, 0, -1)] == [2, 6, 1]
    np.testing.assert_array_equal(split, stratified_split(codes, 0.2, seed=7))
    assert not np.array_equal(split, stratified_split(codes, 0.2, seed=8))


def test_zooniverse_subject_set(world):
    olga = world["people"].session("olga")
    export = run_export(world, olga, "zooniverse", options={"image_size": 64},
                        filters={"consensus": ["accept"]})
    with zipfile.ZipFile(io.BytesIO(download(world, olga, export))) as zf:
        manifest = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))
        with app_context(world):
            accepted = consensus_labels(world["cid"], TeamRules())
        want = [int(o) for o, v in zip(*accepted, strict=True) if v == "accept"]
        assert [int(r["#object_id"]) for r in manifest] == want
        for row in manifest:
            assert row["image"] == f"{row['#object_id']}.png"
            assert row["#consensus"] == "accept" and row["#campaign"] == "lenses"
            image = Image.open(io.BytesIO(zf.read(row["image"])))
            assert image.size == (64, 64) and image.mode == "RGB"
        assert sorted(zf.namelist()) == sorted(["manifest.csv", *[r["image"] for r in manifest]])


def app_context(world):
    return world["app"].app_context()


def test_filters_by_consensus_labeler_and_probe_score(world):
    olga = world["people"].session("olga")
    expected = expected_rows(world)

    def exported(**filters) -> list[int]:
        export = run_export(world, olga, "csv", filters=filters)
        assert export["filters"]["consensus"] == filters.get("consensus")
        rows = csv.DictReader(io.StringIO(download(world, olga, export).decode()))
        return [int(r["object_id"]) for r in rows]

    assert exported(consensus=["reject", "none"]) == sorted(
        o for o, r in expected.items() if r["consensus"] in ("reject", None))
    assert exported(labelers=["carol"]) == sorted(
        o for o, by_user in VOTES.items() if "carol" in by_user)
    threshold = float(np.median([r["probe_score"] for r in expected.values()]))
    assert exported(min_probe_score=threshold) == sorted(
        o for o, r in expected.items() if r["probe_score"] >= threshold)


def test_a_full_disk_fails_cleanly_and_leaves_no_file(world, monkeypatch, tmp_path):
    def full_disk(path, table, meta, progress, options):
        with open(path, "wb") as f:
            f.write(b"object_id\n1\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(server.exports.task.WRITERS, "csv", full_disk)
    olga = world["people"].session("olga")
    export = run_export(world, olga, "csv")
    assert export["status"] == "failed" and "full" in export["error"]
    assert export["sha256"] is None and export["download"] is None
    exports = tmp_path / "exports"
    assert [p for p in exports.rglob("*") if p.is_file()] == []  # not even a .part file
    response = olga.get(f"/api/campaigns/{world['cid']}/exports/{export['id']}/file")
    assert response.status_code == 409 and "full" in response.json["detail"]


def test_atomic_output_removes_a_failed_file(tmp_path):
    final = tmp_path / "out" / "export-1.csv"

    def broken(path):
        path.write_text("half")
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        atomic_output(final, broken)
    assert list((tmp_path / "out").iterdir()) == []
    written = atomic_output(final, lambda path: path.write_text("whole"))
    assert final.read_text() == "whole" and written.byte_size == 5
    assert written.sha256 == hashlib.sha256(b"whole").hexdigest()


def test_requests_are_checked_and_files_addressed_by_id_only(world):
    people, cid = world["people"], world["cid"]
    olga, vera = people.session("olga"), people.session("vera")
    url = f"/api/campaigns/{cid}/exports"
    assert vera.post(url, json={"format": "csv"}).status_code == 403
    for body in ({"format": "xlsx"}, {"format": "csv", "options": {"cutout_size": 16}},
                 {"format": "hdf5", "options": {"cutout_size": 64}},
                 {"format": "csv", "filters": {"labelers": ["nobody"]}},
                 {"format": "csv", "filters": {"consensus": ["maybe"]}}):
        assert olga.post(url, json=body).status_code == 422, body
    queued = olga.post(url, json={"format": "csv"}).json
    assert vera.get(f"{url}/{queued['id']}/file").status_code == 409  # not written yet
    Worker(world["app"], ["export"], lease_s=5, name="test").run(once=True)
    listed = vera.get(url).json
    assert [e["id"] for e in listed] == [queued["id"]] and listed[0]["status"] == "succeeded"
    response = vera.get(f"{url}/{queued['id']}/file")
    response.close()
    assert response.status_code == 200  # viewers download
    assert vera.get(f"{url}/../../../etc/passwd").status_code == 404
    assert vera.get(f"{url}/{2**64}").status_code == 404  # no id overflows the database
    assert vera.get(f"/api/campaigns/{2**64}/exports").status_code == 404
    assert vera.delete(f"{url}/{queued['id']}").status_code == 403
    assert olga.delete(f"{url}/{queued['id']}").status_code == 204
    with world["app"].app_context():
        assert db.session.get(Export, queued["id"]) is None
    assert olga.get(f"{url}/{queued['id']}/file").status_code == 404


def test_deleting_the_campaign_deletes_its_files(world, tmp_path):
    olga = world["people"].session("olga")
    export = run_export(world, olga, "csv")
    folder = tmp_path / "exports" / str(world["cid"])
    assert [p.name for p in folder.iterdir()] == [f"export-{export['id']}.csv"]
    assert olga.delete(f"/api/campaigns/{world['cid']}").status_code == 204
    assert not folder.exists()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_an_export_of_nothing_is_a_valid_empty_file(world, fmt):
    olga = world["people"].session("olga")
    export = run_export(world, olga, fmt, filters={"labelers": ["olga"]})  # she labeled none
    assert export["status"] == "succeeded" and export["row_count"] == 0
    data = download(world, olga, export)
    if fmt == "csv":
        assert data.decode().splitlines()[0].startswith("object_id,ra,dec")
        assert len(data.decode().splitlines()) == 1
    elif fmt == "json":
        assert json.loads(data)["objects"] == []
    elif fmt == "fits":
        assert len(Table.read(io.BytesIO(data), format="fits")) == 0
    elif fmt == "hdf5":
        with h5py.File(io.BytesIO(data), "r") as f:
            assert f["images"].shape[0] == 0 and f["split"].shape == (0,)
    else:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.namelist() == ["manifest.csv"]
