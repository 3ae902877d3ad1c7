"""The survey the server shows and its cutout renderer: opened once when the app is built.

The survey folder is ``GALSEARCH_SURVEY``. It is opened when the app is built (in gunicorn's
master, before the workers fork): a missing or malformed survey stops the start with
:class:`~ml.survey.SurveyError` naming the file, rather than failing on the first request.
:class:`~ml.survey.Survey` reopens its HDF5 files in each forked worker by itself, and its
handle cache is thread-safe, so one object serves every thread.

Endpoints that need pixels or catalog columns call :func:`current_survey` or
:func:`current_cutouts`, which answer 503 with what to configure when the server runs without a
survey.
"""

from __future__ import annotations

import logging
from pathlib import Path

from apiflask import APIFlask, abort
from flask import current_app

from ml.survey import Survey
from server.cutouts import CutoutRenderer

log = logging.getLogger(__name__)
SURVEY_KEY = "galsearch.survey"
CUTOUTS_KEY = "galsearch.cutouts"
_NO_SURVEY = ("this server has no survey: set GALSEARCH_SURVEY to the survey folder and "
              "restart it")


def open_survey(app: APIFlask) -> None:
    """Open ``app.config["SURVEY_PATH"]`` (if set) and keep it on the app.

    Raises:
        ml.survey.SurveyError: the folder is missing, empty or not in the survey format.
    """
    path = app.config.get("SURVEY_PATH")
    app.extensions[SURVEY_KEY] = app.extensions[CUTOUTS_KEY] = None
    if not path:
        return
    survey = Survey(path)
    # torch comes with the renderer: load it now, once, before gunicorn forks the workers
    import ml.render  # noqa: F401

    cache_mb = app.config["CUTOUT_CACHE_MAX_MB"]
    app.extensions[SURVEY_KEY] = survey
    app.extensions[CUTOUTS_KEY] = CutoutRenderer(
        survey, Path(app.config["CUTOUT_CACHE_DIR"]) if cache_mb > 0 else None,
        int(cache_mb * 2**20))
    log.info("survey %s: %d objects of %s pixels", path, survey.n, survey.image_shape)


def current_survey() -> Survey:
    """The app's survey, or a 503 error saying how to configure one."""
    survey = current_app.extensions.get(SURVEY_KEY)
    if survey is None:
        abort(503, _NO_SURVEY)
    return survey


def current_cutouts() -> CutoutRenderer:
    """The app's cutout renderer, or a 503 error saying how to configure a survey."""
    renderer = current_app.extensions.get(CUTOUTS_KEY)
    if renderer is None:
        abort(503, _NO_SURVEY)
    return renderer
