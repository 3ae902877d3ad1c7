"""PoliteClient: retries with jittered back-off, Retry-After, no retry on 404 / other 4xx."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ml.ingest.http_client import DownloadError, NotFound, PoliteClient, retry_after_s

CUTOUT = {"dec": "1.0", "layer": "ls-dr9", "pixscale": "0.262", "bands": "grz", "size": "8"}


def client(sleeps: list[float], **kwargs) -> PoliteClient:
    kwargs = {"max_attempts": 4, "backoff_base_s": 0.5, "rng": random.Random(1), **kwargs}
    return PoliteClient(sleep=sleeps.append, **kwargs)


def get_cutout(c: PoliteClient, viewer, ra: float) -> bytes:
    return c.get(f"{viewer.base_url}/cutout.fits", params={"ra": str(ra), **CUTOUT})


def test_success_sends_galsearch_user_agent(viewer):
    sleeps: list[float] = []
    body = get_cutout(client(sleeps), viewer, 10.0)
    assert body[:6] == b"SIMPLE" and sleeps == []
    assert len(viewer.user_agents) == 1 and next(iter(viewer.user_agents)).startswith("galsearch/")


def test_404_is_not_retried(viewer):
    viewer.scenarios[10.0] = "nocoverage"
    sleeps: list[float] = []
    with pytest.raises(NotFound, match="404"):
        get_cutout(client(sleeps), viewer, 10.0)
    assert viewer.requests["cutout", 10.0] == 1 and sleeps == []


def test_other_4xx_is_not_retried(viewer):
    viewer.scenarios[10.0] = "badrequest"
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match="HTTP 400") as info:
        get_cutout(client(sleeps), viewer, 10.0)
    assert not isinstance(info.value, NotFound)
    assert viewer.requests["cutout", 10.0] == 1 and sleeps == []


def test_503_retried_with_backoff_then_success(viewer):
    viewer.scenarios[10.0] = "flaky503"
    sleeps: list[float] = []
    assert get_cutout(client(sleeps), viewer, 10.0)[:6] == b"SIMPLE"
    assert viewer.requests["cutout", 10.0] == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


def test_429_waits_at_least_retry_after(viewer):
    viewer.scenarios[10.0] = "flaky429"
    viewer.retry_after = "7"
    sleeps: list[float] = []
    assert get_cutout(client(sleeps), viewer, 10.0)[:6] == b"SIMPLE"
    assert viewer.requests["cutout", 10.0] == 2 and sleeps == [7.0]


def test_retry_after_beyond_limit_gives_up_at_once(viewer):
    viewer.scenarios[10.0] = "flaky429"
    viewer.retry_after = "3600"
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match="retry after 3600 s"):
        get_cutout(client(sleeps, max_retry_after_s=60), viewer, 10.0)
    assert viewer.requests["cutout", 10.0] == 1 and sleeps == []


def test_persistent_503_fails_after_max_attempts(viewer):
    viewer.scenarios[10.0] = "down"
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match="HTTP 503 after 4 attempts"):
        get_cutout(client(sleeps), viewer, 10.0)
    assert viewer.requests["cutout", 10.0] == 4 and len(sleeps) == 3


def test_connection_errors_are_retried():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match=r"ConnectionError.*after 3 attempts"):
        client(sleeps, max_attempts=3, timeout_s=2).get(f"http://127.0.0.1:{port}/x")
    assert len(sleeps) == 2


def test_backoff_is_jittered_exponential_and_capped():
    c = PoliteClient(backoff_base_s=1.0, backoff_max_s=10.0, rng=random.Random(0))
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 10.0)]:
        draws = [c.backoff_s(attempt) for _ in range(200)]
        assert min(draws) >= 0 and max(draws) <= cap
        assert max(draws) > 0.8 * cap  # spread over the whole range, not a constant


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("120") == 120.0
    assert retry_after_s(" 0 ") == 0.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None
