"""Agreement: Fleiss' kappa (textbook example, varying raters), Cohen's kappa (textbook example,
scikit-learn), and the campaign endpoint against them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from test_consensus import add_votes

from server.models import Role
from server.teams.agreement import cohen_kappa, fleiss_kappa

# Fleiss (1971), as in most textbooks: 10 subjects, 14 raters each, 5 categories
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def test_fleiss_textbook_example():
    kappa, observed, expected = fleiss_kappa(FLEISS_TABLE)
    assert observed == pytest.approx(0.378, abs=5e-4)
    assert expected == pytest.approx(0.213, abs=5e-4)
    assert kappa == pytest.approx(0.210, abs=5e-4)


def test_fleiss_with_varying_raters_by_hand():
    # P_i = 1, 0, 1/3 -> P = 4/9; p = (5/7, 2/7, 0) -> P_e = 29/49; kappa = -13/36.
    # The single-rating row is left out.
    table = [[2, 0, 0], [1, 1, 0], [2, 1, 0], [0, 0, 1]]
    kappa, observed, expected = fleiss_kappa(table)
    assert (observed, expected) == (pytest.approx(4 / 9), pytest.approx(29 / 49))
    assert kappa == pytest.approx(-13 / 36)


def test_fleiss_undefined_cases():
    assert fleiss_kappa(np.zeros((0, 3))) == (None, None, None)
    assert fleiss_kappa([[1, 0, 0]]) == (None, None, None)  # no object with two ratings
    assert fleiss_kappa([[3, 0, 0], [2, 0, 0]])[0] is None  # one category: chance is 1
    assert fleiss_kappa([[3, 0, 0], [0, 2, 0]])[0] == pytest.approx(1.0)


def test_cohen_textbook_example_and_scikit_learn():
    # 50 proposals, two readers: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> kappa 0.4
    kappa, observed, expected = cohen_kappa([[20, 5, 0], [10, 15, 0], [0, 0, 0]])
    assert (kappa, observed, expected) == (pytest.approx(0.4), pytest.approx(0.7),
                                           pytest.approx(0.5))
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 3, 200))
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (a, b), 1)
    assert cohen_kappa(confusion)[0] == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(np.zeros((3, 3)))[0] is None
    assert cohen_kappa([[4, 0, 0], [0, 0, 0], [0, 0, 0]])[0] is None


def test_campaign_agreement(people):
    values = ("accept", "reject", "unsure")
    rng = np.random.default_rng(7)
    names = ("alice", "bob", "carol")
    cid = people.campaign("olga", {n: Role.LABELER for n in names})
    truth = rng.integers(0, 3, 30)
    votes: dict[int, dict[str, str]] = {}
    for object_id, t in enumerate(truth):
        raters = names if object_id % 3 else names[:2]  # 2 or 3 raters; some objects 1
        if object_id % 7 == 0:
            raters = names[2:]
        votes[object_id] = {n: values[t if rng.random() < 0.7 else rng.integers(0, 3)]
                            for n in raters}
    add_votes(people, cid, votes, sources={0: {"catalog": "accept"}})  # sources do not rate
    body = people.session("alice").get(f"/api/campaigns/{cid}/agreement").json

    table = np.array([[sum(v == c for v in by_user.values()) for c in values]
                      for by_user in votes.values() if len(by_user) >= 2])
    kappa, observed, expected = fleiss_kappa(table)
    fleiss = body["fleiss"]
    assert fleiss["kappa"] == pytest.approx(kappa)
    assert (fleiss["observed"], fleiss["expected"]) == (pytest.approx(observed),
                                                       pytest.approx(expected))
    assert (fleiss["items"], fleiss["ratings"]) == (len(table), int(table.sum()))
    assert (fleiss["raters_min"], fleiss["raters_max"]) == (2, 3)
    assert sum(fleiss["category_share"].values()) == pytest.approx(1.0)

    pairs = {(p["user_a"]["username"], p["user_b"]["username"]): p for p in body["pairs"]}
    assert set(pairs) == {("alice", "bob"), ("alice", "carol"), ("bob", "carol")}
    for (x, y), pair in pairs.items():
        both = [o for o, by_user in votes.items() if x in by_user and y in by_user]
        a = [votes[o][x] for o in both]
        b = [votes[o][y] for o in both]
        assert pair["overlap"] == len(both)
        assert pair["kappa"] == pytest.approx(cohen_kappa_score(a, b, labels=list(values)))
        assert np.trace(pair["confusion"]) == sum(p == q for p, q in zip(a, b, strict=True))


def test_agreement_of_an_empty_campaign(people):
    cid = people.campaign("olga")
    body = people.session("olga").get(f"/api/campaigns/{cid}/agreement").json
    assert body["pairs"] == [] and body["fleiss"]["kappa"] is None
    assert body["fleiss"]["items"] == 0
