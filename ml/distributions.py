"""Truncated log-normal and uniform distributions shared by the simulator and the augmentations.

The paper's authors fitted scipy log-normals (value = loc + scale * exp(shape * N(0, 1))) to the
DR9 south catalog for objects with z < 20; :data:`DR9_SOUTH` holds their numbers. Draws are
truncated to a range by inverse-CDF sampling (exact, vectorised, no rejection loop), which
keeps the shape of the distribution inside the range instead of piling clipped mass at its ends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize, special, stats

if TYPE_CHECKING:  # torch is imported by the torch samplers only: the simulator never pays for it
    import torch


def _ndtr(x: float) -> float:
    return float(special.ndtr(x))


@dataclass(frozen=True)
class LogNormal:
    """scipy.stats.lognorm(shape, loc, scale) truncated to [lo, hi]."""

    shape: float
    loc: float
    scale: float
    lo: float
    hi: float
    kind: str = "lognormal"

    def _z(self, x: float) -> float:
        # standard-normal quantile of a value; -inf/+inf at and beyond the support's edge
        if x <= self.loc:
            return -math.inf
        return math.log((x - self.loc) / self.scale) / self.shape

    def cdf_bounds(self) -> tuple[float, float]:
        return _ndtr(self._z(self.lo)), _ndtr(self._z(self.hi))

    def sample(self, size, rng: np.random.Generator) -> np.ndarray:
        u_lo, u_hi = self.cdf_bounds()
        u = rng.uniform(u_lo, u_hi, size=size)
        return self._from_u(u)

    def _from_u(self, u):
        z = special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
        return np.clip(self.loc + self.scale * np.exp(self.shape * z), self.lo, self.hi)

    def sample_torch(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        import torch

        u_lo, u_hi = self.cdf_bounds()
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        u = (u_lo + (u_hi - u_lo) * u).clamp(1e-12, 1 - 1e-12)
        z = torch.special.ndtri(u)
        x = self.loc + self.scale * torch.exp(self.shape * z)
        return x.clamp(self.lo, self.hi).float()

    def median(self) -> float:
        return self.loc + self.scale

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Uniform:
    """U(lo, hi): the authors' code default for augmentation draws, reaching the tails."""

    lo: float
    hi: float
    kind: str = "uniform"

    def sample(self, size, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.lo, self.hi, size=size)

    def sample_torch(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        import torch

        u = torch.rand(n, generator=generator, device=device)
        return self.lo + (self.hi - self.lo) * u

    def median(self) -> float:
        return 0.5 * (self.lo + self.hi)

    def to_dict(self) -> dict:
        return asdict(self)


Distribution = LogNormal | Uniform


def distribution_from_dict(d: dict) -> Distribution:
    d = dict(d)
    kind = d.pop("kind", "lognormal")
    if kind == "lognormal":
        return LogNormal(**d)
    if kind == "uniform":
        return Uniform(**d)
    raise ValueError(f"unknown distribution kind {kind!r}; expected 'lognormal' or 'uniform'")


def fit_lognormal(values: np.ndarray, lo: float, hi: float) -> LogNormal:
    """Fit scipy's 3-parameter log-normal, truncated to [lo, hi], to finite values inside it.

    scipy's plain fit is the starting point; the truncated likelihood is then maximised, since
    values kept inside [lo, hi] are a truncated sample (a range cutting 0.3% off a tail bends
    the plain fit's tail quantiles by ~3%).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v >= lo) & (v <= hi)]
    if v.size < 10 or v.std() == 0:
        raise ValueError(
            f"cannot fit a log-normal to {v.size} finite values in [{lo}, {hi}]; need at least 10 "
            "that are not all equal"
        )
    shape0, loc0, scale0 = stats.lognorm.fit(v)
    v_min, spread = v.min(), v.std()

    def unpack(p: np.ndarray) -> tuple[float, float, float]:  # keeps shape, scale > 0, loc < min
        return float(np.exp(p[0])), float(v_min - spread * np.exp(p[1])), float(np.exp(p[2]))

    def neg_log_likelihood(p: np.ndarray) -> float:
        shape, loc, scale = unpack(p)
        z = np.log((v - loc) / scale) / shape
        log_pdf = -np.log((v - loc) * shape * math.sqrt(2.0 * math.pi)) - 0.5 * z * z
        z_lo = math.log((lo - loc) / scale) / shape if lo > loc else -math.inf
        mass = _ndtr(math.log((hi - loc) / scale) / shape) - _ndtr(z_lo)
        return math.inf if mass <= 0 else -(log_pdf.sum() - v.size * math.log(mass))

    start = np.array([math.log(shape0), math.log(max(v_min - loc0, 1e-9 * spread) / spread),
                      math.log(scale0)])
    best = optimize.minimize(neg_log_likelihood, start, method="Nelder-Mead",
                             options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 4000})
    shape, loc, scale = unpack(best.x if best.fun <= neg_log_likelihood(start) else start)
    return LogNormal(shape, loc, scale, float(lo), float(hi))


# DR9 south, objects with z < 20, as fitted by Stein et al.'s authors.
# psf_sigma_pix: PSF Gaussian sigma in pixels; noise_sigma: sky noise per pixel, nanomaggies.
DR9_SOUTH: dict[str, list[LogNormal] | LogNormal] = {
    "psf_sigma_pix": [
        LogNormal(0.2110, 1.0807, 1.3153, 1.32, 5.0),  # g
        LogNormal(0.3008, 1.2394, 0.9165, 1.27, 4.5),  # r
        LogNormal(0.3471, 1.1928, 0.8234, 1.21, 4.25),  # z
    ],
    "noise_sigma": [
        LogNormal(0.2265, -0.00067, 0.00376, 0.0011, 0.013),  # g
        LogNormal(0.2431, -0.00237, 0.00674, 0.0011, 0.018),  # r
        LogNormal(0.1335, -0.01434, 0.02608, 0.0011, 0.061),  # z
    ],
    "ebv": LogNormal(0.6731, 0.00115, 0.03338, 0.0, 1.0),
}
