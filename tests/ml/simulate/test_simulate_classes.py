"""Class names, rates and the exact per-class plan."""

from __future__ import annotations

import numpy as np
import pytest

from ml.simulate.classes import (
    CLASSES,
    DEFAULT_RATES,
    RatesError,
    class_counts,
    parse_rates,
    plan_labels,
)


def test_default_rates_sum_to_one_and_rare_classes_are_rare():
    assert tuple(DEFAULT_RATES) == CLASSES
    assert sum(DEFAULT_RATES.values()) == pytest.approx(1.0)
    assert DEFAULT_RATES["lens"] <= 0.002
    assert DEFAULT_RATES["ring"] <= 0.002


def test_parse_rates_fills_the_rest_in_default_proportions():
    rates = parse_rates("lens=0.004, ring=0.004")
    assert rates["lens"] == 0.004 and rates["ring"] == 0.004
    assert sum(rates.values()) == pytest.approx(1.0)
    rest = [c for c in CLASSES if c not in ("lens", "ring")]
    scale = (1 - 0.008) / sum(DEFAULT_RATES[c] for c in rest)
    for c in rest:
        assert rates[c] == pytest.approx(DEFAULT_RATES[c] * scale)
    assert parse_rates(None) == DEFAULT_RATES


@pytest.mark.parametrize("text, message", [
    ("quasar=0.1", "unknown class 'quasar'"),
    ("lens", "not of the form class=rate"),
    ("lens=abc", "not a number"),
    ("lens=-0.1", ">= 0"),
    ("lens=0.7,ring=0.6", "sum to 1.3"),
    (",".join(f"{c}=0.1" for c in CLASSES), "sum to 0.8, not 1"),
])
def test_parse_rates_rejects_bad_input(text, message):
    with pytest.raises(RatesError, match=message):
        parse_rates(text)


def test_class_counts_are_exact_and_honour_the_rates():
    rates = parse_rates("lens=0.004,ring=0.004")
    counts = dict(zip(CLASSES, class_counts(50_000, rates), strict=True))
    assert sum(counts.values()) == 50_000
    assert counts["lens"] == 200 and counts["ring"] == 200
    default = dict(zip(CLASSES, class_counts(20_000, DEFAULT_RATES), strict=True))
    assert default["lens"] == 20 and default["ring"] == 20
    for n in (1, 7, 333):
        c = class_counts(n, DEFAULT_RATES)
        assert c.sum() == n and (np.abs(c - n * np.array(list(DEFAULT_RATES.values()))) < 1).all()


def test_plan_labels_is_a_seeded_permutation_of_the_counts():
    rates = parse_rates("lens=0.05")
    a = plan_labels(1000, rates, np.random.SeedSequence(3))
    b = plan_labels(1000, rates, np.random.SeedSequence(3))
    c = plan_labels(1000, rates, np.random.SeedSequence(4))
    assert a.dtype == np.int8 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(np.bincount(a, minlength=len(CLASSES)), class_counts(1000, rates))
