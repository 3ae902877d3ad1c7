"""The notebook grid and recall against exact search."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ml.index import ann_recall
from ml.index.faiss_index import FaissIndex, build_index, choose_params
from ml.index.query import Searcher
from ml.render import rgb_uint8


def test_show_draws_the_survey_cutouts(survey_and_bundle):
    survey, bundle = survey_and_bundle
    ids, sims = bundle.neighbours(11, k=5, include_self=True)
    fig = bundle.show(np.append(ids, -1), np.append(sims, np.nan), ncols=3)
    assert isinstance(fig, Figure)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 5  # the -1 padding is skipped
    np.testing.assert_array_equal(images[0].get_array(), rgb_uint8(survey.read_images([11]))[0])
    assert fig.axes[0].get_title().startswith("11 ")


def test_recall_of_exact_and_approximate_indexes(survey_and_bundle):
    _, bundle = survey_and_bundle
    exact = ann_recall(bundle, n_queries=30, k=20)
    assert exact["recall_at_k"] == 1.0 and exact["index"] == "flat"
    params = choose_params(bundle.n, bundle.dim, "hnsw", ef_search=16, min_candidates=20,
                           candidates_per_result=1)
    hnsw = Searcher(bundle.vectors, FaissIndex(build_index(bundle.vectors, params, False), params))
    result = ann_recall(hnsw, n_queries=30, k=20)
    assert 0.8 <= result["recall_at_k"] <= 1.0 and result["n_queries"] == 30
    assert result["latency_ms_p50"] > 0
