"""AugmentStats: fit to a catalog, uniform variant, JSON beside the survey."""

from __future__ import annotations

import json

import numpy as np
import pytest
from catalog_draws import dr9_catalog
from scipy import stats as scipy_stats

from ml.augment import AugmentStats, AugmentStatsError
from ml.distributions import DR9_SOUTH, LogNormal, Uniform
from ml.survey_format import AUGMENT_STATS_FILENAME

QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def quantiles(d: LogNormal) -> np.ndarray:
    return scipy_stats.lognorm(d.shape, d.loc, d.scale).ppf(QUANTILES)


def pairs(fitted: AugmentStats, reference: AugmentStats):
    return zip(fitted.distributions(), reference.distributions(), strict=True)


def test_fit_recovers_the_dr9_south_distributions():
    fitted = AugmentStats.fit(dr9_catalog(20_000))
    assert fitted.n_objects == 20_000
    for got, want in pairs(fitted, AugmentStats.dr9_south()):
        assert isinstance(got, LogNormal)
        assert (got.lo, got.hi) == (want.lo, want.hi)
        # the distribution is pinned to 2.5% over its body (ten seeds: at most 1.5%, E(B-V)'s
        # wide spread and the r-band noise's truncated tail the loosest)...
        np.testing.assert_allclose(quantiles(got), quantiles(want), rtol=0.025)
        # ...while scipy's three parameters trade off against one another (loc vs scale vs
        # shape), so alone they are recovered to ~10%; loc on the scale of the values
        assert got.shape == pytest.approx(want.shape, rel=0.15)
        assert got.scale == pytest.approx(want.scale, rel=0.15)
        assert abs(got.loc - want.loc) < 0.2 * want.median()


def test_fit_on_a_subset_and_ignores_objects_without_coverage():
    catalog = dr9_catalog(5_000, seed=1)
    catalog["psfsize"][:100, 2] = 0.0  # no z coverage
    catalog["psfdepth"][100:200, 0] = 0.0
    catalog["ebv"][:10] = np.nan
    fitted = AugmentStats.fit(catalog, max_objects=3_000, seed=3)
    assert fitted.n_objects == 3_000
    for got, want in pairs(fitted, AugmentStats.dr9_south()):
        assert got.median() == pytest.approx(want.median(), rel=0.03)


def test_fit_says_which_column_is_empty():
    catalog = dr9_catalog(100)
    catalog["psfdepth"][:, 1] = 0.0
    with pytest.raises(ValueError, match="noise sigma, r band"):
        AugmentStats.fit(catalog)


def test_dr9_south_and_uniform_variant():
    dr9 = AugmentStats.dr9_south()
    assert dr9.ebv == DR9_SOUTH["ebv"]
    assert dr9.psf_sigma_pix == DR9_SOUTH["psf_sigma_pix"]
    assert dr9.noise_sigma == DR9_SOUTH["noise_sigma"]
    uniform = dr9.as_uniform()
    assert uniform.is_uniform() and not dr9.is_uniform()
    for u, d in zip(uniform.distributions(), dr9.distributions(), strict=True):
        assert isinstance(u, Uniform) and (u.lo, u.hi) == (d.lo, d.hi)


@pytest.mark.parametrize("uniform", [False, True])
def test_save_load_round_trip(tmp_path, uniform):
    stats = AugmentStats.fit(dr9_catalog(2_000))
    stats = stats.as_uniform() if uniform else stats
    path = stats.save(tmp_path)
    assert path == tmp_path / AUGMENT_STATS_FILENAME
    assert sorted(p.name for p in tmp_path.iterdir()) == [AUGMENT_STATS_FILENAME]
    on_disk = json.loads(path.read_text())
    assert set(on_disk["psf_sigma_pix"]) == {"g", "r", "z"}
    assert AugmentStats.load(tmp_path) == stats


def test_missing_file_tells_the_user_what_to_run(tmp_path):
    with pytest.raises(AugmentStatsError, match=r"galsearch fit-augment .*survey1"):
        AugmentStats.load(tmp_path / "survey1")


@pytest.mark.parametrize("text", ["{not json", '{"format_version": 1}',
                                  '{"format_version": 99}'])
def test_unreadable_file_is_an_error_with_the_fix(tmp_path, text):
    (tmp_path / AUGMENT_STATS_FILENAME).write_text(text)
    with pytest.raises(AugmentStatsError, match=r"not a valid .* run `galsearch fit-augment"):
        AugmentStats.load(tmp_path)
