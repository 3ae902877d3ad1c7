"""Fixtures for the ingest tests."""

from __future__ import annotations

import pytest
from fake_viewer import FakeViewer


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Requests to the local stand-in must not go through a proxy from the environment."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def viewer():
    with FakeViewer() as v:
        yield v
