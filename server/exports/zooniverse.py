"""The crowd-sourcing hand-off: a Zooniverse-style subject set, zipped.

The zip holds one PNG per object (``<object_id>.png``, rendered by :func:`ml.render.png_bytes`,
the same arcsinh g, r, z stretch as the labeling app) and ``manifest.csv`` beside them, one row
per subject: the ``image`` column names its file (the column a Zooniverse uploader such as
``panoptes subject-set upload-subjects`` reads, with the images in the manifest's folder), and
the metadata columns start with ``#``, which Zooniverse keeps with the subject but hides from
volunteers (``#object_id``, ``#ra``, ``#dec``, ``#consensus``, ``#n_votes``, ``#probe_score``,
``#probe_version``, ``#campaign``), so classifications can be joined back by object id without
biasing the volunteers.

PNGs are already compressed, so entries are stored (no deflate). The manifest is written to a
temporary file beside the zip as rows are rendered, then added last, so memory stays at one
batch of images.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from ml.render import png_bytes
from server.exports.table import ExportTable
from server.exports.tabular import Progress, _text

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("image", "#object_id", "#ra", "#dec", "#consensus", "#n_votes",
                    "#probe_score", "#probe_version", "#campaign")
IMAGE_BATCH = 128


def write_subject_set(path: Path, table: ExportTable, meta: dict, progress: Progress,
                      image_size: int | None) -> int:
    """Write the zipped subject set; returns the number of subjects."""
    manifest_path = path.with_name(path.name + ".manifest")
    written = 0
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf, \
                open(manifest_path, "w", newline="", encoding="utf-8") as manifest:
            rows = csv.writer(manifest)
            rows.writerow(MANIFEST_COLUMNS)
            for batch in table.batches(IMAGE_BATCH):
                images = table.survey.read_images(batch.object_ids)  # (B, 3, H, W)
                for i, object_id in enumerate(batch.object_ids.tolist()):
                    name = f"{object_id}.png"
                    zf.writestr(name, png_bytes(images[i], image_size))
                    rows.writerow([name, object_id, _text(batch.catalog["ra"][i]),
                                   _text(batch.catalog["dec"][i]), _text(batch.consensus[i]),
                                   int(batch.votes["n_votes"][i]),
                                   _text(batch.probe_score[i]),
                                   _text(table.probe_version), meta["campaign"]])
                written += len(batch.object_ids)
                progress(written)
            manifest.close()
            zf.write(manifest_path, MANIFEST_NAME)
    finally:
        manifest_path.unlink(missing_ok=True)
    return written
