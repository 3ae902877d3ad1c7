"""Bulge + disk galaxies drawn with GalSim: smooth ellipticals, spirals and edge-on disks.

A :class:`BulgeDisk` is a truncated Sérsic bulge plus an exponential disk (an inclined
exponential with a scale height for edge-on disks), each with its own colour, sharing a centre
and a position angle. Spirals add PSF-free light on top of the disk: a logarithmic-spiral
modulation of the disk (m arms of pitch angle p, bluer than the disk) and young star-forming
clumps along the arm ridges, and sometimes a bar from whose ends the arms start. The light in
arms and clumps is taken from the disk, so the galaxy's total flux is what was drawn. Edge-on
disks may have a dust lane, an attenuation exp(-tau_b exp(-d^2 / 2 w^2)) across the midplane
with tau_b ∝ the band's extinction coefficient (applied after the 1 px base PSF, so the lane is
sharper than true by that much).

Angles are counter-clockwise from the cutout's +x axis; sizes in arcsec unless named ``_px``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import galsim
import numpy as np

from ml.photometry import EXTINCTION_R, flux_to_mag, mag_to_flux
from ml.simulate import population as pop
from ml.simulate.population import Colour
from ml.simulate.scene import GSPARAMS, Scene, sersic
from ml.survey_format import PIXEL_SCALE_ARCSEC

BULGE_TRUNC_HLR = 6.0  # Sérsic truncation radius in half-light radii (one GalSim table per n)
BAR_TRUNC_HLR = 4.5
DISK_EXTENT_HLR = 6.0  # exponential: 10 scale lengths, all but 5e-4 of the flux


@dataclass
class Central:
    """The catalog's view of the cutout's central object."""

    flux: np.ndarray  # (3,) intrinsic (extinction-free) nanomaggies of all its light
    redshift: float
    source_type: bytes  # Tractor's name: REX, EXP, DEV, SER


@dataclass
class BulgeDisk:
    """A bulge + disk galaxy at cutout pixel (x, y); fluxes are intrinsic nanomaggies (3,)."""

    x: float
    y: float
    bulge_flux: np.ndarray
    disk_flux: np.ndarray
    bulge_n: float
    bulge_hlr: float
    bulge_q: float
    disk_hlr: float
    inclination_rad: float
    pa_rad: float
    edge_on_h_over_r: float | None = None  # draw the disk as an inclined exponential
    dust_tau_r: float = 0.0  # edge-on dust lane optical depth in r at the midplane
    extra_flux: np.ndarray = field(default_factory=lambda: np.zeros(3))  # arms, bars, clumps

    @property
    def disk_q(self) -> float:
        return pop.axis_ratio_from_inclination(self.inclination_rad)

    @property
    def total_flux(self) -> np.ndarray:
        return self.bulge_flux + self.disk_flux + self.extra_flux

    def add_to(self, scene: Scene) -> None:
        """Draw bulge and disk into ``scene``; a dust lane lowers ``disk_flux`` to what it lets
        through, so ``total_flux`` stays the flux in the pixels."""
        beta = self.pa_rad * galsim.radians
        if self.bulge_flux[2] > 0:
            bulge = sersic(self.bulge_n, self.bulge_hlr, BULGE_TRUNC_HLR)
            bulge = bulge.shear(q=self.bulge_q, beta=beta)
            radius = BULGE_TRUNC_HLR * self.bulge_hlr / PIXEL_SCALE_ARCSEC / np.sqrt(self.bulge_q)
            scene.add_profile(bulge, self.x, self.y, self.bulge_flux, radius)
        if self.disk_flux[2] <= 0:
            return
        radius = DISK_EXTENT_HLR * self.disk_hlr / PIXEL_SCALE_ARCSEC
        if self.edge_on_h_over_r is None:
            q = self.disk_q
            disk = galsim.Exponential(half_light_radius=self.disk_hlr, gsparams=GSPARAMS)
            disk = disk.shear(q=q, beta=beta)
            scene.add_profile(disk, self.x, self.y, self.disk_flux, radius / np.sqrt(q))
            return
        disk = galsim.InclinedExponential(
            self.inclination_rad * galsim.radians, half_light_radius=self.disk_hlr,
            scale_h_over_r=self.edge_on_h_over_r, gsparams=GSPARAMS).rotate(beta)
        stamp, x0, y0 = scene.draw_profile(disk, self.x, self.y, radius)
        if self.dust_tau_r > 0 and stamp.size:
            dimmed = self._dust_lane(scene, stamp, x0, y0)  # (3, h, w)
            kept = dimmed.reshape(3, -1).sum(axis=1) / max(float(stamp.sum()), 1e-30)
            # The drawn magnitude is an observed one (the survey's z < 20 cut is on observed
            # light): brighten the disk behind the lane so its z flux through the dust is the
            # drawn one, while g and r, more absorbed, redden.
            gain = 1.0 / max(float(kept[2]), 1e-6)
            scene.add_pre(dimmed, x0, y0, self.disk_flux * gain)
            self.disk_flux = self.disk_flux * kept * gain
        else:
            scene.add_pre(stamp, x0, y0, self.disk_flux)

    def _dust_lane(self, scene: Scene, stamp: np.ndarray, x0: int, y0: int) -> np.ndarray:
        """The disk stamp (h, w) seen through the midplane dust, per band: (3, h, w)."""
        h, w = stamp.shape
        xs, ys = scene.grid(x0, y0, w, h)
        across = -(xs - self.x) * np.sin(self.pa_rad) + (ys - self.y) * np.cos(self.pa_rad)
        scale_height_px = self.edge_on_h_over_r * self.disk_hlr / 1.678 / PIXEL_SCALE_ARCSEC
        width = max(0.8, 0.7 * scale_height_px)
        lane = np.exp(-0.5 * (across / width) ** 2)  # (h, w)
        tau = self.dust_tau_r * EXTINCTION_R / EXTINCTION_R[1]  # (3,)
        return (stamp[None] * np.exp(-tau[:, None, None] * lane[None])).astype(np.float32)

    def truth(self) -> dict[str, float]:
        return {
            "bulge_mag_r": flux_to_mag(self.bulge_flux[1]) if self.bulge_flux[1] > 0 else np.nan,
            "disk_mag_r": flux_to_mag(self.disk_flux[1]) if self.disk_flux[1] > 0 else np.nan,
            "bulge_hlr_arcsec": self.bulge_hlr if self.bulge_flux[1] > 0 else np.nan,
            "bulge_sersic_n": self.bulge_n if self.bulge_flux[1] > 0 else np.nan,
            "disk_hlr_arcsec": self.disk_hlr if self.disk_flux[1] > 0 else np.nan,
            "inclination_deg": np.rad2deg(self.inclination_rad) if self.disk_flux[1] > 0
            else np.nan,
            "ellipticity": 1.0 - (self.disk_q if self.disk_flux[1] > 0 else self.bulge_q),
            "position_angle_deg": np.rad2deg(self.pa_rad) % 180.0,
        }

    def source_type(self) -> bytes:
        bt = float(self.bulge_flux[2] / self.total_flux[2])
        hlr = self.bulge_hlr if bt > 0.5 else self.disk_hlr
        return pop.tractor_type(bt, self.bulge_n, hlr)


def central_flux_z(rng: np.random.Generator, scene: Scene, bright: float = pop.Z_MAG_BRIGHT,
                   faint: float = pop.Z_MAG_LIMIT, slope: float = pop.COUNT_SLOPE
                   ) -> tuple[float, float]:
    """Draw the observed z magnitude from the number counts; return (m_z, intrinsic z flux).

    Classes whose morphology must be visible (spirals, rings, mergers) use a brighter faint
    limit and a flatter slope: in a z < 20 survey those are the larger, nearer galaxies.
    """
    mag_z = pop.draw_count_mag(rng, bright, faint, slope)
    return mag_z, float(mag_to_flux(mag_z)) / float(scene.conditions.extinction[2])


def make_galaxy(rng: np.random.Generator, x: float, y: float, flux_z: float, mag_z: float,
                bulge_fraction: float, bulge_n: float,
                bulge_colour: Colour, disk_colour: Colour, inclination_rad: float | None = None,
                size_offset_dex: float = 0.0) -> BulgeDisk:
    """A bulge + disk galaxy with sizes from the size-magnitude relation.

    ``bulge_fraction`` is the bulge's share of the z-band flux; a pure bulge is an elliptical
    (0.12 dex smaller than a disk of the same magnitude), a bulge inside a disk has 15-45% of
    the disk's half-light radius.
    """
    disk_hlr = pop.draw_hlr_arcsec(rng, mag_z, size_offset_dex)
    if bulge_fraction >= 1.0:
        bulge_hlr = disk_hlr * 10.0 ** -0.12
    else:
        bulge_hlr = max(0.15, disk_hlr * rng.uniform(0.15, 0.45))
    if inclination_rad is None:
        inclination_rad = pop.draw_inclination_rad(rng)
    return BulgeDisk(
        x=x, y=y,
        bulge_flux=bulge_colour.band_flux(flux_z * bulge_fraction),
        disk_flux=disk_colour.band_flux(flux_z * (1.0 - bulge_fraction)),
        bulge_n=bulge_n, bulge_hlr=bulge_hlr,
        bulge_q=float(np.clip(rng.normal(0.78, 0.13), 0.45, 1.0)),
        disk_hlr=disk_hlr, inclination_rad=inclination_rad,
        pa_rad=float(rng.uniform(0.0, np.pi)),
    )


# -- classes ---------------------------------------------------------------------------------
def build_elliptical(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    """Smooth early type: bulge-dominated, red, with a red S0 disk in some."""
    mag_z, flux_z = central_flux_z(rng, scene)
    z = pop.draw_redshift(rng, mag_z)
    bt = 1.0 if rng.uniform() < 0.4 else float(rng.uniform(0.55, 1.0))
    n = float(rng.choice(pop.ELLIPTICAL_SERSIC_N))
    red = pop.red_colour(rng, z)
    disk_colour = Colour(red.g_r - 0.05, red.r_z - 0.03)
    gal = make_galaxy(rng, scene.centre, scene.centre, flux_z, mag_z, bt, n, red, disk_colour)
    gal.add_to(scene)
    truth.update(gal.truth(), redshift=z)
    return Central(gal.total_flux, z, gal.source_type())


def build_spiral(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    """A disk with visible spiral arms: big, bright-ish and not too inclined (<= 65 deg)."""
    mag_z, flux_z = central_flux_z(rng, scene, bright=14.0, faint=19.2, slope=0.35)
    z = pop.draw_redshift(rng, mag_z)
    bt = float(rng.uniform(0.05, 0.35))
    n = float(rng.choice(pop.BULGE_SERSIC_N[:3]))
    gal = make_galaxy(rng, scene.centre, scene.centre, flux_z, mag_z, bt, n,
                      pop.red_colour(rng, z), pop.blue_colour(rng, z),
                      inclination_rad=pop.draw_inclination_rad(rng, 65.0),
                      size_offset_dex=0.35)
    gal.disk_hlr = max(gal.disk_hlr, 1.8)
    truth.update(add_spiral_arms(scene, rng, gal, z))
    gal.add_to(scene)
    truth.update(gal.truth(), redshift=z)
    return Central(gal.total_flux, z, gal.source_type())


def build_edge_on(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    """A thin disk seen within 8 deg of edge-on, with a small bulge and often a dust lane."""
    mag_z, flux_z = central_flux_z(rng, scene, faint=19.8)
    z = pop.draw_redshift(rng, mag_z)
    bt = float(rng.uniform(0.0, 0.35))
    n = float(rng.choice(pop.BULGE_SERSIC_N[:3]))
    gal = make_galaxy(rng, scene.centre, scene.centre, flux_z, mag_z, bt, n,
                      pop.red_colour(rng, z), pop.blue_colour(rng, z),
                      inclination_rad=np.deg2rad(rng.uniform(82.0, 90.0)),
                      size_offset_dex=0.15)
    gal.disk_hlr = max(gal.disk_hlr, 1.0)
    gal.bulge_q = float(rng.uniform(0.55, 0.9))
    gal.edge_on_h_over_r = float(rng.uniform(0.06, 0.14))
    gal.dust_tau_r = float(rng.uniform(0.4, 1.5)) if rng.uniform() < 0.6 else 0.0
    gal.add_to(scene)
    truth.update(gal.truth(), redshift=z, dust_lane_tau_r=gal.dust_tau_r or np.nan)
    return Central(gal.total_flux, z, gal.source_type())


def build_plain_galaxy(scene: Scene, rng: np.random.Generator, truth: dict) -> Central:
    """An ordinary galaxy of any bulge fraction, without arms: the host of stars and artefacts."""
    mag_z, flux_z = central_flux_z(rng, scene)
    z = pop.draw_redshift(rng, mag_z)
    bt = float(rng.uniform(0.0, 1.0))
    n = float(rng.choice(pop.BULGE_SERSIC_N))
    red = pop.red_colour(rng, z)
    disk = pop.blue_colour(rng, z) if bt < 0.6 else Colour(red.g_r - 0.05, red.r_z - 0.03)
    gal = make_galaxy(rng, scene.centre, scene.centre, flux_z, mag_z, bt, n, red, disk)
    gal.add_to(scene)
    truth.update(gal.truth(), redshift=z)
    return Central(gal.total_flux, z, gal.source_type())


def add_spiral_arms(scene: Scene, rng: np.random.Generator, gal: BulgeDisk, z: float
                    ) -> dict[str, float]:
    """Move part of ``gal``'s disk light into arms, clumps and sometimes a bar.

    Returns the truth parameters of the arms.
    """
    n_arms = int(rng.choice([2, 2, 2, 3, 4]))
    pitch = np.deg2rad(rng.uniform(12.0, 28.0))
    arm_fraction = float(rng.uniform(0.3, 0.55))
    clump_fraction = float(rng.uniform(0.04, 0.12))
    bar_fraction = float(rng.uniform(0.06, 0.14)) if rng.uniform() < 0.35 else 0.0
    disk_flux = gal.disk_flux.copy()
    young = pop.young_colour(rng, z)
    disk_colour_ratio = disk_flux / disk_flux[2]
    arm_colour = 0.5 * (young.per_z_flux() + disk_colour_ratio)
    scale_px = gal.disk_hlr / 1.678 / PIXEL_SCALE_ARCSEC  # exponential scale length
    inner_px = scale_px * rng.uniform(0.5, 1.0)
    phase = float(rng.uniform(0.0, 2.0 * np.pi))
    q, pa = gal.disk_q, gal.pa_rad
    c, s = np.cos(pa), np.sin(pa)

    # the arm pattern, PSF-free, in a stamp covering 4.5 scale lengths
    r_max = 4.5 * scale_px
    half = int(np.ceil(r_max))
    x0, y0 = round(gal.x) - half, round(gal.y) - half
    xs, ys = scene.grid(x0, y0, 2 * half + 1, 2 * half + 1)
    dx, dy = xs - gal.x, ys - gal.y
    u = dx * c + dy * s
    v = (-dx * s + dy * c) / q  # deprojected into the disk plane
    r = np.maximum(np.hypot(u, v), 0.5)
    theta = np.arctan2(v, u)
    arm_phase = n_arms * (theta - phase - np.log(r / inner_px) / np.tan(pitch))
    sharpness = rng.uniform(2.0, 5.0)
    pattern = (0.5 * (1.0 + np.cos(arm_phase))) ** sharpness
    envelope = np.exp(-r / scale_px) * (1.0 - np.exp(-((r / inner_px) ** 2)))
    arms = pattern * envelope * (r < r_max)
    arms /= arms.sum()
    arm_flux = arm_fraction * disk_flux[2] * arm_colour
    scene.add_raw(arms.astype(np.float32), x0, y0, arm_flux)

    # young clumps on the arm ridges, between the inner radius and 3.5 scale lengths
    n_clumps = int(rng.integers(6, 30))
    clump_flux_z = clump_fraction * disk_flux[2] * rng.dirichlet(np.full(n_clumps, 1.5))
    rad = inner_px + rng.gamma(2.0, 0.8 * scale_px, n_clumps)
    beyond = rad > 3.5 * scale_px
    rad[beyond] = rng.uniform(inner_px, 3.5 * scale_px, int(beyond.sum()))
    ang = (phase + np.log(rad / inner_px) / np.tan(pitch)
           + 2.0 * np.pi * rng.integers(0, n_arms, n_clumps) / n_arms
           + rng.normal(0.0, 0.08, n_clumps))
    cu, cv = rad * np.cos(ang), rad * np.sin(ang) * q
    scene.add_gaussians(gal.x + cu * c - cv * s, gal.y + cu * s + cv * c,
                        rng.uniform(0.2, 0.9, n_clumps), young.band_flux(clump_flux_z))

    extra = arm_flux + young.band_flux(clump_flux_z.sum())
    if bar_fraction > 0:
        # a bar in the disk plane, pointing where the arms start, then projected like the disk
        bar = sersic(0.5, 0.55 * inner_px * PIXEL_SCALE_ARCSEC, BAR_TRUNC_HLR)
        bar = bar.shear(q=rng.uniform(0.25, 0.4), beta=phase * galsim.radians)
        bar = bar.shear(q=q, beta=pa * galsim.radians)
        bar_flux = (bar_fraction * disk_flux[2]) * (gal.bulge_flux / gal.bulge_flux[2]
                                                    if gal.bulge_flux[2] > 0 else disk_colour_ratio)
        scene.add_profile(bar, gal.x, gal.y, bar_flux,
                          BAR_TRUNC_HLR * 0.55 * inner_px / np.sqrt(q))
        extra = extra + bar_flux
    gal.disk_flux = disk_flux * (1.0 - arm_fraction - clump_fraction - bar_fraction)
    gal.extra_flux = gal.extra_flux + extra
    return {
        "spiral_arms": float(n_arms), "spiral_pitch_deg": float(np.rad2deg(pitch)),
        "arm_fraction": arm_fraction + clump_fraction, "has_bar": float(bar_fraction > 0),
    }
