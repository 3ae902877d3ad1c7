"""``galsearch index``: build a search bundle from a model's embeddings or from your own vectors.

From ``galsearch embed`` output (a folder with ``prehead.npy`` and ``head.npy``, float16 (N, D),
row = object_id, and ``embed_manifest.json``)::

    galsearch index --embeddings runs/demo/embeddings --survey data/sim --out data/bundle \\
        [--representation prehead|head] [--k 1000] [--index auto|flat|ivfpq|hnsw] \\
        [--mag-window 0.5]

``embed_manifest.json`` holds ``{"checkpoint": {"path", "sha256"}, "survey": {"path",
"fingerprint"}, "n": N, "dims": {"prehead": D, "head": 128}}``; the survey given here must have
that fingerprint, and the checkpoint is copied into the bundle as ``model.pt`` after its sha256
is checked.

Bring your own representations (the paper authors' released ones, another model's)::

    galsearch index --representations vectors.npy --survey data/sim --out data/bundle

The ``.npy`` array must be 2-D with one row per survey object in object_id order, finite and
with no all-zero row; it is L2-normalised and stored as float16.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ml.index.bundle import DEFAULT_K, DEFAULT_MAG_WINDOW, build_bundle
from ml.index.faiss_index import INDEX_KINDS
from ml.index.manifest import BundleError
from ml.index.vectors import RepresentationError
from ml.photometry import flux_to_mag

EMBED_MANIFEST = "embed_manifest.json"
REPRESENTATIONS = ("prehead", "head")


def survey_mag_r(survey) -> np.ndarray:
    """(N,) float32 r magnitudes from the survey's ``flux`` column (NaN where flux <= 0)."""
    flux = survey.read_column("flux")  # (N, 3) g, r, z nanomaggies
    return flux_to_mag(flux[:, 1]).astype(np.float32)


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise click.ClickException(f"{path} does not exist")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise click.ClickException(
            f"{path} is not a readable .npy array of numbers ({exc}); save the vectors with "
            "numpy.save as a 2-D float array"
        ) from exc


def _embeddings(folder: Path, representation: str, survey) -> tuple[np.ndarray, dict]:
    """The chosen representation array and the embed manifest's checkpoint record."""
    manifest_path = folder / EMBED_MANIFEST
    if not manifest_path.exists():
        raise click.ClickException(
            f"{folder} has no {EMBED_MANIFEST}: it is not the output of a finished "
            "`galsearch embed` run (run or resume it first)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        checkpoint = {"path": manifest["checkpoint"]["path"],
                      "sha256": manifest["checkpoint"]["sha256"]}
        recorded = {"path": manifest["survey"].get("path"),
                    "fingerprint": manifest["survey"]["fingerprint"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise click.ClickException(
            f"{manifest_path} is unreadable or lacks checkpoint.path / checkpoint.sha256 / "
            f"survey.fingerprint ({exc!r}); re-run `galsearch embed`"
        ) from exc
    fingerprint = survey.fingerprint()
    if recorded["fingerprint"] != fingerprint:
        raise click.ClickException(
            f"the embeddings in {folder} were computed from the survey {recorded.get('path')} "
            f"(fingerprint {recorded['fingerprint']}), not from {survey.path} (fingerprint "
            f"{fingerprint}); pass the survey they were made from, or re-run `galsearch embed`"
        )
    array = _load_npy(folder / f"{representation}.npy")
    return array, checkpoint


@click.command("index")
@click.option("--survey", "survey_path", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The survey folder the representations belong to.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The bundle folder to create.")
@click.option("--embeddings", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Output folder of `galsearch embed`.")
@click.option("--representations", type=click.Path(dir_okay=False, path_type=Path),
              help="Your own (N, d) .npy array, row = object_id.")
@click.option("--representation", type=click.Choice(REPRESENTATIONS), default="prehead",
              show_default=True, help="Which embedding to index (with --embeddings).")
@click.option("--k", type=click.IntRange(min=0), default=DEFAULT_K, show_default=True,
              help="Neighbours per object in the similarity arrays, itself included (0: none).")
@click.option("--index", "index_kind", type=click.Choice(("auto", *INDEX_KINDS)), default="auto",
              show_default=True,
              help="Faiss index type (auto: flat for small N, hnsw up to 4M, else ivfpq).")
@click.option("--mag-window", type=click.FloatRange(min=0), default=DEFAULT_MAG_WINDOW,
              show_default=True,
              help="|Δmag_r| half-width of the windowed arrays (0: no windowed arrays).")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle at --out.")
def index(survey_path: Path, out: Path, embeddings: Path | None, representations: Path | None,
          representation: str, k: int, index_kind: str, mag_window: float,
          overwrite: bool) -> None:
    """Build a search bundle: normalised vectors, Faiss index, top-k similarity arrays."""
    from ml.survey import Survey, SurveyError

    if (embeddings is None) == (representations is None):
        raise click.UsageError("give exactly one of --embeddings DIR or --representations FILE")
    try:
        survey = Survey(survey_path)
    except SurveyError as exc:
        raise click.ClickException(str(exc)) from exc
    checkpoint = checkpoint_sha256 = None
    if embeddings is not None:
        array, ckpt = _embeddings(embeddings, representation, survey)
        checkpoint, checkpoint_sha256 = Path(ckpt["path"]), ckpt["sha256"]
        if not checkpoint.exists():
            raise click.ClickException(
                f"the checkpoint {checkpoint} that made these embeddings is gone; the bundle "
                "keeps a copy for embedding uploaded cutouts, so restore it"
            )
        source = {"embeddings": str(embeddings.absolute()), "path": str(
            (embeddings / f"{representation}.npy").absolute())}
        name = representation
    else:
        array = _load_npy(representations)
        source = {"path": str(representations.absolute())}
        name = f"external:{representations.name}"
    try:
        folder = build_bundle(
            out, array, survey_mag_r(survey), survey.path, survey.fingerprint(), name,
            checkpoint=checkpoint, checkpoint_sha256=checkpoint_sha256, source=source,
            index=index_kind, k=k, mag_window=mag_window or None, overwrite=overwrite,
        )
    except (BundleError, RepresentationError) as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = json.loads((folder / "manifest.json").read_text())
    params = manifest["index"]["params"]
    click.echo(f"bundle {folder}: N = {manifest['n']}, d = {manifest['dim']}, index "
               f"{params['kind']}, arrays k = {(manifest['knn'] or {}).get('k', 0)}, "
               f"build seconds {manifest['build']['seconds']}")
