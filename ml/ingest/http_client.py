"""A polite HTTP client for public astronomy services: retries with back-off, Retry-After.

* Transient failures (429, 500, 502, 503, 504, connection errors, timeouts) are retried with
  exponential back-off and full jitter: before attempt ``k`` the client sleeps a uniform draw
  in ``[0, min(backoff_max_s, backoff_base_s * 2**k)]`` and at least the server's
  ``Retry-After`` (seconds or an HTTP date). A ``Retry-After`` longer than
  ``max_retry_after_s`` is not waited out: the request fails and a later run can resume it.
* 404 raises :class:`NotFound` at once (for a cutout service: no coverage there); any other
  4xx raises :class:`DownloadError` at once, since repeating the same request cannot help.
* One ``requests.Session`` per thread (Sessions are not documented as thread-safe), each
  sending a User-Agent that names galsearch, so the service's operators know who is calling.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version

import requests

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def user_agent() -> str:
    try:
        ours = version("galsearch")
    except PackageNotFoundError:
        ours = "dev"
    return f"galsearch/{ours} (similarity search on survey cutouts) python-requests/{requests.__version__}"


class DownloadError(RuntimeError):
    """A request failed for good (after its retries, or with a status retrying cannot fix)."""


class NotFound(DownloadError):
    """The server answered 404."""


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class PoliteClient:
    """GET with retries; see the module docstring.

    Args:
        max_attempts: tries per request, the first included.
        backoff_base_s, backoff_max_s: exponential back-off scale and cap.
        max_retry_after_s: longest Retry-After the client waits before giving up.
        timeout_s: connect and read timeout of one attempt.
        sleep: the sleeping function (tests pass a recorder).
    """

    def __init__(self, max_attempts: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, max_retry_after_s: float = 300.0,
                 timeout_s: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.timeout_s = timeout_s
        self.sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = user_agent()
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def backoff_s(self, attempt: int) -> float:
        """Jittered delay before retry number ``attempt`` (0 = first retry)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        with self._rng_lock:
            return self._rng.uniform(0.0, cap)

    def get(self, url: str, params: dict | None = None) -> bytes:
        """The body of a 200 answer.

        Raises:
            NotFound: 404.
            DownloadError: another 4xx, or a transient failure that outlasted the retries.
        """
        last = ""
        for attempt in range(self.max_attempts):
            wait_at_least = 0.0
            try:
                response = self._session().get(url, params=params, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    return response.content
                if status == 404:
                    raise NotFound(f"404 Not Found: {response.url}")
                if status not in RETRY_STATUS:
                    raise DownloadError(f"HTTP {status} for {response.url}: {response.text[:200]}")
                last = f"HTTP {status}"
                asked = retry_after_s(response.headers.get("Retry-After"))
                if asked is not None:
                    if asked > self.max_retry_after_s:
                        raise DownloadError(
                            f"HTTP {status}: the server asks to retry after {asked:.0f} s "
                            f"(more than {self.max_retry_after_s:.0f} s); run again later"
                        )
                    wait_at_least = asked
            if attempt + 1 < self.max_attempts:
                self.sleep(max(wait_at_least, self.backoff_s(attempt)))
        raise DownloadError(f"{url}: {last} after {self.max_attempts} attempts")
