"""Imports: bring a list of objects from outside (a CSV or FITS table) into a campaign.

A table names objects by ``object_id`` (rows of this survey) or by sky position (``ra``,
``dec``: degrees, or sexagesimal text such as ``10:21:09.3`` / ``+01:22:05``, ICRS). Positions
are cross-matched to the survey (:meth:`server.sky_match.SkyMatcher.match`, a KD-tree on the
sphere): a row matches the nearest object when it lies within the tolerance, and is reported

- *unmatched* when nothing lies within the tolerance (with the nearest object and how far), or
  when the row has no usable id or position;
- *ambiguous* when a second object also lies within the tolerance (a blend or a close pair:
  which one the catalog meant is not known, so the row is left out rather than guessed).

The matched objects go into the campaign as

- **seeds** (``object`` seeds for ids, ``sky`` seeds with their separation for positions), at
  most :data:`SEED_IMPORT_MAX` per import, objects already seeds left as they are; or
- **labels of a named source** (:class:`~server.models.SourceLabel`), e.g. ``SuGOHI`` for a
  published catalog of known lenses: the table's ``label`` column (accept / reject / unsure,
  any case) or one value for every row. Importing a source again replaces its label on each
  object it names. Rows that give one object two different values are reported *conflicting*
  and left out.

How source labels count: they are not a labeler. The consensus
(:mod:`server.teams.consensus`) takes them for objects the team has not voted on enough, and
the team's own verdict overrides them; the probe trains on the consensus, so it learns from an
imported catalog at once. They never count against the hand-out overlap and are not raters in
the agreement.

Limits: the request body is bounded by ``GALSEARCH_MAX_UPLOAD_MB``; a table may hold at most
:data:`IMPORT_MAX_ROWS` rows. A file that cannot be read, or lacks the columns, is refused
whole (:class:`ImportFileError`, a 422 in the API) and nothing is written.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from server.database import utcnow
from server.extensions import db
from server.models import CampaignSeed, LabelValue, SeedKind, SourceLabel
from server.sky_match import SkyMatcher

IMPORT_MAX_ROWS = 100_000
SEED_IMPORT_MAX = 200  # every seed is a query of every candidate page
REPORT_MAX_ROWS = 100  # rows listed per kind of problem (the counts are complete)
_WRITE_CHUNK = 500

OBJECT_ID_COLUMNS = ("object_id", "objectid", "galsearch_id")
RA_COLUMNS = ("ra", "ra_deg", "radeg", "raj2000", "ra_icrs")
DEC_COLUMNS = ("dec", "dec_deg", "decdeg", "dej2000", "decj2000", "de_icrs", "dec_icrs")
LABEL_COLUMNS = ("label", "value")
VALUES = tuple(v.value for v in LabelValue)


class ImportFileError(ValueError):
    """The file cannot be imported as a whole; the message says why and what to do."""


@dataclass(frozen=True)
class ImportTable:
    """The rows of an uploaded table that name objects, parsed."""

    rows: np.ndarray  # (M,) 1-based row numbers in the table (a CSV's header is not a row)
    object_ids: np.ndarray | None  # (M,) int64, -1 where missing; None: positions instead
    ra_deg: np.ndarray | None  # (M,) float64, NaN where missing
    dec_deg: np.ndarray | None
    values: list[str] | None  # (M,) label values from the file; None: no label column


@dataclass
class MatchReport:
    """What matched and what did not, row by row."""

    rows: int = 0
    matched_rows: list[int] = field(default_factory=list)
    object_ids: list[int] = field(default_factory=list)
    separations_arcsec: list[float | None] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)


def _read(data: bytes, filename: str) -> Table:
    if not data.strip():
        raise ImportFileError("the file is empty: upload a CSV or FITS table with a header")
    is_fits = data.startswith(b"SIMPLE") or data.startswith(b"\x1f\x8b")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's unit and header warnings
            if is_fits:
                return Table.read(io.BytesIO(data), format="fits")
            text = data.decode("utf-8-sig")
            return Table.read(text.splitlines(), format="ascii.csv")
    except UnicodeDecodeError:
        raise ImportFileError(f"{filename or 'the file'} is neither FITS nor UTF-8 CSV text: "
                              "upload a CSV (comma-separated, with a header) or a FITS "
                              "table") from None
    except Exception as error:  # astropy raises many kinds for a malformed table
        kind = "FITS table" if is_fits else "CSV table"
        raise ImportFileError(f"{filename or 'the file'} cannot be read as a {kind} "
                              f"({type(error).__name__}: {error}); check that it has a header "
                              "row and the same number of fields on every line") from None


def _column(table: Table, names: tuple[str, ...]) -> str | None:
    lowered = {name.lower(): name for name in table.colnames}
    return next((lowered[n] for n in names if n in lowered), None)


def _filled(column, fill: Any) -> np.ndarray:
    """A column's values with masked entries replaced by ``fill``."""
    if hasattr(column, "mask") and np.any(column.mask):
        return np.asarray(column.filled(fill))
    return np.asarray(column)


def _positions(table: Table, ra_name: str, dec_name: str) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = table[ra_name], table[dec_name]
    if ra.dtype.kind in "iuf" and dec.dtype.kind in "iuf":
        return (_filled(ra, np.nan).astype(np.float64), _filled(dec, np.nan).astype(np.float64))
    # text: decimal degrees, or sexagesimal (RA in hours, Dec in degrees); row by row, so
    # that one bad row stays one unmatched row
    ra_text, dec_text = _filled(ra, "").astype(str), _filled(dec, "").astype(str)
    ra_deg, dec_deg = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for i, (r, d) in enumerate(zip(ra_text, dec_text, strict=True)):
        try:
            ra_deg[i], dec_deg[i] = float(r), float(d)
            continue
        except ValueError:
            pass
        try:
            coord = SkyCoord(r, d, unit=(u.hourangle, u.deg))
        except ValueError:
            continue
        ra_deg[i], dec_deg[i] = coord.ra.deg, coord.dec.deg
    return ra_deg, dec_deg


def parse_table(data: bytes, filename: str = "") -> ImportTable:
    """Read an uploaded CSV or FITS table and find its object ids or positions and labels.

    Raises:
        ImportFileError: unreadable, no rows, too many rows, neither ``object_id`` nor
            ``ra``/``dec`` columns, or label values other than accept / reject / unsure.
    """
    table = _read(data, filename)
    if len(table) == 0:
        raise ImportFileError("the table has a header but no rows")
    if len(table) > IMPORT_MAX_ROWS:
        raise ImportFileError(f"the table has {len(table)} rows; at most {IMPORT_MAX_ROWS} can "
                              "be imported at once: split it")
    rows = np.arange(1, len(table) + 1)
    id_name = _column(table, OBJECT_ID_COLUMNS)
    ra_name, dec_name = _column(table, RA_COLUMNS), _column(table, DEC_COLUMNS)
    object_ids = ra = dec = None
    if id_name is not None:
        column = table[id_name]
        if column.dtype.kind not in "iu":
            raise ImportFileError(f"column {id_name!r} must hold integer object ids, not "
                                  f"{column.dtype}")
        object_ids = _filled(column, -1).astype(np.int64)
    elif ra_name is not None and dec_name is not None:
        ra, dec = _positions(table, ra_name, dec_name)
    else:
        raise ImportFileError(
            f"the table needs an object id column ({', '.join(OBJECT_ID_COLUMNS)}) or sky "
            f"positions ({'/'.join(RA_COLUMNS[:2])} and {'/'.join(DEC_COLUMNS[:2])}, degrees "
            f"or sexagesimal); its columns are: {', '.join(table.colnames)}")
    values = None
    label_name = _column(table, LABEL_COLUMNS)
    if label_name is not None:
        values = [str(v).strip().lower() for v in _filled(table[label_name], "").astype(str)]
        bad = [(int(r), v) for r, v in zip(rows, values, strict=True) if v not in VALUES]
        if bad:
            shown = ", ".join(f"row {r}: {v!r}" for r, v in bad[:5])
            raise ImportFileError(f"column {label_name!r} must hold accept, reject or unsure; "
                                  f"{len(bad)} row(s) do not ({shown})")
    return ImportTable(rows, object_ids, ra, dec, values)


def match(table: ImportTable, n_objects: int, sky: SkyMatcher | None,
          tolerance_arcsec: float) -> MatchReport:
    """Match each row to a survey object (module docstring); ``sky`` is needed for positions."""
    report = MatchReport(rows=len(table.rows))
    if table.object_ids is not None:
        for row, object_id in zip(table.rows.tolist(), table.object_ids.tolist(), strict=True):
            if 0 <= object_id < n_objects:
                report.matched_rows.append(row)
                report.object_ids.append(object_id)
                report.separations_arcsec.append(None)
            else:
                reason = ("no object id" if object_id == -1 else
                          f"object {object_id} is not in the survey (ids 0 to {n_objects - 1})")
                report.unmatched.append({"row": row, "reason": reason,
                                         "object_id": None if object_id == -1 else object_id})
        return report
    usable = np.isfinite(table.ra_deg) & np.isfinite(table.dec_deg) \
        & (np.abs(table.dec_deg) <= 90)
    for row in table.rows[~usable].tolist():
        report.unmatched.append({"row": row, "reason": "no usable ra/dec"})
    if not usable.any():
        return report
    nearest, separation, second = sky.match(table.ra_deg[usable], table.dec_deg[usable])
    for i, row in enumerate(table.rows[usable].tolist()):
        where = {"row": row, "ra": float(table.ra_deg[usable][i]),
                 "dec": float(table.dec_deg[usable][i]), "nearest_object_id": int(nearest[i]),
                 "separation_arcsec": float(separation[i])}
        if separation[i] > tolerance_arcsec:
            report.unmatched.append({**where, "reason": f"no survey object within "
                                                        f"{tolerance_arcsec:g} arcsec"})
        elif second[i] <= tolerance_arcsec:
            report.ambiguous.append({**where, "second_separation_arcsec": float(second[i]),
                                     "reason": "two or more survey objects within "
                                               f"{tolerance_arcsec:g} arcsec"})
        else:
            report.matched_rows.append(row)
            report.object_ids.append(int(nearest[i]))
            report.separations_arcsec.append(float(separation[i]))
    return report


def _upsert():
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SourceLabel)


def import_labels(campaign_id: int, user_id: int, report: MatchReport, values: list[str] | None,
                  default_value: str, source: str, dry_run: bool) -> tuple[int, list[dict[str, Any]]]:
    """Write (or, dry run, count) the matched rows as labels of ``source``.

    Returns:
        (objects labeled, conflicting rows).
    """
    chosen: dict[int, tuple[str, int]] = {}
    conflicts: dict[int, list[int]] = {}
    for row, object_id in zip(report.matched_rows, report.object_ids, strict=True):
        value = values[row - 1] if values is not None else default_value
        if object_id in chosen and chosen[object_id][0] != value:
            conflicts.setdefault(object_id, [chosen[object_id][1]]).append(row)
        chosen.setdefault(object_id, (value, row))
    for object_id in conflicts:
        del chosen[object_id]
    conflicting = [{"object_id": o, "rows": rows, "reason": "rows give this object different "
                                                            "labels"}
                   for o, rows in sorted(conflicts.items())]
    if not dry_run and chosen:
        now = utcnow()
        items = [{"campaign_id": campaign_id, "object_id": o, "source": source,
                  "value": LabelValue(v), "imported_by_id": user_id, "created_at": now}
                 for o, (v, _) in sorted(chosen.items())]
        for start in range(0, len(items), _WRITE_CHUNK):
            statement = _upsert().values(items[start:start + _WRITE_CHUNK])
            db.session.execute(statement.on_conflict_do_update(
                index_elements=["campaign_id", "object_id", "source"],
                set_={"value": statement.excluded.value,
                      "imported_by_id": statement.excluded.imported_by_id,
                      "created_at": statement.excluded.created_at}))
    return len(chosen), conflicting


def import_seeds(campaign_id: int, user_id: int, report: MatchReport, table: ImportTable,
                 note: str, dry_run: bool) -> tuple[int, int]:
    """Add (or, dry run, count) the matched objects as seeds.

    Returns:
        (seeds added, objects that were seeds already).

    Raises:
        ImportFileError: more than :data:`SEED_IMPORT_MAX` new seeds.
    """
    existing = set(db.session.scalars(select(CampaignSeed.object_id).where(
        CampaignSeed.campaign_id == campaign_id, CampaignSeed.object_id.is_not(None))))
    new: dict[int, tuple[int, float | None]] = {}
    for row, object_id, separation in zip(report.matched_rows, report.object_ids,
                                          report.separations_arcsec, strict=True):
        if object_id not in existing:
            new.setdefault(object_id, (row, separation))
    already = len(set(report.object_ids) & existing)
    if len(new) > SEED_IMPORT_MAX:
        raise ImportFileError(f"{len(new)} new seeds: at most {SEED_IMPORT_MAX} per import "
                              "(every seed is searched for every page); import the rest as "
                              "labels of a source instead, so that the probe learns from them")
    if not dry_run:
        for object_id, (row, separation) in new.items():
            if table.object_ids is not None:
                seed = CampaignSeed(campaign_id=campaign_id, kind=SeedKind.OBJECT,
                                    object_id=object_id, note=note, added_by_id=user_id)
            else:
                i = row - 1
                seed = CampaignSeed(campaign_id=campaign_id, kind=SeedKind.SKY,
                                    object_id=object_id, ra=float(table.ra_deg[i]),
                                    dec=float(table.dec_deg[i]), separation_arcsec=separation,
                                    note=note, added_by_id=user_id)
            db.session.add(seed)
    return len(new), already
