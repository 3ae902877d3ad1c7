"""Presets, overrides and their errors; the learning-rate schedule; the sampler."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from ml.train.config import ConfigError, TrainConfig, load_config
from ml.train.data import ShuffledBatches
from ml.train.schedule import lr_at, scaled_lr

CONFIGS = Path(__file__).parents[3] / "configs"


@pytest.mark.parametrize("preset", ["demo", "paper"])
def test_presets_load(preset):
    config = load_config(CONFIGS / f"{preset}.toml")
    assert config.dim == 128 and config.mlp
    assert config.queue_size == config.model_args().K


def test_paper_preset_is_the_paper_setting():
    config = load_config(CONFIGS / "paper.toml")
    assert (config.arch, config.augment.crop, config.queue_size) == ("resnet50", 96, 262144)
    assert (config.temperature, config.moco_m, config.base_lr) == (0.2, 0.999, 0.03)
    assert (config.sgd_momentum, config.weight_decay) == (0.9, 1e-4)


def test_overrides_are_coerced_to_the_field_types():
    config = load_config(CONFIGS / "demo.toml", [
        "batch_size=64", "base_lr=0.1", "small_stem=false", "arch=resnet34", "epochs=3",
        "augment.out_size=none", "augment.scale_range=0.95,1.05", "augment.flip=no",
    ])
    assert config.batch_size == 64 and isinstance(config.batch_size, int)
    assert config.base_lr == 0.1 and config.small_stem is False and config.arch == "resnet34"
    assert config.epochs == 3.0 and isinstance(config.epochs, float)
    assert config.augment.out_size is None
    assert config.augment.scale_range == (0.95, 1.05)
    assert config.augment.flip is False


def test_defaults_without_a_preset():
    assert load_config(None, ["seed=3"]) == TrainConfig(seed=3)


@pytest.mark.parametrize(("override", "message"), [
    ("batchsize=64", "unknown setting 'batchsize'; valid: .*batch_size"),
    ("augment.cropp=3", "unknown setting 'augment.cropp'; valid: augment.crop"),
    ("model.arch=resnet18", "only top-level keys and augment"),
    ("batch_size", "not of the form key=value"),
    ("batch_size=lots", "batch_size expects a number"),
    ("batch_size=2.5", "batch_size expects an integer"),
    ("mlp=maybe", "mlp expects true or false"),
    ("arch=vgg16", "arch must be one of"),
    ("bn_mode=magic", "bn_mode must be one of"),
    ("batch_size=0", "batch_size must be at least 1"),
    ("augment.crop=-4", "crop must be positive"),
])
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "demo.toml", [override])


def test_unknown_key_in_a_preset_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('arch = "resnet18"\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match=r"unknown training setting\(s\) \['learning_rate'\]"):
        load_config(path)
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "missing.toml")
    path.write_text("arch = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_lr_schedule_warms_up_linearly_then_follows_a_cosine():
    peak = 0.1
    lrs = [lr_at(s, total_steps=12, warmup_steps=2, peak_lr=peak) for s in range(12)]
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.1)
    assert lrs[2] == pytest.approx(peak)  # the cosine starts at the peak ...
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)  # ... and ends at its floor
    for k in range(10):  # the decay spans steps 2..11: 9 intervals
        assert lrs[2 + k] == pytest.approx(0.5 * peak * (1 + math.cos(math.pi * k / 9)))
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert lr_at(11, 12, 0, peak, min_lr_ratio=0.1) == pytest.approx(0.01)
    assert scaled_lr(0.03, 512) == pytest.approx(0.06)


def test_sampler_splits_each_epoch_across_ranks_and_resumes_at_a_step():
    n, batch, world = 50, 4, 3
    samplers = [ShuffledBatches(n, batch, rank, world, seed=5) for rank in range(world)]
    assert samplers[0].steps_per_epoch == 50 // 12
    iters = [iter(s) for s in samplers]
    epoch0 = [i for _ in range(4) for it in iters for i in next(it)]
    assert len(epoch0) == len(set(epoch0)) == 48  # no id twice in an epoch, last 2 dropped
    epoch1 = [i for _ in range(4) for it in iters for i in next(it)]
    assert epoch1 != epoch0 and len(set(epoch1)) == 48  # a new permutation
    # a sampler started at step 5 yields what the uninterrupted one yielded at step 5
    uninterrupted = iter(ShuffledBatches(n, batch, 1, world, seed=5))
    expected = [next(uninterrupted) for _ in range(8)][5:]
    resumed = iter(ShuffledBatches(n, batch, 1, world, seed=5, start_step=5))
    assert [next(resumed) for _ in range(3)] == expected
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ShuffledBatches(10, 4, 0, 3)
