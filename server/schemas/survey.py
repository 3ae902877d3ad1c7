"""Schemas of the survey and search bundle the server shows, and of random object draws."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Float, Integer, List, Nested, String
from apiflask.validators import Length, Range

RANDOM_COUNT_MAX = 100


class SourceTypeCountOut(Schema):
    type = String(required=True, metadata={"description": "e.g. DEV, EXP, PSF, REX, SER"})
    count = Integer(required=True)


class MagnitudeRangeOut(Schema):
    min = Float(required=True)
    max = Float(required=True)
    median = Float(required=True)
    missing = Integer(required=True, metadata={"description": "objects without an r flux"})


class BundleInfoOut(Schema):
    n = Integer(required=True)
    dim = Integer(required=True, metadata={"description": "length of the representations"})
    representation = String(required=True, metadata={"description": "prehead or head"})
    index_kind = String(required=True, metadata={"description": "the Faiss index: flat, "
                                                                 "hnsw or ivfpq"})
    neighbours_stored = Integer(allow_none=True, metadata={
        "description": "precomputed most similar objects per object (itself included)"})
    mag_window = Float(allow_none=True, metadata={
        "description": "|Δmag_r| of the precomputed windowed neighbours (null: none)"})
    created = DateTime(allow_none=True)
    model_sha256 = String(allow_none=True, metadata={
        "description": "of the model that embedded the survey (null: not stored in the "
                       "bundle, so uploaded cutouts cannot be seeds)"})
    manifest_sha256 = String(required=True, metadata={
        "description": "identifies the bundle; probe versions name the one they were trained "
                       "on"})


class SurveyOut(Schema):
    n = Integer(required=True, metadata={"description": "objects; ids run from 0 to n - 1"})
    bands = List(String(), required=True)
    image_size = Integer(required=True, metadata={"description": "cutout side, pixels"})
    pixel_scale_arcsec = Float(required=True)
    columns = List(String(), required=True, metadata={"description": "catalog columns"})
    source_types = Nested(SourceTypeCountOut, many=True, allow_none=True, metadata={
        "description": "objects per catalog source type, most common first (null: the survey "
                       "has no source_type column)"})
    mag_r = Nested(MagnitudeRangeOut, allow_none=True, metadata={
        "description": "r magnitudes of the objects (null: no search bundle)"})
    bundle = Nested(BundleInfoOut, allow_none=True, metadata={
        "description": "the search bundle (null: the server has none: no similarity search)"})


class RandomQuery(Schema):
    count = Integer(load_default=1, validate=Range(1, RANDOM_COUNT_MAX))
    source_type = List(String(validate=Length(1, 16)), metadata={
        "description": "only these catalog source types (repeat for several)"})
    mag_r_min = Float(validate=Range(0, 40))
    mag_r_max = Float(validate=Range(0, 40))
    seed = Integer(validate=Range(0, 2**63 - 1), metadata={
        "description": "draw reproducibly (default: a new draw each time)"})


class RandomObjectOut(Schema):
    object_id = Integer(required=True)
    ra = Float(required=True, metadata={"description": "degrees"})
    dec = Float(required=True, metadata={"description": "degrees"})
    mag_r = Float(allow_none=True)
    source_type = String(allow_none=True)


class RandomOut(Schema):
    items = Nested(RandomObjectOut, many=True, required=True)
    matching = Integer(required=True, metadata={"description": "objects the filters allow"})
