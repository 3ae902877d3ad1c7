"""Schemas of imports (tables of objects brought into a campaign) and imported sources."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import OneOf, Range, Regexp

from server.imports import REPORT_MAX_ROWS, VALUES

SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._+()-]{0,63}$"
TOLERANCE_DEFAULT_ARCSEC = 1.0  # catalog-to-catalog: well inside a Legacy Surveys seeing disc
TOLERANCE_MAX_ARCSEC = 60.0


def source_field(**kwargs) -> String:
    return String(validate=Regexp(SOURCE_PATTERN, error="a source name is 1 to 64 letters, "
                                  "digits, spaces or ._+()- and starts with a letter or digit"),
                  metadata={"description": "who the labels come from, e.g. a catalog: "
                                           "'SuGOHI', 'Jacobs+2019'", "example": "SuGOHI"},
                  **kwargs)


class ImportIn(Schema):
    file = File(required=True, metadata={
        "description": "a CSV (with a header) or FITS table: an object_id column, or ra and "
                       "dec (degrees, or sexagesimal text), and optionally a label column "
                       "(accept / reject / unsure)"})
    into = String(required=True, validate=OneOf(["seeds", "labels"]), metadata={
        "description": "'seeds' (labelers), or 'labels' of a named source (owners)"})
    source = source_field()
    value = String(load_default="accept", validate=OneOf(VALUES), metadata={
        "description": "labels: the value of rows without a label column"})
    tolerance_arcsec = Float(load_default=TOLERANCE_DEFAULT_ARCSEC,
                             validate=Range(0.01, TOLERANCE_MAX_ARCSEC), metadata={
                                 "description": "positions: how far the survey object may be"})
    dry_run = Boolean(load_default=False, metadata={
        "description": "match and report, write nothing"})


class RowIssueOut(Schema):
    row = Integer(required=True, metadata={"description": "1-based data row of the table"})
    reason = String(required=True)
    object_id = Integer(allow_none=True)
    ra = Float(metadata={"description": "degrees"})
    dec = Float(metadata={"description": "degrees"})
    nearest_object_id = Integer()
    separation_arcsec = Float()
    second_separation_arcsec = Float()


class ConflictOut(Schema):
    object_id = Integer(required=True)
    rows = List(Integer(), required=True)
    reason = String(required=True)


class ImportReportOut(Schema):
    into = String(required=True)
    source = String(allow_none=True)
    dry_run = Boolean(required=True)
    rows = Integer(required=True, metadata={"description": "data rows in the table"})
    matched = Integer(required=True, metadata={"description": "rows matched to one object"})
    written = Integer(required=True, metadata={
        "description": "seeds added, or objects given the source's label (dry run: would be)"})
    already_seeds = Integer(required=True)
    unmatched_count = Integer(required=True)
    ambiguous_count = Integer(required=True)
    conflicting_count = Integer(required=True)
    unmatched = Nested(RowIssueOut, many=True, required=True, metadata={
        "description": f"the first {REPORT_MAX_ROWS} rows that matched nothing"})
    ambiguous = Nested(RowIssueOut, many=True, required=True, metadata={
        "description": f"the first {REPORT_MAX_ROWS} rows with two objects within the "
                       "tolerance"})
    conflicting = Nested(ConflictOut, many=True, required=True)


class SourceOut(Schema):
    source = String(required=True)
    objects = Integer(required=True)
    counts = Dict(String(), Integer(), required=True, metadata={
        "description": "labels per value"})
    imported_at = DateTime(required=True, metadata={"description": "the latest import"})
