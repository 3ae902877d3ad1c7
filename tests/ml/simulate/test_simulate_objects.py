"""Simulated objects: pixels consistent with the catalog, extinction, noise, selection."""

from __future__ import annotations

import numpy as np
import pytest

from ml.photometry import EXTINCTION_R, flux_to_mag, mag_to_flux, noise_sigma_from_psfdepth
from ml.simulate.classes import CLASSES
from ml.simulate.neighbours import NeighbourLibrary
from ml.simulate.objects import SimOptions, library_seed, simulate_object
from ml.simulate.truth import PARAM_NAMES

ISOLATED = SimOptions(neighbours=False)
CLEAN = SimOptions(neighbours=False, noise=False)
SEED = 11


@pytest.fixture(scope="module")
def library() -> NeighbourLibrary:
    return NeighbourLibrary.build(library_seed(SEED), size=48)


@pytest.mark.parametrize("label", ["elliptical", "spiral", "edge_on", "lens"])
def test_summed_pixels_match_the_catalog_flux(label):
    for index in range(6):
        obj = simulate_object(SEED, index, label, None, ISOLATED)
        clean = simulate_object(SEED, index, label, None, CLEAN).image
        flux = obj.catalog["flux"]
        # light of a large galaxy beyond the 152 px cutout is the only difference allowed
        outside = flux - clean.reshape(3, -1).sum(1)
        assert (outside > -1e-3 * flux).all() and (outside < 0.05 * flux).all(), (label, index)
        # the noisy sum agrees within its noise: sky + source variance over all pixels
        noise = obj.image - clean
        sigma_sum = np.sqrt((noise.reshape(3, -1) ** 2).sum(1))
        diff = obj.image.reshape(3, -1).sum(1) - clean.reshape(3, -1).sum(1)
        assert (np.abs(diff) < 5 * sigma_sum).all()


def test_catalog_flux_is_intrinsic_flux_dimmed_by_the_legacy_surveys_coefficients():
    recovered = []
    for index in range(12):
        obj = simulate_object(SEED, index, CLASSES[index % len(CLASSES)], None, CLEAN)
        t = obj.truth
        intrinsic = mag_to_flux([t["intrinsic_mag_g"], t["intrinsic_mag_r"],
                                 t["intrinsic_mag_z"]])
        ebv = obj.catalog["ebv"]
        if ebv > 0.01:
            recovered.append(-2.5 * np.log10(obj.catalog["flux"] / intrinsic) / ebv)
    assert len(recovered) >= 5
    np.testing.assert_allclose(np.array(recovered), np.tile(EXTINCTION_R, (len(recovered), 1)),
                               rtol=1e-4)


def test_background_noise_matches_psfdepth():
    for index in range(4):
        noisy = simulate_object(SEED, index, "elliptical", None, ISOLATED)
        clean = simulate_object(SEED, index, "elliptical", None, CLEAN).image
        sigma = noise_sigma_from_psfdepth(noisy.catalog["psfdepth"], noisy.catalog["psfsize"])
        noise = noisy.image - clean
        for b in range(3):
            sky = clean[b] < 0.01 * sigma[b]  # where the source's own noise is negligible
            assert sky.sum() > 10_000
            assert noise[b][sky].std() == pytest.approx(sigma[b], rel=0.04)


@pytest.mark.parametrize("label", CLASSES)
def test_every_class_makes_a_plausible_cutout(label, library):
    for index in range(3):
        obj = simulate_object(SEED, 1000 + index, label, library)
        assert obj.image.shape == (3, 152, 152) and obj.image.dtype == np.float32
        assert np.isfinite(obj.image).all()
        cat = obj.catalog
        assert flux_to_mag(cat["flux"][2]) < 20.0  # the paper's z < 20 selection
        assert (cat["flux"] > 0).all()
        assert (cat["psfsize"] > 0.6).all() and (cat["psfsize"] < 3.2).all()
        assert cat["source_type"] in (b"REX", b"EXP", b"DEV", b"SER")
        assert 0.0 <= cat["z_phot_median"] < 1.5
        assert set(obj.truth) <= set(PARAM_NAMES)
        assert obj.truth["n_neighbours"] >= 0


def test_class_specific_truth():
    lens = simulate_object(SEED, 0, "lens", None, CLEAN).truth
    assert 1.2 <= lens["einstein_radius_arcsec"] <= 3.0 and lens["magnification"] > 1.5
    assert lens["source_mag_r"] > lens["intrinsic_mag_r"]  # unlensed source is faint
    ring = simulate_object(SEED, 0, "ring", None, CLEAN).truth
    assert ring["ring_radius_arcsec"] >= 2.5 and ring["ring_kind"] in (1.0, 2.0)
    merger = simulate_object(SEED, 0, "merger", None, CLEAN).truth
    assert merger["merger_separation_arcsec"] >= 1.2 and np.isfinite(merger["tidal_mag_r"])
    spiral = simulate_object(SEED, 0, "spiral", None, CLEAN).truth
    assert spiral["spiral_arms"] >= 2 and spiral["inclination_deg"] <= 65.0
    star = simulate_object(SEED, 0, "star", None, CLEAN).truth
    assert star["star_mag_r"] < 16.0
    artefact = simulate_object(SEED, 0, "artefact", None, CLEAN).truth
    assert artefact["artefact_kind"] in (1.0, 2.0, 3.0)


def test_bright_star_saturates_flat_and_bleeds_along_its_column():
    for index in range(10):
        obj = simulate_object(SEED, index, "star", None, CLEAN)
        if obj.truth["star_saturated"] == 1.0:
            break
    else:
        pytest.fail("no saturated star in 10 draws of r = 10.5-15.5 stars")
    image = obj.image
    level = image.max()
    flat = image >= level * (1 - 1e-6)
    assert flat.sum() > 3  # a plateau, not a peak
    band, row, col = np.argwhere(flat)[0]
    column = image[band, :, col] >= 0.6 * level
    assert column.sum() > (image[band, row, :] >= 0.6 * level).sum()  # longer along the column


def test_neighbours_add_light_around_the_target(library):
    alone = simulate_object(SEED, 5, "elliptical", None, CLEAN)
    crowded = simulate_object(SEED, 5, "elliptical", library, SimOptions(noise=False))
    assert crowded.truth["n_neighbours"] >= 1
    extra = crowded.image.sum(axis=(1, 2)) - alone.image.sum(axis=(1, 2))
    assert (extra > 0).all()
    np.testing.assert_array_equal(crowded.catalog["flux"], alone.catalog["flux"])


def test_dusty_edge_on_disks_stay_inside_the_z_selection():
    # the z < 20 cut is on observed light: a dust lane reddens the disk but keeps its drawn z flux
    dusty = 0
    for index in range(40):
        obj = simulate_object(SEED, 2000 + index, "edge_on", None, CLEAN)
        assert flux_to_mag(obj.catalog["flux"][2]) < 20.0
        dusty += bool(np.isfinite(obj.truth["dust_lane_tau_r"]))
    assert dusty >= 10
