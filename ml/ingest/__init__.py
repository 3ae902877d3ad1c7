"""Turn data from outside into a survey folder: FITS cutouts + a catalog, or the Legacy Surveys.

* :mod:`ml.ingest.catalog_columns`: catalog tables (Tractor column names) -> survey columns.
* :mod:`ml.ingest.fits_cutouts`: a folder of FITS cutouts + catalog -> survey.
* :mod:`ml.ingest.http_client`: polite HTTP (retries, back-off, Retry-After).
* :mod:`ml.ingest.legacy_survey`: targets -> downloads from the Legacy Surveys viewer -> survey.
* :mod:`ml.ingest.cli`: the ``galsearch ingest`` command.
"""
