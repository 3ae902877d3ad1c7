"""Schemas of exports: what to export (format, filters, options) and its record."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

from server.exports.files import FORMATS
from server.exports.table import CONSENSUS_FILTERS
from server.models.users import USERNAME_MAX

# options -> the formats they apply to
FORMAT_OPTIONS = {"cutout_size": {"hdf5"}, "validation_fraction": {"hdf5"}, "seed": {"hdf5"},
                  "image_size": {"zooniverse"}}


class ExportFiltersIn(Schema):
    consensus = List(String(validate=OneOf(CONSENSUS_FILTERS)), validate=Length(min=1),
                     metadata={"description": "keep objects whose consensus is one of these "
                                              "('none': no consensus yet)"})
    labelers = List(String(validate=Length(1, USERNAME_MAX)), validate=Length(1, 100),
                    metadata={"description": "keep objects labeled by any of these usernames"})
    min_probe_score = Float(validate=Range(0, 1), metadata={
        "description": "keep objects the campaign's probe gives at least this probability"})


class ExportOptionsIn(Schema):
    cutout_size = Integer(validate=Range(8, 512), metadata={
        "description": "hdf5: keep the central N x N pixels (e.g. 96, the network's view); "
                       "default: the full cutout (152 in DR9)"})
    validation_fraction = Float(validate=Range(0, 0.9), metadata={
        "description": "hdf5: share of each consensus class put in validation (default 0.2)"})
    seed = Integer(validate=Range(0, 2**31 - 1), metadata={
        "description": "hdf5: seed of the train/validation split (default 0)"})
    image_size = Integer(validate=Range(16, 1024), metadata={
        "description": "zooniverse: PNG side in pixels (default: the cutout's own)"})


class ExportIn(Schema):
    format = String(required=True, validate=OneOf(list(FORMATS)), metadata={
        "description": "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())})
    filters = Nested(ExportFiltersIn, load_default=dict)
    options = Nested(ExportOptionsIn, load_default=dict)

    @validates_schema
    def _options_fit_the_format(self, data, **kwargs):
        wrong = sorted(k for k in data.get("options", {})
                       if data["format"] not in FORMAT_OPTIONS[k])
        if wrong:
            raise ValidationError(f"not options of the {data['format']} format: "
                                  f"{', '.join(wrong)}", "options")


class ExportOut(Schema):
    id = Integer(required=True)
    campaign_id = Integer(required=True)
    format = String(required=True)
    filters = Dict(required=True)
    options = Dict(required=True)
    probe_version = Integer(allow_none=True, metadata={
        "description": "the probe whose scores the file holds (null: none)"})
    created_by = String(allow_none=True)
    created_at = DateTime(required=True)
    status = String(required=True, metadata={
        "description": "queued, running, succeeded, failed or cancelled"})
    progress = Float(allow_none=True, metadata={"description": "0..1 while running"})
    message = String(allow_none=True)
    error = String(allow_none=True, metadata={"description": "why it failed"})
    row_count = Integer(allow_none=True)
    byte_size = Integer(allow_none=True)
    sha256 = String(allow_none=True, metadata={"description": "of the file, hex"})
    finished_at = DateTime(allow_none=True)
    download = String(allow_none=True, metadata={
        "description": "where to download the file (once succeeded)"})
