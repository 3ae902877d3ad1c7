"""Survey reader: round trips, ordering, pickling, truth, fingerprint, and every validation error."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

import ml.survey
import ml.survey_handles
from ml.survey import Survey, SurveyError
from ml.survey_writer import SurveyWriter

SIZE = 8  # tiny cutouts: the reader does not care about the size


def not_mapped(ds, buffer):  # stands in for ml.survey_handles.mapped_rows: h5py reads every dataset
    return None


def write_survey(folder: Path, n: int = 23, per_file: int = 10, size: int = SIZE, seed: int = 0):
    """A tiny survey of n objects over ceil(n / per_file) files; returns (images, catalog)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 3, size, size)).astype(np.float32)
    catalog = {
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-30, 30, n),
        "ebv": rng.uniform(0, 0.1, n).astype(np.float32),
        "flux": rng.uniform(1, 100, (n, 3)).astype(np.float32),
        "psfsize": rng.uniform(1, 2, (n, 3)).astype(np.float32),
        "psfdepth": rng.uniform(100, 1000, (n, 3)).astype(np.float32),
        "objid": np.arange(n, dtype=np.int64) * 10,
    }
    with SurveyWriter(folder, image_size=size, objects_per_file=per_file,
                      extra_columns={"objid": ("int64", ())}) as writer:
        writer.append(images[:n // 2], {k: v[:n // 2] for k, v in catalog.items()})
        writer.append(images[n // 2:], {k: v[n // 2:] for k, v in catalog.items()})
    return images, catalog


@pytest.fixture
def survey_data(tmp_path):
    images, catalog = write_survey(tmp_path / "s")
    return tmp_path / "s", images, catalog


def test_header_facts(survey_data):
    path = survey_data[0]
    with Survey(path) as s:
        assert s.n == len(s) == 23
        assert [p.name for p in s.files] == [f"survey-0000{i}.h5" for i in range(3)]
        assert s.image_shape == (3, SIZE, SIZE)
        assert s.columns == ("ra", "dec", "ebv", "flux", "psfsize", "psfdepth", "objid")
        assert s.offsets.tolist() == [0, 10, 20, 23]


def test_read_images_any_order_with_duplicates_across_files(survey_data):
    path, images, _ = survey_data
    ids = [22, 0, 9, 10, 10, 19, 20, 3, 22, 9]  # both sides of each file boundary, repeated
    with Survey(path) as s:
        got = s.read_images(ids)
        assert got.dtype == np.float32 and got.shape == (len(ids), 3, SIZE, SIZE)
        np.testing.assert_array_equal(got, images[ids])
        np.testing.assert_array_equal(s.read_images(np.arange(23)), images)
        np.testing.assert_array_equal(s.read_images(np.array([5])), images[[5]])
        assert s.read_images([]).shape == (0, 3, SIZE, SIZE)


@pytest.mark.parametrize("direct_min_bytes", [0, 1 << 40])
def test_reads_straight_into_the_output_or_sliced_give_the_same(survey_data, monkeypatch,
                                                                 direct_min_bytes):
    """Runs of rows are read with read_direct (0: every run) or sliced and copied (2**40)."""
    path, images, catalog = survey_data
    monkeypatch.setattr(ml.survey, "DIRECT_READ_MIN_BYTES", direct_min_bytes)
    monkeypatch.setattr(ml.survey_handles, "mapped_rows", not_mapped)
    ids = [22, 0, 1, 2, 9, 10, 10, 11, 19, 20, 3, 22]  # runs, holes, duplicates, files
    with Survey(path) as s:
        np.testing.assert_array_equal(s.read_images(ids), images[ids])
        np.testing.assert_array_equal(s.read_column("flux", ids), catalog["flux"][ids])
        np.testing.assert_array_equal(s.read_column("ra", ids), catalog["ra"][ids])


@pytest.mark.parametrize("gap", [0, 2, 4096])
def test_sparse_rows_read_as_points_give_the_same(survey_data, monkeypatch, gap):
    """Rows apart (runs of one, small runs with holes) are read in one point selection; runs
    without holes as slices: mixed in one read, each row lands where it belongs."""
    path, images, catalog = survey_data
    monkeypatch.setattr(ml.survey, "CATALOG_GAP_ROWS", gap)
    monkeypatch.setattr(ml.survey, "POINT_READ_MAX_ROWS", 3)
    monkeypatch.setattr(ml.survey_handles, "mapped_rows", not_mapped)
    # file 0: 0 | 2, 4 (holes) | 6, 7, 8 (contiguous); file 1: 10 | 13, 14 | 16 | 19
    ids = [19, 0, 2, 4, 6, 7, 8, 10, 13, 14, 16, 4, 22]
    with Survey(path) as s:
        np.testing.assert_array_equal(s.read_images(ids), images[ids])
        for name in ("ra", "flux", "objid"):
            np.testing.assert_array_equal(s.read_column(name, ids), catalog[name][ids])


def test_columns_catalog_and_locate(survey_data):
    path, _, catalog = survey_data
    ids = np.array([21, 4, 4, 15, 0])
    with Survey(path) as s:
        for name in s.columns:
            np.testing.assert_array_equal(s.read_column(name), catalog[name])
            np.testing.assert_array_equal(s.read_column(name, ids), catalog[name][ids])
        got = s.catalog(["flux", "objid"], ids)
        assert set(got) == {"flux", "objid"}
        np.testing.assert_array_equal(got["objid"], ids * 10)
        assert set(s.catalog()) == set(s.columns)
        file_index, row = s.locate([0, 9, 10, 19, 20, 22])
        assert file_index.tolist() == [0, 0, 1, 1, 2, 2]
        assert row.tolist() == [0, 9, 0, 9, 0, 2]
        with pytest.raises(IndexError, match="23 is outside"):
            s.read_images([1, 23])
        with pytest.raises(IndexError, match="outside"):
            s.locate([-1])
        with pytest.raises(KeyError, match="'nope' is not a catalog column"):
            s.read_column("nope")


def test_iter_batches_crosses_files(survey_data):
    path, images, catalog = survey_data
    with Survey(path) as s:
        batches = list(s.iter_batches(4, columns=("ra", "flux"), start=7, stop=22))
        ids = np.concatenate([b.object_ids for b in batches])
        assert ids.tolist() == list(range(7, 22))
        assert [len(b.object_ids) for b in batches] == [4, 4, 4, 3]
        np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), images[7:22])
        np.testing.assert_array_equal(np.concatenate([b.catalog["flux"] for b in batches]),
                                      catalog["flux"][7:22])
        ids_, images_, cat_ = batches[0]  # unpacks like a tuple
        assert ids_.tolist() == [7, 8, 9, 10]
        assert cat_.keys() == {"ra", "flux"} and images_.shape == (4, 3, SIZE, SIZE)
        only_catalog = list(s.iter_batches(100, columns=("ebv",), images=False))
        assert len(only_catalog) == 1 and only_catalog[0].images is None
        np.testing.assert_array_equal(only_catalog[0].catalog["ebv"], catalog["ebv"])
        with pytest.raises(IndexError):
            next(s.iter_batches(4, start=5, stop=24))


def _read_in_child(survey: Survey, ids: list[int]) -> np.ndarray:
    return survey.read_images(ids)


def test_pickle_and_fork(survey_data):
    path, images, _ = survey_data
    s = Survey(path)
    s.read_images([1, 15])  # handles now open in this process
    clone = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(clone.read_images([22, 1]), images[[22, 1]])
    # a forked worker inherits the open handles and must reopen its own
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply(_read_in_child, (s, [3, 21, 3]))
    np.testing.assert_array_equal(got, images[[3, 21, 3]])
    np.testing.assert_array_equal(s.read_images([21]), images[[21]])
    s.close()


def test_threads_share_a_survey_with_few_open_files(survey_data, monkeypatch):
    path, images, _ = survey_data
    monkeypatch.setattr(ml.survey_handles, "MAX_OPEN_FILES", 1)  # every read across files evicts
    s = Survey(path)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 23, 7) for _ in range(40)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(s.read_images, batches))
    for ids, got in zip(batches, results, strict=True):
        np.testing.assert_array_equal(got, images[ids])
    assert len(s._h5._handles) == 1


def test_one_object_reads_and_few_open_datasets(survey_data, monkeypatch):
    path, images, catalog = survey_data
    monkeypatch.setattr(ml.survey_handles, "MAX_OPEN_DATASETS", 2)
    monkeypatch.setattr(ml.survey_handles, "mapped_rows", not_mapped)
    s = Survey(path)
    for i in [0, 9, 10, 22, 22, 3]:  # each file, twice the same object
        np.testing.assert_array_equal(s.read_images([i]), images[[i]])
        np.testing.assert_array_equal(s.read_images(np.array([i])), images[[i]])
        np.testing.assert_array_equal(s.read_column("flux", [i]), catalog["flux"][[i]])
        np.testing.assert_array_equal(s.read_column("objid", [i]), catalog["objid"][[i]])
        assert len(s._h5._datasets) <= 2  # kept open, but no more than the bound
    assert s.read_images([5]).dtype == np.float32 and s.read_images([5]).flags.writeable
    with multiprocessing.get_context("fork").Pool(1) as pool:  # not the parent's datasets
        got = pool.apply(_read_in_child, (s, [21]))
    np.testing.assert_array_equal(got, images[[21]])
    s.close()
    assert not s._h5._datasets
    np.testing.assert_array_equal(s.read_images([7]), images[[7]])  # reopened


def test_validate_pixels_names_object_and_file(tmp_path):
    write_survey(tmp_path / "s")
    with h5py.File(tmp_path / "s" / "survey-00001.h5", "r+") as f:
        f["images"][4, 2, 3, 3] = np.inf
    s = Survey(tmp_path / "s")  # headers are fine
    with pytest.raises(SurveyError, match=r"object 14 \(row 4 of survey-00001.h5\).*band z"):
        s.validate_pixels()
    with pytest.raises(SurveyError, match="object 14"):
        Survey(tmp_path / "s", check_pixels=True)
    assert Survey(tmp_path / "s").read_images([0]).shape == (1, 3, SIZE, SIZE)


def test_validate_pixels_counts_clean_survey(survey_data):
    assert Survey(survey_data[0]).validate_pixels() == 23


def _edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(key, data):
    def fn(f):
        del f[key]
        f[key] = data
    return fn


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: f.__delitem__("psfdepth"), r"survey-00001.h5 lacks required key\(s\) psfdepth"),
    (_replace("flux", np.zeros((10, 2), np.float32)), r"'flux' has shape \(10, 2\); expected \(N, 3\)"),
    (_replace("images", np.zeros((10, 3, SIZE, SIZE), np.float64)), "'images' has dtype float64"),
    (_replace("ra", np.zeros(9)), "'ra' has 9 rows but 'images' has 10"),
    (_replace("images", np.zeros((10, 3, SIZE, SIZE + 1), np.float32)), "must be square"),
    (_replace("images", np.zeros((10, 3, SIZE * 2, SIZE * 2), np.float32)),
     "survey-00001.h5 holds 16x16 images but survey-00000.h5 holds 8x8"),
    (_replace("objid", np.zeros(4, np.int64)), "optional column 'objid' has shape"),
    (_replace("ebv", np.zeros(10, np.int32)), "'ebv' has dtype int32"),
])
def test_bad_file_errors(tmp_path, edit, message):
    write_survey(tmp_path / "s")
    _edit(tmp_path / "s" / "survey-00001.h5", edit)
    with pytest.raises(SurveyError, match=message):
        Survey(tmp_path / "s")


def test_folder_errors(tmp_path):
    with pytest.raises(SurveyError, match="does not exist"):
        Survey(tmp_path / "missing")
    (tmp_path / "file.h5").write_bytes(b"")
    with pytest.raises(SurveyError, match="is not a folder"):
        Survey(tmp_path / "file.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SurveyError, match=r"no survey files \(\*.h5\).*galsearch simulate"):
        Survey(tmp_path / "empty")
    (tmp_path / "empty" / "survey-00000.h5.tmp").write_bytes(b"x")
    (tmp_path / "empty" / "truth.h5").write_bytes(b"x")
    with pytest.raises(SurveyError, match=r"1 unfinished \*.h5.tmp file\(s\)"):
        Survey(tmp_path / "empty")


def test_unreadable_and_truncated_files(tmp_path):
    write_survey(tmp_path / "s")
    good = tmp_path / "s" / "survey-00002.h5"
    (tmp_path / "s" / "survey-00003.h5").write_bytes(b"this is not HDF5")
    with pytest.raises(SurveyError, match=r"cannot read .*survey-00003\.h5"):
        Survey(tmp_path / "s")
    data = good.read_bytes()
    (tmp_path / "s" / "survey-00003.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(SurveyError, match="truncated"):
        Survey(tmp_path / "s")


def test_optional_columns_only_when_every_file_has_them(tmp_path):
    write_survey(tmp_path / "s")
    _edit(tmp_path / "s" / "survey-00000.h5", lambda f: f.create_dataset("z_phot", data=np.ones(10)))
    assert "z_phot" not in Survey(tmp_path / "s").columns
    for k, rows in ((1, 10), (2, 3)):
        _edit(tmp_path / "s" / f"survey-0000{k}.h5",
              lambda f, rows=rows: f.create_dataset("z_phot", data=np.ones(rows)))
    s = Survey(tmp_path / "s")
    assert s.columns[-1] == "z_phot" and s.read_column("z_phot", [22]).tolist() == [1.0]


def test_truth(survey_data):
    path, _, _ = survey_data
    assert Survey(path).truth() is None
    order = np.arange(23)[::-1]  # rows in any order: the reader sorts them by object id
    labels = np.array(["spiral" if i % 3 else "lens" for i in order], dtype="S8")
    with h5py.File(path / "truth.h5", "w") as f:
        f["object_id"] = order
        f["label"] = labels
        f.create_group("params")["einstein_radius_arcsec"] = np.where(
            labels == b"lens", 1.5, np.nan).astype(np.float32)
        f.attrs["classes"] = json.dumps(["elliptical", "spiral", "lens"])
        f.attrs["rates"] = json.dumps({"lens": 0.3, "spiral": 0.7})
        f.attrs["seed"] = 7
    truth = Survey(path).truth()
    assert truth.labels.dtype.kind == "U"
    assert truth.labels[0] == "lens" and truth.labels[1] == "spiral"
    assert truth.classes == ("elliptical", "spiral", "lens")
    assert truth.counts() == {"elliptical": 0, "spiral": 15, "lens": 8}
    assert truth.params["einstein_radius_arcsec"][0] == 1.5
    assert np.isnan(truth.params["einstein_radius_arcsec"][1])
    assert truth.rates == {"lens": 0.3, "spiral": 0.7} and truth.seed == 7
    with h5py.File(path / "truth.h5", "r+") as f:
        del f["object_id"], f["label"], f["params"]
        f["object_id"] = np.arange(5)
        f["label"] = np.array([b"lens"] * 5)
    with pytest.raises(SurveyError, match="describes 5 objects but the survey holds 23"):
        Survey(path).truth()


def test_fingerprint_stable_and_sensitive(tmp_path):
    write_survey(tmp_path / "a")
    write_survey(tmp_path / "b")
    fp = Survey(tmp_path / "a").fingerprint()
    assert fp == Survey(tmp_path / "a").fingerprint() == Survey(tmp_path / "b").fingerprint()
    (tmp_path / "a" / "survey-00002.h5").rename(tmp_path / "a" / "survey-00009.h5")
    assert Survey(tmp_path / "a").fingerprint() != fp
    write_survey(tmp_path / "c", n=24)
    assert Survey(tmp_path / "c").fingerprint() != fp
