"""`galsearch pipeline`: each stage runs once, is skipped when up to date, reruns (with what
depends on it) when its inputs change, and a stopped run resumes where it stopped."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from pipeline_testdata import tiny_toml

from ml.index import open_bundle
from ml.index.manifest import MANIFEST_NAME
from ml.pipeline import PipelineError, load_pipeline_config, run_pipeline
from ml.pipeline.run import Stamps
from ml.simulate.driver import simulate_survey
from ml.train.config import ConfigError, load_config
from server.cli import main

STAGES = ["survey", "fit-augment", "train", "embed", "index", "evaluate"]


def _run(toml, *overrides, train=True, model=None):
    lines: list[str] = []
    result = run_pipeline(load_pipeline_config(toml, overrides), train=train, model=model,
                          echo=lines.append)
    return result, {r.name: r.status for r in result.reports}, lines


def test_runs_once_then_skips_everything(root):
    toml = tiny_toml(root)
    result, status, _ = _run(toml)
    assert status == {"survey": "adopted", "fit-augment": "ran", "train": "ran", "embed": "ran",
                      "index": "ran", "evaluate": "ran"}
    bundle = open_bundle(root / "run" / "bundle")
    assert bundle.n == 32 and bundle.checkpoint_path.read_bytes() == (
        root / "run" / "release.pt").read_bytes()
    evaluation = json.loads((root / "run" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["bundle"]["retrieval"]["summary"]["within_tolerance"] is True
    assert "pipeline summary" in result.summary() and str(root / "run" / "bundle") in \
        result.summary()

    again, status, lines = _run(toml)
    assert set(status.values()) == {"skipped"} and again.ran == []
    assert all("up to date" in line for line in lines)


def test_a_changed_setting_reruns_that_stage_and_what_follows(root):
    toml = tiny_toml(root)
    _run(toml)
    _, status, _ = _run(toml, "index.k=5")
    assert [s for s in STAGES if status[s] != "skipped"] == ["index", "evaluate"]
    assert open_bundle(root / "run" / "bundle").knn.k == 5
    _, status, _ = _run(toml, "index.k=5", "max_minutes=30")  # run control: not an input
    assert set(status.values()) == {"skipped"}
    _, status, _ = _run(toml, "index.k=5", "base_lr=0.05")  # training maths: retrain
    assert [s for s in STAGES if status[s] != "skipped"] == ["train", "embed", "index",
                                                              "evaluate"]


def _rebuilt_after_index(root, manifest_before: bytes) -> list[str]:
    """The stages that must run again after the bundle was rebuilt: the index, and the
    evaluation when the new bundle differs (its manifest holds the second it was built in, so
    a rebuild within the same second is the same bundle and its evaluation still stands)."""
    same = (root / "run" / "bundle" / MANIFEST_NAME).read_bytes() == manifest_before
    return ["index"] if same else ["index", "evaluate"]


def test_an_output_changed_on_disk_is_rebuilt(root):
    toml = tiny_toml(root)
    _run(toml)
    before = (root / "run" / "bundle" / MANIFEST_NAME).read_bytes()
    shutil.rmtree(root / "run" / "bundle")
    _, status, lines = _run(toml)
    assert [s for s in STAGES if status[s] != "skipped"] == _rebuilt_after_index(root, before)
    assert any("index: running (its output changed on disk)" in line for line in lines)


def test_a_stopped_run_resumes_where_it_stopped(root, monkeypatch):
    toml = tiny_toml(root)
    # training pauses after one step, as if killed: the pipeline stops there
    with pytest.raises(PipelineError, match="paused"):
        _run(toml, "stop_at_step=1")
    stamps = Stamps(root / "run" / "stamps")
    assert stamps.read("fit-augment") and not stamps.read("train")
    assert stamps.read("train", started=True)
    # the next run goes on from the checkpoint (stop_at_step is not part of the maths)
    _, status, _ = _run(toml)
    assert status["survey"] == status["fit-augment"] == "skipped"
    assert status["train"] == "resumed"
    events = [json.loads(line)["event"]
              for line in (root / "run" / "log.jsonl").read_text().splitlines()]
    assert "resume" in events

    # a crash in a later stage: everything before it is kept
    before = (root / "run" / "bundle" / MANIFEST_NAME).read_bytes()
    shutil.rmtree(root / "run" / "bundle")
    import ml.index.cli

    def crash(**kwargs):
        raise RuntimeError("killed")

    with monkeypatch.context() as m:
        m.setattr(ml.index.cli.index, "callback", crash)
        with pytest.raises(RuntimeError, match="killed"):
            _run(toml)
    _, status, _ = _run(toml)
    assert [s for s in STAGES if status[s] != "skipped"] == _rebuilt_after_index(root, before)


def test_a_given_model_replaces_training(root):
    toml = tiny_toml(root)
    _run(toml)
    trained = root / "trained.pt"
    shutil.copy(root / "run" / "release.pt", trained)
    _, status, _ = _run(toml, train=False, model=trained)
    assert "train" not in status and status["embed"] == "skipped"  # the same model file
    shutil.rmtree(root / "run" / "stamps")
    _, status, _ = _run(toml, train=False, model=trained)
    assert status["survey"] == "adopted" and status["embed"] == "ran"


def test_model_errors_name_the_remedy(root):
    toml = tiny_toml(root, pipeline={"model": str(root / "models" / "shipped.pt")})
    with pytest.raises(PipelineError, match=r"shipped model .*shipped\.pt is not there.*--train"):
        _run(toml, train=False)
    with pytest.raises(PipelineError, match="exclude"):
        _run(toml, train=True, model=toml)


def test_simulates_the_survey_and_refuses_a_foreign_one(tmp_path):
    toml = tiny_toml(tmp_path)
    _, status, _ = _run(toml, "evaluate.enabled=false")
    assert status["survey"] == "ran" and "evaluate" not in status
    # a survey made by someone else (other seed, no stamps) is never overwritten
    other = tmp_path / "other"
    other.mkdir()
    simulate_survey(other / "survey", 32, seed=9, workers=1, size=48, progress=False)
    with pytest.raises(PipelineError, match="did not make"):
        _run(tiny_toml(other), "evaluate.enabled=false")


def test_config_tables_and_overrides(root):
    toml = tiny_toml(root)
    config = load_pipeline_config(toml, ["simulate.n=8", "embed.dtype=float32", "width=16"])
    assert config.simulate.n == 8 and config.embed.dtype == "float32"
    assert config.train.width == 16 and config.bundle_dir == root / "run" / "bundle"
    with pytest.raises(ConfigError, match=r"embed\.batch_size"):
        load_pipeline_config(toml, ["embed.batchsize=3"])
    with pytest.raises(ConfigError, match="expected int"):
        load_pipeline_config(tiny_toml(root, embed={"chunk_size": "big"}))
    # `galsearch train --config` reads the same file and leaves the other tables alone
    assert load_config(toml).width == 8


def test_cli_prints_the_summary(root):
    toml = tiny_toml(root)
    result = CliRunner().invoke(main, ["pipeline", "--config", str(toml), "--train",
                                       "evaluate.enabled=false"])
    assert result.exit_code == 0, result.output
    assert "pipeline summary" in result.output and "index" in result.output
    result = CliRunner().invoke(main, ["pipeline", "--config", str(toml)])
    assert result.exit_code != 0 and "names no shipped model" in result.output
