"""Search bundles: Faiss index, similarity arrays and the query layer (Stein et al. 2021, §4).

Notebook use::

    from ml.index import open_bundle
    b = open_bundle("data/demo/bundle")        # checks the manifest, memory-maps everything
    ids, sims = b.neighbours(1234, k=16)       # from the precomputed arrays when they cover it
    ids, sims = b.neighbours(1234, k=16, mag_window=0.5, exclude=labeled_ids)
    b.show(ids, sims)                          # a grid of cutouts, inline in Jupyter

Also ``b.search_vector(vec, k)``, ``b.search_vectors(seeds, k, combine="max")`` and
``b.top_by_weight(w, k)`` (a linear probe's ranking); see :mod:`ml.index.query`. Bundles are
built by ``galsearch index`` (:mod:`ml.index.cli`, :mod:`ml.index.bundle`).
"""

from ml.index.bundle import SearchBundle, build_bundle, open_bundle
from ml.index.manifest import BundleError, BundleFileMissingError, BundleMismatchError
from ml.index.query import Searcher
from ml.index.recall import ann_recall
from ml.index.vectors import RepresentationError

__all__ = [
    "BundleError",
    "BundleFileMissingError",
    "BundleMismatchError",
    "RepresentationError",
    "SearchBundle",
    "Searcher",
    "ann_recall",
    "build_bundle",
    "open_bundle",
]
