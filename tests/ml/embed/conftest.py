from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from ml.train.config import TrainConfig
from ml.train.loop import train

# the tiny survey writer lives with the training tests; one writer for every suite
_spec = importlib.util.spec_from_file_location(
    "tiny_survey", Path(__file__).parents[1] / "train" / "tiny_survey.py")
tiny_survey_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_survey_module)
sys.path.insert(0, str(Path(__file__).parent))  # embed_testing, for subprocesses too


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def survey_writer():
    """``write_tiny_survey(out_dir, n=64, size=32, seed=0, ring_fraction=0.5)``."""
    return tiny_survey_module.write_tiny_survey


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory):
    """40 objects of 32 px: 5 chunks of 8 in the tests."""
    return tiny_survey_module.write_tiny_survey(tmp_path_factory.mktemp("embed_survey"), n=40)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_survey, tmp_path_factory):
    """A release checkpoint of a 2-step run (crop 24 resampled to 16 px: the resample path)."""
    out = tmp_path_factory.mktemp("embed_run")
    config = TrainConfig.from_dict(dict(
        survey=str(tiny_survey), out_dir=str(out), arch="resnet10", width=8, small_stem=True,
        queue_size=16, batch_size=8, bn_groups=2, max_steps=2, num_workers=0, threads=1,
        progress=False, augment={"crop": 24, "out_size": 16}))
    train(config)
    return out / "release.pt"
