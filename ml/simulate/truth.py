"""``truth.h5``: what each simulated object is. Evaluation and benchmarks read it; training never.

Layout (``ml.survey_format.TRUTH_FILENAME`` beside the survey files):

| key              | shape, dtype     | meaning                                         |
|------------------|------------------|-------------------------------------------------|
| object_id        | (N,) int64       | row in the survey                               |
| label            | (N,) S10         | class name, one of ``classes``                  |
| params/<name>    | (N,) float32     | :data:`TRUTH_PARAMS`; NaN where it does not apply |

attrs: ``classes`` (JSON list), ``rates`` (JSON object), ``seed``, ``artefact_kinds`` and
``ring_kinds`` (JSON: code -> name), ``params`` (JSON: name -> description).

Written like the survey: appended chunk by chunk to ``truth.h5.tmp`` and renamed at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ml.simulate.artefacts import ARTEFACT_KINDS
from ml.simulate.classes import CLASSES, LABEL_DTYPE
from ml.simulate.rings import RING_KINDS
from ml.survey_format import TRUTH_FILENAME

# name -> description (magnitudes are AB, intrinsic: before Galactic extinction)
TRUTH_PARAMS: dict[str, str] = {
    "intrinsic_mag_g": "target's total g magnitude before Galactic extinction",
    "intrinsic_mag_r": "target's total r magnitude before Galactic extinction",
    "intrinsic_mag_z": "target's total z magnitude before Galactic extinction",
    "redshift": "target's true redshift (z_phot_median is this plus photometric error)",
    "bulge_mag_r": "bulge (or the elliptical, deflector, core) r magnitude",
    "disk_mag_r": "disk r magnitude (without arms, bar, clumps, tails)",
    "bulge_hlr_arcsec": "bulge half-light radius",
    "bulge_sersic_n": "bulge Sérsic index",
    "disk_hlr_arcsec": "disk half-light radius (exponential)",
    "inclination_deg": "disk inclination (0 face-on, 90 edge-on)",
    "ellipticity": "1 - axis ratio of the disk (or the bulge when there is no disk)",
    "position_angle_deg": "major axis, counter-clockwise from the cutout's +x axis, [0, 180)",
    "dust_lane_tau_r": "edge-on disk's midplane dust optical depth in r",
    "spiral_arms": "number of spiral arms",
    "spiral_pitch_deg": "pitch angle of the logarithmic spiral",
    "arm_fraction": "fraction of the disk's light in arms and clumps",
    "has_bar": "1 if the spiral has a bar",
    "ring_radius_arcsec": "ring radius (in the disk plane)",
    "ring_width_arcsec": "ring Gaussian width",
    "ring_mag_r": "ring r magnitude, knots included",
    "ring_kind": "ring_kinds attr: 1 collisional, 2 resonance",
    "merger_separation_arcsec": "distance between the two galaxies",
    "merger_flux_ratio": "companion / target flux",
    "companion_mag_r": "companion r magnitude",
    "tidal_mag_r": "r magnitude of all tidal tails and the bridge",
    "einstein_radius_arcsec": "SIE Einstein radius",
    "lens_axis_ratio": "SIE axis ratio",
    "shear_gamma": "external shear",
    "source_mag_r": "unlensed source r magnitude",
    "source_hlr_arcsec": "source Sérsic half-light radius",
    "source_offset_arcsec": "source distance from the optical axis",
    "source_redshift": "source redshift",
    "magnification": "total magnification of the source",
    "star_mag_r": "bright star r magnitude",
    "star_offset_arcsec": "bright star distance from the target",
    "star_saturated": "1 if the star saturates in some band",
    "star_spikes": "1 if the star has diffraction spikes",
    "artefact_kind": "artefact_kinds attr: 1 satellite trail, 2 bad column, 3 bleed trail",
    "artefact_band": "band of the artefact: 0 g, 1 r, 2 z, 3 all",
    "n_neighbours": "neighbour galaxies and stars centred in the cutout",
    "neighbour_flux_r": "their total observed r flux, nanomaggies",
}
PARAM_NAMES: tuple[str, ...] = tuple(TRUTH_PARAMS)
_PARAM_INDEX = {name: i for i, name in enumerate(PARAM_NAMES)}


def params_row(values: dict[str, float]) -> np.ndarray:
    """(P,) float32 in :data:`PARAM_NAMES` order, NaN for absent names."""
    row = np.full(len(PARAM_NAMES), np.nan, dtype=np.float32)
    for name, value in values.items():
        row[_PARAM_INDEX[name]] = value  # KeyError: a builder wrote an undeclared parameter
    return row


class TruthWriter:
    """Append truth rows to ``<out_dir>/truth.h5.tmp``; :meth:`close` renames it."""

    def __init__(self, out_dir: str | os.PathLike, seed: int, rates: dict[str, float]) -> None:
        self.final_path = Path(out_dir) / TRUTH_FILENAME
        self.tmp_path = self.final_path.with_name(self.final_path.name + ".tmp")
        self._file = h5py.File(self.tmp_path, "w")
        f = self._file
        f.create_dataset("object_id", shape=(0,), maxshape=(None,), dtype="int64",
                         chunks=(65536,))
        f.create_dataset("label", shape=(0,), maxshape=(None,), dtype=LABEL_DTYPE,
                         chunks=(65536,))
        group = f.create_group("params")
        for name in PARAM_NAMES:
            group.create_dataset(name, shape=(0,), maxshape=(None,), dtype="float32",
                                 chunks=(65536,))
        f.attrs["classes"] = json.dumps(list(CLASSES))
        f.attrs["rates"] = json.dumps(rates)
        f.attrs["seed"] = int(seed)
        f.attrs["artefact_kinds"] = json.dumps(ARTEFACT_KINDS)
        f.attrs["ring_kinds"] = json.dumps(RING_KINDS)
        f.attrs["params"] = json.dumps(TRUTH_PARAMS)
        self.n = 0

    def append(self, object_id: np.ndarray, label: np.ndarray, params: np.ndarray) -> None:
        """object_id (n,), label (n,) class names as bytes, params (n, P) float32."""
        n = len(object_id)
        lo, hi = self.n, self.n + n
        f = self._file
        for key, values in (("object_id", object_id), ("label", label)):
            f[key].resize(hi, axis=0)
            f[key][lo:hi] = values
        for j, name in enumerate(PARAM_NAMES):
            ds = f["params"][name]
            ds.resize(hi, axis=0)
            ds[lo:hi] = params[:, j]
        self.n = hi

    def close(self) -> Path:
        self._file.close()
        os.replace(self.tmp_path, self.final_path)
        return self.final_path

    def abort(self) -> None:
        self._file.close()
        self.tmp_path.unlink(missing_ok=True)
