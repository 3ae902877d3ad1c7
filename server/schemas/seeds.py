"""Schemas of campaign seeds: an object, a sky position, or an uploaded cutout."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Enum, File, Float, Integer, String
from apiflask.validators import Length, Range
from marshmallow import ValidationError, validates_schema

from server.models.campaigns import SEED_NOTE_MAX, SeedKind
from server.schemas.labels import object_id_field

SKY_TOLERANCE_DEFAULT_ARCSEC = 5.0  # ~19 pixels at 0.262"/pixel
SKY_TOLERANCE_MAX_ARCSEC = 60.0


class SeedIn(Schema):
    """Either ``object_id``, or ``ra`` and ``dec`` (the nearest object within the tolerance)."""

    object_id = object_id_field()
    ra = Float(validate=Range(0, 360, max_inclusive=False),
               metadata={"description": "degrees, ICRS"})
    dec = Float(validate=Range(-90, 90), metadata={"description": "degrees, ICRS"})
    tolerance_arcsec = Float(load_default=SKY_TOLERANCE_DEFAULT_ARCSEC,
                             validate=Range(0.01, SKY_TOLERANCE_MAX_ARCSEC), metadata={
                                 "description": "sky seeds: how far the nearest object may be"})
    note = String(load_default="", validate=Length(max=SEED_NOTE_MAX))

    @validates_schema
    def _one_kind(self, data, **kwargs):
        by_object = "object_id" in data
        by_sky = "ra" in data or "dec" in data
        if by_object == by_sky:
            raise ValidationError("give either object_id, or ra and dec", "_schema")
        if by_sky and not ("ra" in data and "dec" in data):
            raise ValidationError("a sky position needs both ra and dec", "_schema")


class SeedUploadIn(Schema):
    file = File(required=True, metadata={
        "description": "a g, r, z cutout in nanomaggies, (3, H, W): FITS (primary or first "
                       "image HDU) or NumPy .npy"})
    note = String(load_default="", validate=Length(max=SEED_NOTE_MAX))


class SeedOut(Schema):
    id = Integer(required=True)
    kind = Enum(SeedKind, by_value=True, required=True)
    object_id = Integer(allow_none=True, metadata={
        "description": "the seed object (object seeds) or the object matched to the position "
                       "(sky seeds)"})
    ra = Float(allow_none=True, metadata={"description": "degrees (sky seeds)"})
    dec = Float(allow_none=True, metadata={"description": "degrees (sky seeds)"})
    separation_arcsec = Float(allow_none=True, metadata={
        "description": "sky seeds: distance to the matched object"})
    vector_dim = Integer(allow_none=True, metadata={
        "description": "vector seeds: length of the stored representation"})
    note = String(required=True)
    added_by = String(allow_none=True, attribute="added_by.username")
    created_at = DateTime(required=True)
