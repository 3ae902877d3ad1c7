"""``galsearch ingest``: FITS cutouts + catalog, or Legacy Surveys targets, into a survey."""

from __future__ import annotations

from pathlib import Path

import click

from ml.ingest.legacy_survey import (
    CATALOG_BOX_HALF_ARCSEC,
    DEFAULT_BASE_URL,
    DEFAULT_LAYER,
    MATCH_RADIUS_ARCSEC,
)

MAX_CONCURRENCY = 8  # a public service shared by the community: keep the load modest


@click.command()
@click.argument("fits_dir", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="FITS or CSV table, one row per cutout, with a 'file' column and Tractor "
                   "columns (ra, dec, ebv, flux_g/r/z, psfsize_g/r/z, psfdepth_g/r/z).")
@click.option("--from-legacy-survey", "targets",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="FITS or CSV table of targets (ra, dec in degrees) to download from the "
                   "Legacy Surveys viewer instead of reading FITS_DIR.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Survey folder to create.")
@click.option("--skip-bad", is_flag=True,
              help="FITS ingest: leave out bad rows (listed in ingest_report.json) instead of "
                   "stopping at the first.")
@click.option("--concurrency", default=4, show_default=True,
              type=click.IntRange(1, MAX_CONCURRENCY), help="Download requests in flight.")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True,
              help="Legacy Surveys viewer URL.")
@click.option("--layer", default=DEFAULT_LAYER, show_default=True, help="Viewer layer.")
@click.option("--match-radius", default=MATCH_RADIUS_ARCSEC, show_default=True,
              type=click.FloatRange(0, CATALOG_BOX_HALF_ARCSEC, min_open=True),
              help="Arcsec: nearest Tractor source within this radius gives the catalog values.")
@click.option("--download-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Download cache (default OUT/download); a rerun resumes from it.")
@click.option("--max-attempts", default=6, show_default=True, type=click.IntRange(1, 20),
              help="Tries per request before a target counts as failed.")
@click.option("--allow-failed", is_flag=True,
              help="Write the survey even if some targets failed (they are listed).")
@click.option("--overwrite", is_flag=True, help="Replace survey files already in OUT.")
def ingest(fits_dir: Path | None, catalog: Path | None, targets: Path | None, out: Path,
           skip_bad: bool, concurrency: int, base_url: str, layer: str, match_radius: float,
           download_dir: Path | None, max_attempts: int, allow_failed: bool,
           overwrite: bool) -> None:
    """Convert FITS cutouts to a survey, or download one from the Legacy Surveys.

    \b
    galsearch ingest FITS_DIR --catalog CAT.fits --out SURVEY_DIR
    galsearch ingest --from-legacy-survey targets.csv --out SURVEY_DIR
    """
    from ml.ingest.catalog_columns import CatalogError
    from ml.ingest.fits_cutouts import CutoutError
    from ml.survey_writer import SurveyWriteError

    if (targets is None) == (fits_dir is None):
        raise click.UsageError("give either FITS_DIR with --catalog, or --from-legacy-survey")
    try:
        if targets is None:
            if catalog is None:
                raise click.UsageError("FITS_DIR needs --catalog (the table describing the cutouts)")
            _ingest_fits(fits_dir, catalog, out, skip_bad, overwrite)
        else:
            _ingest_legacy(targets, out, download_dir, concurrency, base_url, layer,
                           match_radius, max_attempts, allow_failed, overwrite)
    except (CatalogError, CutoutError, SurveyWriteError) as exc:
        raise click.ClickException(str(exc)) from exc


def _ingest_fits(fits_dir: Path, catalog: Path, out: Path, skip_bad: bool,
                 overwrite: bool) -> None:
    from ml.ingest.fits_cutouts import REPORT_FILENAME, ingest_fits

    report = ingest_fits(fits_dir, catalog, out, skip_bad=skip_bad, overwrite=overwrite)
    click.echo(f"wrote {report.n_written} objects to {out} ({', '.join(report.files)})")
    if report.skipped:
        click.echo(f"left out {len(report.skipped)} bad row(s); see {out / REPORT_FILENAME}")


def _ingest_legacy(targets: Path, out: Path, download_dir: Path | None, concurrency: int,
                   base_url: str, layer: str, match_radius: float, max_attempts: int,
                   allow_failed: bool, overwrite: bool) -> None:
    from ml.ingest.fits_cutouts import REPORT_FILENAME
    from ml.ingest.http_client import PoliteClient
    from ml.ingest.legacy_survey import IngestIncomplete, build_from_legacy_survey

    try:
        report, counts = build_from_legacy_survey(
            targets, out, download_dir=download_dir, concurrency=concurrency, base_url=base_url,
            layer=layer, match_radius_arcsec=match_radius, allow_failed=allow_failed,
            overwrite=overwrite, client=PoliteClient(max_attempts=max_attempts),
        )
    except IngestIncomplete as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"targets: {counts['downloaded']} downloaded, {counts['cached']} already cached, "
        f"{counts['skipped']} skipped by the service, {counts['failed']} failed"
    )
    click.echo(f"wrote {report.n_written} objects to {out} ({', '.join(report.files)})")
    if report.skipped:
        click.echo(f"{len(report.skipped)} target(s) not in the survey; reasons in "
                   f"{out / REPORT_FILENAME}")
    click.echo(f"downloads are cached in {download_dir or out / 'download'}; delete it when done")
