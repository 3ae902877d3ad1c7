"""Cutout images: g, r, z pixels rendered to PNG, with a bounded disk cache and strong ETags.

Rendering goes through :func:`ml.render.png_bytes` (the one arcsinh stretch of the project,
the survey viewer's colours), at the requested size and brightness. A rendered PNG is a pure
function of (survey, object, size, brightness, renderer), so:

- its ETag is a hash of exactly that, computed without touching pixels: a browser revalidating
  with ``If-None-Match`` gets 304 at once;
- it is kept on disk as ``<instance>/cutouts/v<renderer>-<survey fingerprint>/<shard>/<object
  id>_<size>_<brightness>.png``, where the shard is the id's last three digits (a thousand
  folders, filled evenly), written to a temporary name and renamed, so concurrent workers never
  read half a file. ``<instance>/cutouts/current`` is a symbolic link to the folder of the
  survey and renderer being served, so that a front server can find a file from the request's
  URL alone (``galsearch nginx-config``, :mod:`server.front`). When the cache grows past its
  limit, a background thread deletes the oldest files down to 80 % of it. The folder may be
  deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ml.survey import Survey

log = logging.getLogger(__name__)

# a cutout's bytes never change under its URL (RENDER_VERSION and the survey are in its ETag)
CUTOUT_CACHE_CONTROL = "private, max-age=86400"
RENDER_VERSION = 3  # raise when the rendering changes: old cache entries and ETags then lapse
SIZE_MIN, SIZE_MAX = 16, 512  # pixels
BRIGHTNESS_MIN, BRIGHTNESS_MAX = 0.05, 20.0
BRIGHTNESS_DECIMALS = 2  # brightness is rounded so that equal-looking requests share a file
CURRENT_LINK = "current"  # <cache>/current -> the folder of the survey and renderer served
_PRUNE_TO = 0.8  # of the limit


def render_on_one_thread() -> None:
    """Keep torch's intra-op thread pool to one thread in a web process.

    A web process renders each cutout on its request's own thread, many at once; splitting a
    3 x 152 x 152 stretch over torch's pool only adds contention. On a busy 2-core machine the
    stretch took 45 ms (median; p90 190 ms) with two threads and 0.5 ms with one. Called by
    ``galsearch serve`` and gunicorn's ``post_fork``; a no-op before torch is loaded.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


@dataclass(frozen=True)
class Cutout:
    """One rendering of one object (brightness already rounded)."""

    object_id: int
    size: int
    brightness: float

    @property
    def name(self) -> str:
        return f"{self.object_id}_{self.size}_{self.brightness:.{BRIGHTNESS_DECIMALS}f}"


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


class CutoutRenderer:
    """Renders cutouts of one survey, through a disk cache.

    Args:
        survey: the survey whose pixels are shown.
        cache_dir: the cache's root folder (None: no disk cache).
        cache_max_bytes: the cache's size limit.
    """

    def __init__(self, survey: Survey, cache_dir: Path | None, cache_max_bytes: int) -> None:
        self.survey = survey
        self.native_size = survey.image_shape[-1]
        self._tag = f"v{RENDER_VERSION}-{survey.fingerprint()}"
        self.cache_root = None if cache_dir is None else Path(cache_dir) / self._tag
        self._cache_folder = f"{self.cache_root}{os.sep}"
        self.cache_max_bytes = cache_max_bytes
        if self.cache_root is not None:
            self._point_current_link()
        self._written_bytes = 0
        self._prune_lock = threading.Lock()
        self._pruning = False

    def cutout(self, object_id: int, size: int | None = None, brightness: float = 1.0) -> Cutout:
        """The rendering asked for (size None: the survey's own cutout size)."""
        return Cutout(object_id, self.native_size if size is None else size,
                      round(brightness, BRIGHTNESS_DECIMALS))

    def etag(self, cutout: Cutout) -> str:
        """A strong validator of the PNG's bytes (without rendering it)."""
        return hashlib.sha256(f"{self._tag}/{cutout.name}".encode()).hexdigest()[:32]

    def _point_current_link(self) -> None:
        """Make ``<cache>/current`` name this renderer's folder (atomically: a front server
        reading through it sees the old folder or the new one)."""
        assert self.cache_root is not None
        link = self.cache_root.parent / CURRENT_LINK
        try:
            if os.readlink(link) == self._tag:
                return
        except OSError:  # no link yet (or not a link: replaced below)
            pass
        tmp = link.with_name(f".{CURRENT_LINK}.{os.getpid()}.{threading.get_ident()}")
        try:
            self.cache_root.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(self._tag, tmp)
            os.replace(tmp, link)
        except OSError as error:  # a read-only disk: the app still works, a front server misses
            log.warning("cutout cache: cannot point %s at %s: %s", link, self._tag, error)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _file_name(self, cutout: Cutout) -> str:
        # a plain string: pathlib's joins cost more than the read of a cached file
        assert self.cache_root is not None
        return f"{self._cache_folder}{str(cutout.object_id)[-3:]}{os.sep}{cutout.name}.png"

    def png(self, cutout: Cutout) -> tuple[bytes, bool]:
        """The PNG bytes of ``cutout`` and whether they came from the disk cache."""
        if self.cache_root is not None:
            try:
                with open(self._file_name(cutout), "rb") as f:
                    return f.read(), True
            except FileNotFoundError:
                pass
        data = self.render(cutout)
        if self.cache_root is not None:
            self._store(cutout, data)
        return data, False

    def render(self, cutout: Cutout) -> bytes:
        """Render from the survey's pixels (no cache)."""
        from ml.render import Stretch, png_bytes

        image = self.survey.read_images([cutout.object_id])[0]  # (3, H, W) nanomaggies
        return png_bytes(image, size=cutout.size, stretch=Stretch(brightness=cutout.brightness))

    def _store(self, cutout: Cutout, data: bytes) -> None:
        path = self._file_name(cutout)
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            try:
                _write(tmp, data)
            except FileNotFoundError:  # the folder's first file, or the cache was deleted
                os.makedirs(folder, exist_ok=True)
                self._point_current_link()
                _write(tmp, data)
            os.replace(tmp, path)  # atomic: readers see the whole file or none
        except OSError as error:  # a full or read-only disk costs speed, not the request
            log.warning("cutout cache: cannot write %s: %s", path, error)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._written_bytes += len(data)
        if self._written_bytes > self.cache_max_bytes * (1 - _PRUNE_TO):
            self._written_bytes = 0
            self._start_prune()

    def _start_prune(self) -> None:
        with self._prune_lock:
            if self._pruning:
                return
            self._pruning = True
        threading.Thread(target=self.prune, name="cutout-cache-prune", daemon=True).start()

    def prune(self) -> int:
        """Delete the oldest cached files until the cache is under 80 % of its limit; returns
        how many bytes were deleted."""
        try:
            if self.cache_root is None or not self.cache_root.parent.exists():
                return 0
            files = []
            for path in self.cache_root.parent.rglob("*.png"):
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted meanwhile by another worker
                    continue
                # other renderer versions and surveys are older than anything current
                current = path.is_relative_to(self.cache_root)
                files.append((current, stat.st_mtime, stat.st_size, path))
            total = sum(size for _, _, size, _ in files)
            deleted = 0
            if total <= self.cache_max_bytes:
                return 0
            for _, _, size, path in sorted(files, key=lambda f: (f[0], f[1])):
                if total - deleted <= self.cache_max_bytes * _PRUNE_TO:
                    break
                path.unlink(missing_ok=True)
                deleted += size
            log.info("cutout cache: deleted %.1f MB of old cutouts", deleted / 2**20)
            return deleted
        finally:
            with self._prune_lock:
                self._pruning = False
