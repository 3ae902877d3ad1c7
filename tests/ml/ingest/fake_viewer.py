"""Test doubles for the ingest tests: FITS cutouts written with astropy, and a local stand-in for
the Legacy Surveys viewer that answers like the real one (FITS bodies, 404, 429/503)."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ml.survey_format import BANDS, PIXEL_SCALE_ARCSEC


def cutout_hdul(ra: float, dec: float, size: int, bands: str = "grz", seed: int = 0,
                scale_arcsec: float = PIXEL_SCALE_ARCSEC) -> fits.HDUList:
    """A cutout as the viewer serves it: (bands, size, size) float32 with BANDS and a TAN WCS.

    Band b's plane is filled around 0.01 * (index of b in 'grzi' + 1), so tests can check order.
    """
    rng = np.random.default_rng(seed)
    data = np.stack([
        rng.normal(0.01 * ("grzi".index(b) + 1), 0.001, (size, size)) for b in bands
    ]).astype(np.float32)
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = ra, dec
    header["CRPIX1"] = header["CRPIX2"] = (size + 1) / 2
    header["CD1_1"], header["CD1_2"] = -scale_arcsec / 3600, 0.0
    header["CD2_1"], header["CD2_2"] = 0.0, scale_arcsec / 3600
    header["BANDS"] = bands
    for i, b in enumerate(bands):
        header[f"BAND{i}"] = b
    return fits.HDUList([fits.PrimaryHDU(data, header=header)])


def tractor_rows(ra: float, dec: float, n: int = 1, **overrides) -> dict[str, np.ndarray]:
    """Tractor-like catalog columns (lower-case names, as the viewer's cat.fits has them)."""
    rows = {
        "release": np.full(n, 9010, np.int16), "brickid": np.full(n, 331234, np.int32),
        "objid": np.arange(n, dtype=np.int32) + 17, "type": np.array(["EXP"] * n),
        "ra": np.full(n, ra), "dec": np.full(n, dec), "ebv": np.full(n, 0.031, np.float32),
    }
    for i, b in enumerate(BANDS):
        rows[f"flux_{b}"] = np.full(n, 10.0 * (i + 1), np.float32)
        rows[f"psfsize_{b}"] = np.full(n, 1.5 - 0.1 * i, np.float32)
        rows[f"psfdepth_{b}"] = np.full(n, 1000.0 / (i + 1), np.float32)
    rows.update({k: np.asarray(v) for k, v in overrides.items()})
    return rows


class FakeViewer:
    """The viewer's cutout.fits and <layer>/cat.fits endpoints, per-target behaviour by RA.

    ``scenarios[round(ra, 4)]`` is one of: "ok", "nocoverage" (404), "flaky429" (one 429 with
    ``Retry-After: retry_after``, then ok), "flaky503" (two 503, then ok), "down" (always 503),
    "badrequest" (400), "emptyband" (z plane all zero), "nomatch" (nearest source 3" away),
    "nodepth" (psfdepth_z = 0).
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.scenarios: dict[float, str] = {}
        self.delay_s = delay_s
        self.retry_after = "0"
        self.requests: Counter = Counter()  # (endpoint, ra) -> count
        self.user_agents: set[str] = set()
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        viewer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                with viewer._lock:
                    viewer.inflight += 1
                    viewer.max_inflight = max(viewer.max_inflight, viewer.inflight)
                try:
                    time.sleep(viewer.delay_s)
                    status, headers, body = viewer.answer(self.path, self.headers)
                finally:
                    with viewer._lock:
                        viewer.inflight -= 1
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/viewer"

    def answer(self, path: str, headers) -> tuple[int, dict, bytes]:
        url = urlparse(path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.user_agents.add(headers.get("User-Agent", ""))
        if url.path == "/viewer/cutout.fits":
            ra, dec = float(q["ra"]), float(q["dec"])
            endpoint = "cutout"
        elif url.path == "/viewer/ls-dr9/cat.fits":
            ra = (float(q["ralo"]) + float(q["rahi"])) / 2
            dec = (float(q["declo"]) + float(q["dechi"])) / 2
            endpoint = "cat"
        else:
            return 404, {}, b"no such endpoint"
        scenario = self.scenarios.get(round(ra, 4), "ok")
        with self._lock:
            self.requests[endpoint, round(ra, 4)] += 1
            seen = self.requests[endpoint, round(ra, 4)]
        text = {"Content-Type": "text/plain"}
        if scenario == "nocoverage" and endpoint == "cutout":
            return 404, text, b"No coverage"
        if scenario == "flaky429" and seen == 1:
            return 429, {**text, "Retry-After": self.retry_after}, b"Too Many Requests"
        if scenario == "badrequest":
            return 400, text, b"Bad Request"
        if scenario == "flaky503" and seen <= 2:
            return 503, text, b"Service Unavailable"
        if scenario == "down":
            return 503, text, b"Service Unavailable"
        buf = io.BytesIO()
        if endpoint == "cutout":
            hdul = cutout_hdul(ra, dec, int(q["size"]), q["bands"])
            if scenario == "emptyband":
                hdul[0].data[2] = 0.0
            hdul.writeto(buf)
        else:
            offset_deg = (3.0 if scenario == "nomatch" else 0.3) / 3600
            rows = tractor_rows(ra, dec + offset_deg, n=2)
            rows["dec"][1] = dec + 4.0 / 3600  # a neighbour farther out
            if scenario == "nodepth":
                rows["psfdepth_z"][:] = 0.0
            fits.BinTableHDU(Table(rows)).writeto(buf)
        return 200, {"Content-Type": "application/fits"}, buf.getvalue()

    def __enter__(self) -> FakeViewer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
