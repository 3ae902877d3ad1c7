"""`galsearch ingest --from-legacy-survey` against a local stand-in for the viewer."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner
from fake_viewer import FakeViewer

from ml.ingest.http_client import PoliteClient
from ml.ingest.legacy_survey import IngestIncomplete, build_from_legacy_survey
from ml.survey import Survey
from ml.survey_format import CUTOUT_SIZE
from server.cli import main

SCENARIOS = {  # ra -> behaviour of the fake viewer (see conftest.FakeViewer)
    10.0: "ok", 11.0: "nocoverage", 12.0: "flaky429", 13.0: "flaky503", 14.0: "emptyband",
    15.0: "ok", 16.0: "nomatch", 17.0: "nodepth", 18.0: "ok",
}


def fast_client() -> PoliteClient:
    return PoliteClient(max_attempts=4, backoff_base_s=0.001, backoff_max_s=0.01,
                        rng=random.Random(0))


def write_targets(path, ras, dec: float = 1.5) -> None:
    Table({"RA": list(ras), "Dec": [dec] * len(ras),
           "name": [f"t{i}" for i in range(len(ras))]}).write(path, format="ascii.csv")


def build(viewer, tmp_path, concurrency: int = 3, **kwargs):
    return build_from_legacy_survey(tmp_path / "targets.csv", tmp_path / "survey",
                                    concurrency=concurrency, base_url=viewer.base_url,
                                    progress=False, client=fast_client(), **kwargs)


def test_download_builds_survey_and_reports_skips(viewer, tmp_path):
    viewer.scenarios.update(SCENARIOS)
    write_targets(tmp_path / "targets.csv", SCENARIOS)
    report, counts = build(viewer, tmp_path)
    assert counts == {"downloaded": 7, "cached": 0, "skipped": 2, "failed": 0}  # download stage
    s = Survey(tmp_path / "survey", check_pixels=True)
    assert s.n == 5 and s.image_shape == (3, CUTOUT_SIZE, CUTOUT_SIZE)
    assert s.read_column("input_row").tolist() == [0, 2, 3, 5, 8]
    np.testing.assert_allclose(s.read_column("ra"), [10, 12, 13, 15, 18])  # the targets'
    np.testing.assert_allclose(s.read_column("dec"), 1.5)
    np.testing.assert_allclose(s.read_column("match_sep_arcsec"), 0.3, atol=1e-3)
    np.testing.assert_allclose(s.read_column("flux")[0], [10, 20, 30])
    np.testing.assert_allclose(s.read_column("psfdepth")[0], [1000, 500, 1000 / 3], rtol=1e-6)
    np.testing.assert_allclose(s.read_column("ebv"), 0.031, rtol=1e-6)
    assert s.read_column("objid").tolist() == [17] * 5  # the nearest source, not its neighbour
    assert s.read_column("source_type").tolist() == [b"EXP"] * 5
    assert set(s.read_column("release").tolist()) == {9010}
    assert s.read_column("name").tolist() == [b"t0", b"t2", b"t3", b"t5", b"t8"]
    np.testing.assert_allclose(s.read_images([0])[0].mean(axis=(1, 2)), [0.01, 0.02, 0.03],
                               atol=1e-3)
    reasons = {r["row"]: r["reason"] for r in report.skipped}
    assert sorted(reasons) == [1, 4, 6, 7]
    assert "no coverage" in reasons[1]
    assert "band(s) z are all zero" in reasons[4]
    assert 'no Tractor source within 1.0" (nearest at 3.00")' in reasons[6]
    assert "psfdepth_z is not positive" in reasons[7]
    on_disk = json.loads((tmp_path / "survey" / "ingest_report.json").read_text())
    assert on_disk["n_written"] == 5 and len(on_disk["skipped"]) == 4
    # 404 is final (one request); transient errors were retried until they succeeded
    assert viewer.requests["cutout", 11.0] == 1 and viewer.requests["cat", 11.0] == 0
    assert viewer.requests["cutout", 12.0] == 2 and viewer.requests["cutout", 13.0] == 3
    assert viewer.requests["cutout", 10.0] == 1 and viewer.requests["cat", 10.0] == 1


def test_concurrency_limit_is_respected(tmp_path):
    ras = [20.0 + i for i in range(12)]
    write_targets(tmp_path / "targets.csv", ras)
    with FakeViewer(delay_s=0.05) as slow:
        _, counts = build(slow, tmp_path, concurrency=3)
    assert counts["downloaded"] == 12
    assert slow.max_inflight == 3  # parallel, but never more than asked


def test_resume_after_failures_fetches_only_what_is_missing(viewer, tmp_path):
    ras = [30.0, 31.0, 32.0, 33.0]
    viewer.scenarios.update({31.0: "down", 33.0: "nocoverage"})
    write_targets(tmp_path / "targets.csv", ras)
    with pytest.raises(IngestIncomplete, match=r"1 of 4 target\(s\) failed.*run the same command"):
        build(viewer, tmp_path)
    assert not list((tmp_path / "survey").glob("*.h5"))  # nothing that looks complete
    cache = tmp_path / "survey" / "download"
    assert json.loads((cache / "failed.json").read_text())[0]["ra"] == 31.0
    # an interruption left a partial file, and target 32 without its catalog
    (cache / "junk.cutout.fits.1234abcd.partial").write_bytes(b"half")
    next(cache.glob("32.000000*.cat.fits")).unlink()

    viewer.scenarios[31.0] = "ok"
    before = viewer.requests.copy()
    _, counts = build(viewer, tmp_path)
    assert counts == {"downloaded": 2, "cached": 1, "skipped": 1, "failed": 0}
    fetched = viewer.requests - before
    assert fetched == {("cutout", 31.0): 1, ("cat", 31.0): 1, ("cat", 32.0): 1}
    assert not list(cache.glob("*.partial")) and not (cache / "failed.json").exists()
    assert Survey(tmp_path / "survey").read_column("input_row").tolist() == [0, 1, 2]


def test_allow_failed_builds_without_failed_targets(viewer, tmp_path):
    viewer.scenarios[41.0] = "down"
    write_targets(tmp_path / "targets.csv", [40.0, 41.0])
    report, counts = build(viewer, tmp_path, allow_failed=True)
    assert counts["failed"] == 1 and report.n_written == 1
    assert report.skipped[0]["status"] == "failed" and "503" in report.skipped[0]["reason"]


def test_cli_end_to_end_and_rerun(viewer, tmp_path):
    viewer.scenarios.update({51.0: "nocoverage"})
    write_targets(tmp_path / "targets.csv", [50.0, 51.0, 52.0], dec=-20.0)
    args = ["ingest", "--from-legacy-survey", str(tmp_path / "targets.csv"),
            "--out", str(tmp_path / "survey"), "--base-url", viewer.base_url,
            "--concurrency", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 downloaded, 0 already cached, 1 skipped by the service, 0 failed" in result.output
    assert "wrote 2 objects" in result.output
    before = sum(viewer.requests.values())
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "already holds survey files" in result.output
    assert sum(viewer.requests.values()) == before  # refused before downloading anything
    # a tighter match radius is applied to the cached catalogs: nothing is downloaded again
    result = CliRunner().invoke(main, [*args, "--overwrite", "--match-radius", "0.2"])
    assert result.exit_code == 1
    assert "none of the 3 targets gave a usable object; nothing written" in result.output
    assert Survey(tmp_path / "survey").n == 2  # the earlier survey is untouched
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "0 downloaded, 2 already cached, 1 skipped" in result.output
    assert sum(viewer.requests.values()) == before


def test_targets_table_errors(viewer, tmp_path):
    Table({"ra": [10.0, 400.0], "dec": [0.0, 0.0]}).write(tmp_path / "targets.csv")
    result = CliRunner().invoke(main, ["ingest", "--from-legacy-survey",
                                       str(tmp_path / "targets.csv"), "--out",
                                       str(tmp_path / "s"), "--base-url", viewer.base_url])
    assert result.exit_code == 1 and "row 1 has ra=400.0" in result.output
    Table({"x": [1.0]}).write(tmp_path / "t2.csv")
    result = CliRunner().invoke(main, ["ingest", "--from-legacy-survey", str(tmp_path / "t2.csv"),
                                       "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and "needs 'ra' and 'dec' columns" in result.output
