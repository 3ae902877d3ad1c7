"""``/api/survey``: what the server searches (the survey and its search bundle), and random
objects of it (a starting point when there is no example yet)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np
from apiflask import APIBlueprint, abort
from flask import current_app

from ml.survey_format import BANDS, PIXEL_SCALE_ARCSEC
from server.auth.identity import SIGNED_IN, current_user
from server.candidates import catalog_mask
from server.probe.serving import bundle_sha256
from server.schemas.survey import RandomOut, RandomQuery, SurveyOut
from server.sources import current_bundle, current_source_types, current_survey, sources

bp = APIBlueprint("survey", __name__, url_prefix="/api/survey", tag="Survey")

_SUMMARY_KEY = "galsearch.survey_summary"
_summary_lock = threading.Lock()


def _summary() -> dict[str, Any]:
    """The survey's and bundle's description, computed once per process (it reads whole
    columns: the source types and the r magnitudes)."""
    with _summary_lock:
        cached = current_app.extensions.get(_SUMMARY_KEY)
        if cached is None:
            cached = current_app.extensions[_SUMMARY_KEY] = _describe()
        return cached


def _describe() -> dict[str, Any]:
    survey = current_survey()
    bundle = sources(current_app).bundle
    types = current_source_types()
    source_types = None
    if types is not None:
        names, counts = np.unique(types, return_counts=True)
        source_types = [{"type": name.decode("ascii", "replace"), "count": int(count)}
                        for count, name in sorted(zip(counts, names, strict=True),
                                                  key=lambda pair: (-pair[0], pair[1]))]
    mag_r = info = None
    if bundle is not None:
        mag = np.asarray(bundle.mag_r, dtype=np.float64)
        finite = mag[np.isfinite(mag)]
        if finite.size:
            mag_r = {"min": float(finite.min()), "max": float(finite.max()),
                     "median": float(np.median(finite)), "missing": int(mag.size - finite.size)}
        manifest = bundle.manifest
        knn = manifest.get("knn") or {}
        model = manifest.get("checkpoint", {}).get("sha256")
        created = manifest.get("created")
        info = {"n": bundle.n, "dim": bundle.dim, "representation": manifest["representation"],
                "index_kind": manifest["index"]["params"]["kind"],
                "neighbours_stored": knn.get("k"), "mag_window": knn.get("mag_window"),
                "created": dt.datetime.fromisoformat(created) if created else None,
                "model_sha256": None if model in (None, "external") else model,
                "manifest_sha256": bundle_sha256(bundle)}
    return {"n": survey.n, "bands": list(BANDS), "image_size": survey.image_shape[-1],
            "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC, "columns": list(survey.columns),
            "source_types": source_types, "mag_r": mag_r, "bundle": info}


@bp.get("")
@bp.output(SurveyOut)
@bp.doc(security=SIGNED_IN, responses={503: "the server has no survey configured"})
def survey_info() -> dict[str, Any]:
    """The survey and search bundle (signed-in users)

    How many objects there are (ids run from 0 to n - 1), the cutouts' bands and size, the
    catalog's columns and source types, the range of r magnitudes, and the search bundle
    (representation, index, the model that embedded the survey).
    """
    current_user()
    return _summary()


@bp.get("/random")
@bp.input(RandomQuery, location="query", arg_name="query")
@bp.output(RandomOut)
@bp.doc(security=SIGNED_IN, responses={
    422: "a source-type filter on a survey without source types, or a filter nothing matches",
    503: "the server has no search bundle"})
def random_objects(query: dict) -> dict[str, Any]:
    """Random objects (signed-in users)

    `count` objects drawn uniformly without replacement from those the filters allow (source
    types, r magnitude range): a campaign can start from one of them when there is no example
    at hand.
    """
    current_user()
    bundle = current_bundle()
    survey = current_survey()
    low, high = query.get("mag_r_min"), query.get("mag_r_max")
    if low is not None and high is not None and low > high:
        abort(422, "mag_r_min must not be fainter than mag_r_max",
              extra_data={"errors": {"query": {"mag_r_min": ["fainter than mag_r_max"]}}})
    types = current_source_types()
    try:
        allowed, _ = catalog_mask(bundle, low, high, query.get("source_type"), types)
    except ValueError as error:
        abort(422, str(error))
    rng = np.random.default_rng(query.get("seed"))
    if allowed is None:
        matching = bundle.n
        ids = rng.choice(bundle.n, size=min(query["count"], bundle.n), replace=False)
    else:
        pool = np.flatnonzero(allowed)
        matching = int(pool.size)
        if not matching:
            abort(422, "no object matches these filters: widen the magnitude range or the "
                       "source types")
        ids = rng.choice(pool, size=min(query["count"], matching), replace=False)
    ids = np.sort(ids.astype(np.int64))
    catalog = survey.catalog(["ra", "dec"], ids)
    mags = np.asarray(bundle.mag_r, dtype=np.float64)[ids]
    items = [{"object_id": int(i), "ra": float(ra), "dec": float(dec),
              "mag_r": float(m) if np.isfinite(m) else None,
              "source_type": None if types is None else types[i].decode("ascii", "replace")}
             for i, ra, dec, m in zip(ids, catalog["ra"], catalog["dec"], mags, strict=True)]
    return {"items": items, "matching": matching}
