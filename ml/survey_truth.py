"""Read a survey's ground truth (``truth.h5``), written by the simulator and never by training.

Layout (docs/DESIGN.md, "Survey I/O"): ``object_id`` (N,) int64, ``label`` (N,) fixed-length
bytes holding each object's class name, ``params/<name>`` (N,) float32 with NaN where a
parameter does not apply to the object's class; attributes ``classes`` (the class names, in the
simulator's order), ``rates`` (JSON: class -> rate) and ``seed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


@dataclass
class SurveyTruth:
    """Ground truth of a simulated survey, one row per object id in id order."""

    object_ids: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N,) str: class name of each object
    classes: tuple[str, ...]  # every class name, in the simulator's order
    params: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) float32, NaN = n/a
    rates: dict[str, float] = field(default_factory=dict)
    seed: int | None = None

    def counts(self) -> dict[str, int]:
        """Objects per class, for every class (zero included), in class order."""
        names, n = np.unique(self.labels, return_counts=True)
        found = dict(zip(names.tolist(), n.tolist(), strict=True))
        return {c: int(found.get(c, 0)) for c in self.classes}


def _names(value) -> list[str]:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = [part.strip() for part in value.split(",") if part.strip()]
        return [str(v) for v in parsed]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value).tolist()]


def read_truth(path: str | Path, expected_n: int | None = None) -> SurveyTruth:
    """Load ``truth.h5`` (small: one label and a few floats per object).

    Raises:
        ValueError: a key is missing, or the lengths disagree with each other or ``expected_n``.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: not an HDF5 file or truncated ({exc})") from exc
    with f:
        for key in ("object_id", "label"):
            if key not in f:
                raise ValueError(f"{path} lacks {key!r}; truth.h5 needs object_id and label")
        object_ids = f["object_id"][()].astype(np.int64)
        labels = f["label"].asstr()[()] if f["label"].dtype.kind == "O" else f["label"][()]
        labels = np.char.decode(labels, "utf-8") if labels.dtype.kind == "S" else labels
        labels = np.asarray(labels, dtype=str)
        params = {}
        if "params" in f:
            params = {name: ds[()].astype(np.float32) for name, ds in f["params"].items()
                      if isinstance(ds, h5py.Dataset)}
        attrs = dict(f.attrs)
    n = object_ids.shape[0]
    bad = {k: v.shape[0] for k, v in {"label": labels, **params}.items() if v.shape[0] != n}
    if bad:
        raise ValueError(f"{path}: object_id has {n} rows but {bad}; truth.h5 is inconsistent")
    if expected_n is not None and n != expected_n:
        raise ValueError(
            f"{path} describes {n} objects but the survey holds {expected_n}; it belongs to "
            "another survey"
        )
    # rows in object-id order, so that labels[i] is the class of object i
    order = np.argsort(object_ids, kind="stable")
    object_ids, labels = object_ids[order], labels[order]
    params = {name: values[order] for name, values in params.items()}
    if expected_n is not None and not np.array_equal(object_ids, np.arange(n)):
        raise ValueError(f"{path}: object_id is not a permutation of 0..{n - 1}")
    classes = _names(attrs["classes"]) if "classes" in attrs else []
    classes += sorted(set(np.unique(labels).tolist()) - set(classes))
    rates = attrs.get("rates")
    rates = json.loads(rates) if isinstance(rates, str | bytes) else {}
    seed = attrs.get("seed")
    return SurveyTruth(
        object_ids=object_ids, labels=labels, classes=tuple(classes), params=params,
        rates={str(k): float(v) for k, v in rates.items()},
        seed=None if seed is None else int(seed),
    )
