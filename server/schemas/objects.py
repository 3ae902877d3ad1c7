"""Schemas of survey objects and their images."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Float, Integer
from apiflask.validators import Range

from server.cutouts import BRIGHTNESS_MAX, BRIGHTNESS_MIN, SIZE_MAX, SIZE_MIN


class CutoutQuery(Schema):
    size = Integer(validate=Range(SIZE_MIN, SIZE_MAX), metadata={
        "description": "width = height in pixels (default: the survey's cutout size)"})
    brightness = Float(load_default=1.0, validate=Range(BRIGHTNESS_MIN, BRIGHTNESS_MAX),
                       metadata={"description": "multiplies the stretch's band scales "
                                                "(rounded to 0.01)"})
