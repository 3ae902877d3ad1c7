"""Small JSON records written so that a reader sees the whole file or none of it.

Resumable work (``galsearch embed``'s finished-chunk markers, ``galsearch pipeline``'s stage
stamps) decides what is done by the presence of such a record, so a record must never be seen
half-written: it is written to a hidden temporary file in the same folder, flushed to disk,
renamed over the target (atomic on POSIX filesystems) and the folder entry flushed too.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` atomically and durably; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def read_json(path: str | os.PathLike) -> Any:
    """The JSON content of ``path``; None when the file is absent.

    Raises:
        ValueError: the file exists but is not valid JSON (damaged by something outside the
            writer above, which never leaves a partial file).
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from exc


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename or a new file) to disk, where the OS allows it."""
    with contextlib.suppress(OSError):  # some filesystems refuse to open folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
