"""The HDF5 training set: cutouts with their consensus and per-labeler labels, ready for h5py.

Layout (N objects in ascending id order; every dataset has N rows):

| key | shape, dtype | meaning |
|---|---|---|
| ``object_id`` | (N,) int64 | rows of the survey |
| ``images`` | (N, 3, S, S) float32 | g, r, z in nanomaggies: the central S x S pixels (``cutout_size``; the survey's full size by default), one image per chunk |
| ``ra``, ``dec`` | (N,) float64 | degrees |
| ``catalog/<column>`` | (N, ...) | the survey's other catalog columns |
| ``consensus`` | (N,) int8 | code of the consensus (attribute ``codes``: accept 1, reject 0, unsure 2, none -1) |
| ``votes`` | (N, 3) int16 | team votes accept, reject, unsure |
| ``labels`` | (N, L) int8 | each labeler's label code (-1: none); attribute ``labelers``: their usernames |
| ``source_labels`` | (N, S) int8 | each imported source's label code; attribute ``sources`` |
| ``probe_score`` | (N,) float32 | the probe's probability (NaN: no probe); attribute ``probe_version`` |
| ``split`` | (N,) uint8 | 0 train, 1 validation; attributes ``seed``, ``validation_fraction`` |

The split is stratified by consensus: within each consensus value (and "none"), a random
permutation seeded by ``seed`` puts ``round(validation_fraction * count)`` objects in
validation, so both parts keep the class balance and the same seed gives the same split.
The root attributes describe the export (campaign, filters, team rules, probe version,
survey fingerprint, band order, units, pixel scale).

Images are read in batches of :data:`IMAGE_BATCH` objects, cropped, and written before the next
batch is read, so memory stays at one batch whatever N.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ml.survey_format import BANDS, PIXEL_SCALE_ARCSEC
from server.exports.table import ExportTable
from server.exports.tabular import Progress

FORMAT_NAME = "galsearch-training-set"
FORMAT_VERSION = 1
CODES = {"accept": 1, "reject": 0, "unsure": 2, None: -1}
IMAGE_BATCH = 256  # ~71 MB of 152-px float32 images at a time


def label_codes(values: list[str | None]) -> np.ndarray:
    return np.array([CODES[v] for v in values], dtype=np.int8)


def stratified_split(consensus_codes: np.ndarray, validation_fraction: float,
                     seed: int) -> np.ndarray:
    """0 (train) / 1 (validation) per object, stratified by consensus code (module doc)."""
    split = np.zeros(len(consensus_codes), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for code in sorted(set(consensus_codes.tolist())):
        members = np.flatnonzero(consensus_codes == code)
        chosen = rng.permutation(members)[:round(validation_fraction * len(members))]
        split[chosen] = 1
    return split


def crop_window(image_size: int, cutout_size: int | None) -> slice:
    """The central ``cutout_size`` pixels of an ``image_size`` side.

    Raises:
        ValueError: a crop larger than the survey's cutouts.
    """
    if cutout_size is None or cutout_size == image_size:
        return slice(0, image_size)
    if cutout_size > image_size:
        raise ValueError(f"cutout_size {cutout_size} is larger than the survey's "
                         f"{image_size}-pixel cutouts")
    start = (image_size - cutout_size) // 2
    return slice(start, start + cutout_size)


def write_training_set(path: Path, table: ExportTable, meta: dict, progress: Progress,
                       cutout_size: int | None, validation_fraction: float, seed: int) -> int:
    """Write the HDF5 training set; returns the number of objects."""
    n = table.n
    _, height, _ = table.survey.image_shape
    window = crop_window(height, cutout_size)
    side = window.stop - window.start
    # the consensus of every object first (small), for the stratified split
    consensus = np.empty(n, dtype=np.int8)
    for start in range(0, n, 4096):
        batch = table.batch(table.object_ids[start:start + 4096], catalog=False)
        consensus[start:start + len(batch.object_ids)] = label_codes(batch.consensus)
    split = stratified_split(consensus, validation_fraction, seed)

    with h5py.File(path, "w") as f:
        f.attrs.update({
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "campaign_id": meta["campaign_id"], "campaign": meta["campaign"],
            "export_id": meta["export_id"], "created_at": meta["created_at"],
            "filters": json.dumps(meta["filters"]), "rules": json.dumps(meta["rules"]),
            "probe_version": -1 if table.probe_version is None else table.probe_version,
            "survey_fingerprint": table.survey.fingerprint(), "bands": ",".join(BANDS),
            "units": "nanomaggies", "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC,
            "cutout_size": side, "n": n,
        })
        f.create_dataset("object_id", data=table.object_ids)
        images = f.create_dataset("images", shape=(n, 3, side, side), dtype=np.float32,
                                  chunks=(1, 3, side, side) if n else None)
        ds_consensus = f.create_dataset("consensus", data=consensus)
        ds_consensus.attrs["codes"] = json.dumps({k or "none": v for k, v in CODES.items()})
        votes = f.create_dataset("votes", shape=(n, 3), dtype=np.int16)
        votes.attrs["columns"] = "accept,reject,unsure"
        labels = f.create_dataset("labels", shape=(n, len(table.labelers)), dtype=np.int8)
        labels.attrs["labelers"] = json.dumps([name for _, name in table.labelers])
        sources = f.create_dataset("source_labels", shape=(n, len(table.source_names)),
                                   dtype=np.int8)
        sources.attrs["sources"] = json.dumps(table.source_names)
        scores = f.create_dataset("probe_score", shape=(n,), dtype=np.float32)
        scores.attrs["probe_version"] = -1 if table.probe_version is None \
            else table.probe_version
        ds_split = f.create_dataset("split", data=split)
        ds_split.attrs.update({"seed": seed, "validation_fraction": validation_fraction,
                               "stratified_by": "consensus", "codes": "0 train, 1 validation"})
        catalog = {}
        for name in table.catalog_columns:
            dtype, trailing = table.survey.column_specs[name]
            target = f if name in ("ra", "dec") else f.require_group("catalog")
            catalog[name] = target.create_dataset(name, shape=(n, *trailing), dtype=dtype)

        written = 0
        for batch in table.batches(IMAGE_BATCH):
            lo, hi = written, written + len(batch.object_ids)
            pixels = table.survey.read_images(batch.object_ids)  # (B, 3, H, H)
            images[lo:hi] = pixels[:, :, window, window]
            del pixels
            votes[lo:hi] = np.stack([batch.votes["n_accept"], batch.votes["n_reject"],
                                     batch.votes["n_unsure"]], axis=1)
            if table.labelers:
                labels[lo:hi] = np.stack([label_codes(batch.labels[name])
                                          for _, name in table.labelers], axis=1)
            if table.source_names:
                sources[lo:hi] = np.stack([label_codes(batch.sources[name])
                                           for name in table.source_names], axis=1)
            scores[lo:hi] = batch.probe_score.astype(np.float32)
            for name, dataset in catalog.items():
                dataset[lo:hi] = batch.catalog[name]
            written = hi
            progress(written)
    return written
