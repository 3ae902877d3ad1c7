"""Checkpoint files: what they hold, and how they are written and read.

A training checkpoint (``checkpoint.pt``, kind ``"train"``) holds everything an exact resume
needs; a release checkpoint (``release.pt``, kind ``"release"``) holds what inference needs, in
float16. Both are plain dicts of tensors and Python values, read with ``weights_only=True`` (no
pickled code runs when a checkpoint from elsewhere is opened).

| key | train | release | holds |
|---|---|---|---|
| format, version, kind | x | x | ``"galsearch-moco"``, :data:`VERSION`, ``"train"`` or ``"release"`` |
| config | x | x | the :class:`ml.train.config.TrainConfig` as a dict (augment settings included) |
| model_args | x | x | :class:`ml.moco.MoCoArgs` as a dict: rebuilds the network from the file alone |
| augment_stats | x | x | the fitted distributions the run drew from (``AugmentStats.to_dict()``) |
| step, total_steps, calibrated | x | step | optimizer steps done; the schedule's length |
| precision | x | | ``"fp32"`` or ``"bf16"``, what the run trains in (``"auto"``: chosen at the start) |
| model | x | | MoCo state: both encoders, the queue and its pointer |
| optimizer | x | | SGD state (momentum buffers) |
| rng | x | | per rank: torch CPU/CUDA, numpy, python and the augmentation generator |
| encoder | | x | the query encoder (backbone + head) in float16 |
| metrics | x | x | last logged loss and accuracy |

Files are written to a temporary name and renamed, so a kill never leaves a half-written
checkpoint under the real name: the last good one stays.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "galsearch-moco"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
RELEASE_NAME = "release.pt"


class CheckpointError(ValueError):
    """A file is not a galsearch MoCo checkpoint, or not one this version reads."""


def atomic_save(obj: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint of either kind."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or truncated files
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a galsearch MoCo checkpoint (format "
                              f"{ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}; this "
                              f"galsearch reads version {VERSION}")
    if ckpt.get("kind") not in ("train", "release"):
        raise CheckpointError(f"{path} has unknown kind {ckpt.get('kind')!r}")
    return ckpt


def query_encoder_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The query encoder's weights from a checkpoint of either kind."""
    if ckpt["kind"] == "release":
        return ckpt["encoder"]
    prefix = "encoder_q."
    return {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}


def release_from(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The float16 inference checkpoint of a training checkpoint."""
    encoder = {k: (v.half() if v.is_floating_point() else v)
               for k, v in query_encoder_state(ckpt).items()}
    return {
        "format": FORMAT, "version": VERSION, "kind": "release",
        "config": ckpt["config"], "model_args": ckpt["model_args"],
        "augment_stats": ckpt["augment_stats"], "step": ckpt["step"],
        "metrics": ckpt.get("metrics", {}), "encoder": encoder,
    }


# -- random number generator states ----------------------------------------------------------
def rng_state(augment_generator: torch.Generator) -> dict[str, Any]:
    """This process's generator states, in types ``weights_only`` loading accepts."""
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "python": _tuples_to_lists(random.getstate()),
        "augment": augment_generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], augment_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": "MT19937",
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"],
    })
    random.setstate(_lists_to_tuples(state["python"]))
    augment_generator.set_state(state["augment"])


def _tuples_to_lists(x: Any) -> Any:
    return [_tuples_to_lists(v) for v in x] if isinstance(x, tuple | list) else x


def _lists_to_tuples(x: Any) -> Any:
    return tuple(_lists_to_tuples(v) for v in x) if isinstance(x, list) else x
