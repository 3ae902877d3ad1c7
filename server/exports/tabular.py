"""The table formats of an export: CSV, JSON and a FITS binary table, streamed batch by batch.

One row per object, the same columns in each format (:func:`columns`):

| column | meaning |
|---|---|
| ``object_id`` | the object's row in the survey |
| ``ra``, ``dec`` | degrees |
| survey catalog columns | as stored; a per-band column ``flux`` becomes ``flux_g``, ``flux_r``, ``flux_z`` |
| ``consensus``, ``consensus_basis`` | :mod:`server.teams.consensus` (empty: none) |
| ``n_accept``, ``n_reject``, ``n_unsure``, ``n_votes``, ``n_source`` | vote counts |
| ``label_<username>`` | each labeler's label (empty: none) |
| ``source_<name>`` | each imported source's label |
| ``probe_score``, ``probe_version`` | the probe's probability, and which probe (empty: none) |

JSON is one document, ``{"export": {...}, "objects": [...]}``, with each object's labels,
sources and catalog as nested objects, NaN written as null. FITS is a primary HDU and one
``OBJECTS`` binary table written with astropy's :class:`~astropy.io.fits.StreamingHDU` (the row
count is known first, so rows are appended without holding the table); the export's
description is in its header (long values with CONTINUE cards), FITS column names keep to
letters, digits and ``_``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ml.survey_format import BANDS
from server.exports.table import ExportTable, RowBatch

Progress = Callable[[int], None]  # rows written so far
VOTE_COLUMNS = ("n_accept", "n_reject", "n_unsure", "n_votes", "n_source")
VALUE_WIDTH = 6  # accept / reject / unsure / labels / source


@dataclass(frozen=True)
class Column:
    """One output column: its name, kind (``int``, ``float``, ``str``) and values per batch."""

    name: str
    kind: str
    get: Callable[[RowBatch], Sequence[Any]]
    width: int = VALUE_WIDTH  # characters of a str column in FITS


def _catalog_columns(table: ExportTable) -> list[Column]:
    out = []
    for name in table.catalog_columns:
        dtype, trailing = table.survey.column_specs[name]
        kind = "str" if dtype.kind in "SU" else ("int" if dtype.kind in "iub" else "float")
        width = max(1, dtype.itemsize) if dtype.kind == "S" else 32
        if trailing == ():
            out.append(Column(name, kind, lambda b, n=name: b.catalog[n], width))
            continue
        parts = BANDS if trailing == (3,) else tuple(str(i) for i in range(int(np.prod(trailing))))
        for j, part in enumerate(parts):
            out.append(Column(f"{name}_{part}", kind,
                              lambda b, n=name, j=j: b.catalog[n].reshape(len(b.object_ids),
                                                                          -1)[:, j], width))
    return out


def columns(table: ExportTable) -> list[Column]:
    """The export's columns, in file order (module docstring)."""
    version = table.probe_version
    out = [Column("object_id", "int", lambda b: b.object_ids)]
    out += _catalog_columns(table)
    out += [Column("consensus", "str", lambda b: b.consensus),
            Column("consensus_basis", "str", lambda b: b.basis)]
    out += [Column(k, "int", lambda b, k=k: b.votes[k]) for k in VOTE_COLUMNS]
    out += [Column(f"label_{name}", "str", lambda b, n=name: b.labels[n])
            for _, name in table.labelers]
    out += [Column(f"source_{name}", "str", lambda b, n=name: b.sources[n],
                   max(VALUE_WIDTH, 1)) for name in table.source_names]
    out += [Column("probe_score", "float", lambda b: b.probe_score),
            Column("probe_version", "int",
                   lambda b: [version] * len(b.object_ids))]
    return out


def _text(value: Any) -> str:
    """A CSV field: empty for missing values, full precision for floats."""
    if value is None:
        return ""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("ascii", "replace").strip()
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _column_text(column: Column, values: Sequence[Any]) -> list[str]:
    """A column's CSV fields, converted a whole column at a time (as :func:`_text` would)."""
    if column.kind == "float":
        return [repr(v) if math.isfinite(v) else "" for v in np.asarray(values, float).tolist()]
    if column.kind == "int" and isinstance(values, np.ndarray):
        return [str(v) for v in values.tolist()]
    return [_text(v) for v in values]


def write_csv(path: Path, table: ExportTable, meta: dict, progress: Progress) -> int:
    """Write the export as CSV; returns the number of rows."""
    cols = columns(table)
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([c.name for c in cols])
        for batch in table.batches():
            writer.writerows(zip(*(_column_text(c, c.get(batch)) for c in cols), strict=True))
            written += len(batch.object_ids)
            progress(written)
    return written


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("ascii", "replace").strip()
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _json_objects(table: ExportTable, batch: RowBatch) -> list[dict]:
    catalog = {name: batch.catalog[name] for name in table.catalog_columns}
    out = []
    for i, object_id in enumerate(batch.object_ids.tolist()):
        out.append({
            "object_id": object_id,
            "ra": _json_value(batch.catalog["ra"][i]),
            "dec": _json_value(batch.catalog["dec"][i]),
            "catalog": {name: (_json_value(v[i]) if v.ndim == 1 else
                               [_json_value(x) for x in v[i].ravel()])
                        for name, v in catalog.items() if name not in ("ra", "dec")},
            "consensus": batch.consensus[i], "consensus_basis": batch.basis[i],
            "votes": {k: int(batch.votes[k][i]) for k in VOTE_COLUMNS},
            "labels": {name: values[i] for name, values in batch.labels.items()
                       if values[i] is not None},
            "sources": {name: values[i] for name, values in batch.sources.items()
                        if values[i] is not None},
            "probe_score": _json_value(batch.probe_score[i]),
            "probe_version": table.probe_version,
        })
    return out


def write_json(path: Path, table: ExportTable, meta: dict, progress: Progress) -> int:
    """Write the export as one JSON document; returns the number of rows."""
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"export": ' + json.dumps(meta) + ',\n"objects": [')
        for batch in table.batches():
            for obj in _json_objects(table, batch):
                f.write(("\n" if written == 0 else ",\n") + json.dumps(obj, allow_nan=False))
                written += 1
            progress(written)
        f.write("\n]}\n")
    return written


_FITS_FORMAT = {"int": "K", "float": "D"}


def _fits_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name)[:60]
    out, k = base, 1
    while out.lower() in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out.lower())
    return out


def write_fits(path: Path, table: ExportTable, meta: dict, progress: Progress) -> int:
    """Write the export as a FITS binary table (``OBJECTS``); returns the number of rows."""
    cols = columns(table)
    taken: set[str] = set()
    definitions = [fits.Column(name=_fits_name(c.name, taken),
                               format=f"{c.width}A" if c.kind == "str" else _FITS_FORMAT[c.kind],
                               null=-1 if c.name == "probe_version" else None)
                   for c in cols]
    header = fits.BinTableHDU.from_columns(fits.ColDefs(definitions), nrows=0).header
    header["NAXIS2"] = table.n
    header["EXTNAME"] = "OBJECTS"
    header["CAMPAIGN"] = (meta["campaign_id"], "galsearch campaign id")
    header["EXPORTID"] = (meta["export_id"], "galsearch export id")
    header["PROBEVER"] = (-1 if table.probe_version is None else table.probe_version,
                          "probe version of probe_score (-1: none)")
    header["CREATED"] = (meta["created_at"], "UTC")
    header["FILTERS"] = json.dumps(meta["filters"])
    header["TEAMRULE"] = json.dumps(meta["rules"])
    names = [d.name for d in definitions]
    dtype = np.dtype([(name, (f"S{c.width}" if c.kind == "str" else
                              (">i8" if c.kind == "int" else ">f8")))
                      for name, c in zip(names, cols, strict=True)])
    path.unlink(missing_ok=True)  # StreamingHDU appends to a file that exists
    stream = fits.StreamingHDU(str(path), header)
    written = 0
    try:
        for batch in table.batches():
            records = np.zeros(len(batch.object_ids), dtype=dtype)
            for name, c in zip(names, cols, strict=True):
                values = c.get(batch)
                if c.kind == "str":
                    records[name] = [_text(v).encode("ascii", "replace")[:c.width]
                                     for v in values]
                elif c.kind == "int":
                    records[name] = [-1 if v is None else v for v in values]
                else:
                    records[name] = np.asarray(values, dtype=np.float64)
            stream.write(records.view(np.uint8))
            written += len(records)
            progress(written)
    finally:
        stream.close()
    return written
