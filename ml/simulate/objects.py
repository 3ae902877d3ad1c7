"""One simulated cutout: conditions, the target of its class, neighbours, pixels, catalog row.

Every object draws from its own random stream, seeded by (survey seed, object index) through
NumPy's SeedSequence, so object i is the same whatever the number of workers or chunk size.

The catalog row describes the target as Tractor would: ``flux`` is its model's total flux per
band after Galactic extinction (noise-free, and including light that falls outside the cutout),
``source_type`` its morphological type, ``z_phot_median`` its redshift with a photometric error;
``objid`` is the object's index in the survey and ``brickid`` the DR9-like brick of (ra, dec).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.photometry import flux_to_mag
from ml.simulate import footprint
from ml.simulate.artefacts import build_artefact
from ml.simulate.classes import CLASSES
from ml.simulate.conditions import draw_conditions
from ml.simulate.galaxies import Central, build_edge_on, build_elliptical, build_spiral
from ml.simulate.lenses import build_lens
from ml.simulate.mergers import build_merger
from ml.simulate.neighbours import NeighbourLibrary, add_neighbours
from ml.simulate.population import photo_z
from ml.simulate.rings import build_ring
from ml.simulate.scene import Scene
from ml.simulate.stars import build_star

Builder = Callable[[Scene, np.random.Generator, dict], Central]
BUILDERS: dict[str, Builder] = {
    "elliptical": build_elliptical,
    "spiral": build_spiral,
    "edge_on": build_edge_on,
    "ring": build_ring,
    "merger": build_merger,
    "lens": build_lens,
    "star": build_star,
    "artefact": build_artefact,
}
assert tuple(BUILDERS) == CLASSES

# SeedSequence spawn keys: one stream per object, one for the class plan, one for the library
OBJECT_STREAM, PLAN_STREAM, LIBRARY_STREAM = 0, 1, 2
WARM_UP_SEED = 0  # warm-up objects are thrown away: any seed does


def object_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.SFC64(
        np.random.SeedSequence(seed, spawn_key=(OBJECT_STREAM, index))))


def plan_seed(seed: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(PLAN_STREAM,))


def library_seed(seed: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(LIBRARY_STREAM,))


@dataclass(frozen=True)
class SimOptions:
    """How objects are drawn; the defaults make the survey. Tests switch parts off."""

    size: int = 152
    neighbours: bool = True
    noise: bool = True


@dataclass
class SimulatedObject:
    image: np.ndarray  # (3, S, S) float32 nanomaggies
    catalog: dict[str, object]  # one row of the survey's columns
    truth: dict[str, float]  # parameters of the object (see ml.simulate.truth)


def simulate_object(seed: int, index: int, label: str, library: NeighbourLibrary | None,
                    options: SimOptions = SimOptions()) -> SimulatedObject:
    """Simulate object ``index`` of the survey with ``seed``; its class is ``label``."""
    rng = object_rng(seed, index)
    ra, dec = footprint.draw_position(rng)
    conditions = draw_conditions(rng)
    scene = Scene(options.size, conditions)
    truth: dict[str, float] = {}
    central = BUILDERS[label](scene, rng, truth)
    intrinsic_mag = flux_to_mag(central.flux)
    truth.update(intrinsic_mag_g=intrinsic_mag[0], intrinsic_mag_r=intrinsic_mag[1],
                 intrinsic_mag_z=intrinsic_mag[2])
    observed_flux = central.flux * conditions.extinction
    if options.neighbours:
        if library is None:
            raise ValueError("neighbours need a NeighbourLibrary (NeighbourLibrary.build)")
        b = float(footprint.galactic_latitude_deg(np.array(ra), np.array(dec)))
        truth.update(add_neighbours(scene, rng, library, float(flux_to_mag(observed_flux[1])), b))
    z_phot = photo_z(rng, central.redshift)
    image = scene.render(rng, noise=options.noise)  # last: noise draws do not shift the rest
    catalog = {
        "ra": ra, "dec": dec, "ebv": conditions.ebv,
        "flux": observed_flux,
        "psfsize": conditions.psfsize_arcsec,
        "psfdepth": conditions.psfdepth,
        "objid": index,
        "brickid": int(footprint.brickid(np.array(ra), np.array(dec))),
        "source_type": central.source_type,
        "z_phot_median": z_phot,
    }
    return SimulatedObject(image, catalog, truth)


def warm_up(rates: dict[str, float], library: NeighbourLibrary | None,
            options: SimOptions = SimOptions()) -> None:
    """Simulate (and discard) one object of each class that will occur.

    This fills GalSim's Sérsic tables for every discrete index and compiles lenstronomy's
    numba code; done in the parent before the workers fork, no worker pays for it again.
    """
    for index, label in enumerate(CLASSES):
        if rates.get(label, 0.0) > 0:
            simulate_object(WARM_UP_SEED, index, label, library, options)
