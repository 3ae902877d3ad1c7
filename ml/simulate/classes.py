"""The simulator's object classes and how often each occurs.

:data:`CLASSES` is the one list of class names: the simulator writes them into ``truth.h5``,
and evaluation, benchmarks and the contact sheets import them from here. The default rates sum
to 1 and keep the rare classes rare (lenses and ring galaxies about 1 in 1,000, as in the
Legacy Surveys, where a few thousand lens candidates hide among tens of millions of galaxies).

Each class is assigned to an exact number of objects (``round(rate * n)`` by largest
remainders) in a seeded random order, so a 50,000-object survey asked for ``lens=0.004`` holds
exactly 200 lenses, and the order depends only on the seed and ``n``.
"""

from __future__ import annotations

import math

import numpy as np

CLASSES: tuple[str, ...] = (
    "elliptical",  # smooth early type: bulge-dominated, E and S0
    "spiral",  # disk with visible (bluer, clumpy) spiral arms
    "edge_on",  # disk seen edge-on, often with a dust lane
    "ring",  # collisional or resonance ring around a core
    "merger",  # interacting pair with tidal tails and bridges
    "lens",  # strong gravitational lens: red deflector, blue arcs or Einstein ring
    "star",  # bright foreground star next to or over the galaxy
    "artefact",  # satellite trail, bad column or bleed trail across the galaxy
)

DEFAULT_RATES: dict[str, float] = {
    "elliptical": 0.398,
    "spiral": 0.30,
    "edge_on": 0.12,
    "ring": 0.001,
    "merger": 0.05,
    "lens": 0.001,
    "star": 0.07,
    "artefact": 0.06,
}

LABEL_DTYPE = np.dtype(f"S{max(len(c) for c in CLASSES)}")  # truth.h5 `label`


class RatesError(ValueError):
    """Class rates that cannot be used: unknown class, negative or non-numeric rate, sum > 1."""


def parse_rates(text: str | None) -> dict[str, float]:
    """Parse ``"lens=0.004,ring=0.004"`` into a full set of rates that sums to 1.

    Classes named in ``text`` take the given rates; the remaining classes share what is left
    in the proportions of :data:`DEFAULT_RATES`.

    Raises:
        RatesError: on an unknown class, a malformed item, a negative rate, or named rates
            summing to more than 1.
    """
    if not text or not text.strip():
        return dict(DEFAULT_RATES)
    given: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise RatesError(f"rate {item!r} is not of the form class=rate (e.g. lens=0.004)")
        if name not in CLASSES:
            raise RatesError(f"unknown class {name!r} in --rates; classes are {', '.join(CLASSES)}")
        try:
            rate = float(value)
        except ValueError:
            raise RatesError(f"rate of {name!r} is {value!r}, not a number") from None
        if not math.isfinite(rate) or rate < 0:
            raise RatesError(f"rate of {name!r} must be a finite number >= 0; got {value!r}")
        given[name] = rate
    return complete_rates(given)


def complete_rates(given: dict[str, float]) -> dict[str, float]:
    """Fill the classes not in ``given`` with the remainder, in the default proportions."""
    total_given = sum(given.values())
    if total_given > 1.0 + 1e-9:
        raise RatesError(f"the given rates sum to {total_given:.6g}, more than 1")
    rest = [c for c in CLASSES if c not in given]
    rest_default = sum(DEFAULT_RATES[c] for c in rest)
    remainder = max(0.0, 1.0 - total_given)
    if not rest and remainder > 1e-9:
        raise RatesError(f"every class has a rate but they sum to {total_given:.6g}, not 1")
    rates = {}
    for c in CLASSES:
        if c in given:
            rates[c] = float(given[c])
        else:
            rates[c] = remainder * DEFAULT_RATES[c] / rest_default if rest_default > 0 else 0.0
    return rates


def class_counts(n: int, rates: dict[str, float]) -> np.ndarray:
    """Objects per class (in :data:`CLASSES` order) summing to ``n``, by largest remainders."""
    p = np.array([rates[c] for c in CLASSES], dtype=np.float64)
    p = p / p.sum()
    exact = p * n
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        # ties broken by class order, so the result is a pure function of (n, rates)
        order = np.lexsort((np.arange(len(CLASSES)), -(exact - counts)))
        counts[order[:short]] += 1
    return counts


def plan_labels(n: int, rates: dict[str, float], seed_sequence: np.random.SeedSequence
                ) -> np.ndarray:
    """The class index (into :data:`CLASSES`) of each of ``n`` objects, shape (n,) int8."""
    counts = class_counts(n, rates)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int8), counts)
    np.random.default_rng(seed_sequence).shuffle(labels)
    return labels
