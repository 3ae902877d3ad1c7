"""``/api/objects``: survey objects: catalog, neighbours, cutout images."""

from __future__ import annotations

from typing import Any

import numpy as np
from apiflask import APIBlueprint, abort
from apiflask.schemas import FileSchema
from flask import Response, current_app, request

from server.auth.identity import SIGNED_IN, current_user, require_signed_in
from server.cutouts import CUTOUT_CACHE_CONTROL
from server.schemas.objects import CutoutQuery, ObjectOut, ObjectQuery
from server.sources import current_cutouts, current_survey, sources

bp = APIBlueprint("objects", __name__, url_prefix="/api/objects", tag="Objects")

# the Legacy Surveys sky viewer, centred on the object, DR9 images
VIEWER_URL = "https://www.legacysurvey.org/viewer?ra={ra:.6f}&dec={dec:.6f}&layer=ls-dr9&zoom=16"

# browsers keep a cutout a day and then revalidate it (a 304 costs no rendering); "private":
# the images are behind sign-in, so shared caches must not keep them


def _json_value(value: np.ndarray) -> Any:
    """A catalog cell as JSON: numbers (NaN: null), text, or lists of them."""
    if value.ndim:
        return [_json_value(v) for v in value]
    if value.dtype.kind == "S":
        return value.item().decode("ascii", "replace").strip()
    if value.dtype.kind == "f":
        return float(value) if np.isfinite(value) else None
    return value.item()


def _check_object(object_id: int, n: int) -> None:
    if object_id >= n:
        abort(404, f"object {object_id} is not in the survey: object ids run from 0 to {n - 1}")


@bp.get("/<int:object_id>")
@bp.input(ObjectQuery, location="query", arg_name="query")
@bp.output(ObjectOut)
@bp.doc(security=SIGNED_IN, responses={503: "the server has no survey configured"})
def detail(object_id: int, query: dict) -> dict:
    """One object (signed-in users)

    Its catalog columns, its position in the Legacy Surveys sky viewer, and its most similar
    objects (from the search bundle's precomputed arrays when they cover the request).
    """
    current_user()
    survey = current_survey()
    _check_object(object_id, survey.n)
    catalog = {name: _json_value(values[0])
               for name, values in survey.catalog(None, [object_id]).items()}
    bundle = sources(current_app).bundle
    neighbours = None
    if bundle is not None:
        neighbours = []
        if query["neighbours"] > 0:
            try:
                ids, sims = bundle.neighbours(object_id, query["neighbours"],
                                              mag_window=query.get("mag_window"))
            except ValueError as error:  # e.g. a window around an object without a magnitude
                abort(422, str(error))
            neighbours = [{"object_id": int(i), "score": float(s)}
                          for i, s in zip(ids, sims, strict=True)]
    mag_r = None if bundle is None else float(bundle.mag_r[object_id])
    return {"object_id": object_id, "ra": catalog["ra"], "dec": catalog["dec"],
            "mag_r": mag_r if mag_r is not None and np.isfinite(mag_r) else None,
            "catalog": catalog, "neighbours": neighbours,
            "viewer_url": VIEWER_URL.format(ra=catalog["ra"], dec=catalog["dec"])}


@bp.get("/<int:object_id>/cutout.png")
@bp.input(CutoutQuery, location="query", arg_name="query")
@bp.output(FileSchema(), content_type="image/png",
           description="the g, r, z cutout as an RGB PNG (arcsinh stretch)")
@bp.doc(security=SIGNED_IN, responses={
    304: "not modified (If-None-Match matched the ETag)",
    503: "the server has no survey configured"})
def cutout(object_id: int, query: dict) -> Response:
    """An object's cutout image (signed-in users)

    Rendered with the survey viewer's colours (z, r, g as R, G, B); strong ETag, cached by the
    browser for a day and on the server's disk.
    """
    require_signed_in()
    renderer = current_cutouts()
    _check_object(object_id, renderer.survey.n)
    wanted = renderer.cutout(object_id, query.get("size"), query["brightness"])
    etag = renderer.etag(wanted)
    headers = {"Cache-Control": CUTOUT_CACHE_CONTROL, "ETag": f'"{etag}"'}
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    data, _ = renderer.png(wanted)
    return Response(data, mimetype="image/png", headers=headers)
