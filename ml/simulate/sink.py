"""Collect simulated chunks into larger batches before they reach the HDF5 writers.

Every :meth:`SurveyWriter.append` and :meth:`TruthWriter.append` call costs a resize and a
write per dataset (a dozen catalog columns, some forty truth parameters), so appending each
32-object chunk as it arrives spent more of the parent's time in HDF5 bookkeeping than in
moving pixels. The sink copies chunks into a fixed buffer and writes 256 objects (about 70 MB
of 152 px cutouts) at a time, and truth rows 8,192 at a time: memory stays bounded, and the
parent keeps up with the workers.
"""

from __future__ import annotations

import numpy as np

from ml.simulate.truth import PARAM_NAMES, TruthWriter
from ml.survey_writer import SurveyWriter

WRITE_BATCH_OBJECTS = 256
TRUTH_BATCH_ROWS = 8192


class SurveySink:
    """Buffers chunks of objects, in object-id order, for a survey and a truth writer."""

    def __init__(self, writer: SurveyWriter, truth: TruthWriter, image_size: int,
                 batch: int = WRITE_BATCH_OBJECTS, truth_batch: int = TRUTH_BATCH_ROWS) -> None:
        self.writer, self.truth = writer, truth
        self._images = np.empty((batch, 3, image_size, image_size), dtype=np.float32)
        self._catalog: list[dict[str, np.ndarray]] = []
        self._n_images = 0
        self._truth_ids: list[np.ndarray] = []
        self._truth_names: list[np.ndarray] = []
        self._truth_params: list[np.ndarray] = []
        self._truth_rows = 0
        self._truth_batch = truth_batch
        self.n = 0  # objects received

    def add(self, images: np.ndarray, catalog: dict[str, np.ndarray], names: np.ndarray,
            params: np.ndarray) -> None:
        """One chunk: images (m, 3, S, S), catalog columns, truth names (m,), params (m, P)."""
        m = len(images)
        ids = np.arange(self.n, self.n + m, dtype=np.int64)
        self.n += m
        done = 0
        while done < m:
            take = min(m - done, len(self._images) - self._n_images)
            self._images[self._n_images:self._n_images + take] = images[done:done + take]
            self._catalog.append({k: v[done:done + take] for k, v in catalog.items()})
            self._n_images += take
            done += take
            if self._n_images == len(self._images):
                self._flush_images()
        self._truth_ids.append(ids)
        self._truth_names.append(names)
        self._truth_params.append(params.reshape(m, len(PARAM_NAMES)))
        self._truth_rows += m
        if self._truth_rows >= self._truth_batch:
            self._flush_truth()

    def _flush_images(self) -> None:
        if self._n_images:
            catalog = {k: np.concatenate([c[k] for c in self._catalog])
                       for k in self._catalog[0]}
            self.writer.append(self._images[:self._n_images], catalog)
        self._catalog, self._n_images = [], 0

    def _flush_truth(self) -> None:
        if self._truth_rows:
            self.truth.append(np.concatenate(self._truth_ids),
                              np.concatenate(self._truth_names),
                              np.concatenate(self._truth_params))
        self._truth_ids, self._truth_names, self._truth_params = [], [], []
        self._truth_rows = 0

    def flush(self) -> None:
        """Write everything buffered (before the writers are closed)."""
        self._flush_images()
        self._flush_truth()
