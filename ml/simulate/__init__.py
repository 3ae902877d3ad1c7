"""A DESI Legacy Surveys-like survey simulator (``galsearch simulate``).

It writes g, r, z cutouts (0.262"/px, nanomaggies) of galaxies brighter than z = 20 in the
survey format, with catalog columns consistent with the pixels, and a ``truth.h5`` with each
object's class and parameters. Where things live:

- :mod:`~ml.simulate.classes`: the class names, default rates, exact per-class counts.
- :mod:`~ml.simulate.conditions`, :mod:`~ml.simulate.footprint`: PSF, noise, extinction from
  DR9 south's distributions; sky positions and brick ids.
- :mod:`~ml.simulate.population`: magnitudes, redshifts, sizes, colours.
- :mod:`~ml.simulate.scene`: collecting light band by band and turning it into noisy pixels
  (the speed lives here: one GalSim draw per component, PSFs applied per band by FFT).
- :mod:`~ml.simulate.galaxies` (ellipticals, spirals, edge-on disks), :mod:`~ml.simulate.rings`,
  :mod:`~ml.simulate.mergers`, :mod:`~ml.simulate.lenses` (lenstronomy),
  :mod:`~ml.simulate.stars`, :mod:`~ml.simulate.artefacts`, :mod:`~ml.simulate.neighbours`.
- :mod:`~ml.simulate.objects`: one cutout; :mod:`~ml.simulate.driver`: the whole survey in
  parallel; :mod:`~ml.simulate.truth`: ``truth.h5``; :mod:`~ml.simulate.cli`: the command.
"""

from ml.simulate.classes import CLASSES, DEFAULT_RATES, parse_rates

__all__ = ["CLASSES", "DEFAULT_RATES", "SimOptions", "SimulationSummary", "parse_rates",
           "simulate_survey"]

# GalSim, lenstronomy and h5py load only when the simulator itself is used, so importing the
# class names or ml.simulate.population (the stellar locus, for augmentations) stays light
_LAZY = {"simulate_survey": "ml.simulate.driver", "SimulationSummary": "ml.simulate.driver",
         "SimOptions": "ml.simulate.objects"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ml.simulate' has no attribute {name!r}")
