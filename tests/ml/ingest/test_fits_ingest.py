"""`galsearch ingest FITS_DIR --catalog`: cutouts written with astropy become a valid survey."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from click.testing import CliRunner
from fake_viewer import cutout_hdul, tractor_rows

from ml.ingest.fits_cutouts import CutoutError, read_cutout
from ml.survey import Survey
from server.cli import main

SIZE = 16
N = 5


def write_inputs(tmp_path, fmt: str = "csv", **catalog_overrides):
    """N cutouts (cutout 1 with bands stored z, r, g) and a catalog with upper-case names."""
    fits_dir = tmp_path / "cutouts"
    fits_dir.mkdir()
    names = []
    for i in range(N):
        bands = "zrg" if i == 1 else "grz"
        cutout_hdul(150.0 + i, 2.0, SIZE, bands, seed=i).writeto(fits_dir / f"obj{i}.fits")
        names.append(f"obj{i}.fits")
    rows = tractor_rows(150.0, 2.0, n=N)
    rows["ra"] = 150.0 + np.arange(N)
    table = Table({k.upper(): v for k, v in rows.items()})
    table["file"] = names
    table["name"] = [f"galaxy {i}" for i in range(N)]
    table["z_spec"] = np.linspace(0.1, 0.5, N)
    for key, value in catalog_overrides.items():
        table[key] = value
    path = tmp_path / f"catalog.{fmt}"
    table.write(path, format="ascii.csv" if fmt == "csv" else "fits")
    return fits_dir, path


def run(*args):
    return CliRunner().invoke(main, ["ingest", *map(str, args)])


def test_fits_ingest_round_trip(tmp_path):
    fits_dir, catalog = write_inputs(tmp_path)
    out = tmp_path / "survey"
    result = run(fits_dir, "--catalog", catalog, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {N} objects" in result.output
    s = Survey(out, check_pixels=True)
    assert s.n == N and s.image_shape == (3, SIZE, SIZE)
    images = s.read_images(range(N))
    for i in range(N):
        with fits.open(fits_dir / f"obj{i}.fits") as hdul:
            data = hdul[0].data.astype(np.float32)
        want = data[::-1] if i == 1 else data  # obj1 was stored z, r, g
        np.testing.assert_array_equal(images[i], want)
    # planes are g, r, z whatever the file's order (g ~ 0.01, r ~ 0.02, z ~ 0.03)
    np.testing.assert_allclose(images[1].mean(axis=(1, 2)), [0.01, 0.02, 0.03], atol=1e-3)
    np.testing.assert_allclose(s.read_column("ra"), 150.0 + np.arange(N))
    np.testing.assert_allclose(s.read_column("flux")[0], [10, 20, 30])
    np.testing.assert_allclose(s.read_column("psfsize")[0], [1.5, 1.4, 1.3], rtol=1e-6)
    assert s.read_column("source_type").tolist() == [b"EXP"] * N
    assert s.read_column("objid").dtype == np.int64
    assert s.read_column("name")[2] == b"galaxy 2"
    np.testing.assert_allclose(s.read_column("z_spec"), np.linspace(0.1, 0.5, N))
    assert s.read_column("input_row").tolist() == list(range(N))
    assert {"release", "brickid"} <= set(s.columns) and "file" not in s.columns
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["n_written"] == N and report["skipped"] == []


def test_fits_catalog_with_vector_columns(tmp_path):
    fits_dir, _ = write_inputs(tmp_path)
    rows = tractor_rows(150.0, 2.0, n=N)
    table = Table({"RA": 150.0 + np.arange(N), "DEC": np.full(N, 2.0), "EBV": rows["ebv"],
                   "FLUX": np.tile([1.0, 2.0, 3.0], (N, 1)),
                   "PSFSIZE": np.full((N, 3), 1.2), "PSFDEPTH": np.full((N, 3), 900.0),
                   "FILE": [f"obj{i}.fits" for i in range(N)]})
    table.write(tmp_path / "cat.fits")
    result = run(fits_dir, "--catalog", tmp_path / "cat.fits", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(Survey(tmp_path / "s").read_column("flux", [3]), [[1, 2, 3]])


def corrupt(fits_dir, i: int, how: str) -> None:
    path = fits_dir / f"obj{i}.fits"
    if how == "not fits":
        path.write_bytes(b"not a FITS file at all" * 200)
        return
    if how == "missing":
        path.unlink()
        return
    hdul = {"gri": lambda: cutout_hdul(0, 0, SIZE, "gri"),
            "scale": lambda: cutout_hdul(0, 0, SIZE, scale_arcsec=0.5),
            "size": lambda: cutout_hdul(0, 0, SIZE * 2),
            "2d": lambda: fits.HDUList([fits.PrimaryHDU(np.ones((SIZE, SIZE), np.float32))]),
            }.get(how, lambda: cutout_hdul(0, 0, SIZE))()
    if how == "nan":
        hdul[0].data[1, 3, 4] = np.nan
    if how == "empty z":
        hdul[0].data[2] = 0.0
    hdul.writeto(path, overwrite=True)


@pytest.mark.parametrize(("how", "message"), [
    ("nan", "1 NaN or inf pixel"),
    ("empty z", "band(s) z are all zero"),
    ("gri", "bands gri in the header; a survey needs g, r, z"),
    ("scale", "pixel scale 0.5000\"/pixel"),
    ("size", "32x32 pixels but the other cutouts are 16x16"),
    ("2d", "no 3-D image"),
    ("not fits", "not a readable FITS file"),
    ("missing", "no such file"),
])
def test_bad_cutout_stops_and_writes_nothing(tmp_path, how, message):
    fits_dir, catalog = write_inputs(tmp_path)
    corrupt(fits_dir, 3, how)
    out = tmp_path / "survey"
    result = run(fits_dir, "--catalog", catalog, "--out", out)
    assert result.exit_code == 1
    assert "catalog row 3 (obj3.fits)" in result.output and message in result.output
    assert "--skip-bad" in result.output
    assert not list(out.glob("*.h5")) and not list(out.glob("*.tmp"))


def test_skip_bad_leaves_rows_out_and_reports_them(tmp_path):
    fits_dir, catalog = write_inputs(tmp_path, PSFDEPTH_Z=[900.0, 900.0, 0.0, 900.0, 900.0])
    corrupt(fits_dir, 4, "nan")
    out = tmp_path / "survey"
    result = run(fits_dir, "--catalog", catalog, "--out", out, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "left out 2 bad row(s)" in result.output
    s = Survey(out)
    assert s.read_column("input_row").tolist() == [0, 1, 3]
    report = json.loads((out / "ingest_report.json").read_text())
    assert [r["row"] for r in report["skipped"]] == [2, 4]
    assert "psfdepth_z is not positive" in report["skipped"][0]["reason"]
    assert "NaN" in report["skipped"][1]["reason"]


@pytest.mark.parametrize(("drop", "message"), [
    ("file", "has no 'file' column"),
    ("PSFDEPTH_Z", r"lacks required column\(s\) psfdepth_z"),
    ("EBV", r"lacks required column\(s\) ebv"),
])
def test_catalog_missing_columns(tmp_path, drop, message):
    fits_dir, catalog = write_inputs(tmp_path)
    table = Table.read(catalog, format="ascii.csv")
    table.remove_column(drop)
    table.write(catalog, format="ascii.csv", overwrite=True)
    result = run(fits_dir, "--catalog", catalog, "--out", tmp_path / "s")
    assert result.exit_code == 1
    assert message.replace("\\", "") in result.output


def test_catalog_bad_values_and_format(tmp_path):
    fits_dir, catalog = write_inputs(tmp_path, DEC=[2.0, 2.0, 95.0, 2.0, 2.0])
    result = run(fits_dir, "--catalog", catalog, "--out", tmp_path / "s")
    assert result.exit_code == 1 and "catalog row 2" in result.output
    assert "dec is outside [-90, 90]" in result.output
    (tmp_path / "cat.txt").write_text("file ra dec\n")
    result = run(fits_dir, "--catalog", tmp_path / "cat.txt", "--out", tmp_path / "s")
    assert result.exit_code == 1 and "give a .fits or .csv file" in result.output


def test_existing_survey_needs_overwrite_and_usage_errors(tmp_path):
    fits_dir, catalog = write_inputs(tmp_path)
    out = tmp_path / "survey"
    assert run(fits_dir, "--catalog", catalog, "--out", out).exit_code == 0
    result = run(fits_dir, "--catalog", catalog, "--out", out)
    assert result.exit_code == 1 and "already holds survey files" in result.output
    assert run(fits_dir, "--catalog", catalog, "--out", out, "--overwrite").exit_code == 0
    assert Survey(out).n == N
    result = run(fits_dir, "--out", out)
    assert result.exit_code == 2 and "needs --catalog" in result.output
    result = run("--out", out)
    assert result.exit_code == 2 and "give either FITS_DIR" in result.output


def test_read_cutout_direct(tmp_path):
    cutout_hdul(1.0, 1.0, SIZE, "rzg").writeto(tmp_path / "c.fits")
    image = read_cutout(tmp_path / "c.fits", SIZE)
    assert image.dtype == np.float32 and image.shape == (3, SIZE, SIZE)
    np.testing.assert_allclose(image.mean(axis=(1, 2)), [0.01, 0.02, 0.03], atol=1e-3)
    with pytest.raises(CutoutError, match="other cutouts are 8x8"):
        read_cutout(tmp_path / "c.fits", 8)
