"""``/api/campaigns/{id}/seeds``: what a campaign looks for, from one example or several.

A seed is an object of the survey (by id), a sky position (the nearest object within a
tolerance, with its separation, as the paper's app does), or an uploaded cutout embedded on the
fly with the bundle's own model. Several seeds combine: a candidate's score is its best cosine
to any of them.
"""

from __future__ import annotations

import numpy as np
from apiflask import APIBlueprint, abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.extensions import db
from server.models import CampaignSeed, Role, SeedKind
from server.schemas.seeds import SeedIn, SeedOut, SeedUploadIn
from server.sources import current_bundle, current_encoder, current_sky
from server.uploads import UploadError, read_cutout

bp = APIBlueprint("seeds", __name__, url_prefix="/api/campaigns/<int:campaign_id>/seeds",
                  tag="Seeds")


def _check_object(object_id: int) -> None:
    n = current_bundle().n
    if object_id >= n:
        abort(404, f"object {object_id} is not in the survey: object ids run from 0 to {n - 1}")


def _add(seed: CampaignSeed) -> CampaignSeed:
    db.session.add(seed)
    db.session.commit()
    return seed


@bp.get("")
@bp.output(SeedOut(many=True))
@bp.doc(security=SIGNED_IN)
def list_seeds(campaign_id: int) -> list[CampaignSeed]:
    """The campaign's seeds (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    return list(db.session.scalars(
        select(CampaignSeed).where(CampaignSeed.campaign_id == campaign_id)
        .options(selectinload(CampaignSeed.added_by)).order_by(CampaignSeed.id)))


@bp.post("")
@bp.input(SeedIn, arg_name="body")
@bp.output(SeedOut, status_code=201)
@bp.doc(security=SIGNED_IN, responses={
    403: "viewers cannot add seeds", 422: "no object near the position",
    503: "the server has no search bundle"})
def add(campaign_id: int, body: dict) -> CampaignSeed:
    """Add a seed: an object id, or a sky position (labelers)

    A position is matched to the nearest survey object; it must lie within `tolerance_arcsec`
    (default 5″), and the answer says how far it is.
    """
    campaign_access(campaign_id, Role.LABELER)
    user = current_user()
    if "object_id" in body:
        _check_object(body["object_id"])
        return _add(CampaignSeed(campaign_id=campaign_id, kind=SeedKind.OBJECT,
                                 object_id=body["object_id"], note=body["note"], added_by=user))
    current_bundle()
    object_id, separation = current_sky().nearest(body["ra"], body["dec"])
    if separation > body["tolerance_arcsec"]:
        abort(422, f"no survey object within {body['tolerance_arcsec']:g}″ of (ra, dec) = "
                   f"({body['ra']:.6f}, {body['dec']:.6f}); the nearest, object {object_id}, is "
                   f"{separation:.1f}″ away. Check the position or raise tolerance_arcsec.",
              extra_data={"errors": {"json": {"tolerance_arcsec": [
                  f"the nearest object is {separation:.1f} arcsec away"]}}})
    return _add(CampaignSeed(campaign_id=campaign_id, kind=SeedKind.SKY, object_id=object_id,
                             ra=body["ra"], dec=body["dec"], separation_arcsec=separation,
                             note=body["note"], added_by=user))


@bp.post("/upload")
@bp.input(SeedUploadIn, location="form_and_files", arg_name="form")
@bp.output(SeedOut, status_code=201)
@bp.doc(security=SIGNED_IN, responses={
    403: "viewers cannot add seeds", 409: "the bundle has no model to embed with",
    413: "the file is larger than the server accepts", 503: "the server has no search bundle"})
def upload(campaign_id: int, form: dict) -> CampaignSeed:
    """Add a seed from an uploaded cutout (labelers)

    A g, r, z cutout in nanomaggies, (3, H, W), as FITS or .npy (multipart field `file`),
    embedded with the model that made the bundle, so it is searched like a survey object.
    """
    campaign_access(campaign_id, Role.LABELER)
    upload_file = form["file"]
    try:
        image = read_cutout(upload_file.read())
    except UploadError as error:
        abort(422, str(error), extra_data={"errors": {"files": {"file": [str(error)]}}})
    encoder = current_encoder()
    crop = encoder.augment.crop
    if min(image.shape[1:]) < crop:
        message = (f"the model looks at the central {crop} x {crop} pixels; the cutout is only "
                   f"{image.shape[1]} x {image.shape[2]}")
        abort(422, message, extra_data={"errors": {"files": {"file": [message]}}})
    representation = current_bundle().manifest["representation"]
    vector = encoder.embed(image[None])[representation][0].astype("<f4")  # (d,)
    if not np.isfinite(vector).all() or not np.linalg.norm(vector) > 0:
        abort(422, "the cutout's representation is zero or not finite: it holds no signal the "
                   "model can use")
    note = form["note"] or (upload_file.filename or "")[:200]
    return _add(CampaignSeed(campaign_id=campaign_id, kind=SeedKind.VECTOR,
                             vector=vector.tobytes(), vector_model_sha256=encoder.sha256,
                             note=note, added_by=current_user()))


@bp.delete("/<int:seed_id>")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN, responses=[403])
def remove(campaign_id: int, seed_id: int) -> tuple[str, int]:
    """Remove a seed (owners, or the labeler who added it)"""
    _, role = campaign_access(campaign_id, Role.LABELER)
    seed = db.session.get(CampaignSeed, seed_id)
    if seed is None or seed.campaign_id != campaign_id:
        abort(404, f"campaign {campaign_id} has no seed {seed_id}")
    if role != Role.OWNER and seed.added_by_id != current_user().id:
        abort(403, "only the campaign's owners and the person who added a seed may remove it")
    db.session.delete(seed)
    db.session.commit()
    return "", 204
