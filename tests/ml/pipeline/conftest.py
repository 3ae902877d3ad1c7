from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from pipeline_testdata import simulate_tiny


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def simulated(tmp_path_factory) -> Path:
    """The tiny preset's survey, simulated once: tests copy it (the pipeline adopts it)."""
    return simulate_tiny(tmp_path_factory.mktemp("pipeline_survey") / "survey")


@pytest.fixture
def root(tmp_path, simulated) -> Path:
    shutil.copytree(simulated, tmp_path / "survey")
    return tmp_path
