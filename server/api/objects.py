"""``/api/objects``: survey objects; their cutout images."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from apiflask.schemas import FileSchema
from flask import Response, request

from server.auth.identity import SIGNED_IN, current_user
from server.schemas.objects import CutoutQuery
from server.survey_source import current_cutouts

bp = APIBlueprint("objects", __name__, url_prefix="/api/objects", tag="Objects")

# browsers keep a cutout a day and then revalidate it (a 304 costs no rendering); "private":
# the images are behind sign-in, so shared caches must not keep them
CUTOUT_CACHE_CONTROL = "private, max-age=86400"


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
    current_user()
    renderer = current_cutouts()
    if object_id >= renderer.survey.n:
        abort(404, f"object {object_id} is not in the survey: object ids run from 0 to "
                   f"{renderer.survey.n - 1}")
    wanted = renderer.cutout(object_id, query.get("size"), query["brightness"])
    etag = renderer.etag(wanted)
    headers = {"Cache-Control": CUTOUT_CACHE_CONTROL, "ETag": f'"{etag}"'}
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    data, _ = renderer.png(wanted)
    return Response(data, mimetype="image/png", headers=headers)
