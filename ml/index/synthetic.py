"""Synthetic representations that look like a trained encoder's, for benchmarks and tests at scale.

Real self-supervised representations are not isotropic noise (on which no index beats a scan):
they share a large common direction (post-ReLU features are non-negative), their covariance
spectrum decays steeply (low intrinsic dimension), and they form many clumps of very different
sizes and shapes (common galaxies, rare lenses, artefacts). :class:`RepresentationMixture` is a
mixture of anisotropic Gaussian clusters in an r-dimensional latent subspace, embedded in d
dimensions with a small full-rank isotropic tail:

    x = mean + (centre_c + A_c z) B + tail_sigma * e,   z ~ N(0, I_r), e ~ N(0, I_d)

then L2-normalised. ``synthetic`` draws a mixture with a power-law spectrum and Zipf-like cluster
weights; ``fit`` estimates one from real vectors (a bundle's): mean, PCA basis, k-means clusters
in the PCA space, each cluster's covariance, and the variance left outside the subspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from tqdm.auto import tqdm

from ml.index.vectors import VECTOR_DTYPE, as_float32, l2_normalise

SAMPLE_CHUNK_ROWS = 8192


@dataclass
class RepresentationMixture:
    """mean (d,), basis (r, d) orthonormal rows, centres (C, r), factors (C, r, r) with cluster
    covariance factors @ factors.T, weights (C,) summing to 1, tail_sigma per dimension."""

    mean: np.ndarray
    basis: np.ndarray
    centres: np.ndarray
    factors: np.ndarray
    weights: np.ndarray
    tail_sigma: float

    @property
    def dim(self) -> int:
        return self.basis.shape[1]

    @classmethod
    def synthetic(cls, dim: int, n_clusters: int = 2000, latent_dim: int = 64,
                  spectrum_power: float = 1.0, within_scale: float = 0.35,
                  mean_norm: float = 1.2, tail_fraction: float = 0.05,
                  seed: int = 0) -> RepresentationMixture:
        """A mixture with latent variances j^-spectrum_power (j = 1..r).

        Args:
            dim: ambient dimension d.
            n_clusters: clusters C.
            latent_dim: intrinsic dimension r.
            spectrum_power: decay of the latent variance spectrum.
            within_scale: cluster spread relative to the spread of the centres.
            mean_norm: norm of the common direction, relative to the centres' rms spread.
            tail_fraction: rms of the isotropic tail relative to the latent signal.
            seed: random seed.
        """
        rng = np.random.default_rng(seed)
        r = min(latent_dim, dim)
        variances = np.arange(1, r + 1, dtype=np.float64) ** -spectrum_power
        basis = np.linalg.qr(rng.standard_normal((dim, r)))[0].T  # (r, d)
        mean = rng.standard_normal(dim)
        signal_rms = np.sqrt(variances.sum())
        mean *= mean_norm * signal_rms / np.linalg.norm(mean)
        centres = rng.standard_normal((n_clusters, r)) * np.sqrt(variances)
        factors = np.empty((n_clusters, r, r))
        for c in range(n_clusters):
            rotation = np.linalg.qr(rng.standard_normal((r, r)))[0]
            scales = within_scale * np.sqrt(variances) * rng.uniform(0.3, 1.5, r)
            factors[c] = rotation * scales  # covariance R diag(s^2) R^T
        weights = np.arange(1, n_clusters + 1, dtype=np.float64) ** -0.7
        rng.shuffle(weights)
        tail_sigma = tail_fraction * signal_rms / np.sqrt(dim)
        return cls(mean, basis, centres, factors, weights / weights.sum(), float(tail_sigma))

    @classmethod
    def fit(cls, vectors: np.ndarray, n_clusters: int = 2000, latent_dim: int = 64,
            sample_size: int = 200_000, seed: int = 0) -> RepresentationMixture:
        """Estimate a mixture from real vectors (N, d), e.g. a bundle's ``vectors.npy``."""
        rng = np.random.default_rng(seed)
        n, d = vectors.shape
        take = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
        x = as_float32(vectors[take]).astype(np.float64)
        mean = x.mean(axis=0)
        centred = x - mean
        r = min(latent_dim, d, x.shape[0] - 1)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        basis = vt[:r]  # (r, d)
        latent = centred @ basis.T  # (n, r)
        residual = centred - latent @ basis
        tail_sigma = float(np.sqrt((residual**2).sum(axis=1).mean() / max(1, d - r)))
        n_clusters = max(1, min(n_clusters, x.shape[0] // max(2, r // 4)))
        kmeans = faiss.Kmeans(r, n_clusters, niter=20, seed=seed)
        kmeans.train(latent.astype(np.float32))
        _, labels = kmeans.index.search(latent.astype(np.float32), 1)
        labels = labels[:, 0]
        centres = np.zeros((n_clusters, r))
        factors = np.zeros((n_clusters, r, r))
        weights = np.bincount(labels, minlength=n_clusters).astype(np.float64)
        global_cov = np.cov(latent.T)
        for c in range(n_clusters):
            members = latent[labels == c]
            centres[c] = members.mean(axis=0) if len(members) else kmeans.centroids[c]
            # shrink small clusters' covariances towards a scaled global one
            shrink = min(1.0, r / max(1, len(members)))
            cov = (np.cov(members.T) if len(members) > 1 else np.zeros((r, r)))
            cov = (1 - shrink) * cov + shrink * 0.1 * global_cov + 1e-9 * np.eye(r)
            factors[c] = np.linalg.cholesky(cov)
        return cls(mean, basis, centres, factors, weights / weights.sum(), tail_sigma)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n unit vectors, (n, d) float32, and nothing else."""
        r = self.basis.shape[0]
        labels = rng.choice(self.weights.size, size=n, p=self.weights)
        z = rng.standard_normal((n, r))
        latent = self.centres[labels] + np.einsum("nij,nj->ni", self.factors[labels], z)
        x = (self.mean + latent @ self.basis).astype(np.float32)
        x += self.tail_sigma * rng.standard_normal((n, self.dim), dtype=np.float32)
        return l2_normalise(x).astype(np.float32)

    def write(self, path: str | os.PathLike, n: int, seed: int = 0,
              progress: bool = True) -> np.ndarray:
        """Sample n unit vectors into a float16 ``.npy`` file chunk by chunk; returns its memmap."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=VECTOR_DTYPE, shape=(n, self.dim))
        rng = np.random.default_rng(seed)
        for lo in tqdm(range(0, n, SAMPLE_CHUNK_ROWS), desc="sampling vectors", unit="chunk",
                       disable=not progress):
            hi = min(n, lo + SAMPLE_CHUNK_ROWS)
            out[lo:hi] = self.sample(hi - lo, rng).astype(VECTOR_DTYPE)
        out.flush()
        del out
        os.replace(tmp, path)
        return np.load(path, mmap_mode="r")
