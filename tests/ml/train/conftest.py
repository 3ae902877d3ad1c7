from __future__ import annotations

import pytest
import torch
from tiny_survey import write_tiny_survey

from ml.train.config import TrainConfig


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory):
    return write_tiny_survey(tmp_path_factory.mktemp("tiny_survey"))


@pytest.fixture
def tiny_config(tiny_survey, tmp_path):
    """The smallest real training run: ResNet-10 at width 8 on 24-px views, batch 8, in fp32
    (``"auto"`` would time both precisions: tests of it set it and fix the timings)."""
    def make(**overrides) -> TrainConfig:
        settings = dict(
            survey=str(tiny_survey), out_dir=str(tmp_path / "run"), arch="resnet10", width=8,
            small_stem=True, queue_size=20, batch_size=8, bn_groups=2, max_steps=4,
            num_workers=0, checkpoint_every=100, log_every=1, threads=1, progress=False,
            precision="fp32", augment={"crop": 24},
        )
        settings.update(overrides)
        return TrainConfig.from_dict(settings)
    return make
