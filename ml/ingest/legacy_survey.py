"""Build a survey from a list of RA/Dec by downloading from the Legacy Surveys viewer.

For each target the viewer (``https://www.legacysurvey.org/viewer``) serves

* the g, r, z cutout: ``{base}/cutout.fits?ra=..&dec=..&layer=ls-dr9&pixscale=0.262&bands=grz
  &size=152`` (nanomaggies; 404 where the layer has no coverage);
* the Tractor catalog of a small box around it: ``{base}/ls-dr9/cat.fits?ralo=..&rahi=..&declo=..
  &dechi=..`` (a FITS table with the Tractor columns: ra, dec, ebv, flux_g, psfsize_g, ...).

Each target's object takes the catalog values of the nearest Tractor source within the match
radius (1" by default), and its ``ra``/``dec`` are the target's (the cutout's centre). Targets
are skipped, and listed with the reason in ``ingest_report.json``, when the service has no
cutout there (404), a band of the cutout is empty (outside that band's footprint) or has
non-finite pixels, no Tractor source lies within the match radius, or the matched source has
no depth in a band. Columns of the targets table other than ra/dec are carried into the survey
(prefixed ``target_`` where a name clashes); ``input_row`` is the target's row.

Politeness and resumption: at most ``concurrency`` requests in flight; retries with jittered
exponential back-off honouring Retry-After (:mod:`ml.ingest.http_client`); every answer is
cached atomically in the download folder (``<out>/download`` by default: the raw cutout and
catalog FITS files, or a ``.skip.json`` marker for a definitive "no data"), so a rerun of the
same command only fetches what is missing. If any target failed for a transient reason, no
survey is written (unless ``allow_failed``): run the command again to resume.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ml.ingest.catalog_columns import CatalogError, column, read_table, survey_columns
from ml.ingest.fits_cutouts import (
    BATCH_OBJECTS,
    REPORT_FILENAME,
    CutoutError,
    IngestReport,
    cutout_from_hdul,
    read_cutout,
)
from ml.survey_format import BANDS, CUTOUT_SIZE, PIXEL_SCALE_ARCSEC

if TYPE_CHECKING:  # requests and h5py are imported by the functions that use them
    from ml.ingest.http_client import PoliteClient

DEFAULT_BASE_URL = "https://www.legacysurvey.org/viewer"
DEFAULT_LAYER = "ls-dr9"
MATCH_RADIUS_ARCSEC = 1.0
CATALOG_BOX_HALF_ARCSEC = 5.0  # catalog box half-width: the largest usable match radius
TRACTOR_VALUES = ("ebv", *(f"{k}_{b}" for k in ("flux", "psfsize", "psfdepth") for b in BANDS))
TRACTOR_IDS = ("release", "brickid", "objid", "type")  # carried when the catalog has them


class IngestIncomplete(RuntimeError):
    """Some targets failed for transient reasons; rerunning the command resumes."""


@dataclass(frozen=True)
class Target:
    row: int  # row in the targets table
    ra: float  # degrees
    dec: float

    @property
    def key(self) -> str:
        """Cache file stem, from the position (stable when the targets list is reordered)."""
        return f"{self.ra:.6f}{self.dec:+.6f}"


@dataclass(frozen=True)
class Outcome:
    status: str  # "downloaded", "cached", "skipped" or "failed"
    reason: str = ""


class LegacySurveyFetcher:
    """Downloads and caches one target's cutout and catalog box (thread-safe)."""

    def __init__(self, client: PoliteClient, cache_dir: Path, base_url: str = DEFAULT_BASE_URL,
                 layer: str = DEFAULT_LAYER, size: int = CUTOUT_SIZE) -> None:
        self.client = client
        self.cache_dir = Path(cache_dir)
        self.base_url = base_url.rstrip("/")
        self.layer = layer
        self.size = size

    def cutout_path(self, t: Target) -> Path:
        return self.cache_dir / f"{t.key}.cutout.fits"

    def catalog_path(self, t: Target) -> Path:
        return self.cache_dir / f"{t.key}.cat.fits"

    def skip_path(self, t: Target) -> Path:
        return self.cache_dir / f"{t.key}.skip.json"

    def cached(self, t: Target) -> Outcome | None:
        skip = self.skip_path(t)
        if skip.exists():
            return Outcome("skipped", json.loads(skip.read_text())["reason"])
        if self.catalog_path(t).exists() and self.cutout_path(t).exists():
            return Outcome("cached")
        return None

    def _write(self, path: Path, data: bytes) -> None:
        # a unique temporary name per writer, renamed into place: never a half-written file
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.partial")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def _skip(self, t: Target, reason: str) -> Outcome:
        self._write(self.skip_path(t), json.dumps({"ra": t.ra, "dec": t.dec, "reason": reason}).encode())
        return Outcome("skipped", reason)

    def fetch(self, t: Target) -> Outcome:
        from astropy.io import fits
        from astropy.table import Table

        from ml.ingest.http_client import DownloadError, NotFound

        done = self.cached(t)
        if done is not None:
            return done
        half_deg = CATALOG_BOX_HALF_ARCSEC / 3600.0
        half_ra_deg = half_deg / max(np.cos(np.radians(t.dec)), 1e-6)
        try:
            if not self.cutout_path(t).exists():
                body = self.client.get(f"{self.base_url}/cutout.fits", params={
                    "ra": f"{t.ra:.7f}", "dec": f"{t.dec:.7f}", "layer": self.layer,
                    "pixscale": PIXEL_SCALE_ARCSEC, "bands": "".join(BANDS), "size": self.size,
                })
                try:
                    hdul = fits.open(io.BytesIO(body), memmap=False)
                except Exception as exc:
                    return Outcome("failed", f"the cutout answer is not a FITS file ({exc})")
                try:
                    with hdul:
                        cutout_from_hdul(hdul, "cutout", self.size)
                except CutoutError as exc:  # a well-formed answer without usable data
                    return self._skip(t, str(exc))
                self._write(self.cutout_path(t), body)
            body = self.client.get(f"{self.base_url}/{self.layer}/cat.fits", params={
                "ralo": f"{max(t.ra - half_ra_deg, 0.0):.7f}",
                "rahi": f"{min(t.ra + half_ra_deg, 360.0):.7f}",
                "declo": f"{max(t.dec - half_deg, -90.0):.7f}",
                "dechi": f"{min(t.dec + half_deg, 90.0):.7f}",
            })
            try:
                Table.read(io.BytesIO(body), format="fits")
            except Exception as exc:
                return Outcome("failed", f"the catalog answer is not a FITS table ({exc})")
            self._write(self.catalog_path(t), body)
        except NotFound as exc:
            return self._skip(t, f"no coverage in {self.layer} ({exc})")
        except DownloadError as exc:
            return Outcome("failed", str(exc))
        return Outcome("downloaded")


def read_targets(path: str | Path):
    """The targets table and its Target rows; ra/dec must be finite sky positions."""
    table = read_table(path)
    ra, dec = column(table, "ra"), column(table, "dec")
    if ra is None or dec is None:
        raise CatalogError(f"{path} needs 'ra' and 'dec' columns (degrees); it has {table.colnames}")
    ra_deg = np.ma.filled(np.ma.asarray(ra, dtype=np.float64), np.nan)
    dec_deg = np.ma.filled(np.ma.asarray(dec, dtype=np.float64), np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(ra_deg) & np.isfinite(dec_deg) & (ra_deg >= 0) & (ra_deg <= 360)
                & (np.abs(dec_deg) <= 90))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CatalogError(
            f"{path}: row {row} has ra={ra_deg[row]}, dec={dec_deg[row]}; every target needs "
            f"ra in [0, 360] and dec in [-90, 90] degrees ({int(bad.sum())} bad row(s))"
        )
    if len(table) == 0:
        raise CatalogError(f"{path} has no rows")
    targets = [Target(i, float(r), float(d)) for i, (r, d) in enumerate(zip(ra_deg, dec_deg, strict=True))]
    return table, targets


def download(targets: list[Target], fetcher: LegacySurveyFetcher, concurrency: int,
             progress: bool = True) -> dict[str, Outcome]:
    """Fetch every distinct target with at most ``concurrency`` requests in flight.

    Returns:
        key -> outcome.
    """
    from tqdm import tqdm

    fetcher.cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in fetcher.cache_dir.glob("*.partial"):  # left by an interrupted run
        stale.unlink(missing_ok=True)
    unique = list({t.key: t for t in targets}.values())
    outcomes: dict[str, Outcome] = {}
    todo = []
    for t in unique:
        done = fetcher.cached(t)
        if done is None:
            todo.append(t)
        else:
            outcomes[t.key] = done
    counts = {s: sum(o.status == s for o in outcomes.values())
              for s in ("downloaded", "cached", "skipped", "failed")}
    bar = tqdm(total=len(unique), initial=len(outcomes), desc="downloading", unit="target",
               disable=not progress)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="legacysurvey")
    try:
        futures = {pool.submit(fetcher.fetch, t): t for t in todo}
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[futures[future].key] = outcome
            counts[outcome.status] += 1
            bar.update(1)
            bar.set_postfix(counts, refresh=False)
    finally:
        # on Ctrl-C: drop what has not started, let running requests finish writing atomically
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        fetcher.client.close()
    return outcomes


def _match(t: Target, catalog_path: Path, radius_arcsec: float):
    """(Tractor row as dict, separation ") of the nearest source within the radius, or a reason."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    cat = Table.read(catalog_path, format="fits")
    if len(cat) == 0:
        return None, f'no Tractor source within {radius_arcsec}" (empty catalog box)'
    ra, dec = column(cat, "ra"), column(cat, "dec")
    if ra is None or dec is None:
        return None, "the catalog answer has no ra/dec columns"
    sep = SkyCoord(t.ra * u.deg, t.dec * u.deg).separation(
        SkyCoord(np.asarray(ra, dtype=float) * u.deg, np.asarray(dec, dtype=float) * u.deg)
    ).arcsec
    best = int(np.argmin(sep))
    if sep[best] > radius_arcsec:
        return None, f'no Tractor source within {radius_arcsec}" (nearest at {sep[best]:.2f}")'
    missing = [name for name in TRACTOR_VALUES if column(cat, name) is None]
    if missing:
        return None, f"the catalog answer lacks {', '.join(missing)}"
    values = {name: column(cat, name)[best] for name in (*TRACTOR_VALUES, *TRACTOR_IDS)
              if column(cat, name) is not None}
    return values, float(sep[best])


def build_from_legacy_survey(
    targets_path: str | Path, out_dir: str | Path, download_dir: str | Path | None = None,
    concurrency: int = 4, base_url: str = DEFAULT_BASE_URL, layer: str = DEFAULT_LAYER,
    match_radius_arcsec: float = MATCH_RADIUS_ARCSEC, allow_failed: bool = False,
    overwrite: bool = False, progress: bool = True, client: PoliteClient | None = None,
) -> tuple[IngestReport, dict[str, int]]:
    """Download every target and write the survey (see the module docstring).

    Returns:
        the ingest report and counts of targets by outcome ("downloaded" this run, "cached"
        from an earlier run, "skipped", "failed").

    Raises:
        IngestIncomplete: targets failed and ``allow_failed`` is off; nothing was written.
    """
    from astropy.table import Table
    from tqdm import tqdm

    from ml.ingest.http_client import PoliteClient
    from ml.survey_writer import SurveyWriter

    if not 0 < match_radius_arcsec <= CATALOG_BOX_HALF_ARCSEC:
        raise ValueError(f"the match radius must be in (0, {CATALOG_BOX_HALF_ARCSEC}] arcsec")
    out_dir = Path(out_dir)
    SurveyWriter.check_out_dir(out_dir, overwrite=overwrite)  # before hours of downloads
    cache = Path(download_dir) if download_dir is not None else out_dir / "download"
    table, targets = read_targets(targets_path)
    fetcher = LegacySurveyFetcher(client or PoliteClient(), cache, base_url, layer)
    outcomes = download(targets, fetcher, concurrency, progress)

    report = IngestReport()
    counts = {s: 0 for s in ("downloaded", "cached", "skipped", "failed")}
    for o in outcomes.values():
        counts[o.status] += 1
    failed = [t for t in targets if outcomes[t.key].status == "failed"]
    failures = [{"row": t.row, "ra": t.ra, "dec": t.dec, "reason": outcomes[t.key].reason}
                for t in failed]
    (cache / "failed.json").unlink(missing_ok=True)  # from an earlier, interrupted run
    if failed and not allow_failed:
        (cache / "failed.json").write_text(json.dumps(failures, indent=1) + "\n")
        raise IngestIncomplete(
            f"{len(failed)} of {len(targets)} target(s) failed (first: {failures[0]['reason']}); "
            f"the rest is cached in {cache}: run the same command again to resume, or pass "
            f"--allow-failed to build the survey without them (list: {cache / 'failed.json'})"
        )

    # -- match catalogs (small) before touching pixels ---------------------------------------
    rows: list[dict] = []
    for t in targets:
        outcome = outcomes[t.key]
        if outcome.status in ("skipped", "failed"):
            report.skipped.append({"row": t.row, "ra": t.ra, "dec": t.dec,
                                   "status": outcome.status, "reason": outcome.reason})
            continue
        values, sep = _match(t, fetcher.catalog_path(t), match_radius_arcsec)
        if values is None:
            report.skipped.append({"row": t.row, "ra": t.ra, "dec": t.dec, "status": "skipped",
                                   "reason": sep})
            continue
        ids = {name: values.get(name, "" if name == "type" else -1) for name in TRACTOR_IDS}
        rows.append({**values, **ids, "ra": t.ra, "dec": t.dec, "match_sep_arcsec": sep,
                     "input_row": t.row, "_target": t})
    kept_targets = [r.pop("_target") for r in rows]
    if not rows:
        raise CutoutError(f"none of the {len(targets)} targets gave a usable object; nothing written")
    merged = Table(rows=rows, names=list(rows[0]))
    lower = {c.lower() for c in merged.colnames}
    for name in table.colnames:
        if name.lower() in ("ra", "dec"):
            continue
        new = f"target_{name}" if name.lower() in lower or name.lower() == "source_type" else name
        merged[new] = table[name][[t.row for t in kept_targets]]
    cols = survey_columns(merged)
    good = [i for i in range(len(merged)) if i not in cols.bad_rows]
    for i, reason in sorted(cols.bad_rows.items()):
        t = kept_targets[i]
        report.skipped.append({"row": t.row, "ra": t.ra, "dec": t.dec, "status": "skipped",
                               "reason": f"catalog: {reason}"})
    if not good:
        raise CutoutError(f"none of the {len(targets)} targets gave a usable object; nothing written")

    # -- write pixels batch by batch ---------------------------------------------------------
    with SurveyWriter(out_dir, image_size=fetcher.size, extra_columns=cols.extra_specs,
                      overwrite=overwrite) as writer:
        for lo in tqdm(range(0, len(good), BATCH_OBJECTS), desc="writing survey", unit="batch",
                       disable=not progress):
            index = np.asarray(good[lo:lo + BATCH_OBJECTS])
            images = np.stack([read_cutout(fetcher.cutout_path(kept_targets[i]), fetcher.size)
                               for i in index])
            writer.append(images, cols.rows(index))
    report.files = [p.name for p in writer.close()]
    report.n_written = writer.n_written
    report.skipped.sort(key=lambda s: s["row"])
    report.write(out_dir / REPORT_FILENAME, source=base_url, layer=layer,
                 targets=str(targets_path), download_dir=str(cache), outcomes=counts,
                 match_radius_arcsec=match_radius_arcsec)
    return report, counts
