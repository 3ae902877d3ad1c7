"""What the server searches and shows: the search bundle, the survey, their helpers.

Opened once when the app is built (in gunicorn's master, before the workers fork), so a missing
or damaged file stops the start with an error naming it rather than failing on a request, and
the bundle's memory-mapped arrays and index are shared by every worker through the page cache:

- ``GALSEARCH_BUNDLE``: a search bundle (:class:`ml.index.SearchBundle`), opened read-only and
  memory-mapped, checked against its manifest.
- ``GALSEARCH_SURVEY``: the survey folder; by default the one the bundle's manifest names. When
  both are given the bundle is checked against the survey (same objects, same fingerprint).

Endpoints reach them through :func:`current_bundle`, :func:`current_survey`,
:func:`current_cutouts`, :func:`current_sky` and :func:`current_encoder`, which answer 503 with
what to configure when the server runs without them. The survey reopens its HDF5 files in each
forked worker by itself and is thread-safe; the encoder (for uploaded cutouts) and the sky
matcher are built on first use, once per process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from apiflask import APIFlask, abort
from flask import current_app

from ml.index import SearchBundle
from ml.survey import Survey
from server.cutouts import CutoutRenderer
from server.sky_match import SkyMatcher

log = logging.getLogger(__name__)

_KEY = "galsearch.sources"
_NO_SURVEY = ("this server has no survey: set GALSEARCH_SURVEY (or GALSEARCH_BUNDLE) and "
              "restart it")
_NO_BUNDLE = ("this server has no search bundle: build one with `galsearch index`, set "
              "GALSEARCH_BUNDLE to its folder and restart the server")


class Sources:
    """The app's bundle and survey (either may be None) and what is built from them."""

    def __init__(self, bundle: SearchBundle | None, survey: Survey | None,
                 cutouts: CutoutRenderer | None) -> None:
        self.bundle, self.survey, self.cutouts = bundle, survey, cutouts
        self._lock = threading.Lock()
        self._sky: SkyMatcher | None = None
        self._encoder = None
        self._source_types: np.ndarray | None = None

    def sky(self) -> SkyMatcher:
        with self._lock:  # one build per process, however many threads ask at once
            if self._sky is None:
                self._sky = SkyMatcher(self.survey)
            return self._sky

    def source_types(self) -> np.ndarray | None:
        """The survey's ``source_type`` column ((N,) bytes), read once; None without one."""
        if self.survey is None or "source_type" not in self.survey.columns:
            return None
        with self._lock:
            if self._source_types is None:
                column = self.survey.read_column("source_type")
                self._source_types = np.char.upper(np.char.strip(column.astype("S")))
            return self._source_types

    def encoder(self):
        """The bundle's encoder (``ml.encoder.Encoder``), loaded from its ``model.pt``."""
        with self._lock:
            if self._encoder is None:
                from ml.encoder import Encoder

                self._encoder = Encoder.from_checkpoint(self.bundle.checkpoint_path)
            return self._encoder


def open_sources(app: APIFlask) -> None:
    """Open the bundle and the survey of ``app.config`` (BUNDLE_PATH, SURVEY_PATH).

    Raises:
        ml.index.BundleError: the bundle is missing a file, damaged, or not of this survey.
        ml.survey.SurveyError: the survey folder is missing or not in the survey format.
    """
    bundle_path, survey_path = app.config.get("BUNDLE_PATH"), app.config.get("SURVEY_PATH")
    survey = Survey(survey_path) if survey_path else None
    bundle = None
    if bundle_path:
        bundle = SearchBundle.open(bundle_path, survey=survey)
        survey = bundle.survey  # the manifest's survey, unless one was given (then checked)
        log.info("bundle %s", bundle)
    cutouts = None
    if survey is not None:
        # torch comes with the renderer: load it now, once, before gunicorn forks the workers
        import ml.render  # noqa: F401

        cache_mb = app.config["CUTOUT_CACHE_MAX_MB"]
        cutouts = CutoutRenderer(survey, Path(app.config["CUTOUT_CACHE_DIR"])
                                 if cache_mb > 0 else None, int(cache_mb * 2**20))
        log.info("survey %s: %d objects of %s pixels", survey.path, survey.n, survey.image_shape)
    app.extensions[_KEY] = Sources(bundle, survey, cutouts)


def sources(app: APIFlask) -> Sources:
    """The sources of ``app`` (each may be None)."""
    return app.extensions[_KEY]


def _sources() -> Sources:
    return sources(current_app)


def current_survey() -> Survey:
    """The app's survey, or a 503 error saying how to configure one."""
    survey = _sources().survey
    if survey is None:
        abort(503, _NO_SURVEY)
    return survey


def current_cutouts() -> CutoutRenderer:
    """The app's cutout renderer, or a 503 error saying how to configure a survey."""
    cutouts = _sources().cutouts
    if cutouts is None:
        abort(503, _NO_SURVEY)
    return cutouts


def current_bundle() -> SearchBundle:
    """The app's search bundle, or a 503 error saying how to configure one."""
    bundle = _sources().bundle
    if bundle is None:
        abort(503, _NO_BUNDLE)
    return bundle


def current_sky() -> SkyMatcher:
    """Nearest-object lookup on the survey's RA/Dec (built on first use)."""
    current_survey()
    return _sources().sky()


def current_source_types() -> np.ndarray | None:
    """The survey's source types, upper case ((N,) bytes), or None when it has none."""
    return _sources().source_types()


def current_encoder():
    """The encoder that made the bundle's representations, or a 409 error when the bundle
    holds representations from elsewhere (no model to embed uploads with)."""
    bundle = current_bundle()
    representation = bundle.manifest.get("representation", "")
    if bundle.checkpoint_path is None or representation not in ("prehead", "head"):
        abort(409, "this bundle's representations did not come from a galsearch model the "
                   "server has (no model.pt), so uploaded cutouts cannot be embedded; seed "
                   "from an object id or RA/Dec instead")
    return _sources().encoder()
