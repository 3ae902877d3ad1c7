"""`galsearch embed`: the encoder's output, chunk by chunk, resumable after a crash or a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from embed_testing import FailingEncoder

from ml.embed import EmbedStateError, run_embed
from ml.embed.output import CHUNKS_DIR, MANIFEST_FILE, STATE_FILE
from ml.encoder import Encoder
from ml.index import open_bundle
from ml.survey import Survey
from server.cli import main

N, CHUNK, BATCH = 40, 8, 4  # 5 chunks of 2 batches


@pytest.fixture(scope="module")
def reference(tiny_survey, tiny_checkpoint):
    """Encoder.embed over the whole survey at once, float32."""
    with Survey(tiny_survey) as survey:
        return Encoder.from_checkpoint(tiny_checkpoint).embed(
            survey.read_images(np.arange(survey.n)))


def _arrays(out: Path) -> dict[str, np.ndarray]:
    return {name: np.load(out / f"{name}.npy") for name in ("prehead", "head")}


def _embed(checkpoint, survey, out, **kwargs):
    settings = dict(batch_size=BATCH, chunk_size=CHUNK, workers=0, progress=False)
    settings.update(kwargs)
    return run_embed(checkpoint, survey, out, **settings)


@pytest.mark.parametrize("workers", [0, 1])
def test_output_equals_encoder_embed(tiny_survey, tiny_checkpoint, reference, tmp_path, workers):
    out = tmp_path / "emb"
    result = _embed(tiny_checkpoint, tiny_survey, out, dtype="float32", workers=workers)
    assert result.complete and result.computed == 5 and result.skipped == 0
    assert result.objects == N
    for name, values in _arrays(out).items():
        assert values.dtype == np.float32 and values.shape == reference[name].shape
        # the reader's central crop is the crop center_view cuts: the same sampling grid
        np.testing.assert_allclose(values, reference[name], rtol=1e-5, atol=1e-6)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["n"] == N and manifest["dims"] == {"prehead": 64, "head": 128}
    assert manifest["checkpoint"]["path"] == str(tiny_checkpoint.absolute())
    assert manifest["checkpoint"]["sha256"] == Encoder.from_checkpoint(tiny_checkpoint).sha256
    with Survey(tiny_survey) as survey:
        assert manifest["survey"]["fingerprint"] == survey.fingerprint()


def test_float16_by_default_and_indexable(tiny_survey, tiny_checkpoint, reference, tmp_path):
    out = tmp_path / "emb"
    result = CliRunner().invoke(main, [
        "embed", "--checkpoint", str(tiny_checkpoint), "--survey", str(tiny_survey),
        "--out", str(out), "--batch-size", "4", "--chunk-size", "8", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "embedded 40 objects" in result.output and "5 chunk(s) computed" in result.output
    arrays = _arrays(out)
    assert arrays["prehead"].dtype == np.float16
    np.testing.assert_allclose(arrays["prehead"], reference["prehead"].astype(np.float16),
                               rtol=2e-3, atol=1e-4)
    # the contract with `galsearch index`
    done = CliRunner().invoke(main, ["index", "--embeddings", str(out), "--survey",
                                     str(tiny_survey), "--out", str(tmp_path / "bundle"),
                                     "--k", "5"])
    assert done.exit_code == 0, done.output
    bundle = open_bundle(tmp_path / "bundle")
    assert bundle.n == N and bundle.dim == 64
    assert bundle.checkpoint_path.read_bytes() == tiny_checkpoint.read_bytes()


def test_resume_after_a_crash_skips_finished_chunks(tiny_survey, tiny_checkpoint, reference,
                                                    tmp_path):
    out = tmp_path / "emb"
    failing = FailingEncoder.from_checkpoint(tiny_checkpoint)
    failing.fail_at = 5  # batches 0-4 done: chunks 0 and 1 complete, chunk 2 half-computed
    with pytest.raises(RuntimeError, match="injected failure"):
        _embed(tiny_checkpoint, tiny_survey, out, dtype="float32", encoder=failing)
    assert sorted(p.name for p in (out / CHUNKS_DIR).glob("*.json")) == [
        "00000000.json", "00000001.json"]
    assert not (out / MANIFEST_FILE).exists()  # nothing half-done looks complete

    counting = FailingEncoder.from_checkpoint(tiny_checkpoint)
    counting.fail_at = -1  # never
    result = _embed(tiny_checkpoint, tiny_survey, out, dtype="float32", encoder=counting)
    assert result.skipped == 2 and result.computed == 3 and result.complete
    assert counting.calls == 6  # 3 chunks x 2 batches: the finished ones were not recomputed
    for name, values in _arrays(out).items():
        np.testing.assert_allclose(values, reference[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_arrays(tiny_survey, tiny_checkpoint, tmp_path):
    whole = tmp_path / "whole"
    _embed(tiny_checkpoint, tiny_survey, whole)
    out = tmp_path / "killed"
    code = ("import sys; from embed_testing import slow_run; "
            "slow_run(sys.argv[1], sys.argv[2], sys.argv[3])")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", code, str(tiny_checkpoint),
                                str(tiny_survey), str(out)], env=env,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list((out / CHUNKS_DIR).glob("*.json"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the embedding subprocess made no progress"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # mid-chunk, most likely between two batches
    finally:
        process.wait()
        process.stderr.close()
    marked = len(list((out / CHUNKS_DIR).glob("*.json")))
    assert 2 <= marked < 5 and not (out / MANIFEST_FILE).exists()
    result = _embed(tiny_checkpoint, tiny_survey, out)
    assert result.skipped == marked and result.computed == 5 - marked and result.complete
    for name, values in _arrays(out).items():
        np.testing.assert_array_equal(values, _arrays(whole)[name])


def test_damaged_rows_of_a_finished_chunk_are_computed_again(tiny_survey, tiny_checkpoint,
                                                             tmp_path):
    out = tmp_path / "emb"
    _embed(tiny_checkpoint, tiny_survey, out)
    good = _arrays(out)
    head = np.load(out / "head.npy", mmap_mode="r+")
    head[17:20] = 0  # chunk 2, as a write cut short would leave it
    head.flush()
    del head
    result = _embed(tiny_checkpoint, tiny_survey, out)
    assert result.redone == 1 and result.computed == 1 and result.skipped == 4
    assert result.complete
    np.testing.assert_array_equal(_arrays(out)["head"], good["head"])


def test_a_finished_folder_is_left_alone(tiny_survey, tiny_checkpoint, tmp_path):
    out = tmp_path / "emb"
    _embed(tiny_checkpoint, tiny_survey, out)
    manifest = (out / MANIFEST_FILE).read_bytes()
    result = _embed(tiny_checkpoint, tiny_survey, out)
    assert result.computed == 0 and result.skipped == 5
    assert (out / MANIFEST_FILE).read_bytes() == manifest  # downstream stays up to date


def test_damaged_state_and_arrays_are_refused_with_the_remedy(tiny_survey, tiny_checkpoint,
                                                              tmp_path):
    out = tmp_path / "emb"
    _embed(tiny_checkpoint, tiny_survey, out)
    (out / STATE_FILE).write_text('{"format": "galsearch-embed-st')
    with pytest.raises(EmbedStateError, match=r"damaged.*--overwrite"):
        _embed(tiny_checkpoint, tiny_survey, out)

    other = tmp_path / "other"
    _embed(tiny_checkpoint, tiny_survey, other)
    with open(other / "prehead.npy", "r+b") as f:
        f.truncate(200)
    with pytest.raises(EmbedStateError, match=r"prehead\.npy.*--overwrite"):
        _embed(tiny_checkpoint, tiny_survey, other)
    result = CliRunner().invoke(main, [
        "embed", "--checkpoint", str(tiny_checkpoint), "--survey", str(tiny_survey),
        "--out", str(other), "--chunk-size", "8", "--workers", "0", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "5 chunk(s) computed" in result.output


def test_another_run_is_refused_unless_restarted(tiny_survey, tiny_checkpoint, tmp_path):
    out = tmp_path / "emb"
    _embed(tiny_checkpoint, tiny_survey, out)
    with pytest.raises(EmbedStateError, match=r"another run.*chunk_size"):
        _embed(tiny_checkpoint, tiny_survey, out, chunk_size=16)
    result = _embed(tiny_checkpoint, tiny_survey, out, chunk_size=16, restart=True)
    assert result.computed == 3 and result.complete


def test_foreign_folder_and_too_small_cutouts(tiny_survey, tiny_checkpoint, survey_writer,
                                              tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("...")
    with pytest.raises(EmbedStateError, match="not empty"):
        _embed(tiny_checkpoint, tiny_survey, foreign)
    small = survey_writer(tmp_path / "small", n=8, size=20)
    result = CliRunner().invoke(main, ["embed", "--checkpoint", str(tiny_checkpoint),
                                       "--survey", str(small), "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "central 24 x 24 pixels" in result.output


@pytest.mark.slow
def test_two_ranks_under_torchrun_share_the_chunks(tiny_survey, tiny_checkpoint, tmp_path):
    single = tmp_path / "single"
    _embed(tiny_checkpoint, tiny_survey, single)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "server.cli", "embed", "--checkpoint", str(tiny_checkpoint), "--survey",
           str(tiny_survey), "--out", str(out), "--batch-size", str(BATCH), "--chunk-size",
           str(CHUNK), "--workers", "0", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env,
                          cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 chunk(s) computed" in done.stdout  # rank 0: chunks 0, 2, 4
    for name, values in _arrays(out).items():
        np.testing.assert_array_equal(values, _arrays(single)[name])
    assert json.loads((out / MANIFEST_FILE).read_text())["n"] == N

