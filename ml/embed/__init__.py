"""``galsearch embed``: a checkpoint's representations of every survey object, resumably.

    from ml.embed import run_embed
    result = run_embed("models/demo-resnet18.pt", "data/demo", "runs/demo/embeddings")

writes ``prehead.npy`` and ``head.npy`` ((N, D) float16, row = object_id) and, last,
``embed_manifest.json`` (the contract ``galsearch index`` reads). See :mod:`ml.embed.run` for
the loop and :mod:`ml.embed.output` for the folder and how a killed run resumes.
"""

from ml.embed.output import MANIFEST_FILE, EmbedOutput, EmbedPlan, EmbedStateError
from ml.embed.run import EmbedError, EmbedResult, embed_survey, run_embed

__all__ = [
    "MANIFEST_FILE",
    "EmbedError",
    "EmbedOutput",
    "EmbedPlan",
    "EmbedResult",
    "EmbedStateError",
    "embed_survey",
    "run_embed",
]
