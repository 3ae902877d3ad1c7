"""Where export files live and how they are written so that none is ever half-written.

Files are ``<EXPORTS_DIR>/<campaign id>/export-<export id>.<ext>`` (``EXPORTS_DIR``: the
app's setting, ``GALSEARCH_EXPORTS_DIR``, by default ``exports/`` in the instance folder, which
the web server and the workers must share): the path is built from
two integers and a fixed extension, never from anything a user typed, so a download cannot
reach another file (there is no name to traverse with).

:func:`atomic_output` gives a writer a temporary path in the same folder
(``.export-<id>.<ext>.part``: hidden, and not the final name). When the writer returns, the
file is flushed to disk (``fsync``), its SHA-256 and size computed, and it is renamed to its
final name (atomic on POSIX), then the folder is synced so that the rename survives a crash.
When the writer fails (a full disk: ``ENOSPC``, or anything else) the temporary file is
removed: a failed export leaves nothing behind that looks complete. A worker killed mid-write
leaves only a ``.part`` file, which the job's next attempt overwrites.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HASH_BLOCK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Format:
    """One export format: its file extension, media type, and whether it holds images."""

    name: str
    extension: str
    mimetype: str
    description: str


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("csv", "csv", "text/csv", "one row per object: ids, position, catalog columns, "
           "every labeler's label, consensus, probe score"),
    Format("json", "json", "application/json", "the same rows as objects, with the export's "
           "description"),
    Format("fits", "fits", "application/fits", "the same rows as a FITS binary table"),
    Format("hdf5", "h5", "application/x-hdf5", "a training set: cutouts, consensus and "
           "per-labeler labels, probe scores, a stratified train/validation split"),
    Format("zooniverse", "zip", "application/zip", "a Zooniverse subject-set manifest "
           "(manifest.csv) with one rendered PNG per object, zipped"),
)}


class ExportWriteError(OSError):
    """Writing the file failed; the message says why in words for the user."""


def campaign_exports_dir(exports_root: str | os.PathLike, campaign_id: int) -> Path:
    """The folder of a campaign's export files under the app's ``EXPORTS_DIR``."""
    return Path(exports_root) / str(int(campaign_id))


def export_path(exports_root: str | os.PathLike, campaign_id: int, export_id: int,
                fmt: Format) -> Path:
    """The final path of an export's file."""
    return campaign_exports_dir(exports_root, campaign_id) / \
        f"export-{int(export_id)}.{fmt.extension}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    byte_size: int
    sha256: str


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def atomic_output(final: Path, write: Callable[[Path], None]) -> WrittenFile:
    """Run ``write(temporary path)``, then make its file appear at ``final`` complete or not
    at all (module docstring).

    Raises:
        ExportWriteError: the disk is full (ENOSPC) or over quota (EDQUOT); the temporary file
            is gone.
        Exception: whatever ``write`` raised; the temporary file is gone.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.part")
    try:
        with _removed_on_error(temporary):
            write(temporary)
            _fsync_file(temporary)
            written = WrittenFile(final, temporary.stat().st_size, sha256_of(temporary))
            os.replace(temporary, final)
        _fsync_dir(final.parent)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ExportWriteError(
                error.errno, f"the disk holding {final.parent} is full ({os.strerror(error.errno)}); "
                "nothing was kept: free space (or delete old exports) and start the export "
                "again") from error
        raise
    return written
