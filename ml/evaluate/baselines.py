"""Baselines the trained encoder must beat, computed through the same metrics.

- **PCA of the stretched pixels**: the network's own input (the central view, or an augmented
  view), flattened, projected on the principal components of the evaluated sample's central
  views (scikit-learn's randomized PCA). It asks: does the network know more than the pixels'
  main modes of variation?
- **random weights**: :meth:`ml.encoder.Encoder.with_random_weights`, the same architecture and
  preprocessing untrained (BN statistics re-estimated on the sample). Random convolutional
  features are a strong baseline for "looks alike"; beating them is what training is for.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA

PCA_COMPONENTS = 128  # the head's size: a like-for-like comparison with the 128-d head


class PixelPCA:
    """PCA of flattened network-ready views, fitted on a reference set of views."""

    def __init__(self, n_components: int = PCA_COMPONENTS, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed
        self._pca: PCA | None = None

    def fit(self, views: torch.Tensor) -> PixelPCA:
        """Fit on (N, 3, S, S) views; the components are capped at N - 1 and 3 S^2."""
        x = _flat(views)
        k = max(1, min(self.n_components, x.shape[0] - 1, x.shape[1]))
        self._pca = PCA(n_components=k, svd_solver="randomized", random_state=self.seed)
        self._pca.fit(x)
        return self

    def transform(self, views: torch.Tensor) -> np.ndarray:
        """(N, 3, S, S) views -> (N, k) float32 coordinates on the fitted components."""
        if self._pca is None:
            raise RuntimeError("fit the PCA before transforming")
        return self._pca.transform(_flat(views)).astype(np.float32)

    @property
    def explained_variance_ratio(self) -> float:
        return float(self._pca.explained_variance_ratio_.sum()) if self._pca else 0.0


def _flat(views: torch.Tensor) -> np.ndarray:
    return views.detach().float().cpu().reshape(views.shape[0], -1).numpy()
