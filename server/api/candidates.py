"""``/api/campaigns/{id}/candidates``: objects to label next, most similar to the seeds first."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from apiflask import APIBlueprint, abort
from flask import current_app
from sqlalchemy import Integer, String, Text, bindparam, cast, func, literal_column, select

from ml.index import SearchBundle
from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.candidates import (
    Cursor,
    InvalidCursor,
    QuerySeed,
    Ranking,
    StaleCursor,
    catalog_mask,
    page,
)
from server.extensions import db
from server.models import CampaignSeed, Label, Role, SeedKind
from server.probe.serving import (
    bundle_sha256,
    candidate_order,
    newest_probe,
    newest_probe_id,
)
from server.probe.settings import ProbeCampaignSettings
from server.schemas.candidates import CandidatePageOut, CandidateQuery
from server.sources import current_bundle, current_source_types, current_survey
from server.teams.handout import decode_cursor, hand_out
from server.teams.rules import TeamRules

bp = APIBlueprint("candidates", __name__,
                  url_prefix="/api/campaigns/<int:campaign_id>/candidates", tag="Candidates")


# the columns of a seed that a page uses, read as rows (not ORM objects: a third of the cost)
SEED_COLUMNS = (CampaignSeed.id, CampaignSeed.kind, CampaignSeed.object_id, CampaignSeed.vector,
                CampaignSeed.vector_model_sha256)


@functools.cache
def _seeds_statement():
    """A campaign's seeds (:data:`SEED_COLUMNS`) by ``campaign_id``, oldest first (built once:
    a page spent 0.3 ms building each statement it sends)."""
    return (select(*SEED_COLUMNS)
            .where(CampaignSeed.campaign_id == bindparam("campaign_id", type_=Integer))
            .order_by(CampaignSeed.id))


def query_seeds(bundle: SearchBundle, seeds: Sequence[Any]) -> tuple[list[QuerySeed],
                                                                     list[int]]:
    """The seeds the bundle can use, as unit vectors, and the ids of those it cannot (an
    object outside it, or a vector made by another model). ``seeds``: rows or objects with
    the attributes of :data:`SEED_COLUMNS`."""
    usable, skipped = [], []
    model = bundle.manifest.get("checkpoint", {}).get("sha256")
    for seed in seeds:
        if seed.kind == SeedKind.VECTOR:
            vector = np.frombuffer(seed.vector, dtype="<f4")
            if seed.vector_model_sha256 != model or vector.shape != (bundle.dim,):
                skipped.append(seed.id)
                continue
            mag = None
        else:
            if seed.object_id >= bundle.n:
                skipped.append(seed.id)
                continue
            vector = bundle.vector(seed.object_id)
            mag = float(bundle.mag_r[seed.object_id])
            mag = mag if np.isfinite(mag) else None  # no flux: the window cannot apply
        vector = np.asarray(vector, dtype=np.float32)
        usable.append(QuerySeed(seed.id, vector / np.linalg.norm(vector), mag,
                                seed.object_id if seed.kind != SeedKind.VECTOR else None))
    return usable, skipped


@functools.cache
def _labeled_and_newest_probe_statement(dialect: str):
    """The ids of the objects labeled in the campaign as one comma-joined text (NULL: none)
    and the id of its newest probe run on the bundle, by ``campaign_id`` and
    ``bundle_sha256`` (built once per dialect)."""
    campaign_id = bindparam("campaign_id", type_=Integer)
    if dialect == "postgresql":
        joined = func.string_agg(cast(Label.object_id, Text), literal_column("','"))
    else:
        joined = func.group_concat(Label.object_id)  # SQLite's default separator: a comma
    labeled = select(joined).where(Label.campaign_id == campaign_id).scalar_subquery()
    return select(labeled, newest_probe_id(campaign_id,
                                           bindparam("bundle_sha256", type_=String)))


def labeled_ids_and_newest_probe(campaign_id: int, bundle: SearchBundle
                                 ) -> tuple[np.ndarray, int | None]:
    """The ids of the objects labeled in the campaign (by anyone), each once, ascending, and the
    id of the campaign's newest probe run on ``bundle`` (None: none), in one round trip: a page
    needs both.

    The database joins the labeled ids into one text value that numpy parses: one row to fetch
    instead of one per label (3,000 labels took 1.3 ms of the server's CPU a page as rows).
    Duplicates (an object labeled by several people) are dropped here: DISTINCT inside
    PostgreSQL's aggregate sorts the values as text, four times the cost of the query without it.
    """
    statement = _labeled_and_newest_probe_statement(db.session.get_bind().dialect.name)
    text, probe_id = db.session.execute(statement, {
        "campaign_id": campaign_id, "bundle_sha256": bundle_sha256(bundle)}).one()
    if not text:
        return np.zeros(0, dtype=np.int64), probe_id
    return np.unique(np.fromstring(text, dtype=np.int64, sep=",")), probe_id


@bp.get("")
@bp.input(CandidateQuery, location="query", arg_name="query")
@bp.output(CandidatePageOut)
@bp.doc(security=SIGNED_IN, responses={
    409: "no usable seeds, or the seeds, settings or probe changed since the cursor was made",
    503: "the server has no search bundle"})
def candidates(campaign_id: int, query: dict) -> dict:
    """A page of candidates (members)

    Objects ranked by their best cosine similarity to the campaign's seeds, leaving out
    objects already labeled in the campaign, with the magnitude window and catalog filters of
    the campaign's settings (or of the query). Pages follow `next_cursor`; they neither repeat
    nor skip objects while others label.

    Once the campaign has a probe (retrained in the background as labels come in), pages
    follow the newest probe instead (`order: probe`, `probe_version`), under the campaign's
    `probe_strategy` or the query's `strategy`, and `score` is the probe's probability. A
    cursor from before a newer probe answers 409: start again from the first page.

    In a campaign with `handout` set, a labeler's pages are handed out: each object goes to at
    most `overlap` labelers at a time and returns to the pool when not labeled within
    `handout_minutes` (`handed_out_until`); your outstanding objects come first, so reloading
    the first page gives them back. Viewers see the ranking without taking objects.
    """
    campaign, role = campaign_access(campaign_id, Role.VIEWER)
    bundle = current_bundle()
    survey = current_survey()
    seeds = db.session.execute(_seeds_statement(), {"campaign_id": campaign_id}).all()
    usable, skipped = query_seeds(bundle, seeds)
    if not usable:
        abort(409, f"campaign {campaign_id} has no usable seeds: add one with POST "
                   f"/api/campaigns/{campaign_id}/seeds" + (
                       f" (seeds {skipped} were made for another bundle)" if skipped else ""))
    settings = campaign.settings
    try:
        allowed, filter_key = catalog_mask(
            bundle, query.get("mag_r_min", settings.get("mag_r_min")),
            query.get("mag_r_max", settings.get("mag_r_max")),
            query.get("source_type", settings.get("source_types")), current_source_types())
    except ValueError as error:
        abort(422, str(error))
    ranking = Ranking(tuple(usable), query.get("mag_window", settings.get("mag_window")),
                      allowed, filter_key)
    rules = TeamRules.of(settings)
    handing_out = rules.handout and role.rank >= Role.LABELER.rank  # viewers only look
    if handing_out:  # hand_out leaves out what is labeled or handed out itself
        labeled = None
        probe_id = db.session.scalar(select(newest_probe_id(campaign_id, bundle_sha256(bundle))))
    else:
        labeled, probe_id = labeled_ids_and_newest_probe(campaign_id, bundle)
    chosen = candidate_order(newest_probe(probe_id), bundle, ranking,
                             query.get("strategy", ProbeCampaignSettings.of(settings).strategy))
    cursor = after = None
    if "cursor" in query:
        try:
            if handing_out:
                after = decode_cursor(query["cursor"])
            else:
                cursor = Cursor.decode(query["cursor"], chosen.order.fingerprint())
        except InvalidCursor as error:
            abort(422, str(error), extra_data={"errors": {"query": {"cursor": [str(error)]}}})
        except StaleCursor as error:
            abort(409, str(error))
    expires = None
    if handing_out:
        handed = hand_out(campaign_id, current_user().id, rules, query["limit"], after or 0,
                          lambda exclude, k: page(bundle, chosen.order, k, exclude, None)[:2])
        ids = np.array([h.object_id for h in handed.items], dtype=np.int64)
        scores = [h.score for h in handed.items]
        expires = [h.expires_at for h in handed.items]
        next_text = handed.next_cursor
    else:
        ids, scores, next_cursor = page(bundle, chosen.order, query["limit"], labeled, cursor)
        next_text = next_cursor.encode() if next_cursor else None
    scores = chosen.shown_scores(ids, np.asarray(scores, dtype=np.float64))
    catalog = survey.catalog(["ra", "dec"], ids) if len(ids) else {"ra": [], "dec": []}
    mags = np.asarray(bundle.mag_r)[ids] if len(ids) else []
    # the page as CandidatePageOut writes it (tests hold the two equal), sent as it is: the
    # schema's dump of 48 items was 7% of a page's CPU
    items = [{"object_id": int(i), "score": float(s), "ra": float(ra), "dec": float(dec),
              "mag_r": float(m) if np.isfinite(m) else None,
              "handed_out_until": expires[n].isoformat() if expires else None}
             for n, (i, s, ra, dec, m) in enumerate(zip(ids.tolist(), scores, catalog["ra"],
                                                        catalog["dec"], mags, strict=True))]
    return current_app.json.response({
        "items": items, "next_cursor": next_text,
        "order": "similarity" if chosen.run is None else "probe",
        "probe_version": None if chosen.run is None else chosen.run.version,
        "strategy": chosen.strategy, "skipped_seeds": skipped})
