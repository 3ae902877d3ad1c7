"""Evaluate an encoder on a survey by exact cosine search, against two baselines.

For a random sample of the survey's objects, every representation below is computed for the
object's central view and for one augmented copy (the training augmentations, drawn from the
survey's fitted conditions):

| name | what |
|---|---|
| ``trained/prehead`` | the encoder's representation before the head (what search uses) |
| ``trained/head`` | the 128-d head output (the space MoCo contrasted in) |
| ``random/prehead``, ``random/head`` | the same network with random weights |
| ``pca`` | PCA (128 components) of the stretched pixels the network sees |

and measured by :mod:`ml.evaluate.metrics`:

- the paper's invariance test: with the originals as queries over the pool of originals and
  copies, the fraction of copies ranked first, and within the first 10;
- where ``truth.h5`` exists, per class: precision@10/50/100 and mean average precision of
  same-class retrieval over the sample, each object of the class querying all others.

The survey is streamed in chunks: only representations stay in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.augment import CONDITION_COLUMNS, Augment, AugmentStats, observing_conditions
from ml.encoder import Encoder
from ml.evaluate.baselines import PixelPCA
from ml.evaluate.metrics import class_retrieval, invariance_ranks, invariance_summary
from ml.survey import Survey

READ_CHUNK = 256  # objects per survey read
PCA_FIT_OBJECTS = 4096  # views the PCA and the random network's BN statistics are fitted on
KS = (10, 50, 100)


def sample_ids(n: int, n_sample: int, seed: int) -> np.ndarray:
    """A sorted random sample of object ids (all of them when n_sample >= n)."""
    if n_sample >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=n_sample, replace=False))


def evaluate(checkpoint: str | Path, survey_dir: str | Path, n_sample: int = 10_000,
             seed: int = 0, batch_size: int = 256, device: str = "cpu",
             progress: bool = True) -> dict[str, Any]:
    """Run the evaluation; returns the JSON-ready result (see the module docstring)."""
    t0 = time.monotonic()
    encoder = Encoder.from_checkpoint(checkpoint, device=device)
    survey = Survey(survey_dir)
    try:
        stats = AugmentStats.load(survey_dir)
        stats_source = "survey"
    except ValueError:  # no fit for this survey: the training run's own distributions
        stats, stats_source = encoder.augment_stats, "checkpoint"
    augment = Augment(encoder.augment, stats)
    ids = sample_ids(survey.n, n_sample, seed)
    truth = survey.truth()

    # ============ baselines fitted on a subset of central views ... ============
    fit_ids = ids[sample_ids(ids.size, PCA_FIT_OBJECTS, seed + 1)]
    fit_views = torch.cat([encoder.preprocess(torch.from_numpy(survey.read_images(chunk)))
                           for chunk in np.array_split(fit_ids, max(1, fit_ids.size // READ_CHUNK))])
    pca = PixelPCA(seed=seed).fit(fit_views)
    random_encoder = encoder.with_random_weights(seed)
    random_encoder.calibrate_bn(fit_views, batch_size)
    del fit_views

    # ============ representations of originals and copies, streamed ... ============
    embedders: dict[str, Callable[[torch.Tensor], dict[str, np.ndarray]]] = {
        "trained": lambda v: encoder.embed_views(v, batch_size),
        "random": lambda v: random_encoder.embed_views(v, batch_size),
        "pca": lambda v: {"pca": pca.transform(v)},
    }
    reps: dict[str, list[np.ndarray]] = {}
    generator = torch.Generator(device=encoder.device).manual_seed(seed)
    chunks = np.array_split(ids, max(1, int(np.ceil(ids.size / READ_CHUNK))))
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="evaluating", unit="chunk")
    for chunk in chunks:
        images = torch.from_numpy(survey.read_images(chunk)).to(encoder.device)
        ebv, psf, noise = observing_conditions(survey.catalog(CONDITION_COLUMNS, chunk))
        views = {"original": encoder.preprocess(images),
                 "copy": augment(images, ebv, psf, noise, generator=generator)}
        for which, v in views.items():
            for model_name, embed in embedders.items():
                for rep_name, values in embed(v).items():
                    name = model_name if rep_name == "pca" else f"{model_name}/{rep_name}"
                    reps.setdefault(f"{name}|{which}", []).append(values)
    arrays = {key: np.concatenate(parts) for key, parts in reps.items()}

    # ============ metrics ... ============
    labels = truth.labels[ids] if truth is not None else None
    results: dict[str, Any] = {}
    for name in ("trained/prehead", "trained/head", "random/prehead", "random/head", "pca"):
        original, copy = arrays[f"{name}|original"], arrays[f"{name}|copy"]
        entry: dict[str, Any] = {
            "dim": int(original.shape[1]),
            "invariance": invariance_summary(invariance_ranks(original, copy)),
        }
        if labels is not None:
            entry["classes"] = class_retrieval(original, labels, truth.classes, KS)
        results[name] = entry

    return {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": encoder.sha256,
        "survey": str(survey_dir),
        "survey_fingerprint": survey.fingerprint(),
        "n_objects": int(survey.n),
        "n_sample": int(ids.size),
        "seed": seed,
        "model_args": encoder.model_args.to_dict(),
        "augment": encoder.augment.to_dict(),
        "augment_stats_source": stats_source,
        "pca_explained_variance": pca.explained_variance_ratio,
        "class_counts": ({c: int(np.sum(labels == c)) for c in truth.classes}
                         if labels is not None else None),
        "representations": results,
        "minutes": round((time.monotonic() - t0) / 60, 3),
    }

