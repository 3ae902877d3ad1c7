"""Survey reads through memory maps (ml/survey_mapped.py): the same rows as h5py, for each
layout a survey file may have, and h5py's own reads where the bytes are not plain arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

import ml.survey_handles
import ml.survey_mapped
from ml.survey import Survey
from ml.survey_mapped import MappedRows, map_file, mapped_rows
from tests.ml.test_survey import SIZE, not_mapped, write_survey

N, PER_FILE = 23, 10
# layout -> (create_dataset options for catalog columns, for images; whether read mapped)
LAYOUTS = {
    "writer": None,  # as SurveyWriter wrote it: one chunk of rows a file, one image a chunk
    "contiguous": ({}, {}),
    "chunks_of_4_rows": ({"chunks": True}, {"chunks": True}),  # rows split over chunks
    "gzip": ({"compression": "gzip"}, {"compression": "gzip"}),
    "shuffle": ({"chunks": True, "shuffle": True}, {"chunks": True, "fletcher32": True}),
}
MAPPED = {"writer": True, "contiguous": True, "chunks_of_4_rows": True, "gzip": False,
          "shuffle": False}


def relayout(folder: Path, catalog_options: dict, image_options: dict) -> None:
    """Rewrite every file of the survey with other dataset options (same values, attributes)."""
    for path in sorted(folder.glob("*.h5")):
        tmp = path.with_suffix(".tmp")
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            dst.attrs.update(src.attrs)
            for key, ds in src.items():
                options = dict(image_options if key == "images" else catalog_options)
                if options.get("chunks") is True:
                    options["chunks"] = (min(4, ds.shape[0]), *ds.shape[1:])
                dst.create_dataset(key, data=ds[...], **options)
        tmp.replace(path)


@pytest.fixture(params=list(LAYOUTS))
def laid_out(request, tmp_path, monkeypatch):
    # cutouts too, which are left to h5py by default: the maths is the same for any row size
    monkeypatch.setattr(ml.survey_mapped, "MAX_MAPPED_ROW_BYTES", 1 << 20)
    images, catalog = write_survey(tmp_path / "s", n=N, per_file=PER_FILE)
    if LAYOUTS[request.param] is not None:
        relayout(tmp_path / "s", *LAYOUTS[request.param])
    return request.param, tmp_path / "s", images, catalog


def test_every_layout_reads_the_same_rows(laid_out):
    layout, path, images, catalog = laid_out
    rng = np.random.default_rng(1)
    with Survey(path) as s:
        for _ in range(20):  # any order, repeats, across chunk and file boundaries
            ids = rng.integers(0, N, rng.integers(1, 30))
            np.testing.assert_array_equal(s.read_images(ids), images[ids])
            for name in ("ra", "flux", "objid"):
                got = s.read_column(name, ids)
                assert got.dtype == catalog[name].dtype
                np.testing.assert_array_equal(got, catalog[name][ids])
        for i in (0, 3, 9, 10, 22):  # one object: the cutout's read
            np.testing.assert_array_equal(s.read_images([i]), images[[i]])
            assert s.read_images([i]).flags.writeable
        for k in range(3):
            for key in ("images", "ra", "flux"):
                assert isinstance(s._h5.rows(k, key), MappedRows) == MAPPED[layout], (k, key)


def test_reads_do_not_change_the_file(laid_out):
    """A map is read-only: an array read through it belongs to the caller."""
    _, path, images, _ = laid_out
    with Survey(path) as s:
        got = s.read_images([4, 5])
        got[:] = -1
        np.testing.assert_array_equal(s.read_images([4, 5]), images[[4, 5]])


def test_catalog_rows_mapped_and_cutouts_left_to_h5py(tmp_path):
    images, _catalog = write_survey(tmp_path / "s", n=N, per_file=PER_FILE)
    with Survey(tmp_path / "s") as s:
        np.testing.assert_array_equal(s.read_images([3, 12]), images[[3, 12]])
        assert s._h5.rows(0, "images") is None
        assert all(isinstance(s._h5.rows(k, name), MappedRows)
                   for k in range(3) for name in s.columns)


def test_pickled_survey_maps_again(tmp_path):
    _images, catalog = write_survey(tmp_path / "s", n=N, per_file=PER_FILE)
    s = Survey(tmp_path / "s")
    s.read_column("ra", [1, 12])  # maps now open in this process
    clone = pickle.loads(pickle.dumps(s))
    assert not clone._h5._maps and not clone._h5._mapped
    np.testing.assert_array_equal(clone.read_column("ra", [22, 1]), catalog["ra"][[22, 1]])
    s.close()
    assert not s._h5._maps
    np.testing.assert_array_equal(s.read_column("ra", [7]), catalog["ra"][[7]])  # mapped again


def test_datasets_left_to_h5py(tmp_path):
    """Never written (no storage yet), a virtual dataset, or too many chunks to list: None."""
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("unwritten", shape=(10,), dtype="f8")
        f.create_dataset("chunks", data=np.arange(12.0), chunks=(2,))
        f.create_dataset("partly", shape=(12,), dtype="f8", chunks=(2,))[:4] = 1.0
        f.create_dataset("empty", shape=(0, 3), dtype="f4")
        layout = h5py.VirtualLayout(shape=(12,), dtype="f8")
        layout[:] = h5py.VirtualSource(f["chunks"])
        f.create_virtual_dataset("virtual", layout)
    buffer = map_file(path)
    with h5py.File(path, "r") as f:
        for key in ("unwritten", "partly", "empty", "virtual"):
            assert mapped_rows(f[key], buffer) is None, key
        rows = mapped_rows(f["chunks"], buffer)
        assert rows is not None and rows.chunk_rows == 2
        np.testing.assert_array_equal(rows.take(np.array([11, 0, 5, 5])), [11.0, 0, 5, 5])
        np.testing.assert_array_equal(rows.slice(3, 8), np.arange(3.0, 8.0))
        np.testing.assert_array_equal(rows.slice(4, 6), [4.0, 5.0])
        ml.survey_mapped.MAX_MAPPED_CHUNKS, before = 5, ml.survey_mapped.MAX_MAPPED_CHUNKS
        try:
            assert mapped_rows(f["chunks"], buffer) is None  # 6 chunks
        finally:
            ml.survey_mapped.MAX_MAPPED_CHUNKS = before


def test_h5py_reads_when_nothing_is_mapped(monkeypatch, tmp_path):
    """The reads behind the maps, used for every dataset when none may be mapped."""
    monkeypatch.setattr(ml.survey_handles, "mapped_rows", not_mapped)
    images, catalog = write_survey(tmp_path / "s", n=N, per_file=PER_FILE, size=SIZE)
    ids = [22, 0, 1, 2, 9, 10, 10, 11, 19, 20, 3, 22]
    with Survey(tmp_path / "s") as s:
        np.testing.assert_array_equal(s.read_images(ids), images[ids])
        np.testing.assert_array_equal(s.read_column("flux", ids), catalog["flux"][ids])
        assert s._h5.rows(0, "flux") is None
