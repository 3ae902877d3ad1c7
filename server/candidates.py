"""Candidate pages: a campaign's seeds ranked against the survey, in stable cursor pages.

Ranking. Each seed is a unit vector: an object's stored representation (object and sky seeds)
or an uploaded cutout's embedding (vector seeds). An object's score is its best cosine to any
seed (the paper's similarity; ``combine="max"`` of :mod:`ml.index.query`). With a magnitude
window w, a seed of magnitude m only counts for objects with |mag_r - m| < w (the paper's
|Δmag_r| < 0.5, per seed); vector seeds have no magnitude and count everywhere. The campaign's
catalog filters (r magnitude range, source types) restrict the objects; objects already labeled
in the campaign and the seeds' own objects are left out.

Each seed's top k under its own window holds every object of the combined top k (an object's
score comes from one seed, under whose window at most k-1 objects beat it), so the union of the
per-seed searches of :meth:`ml.index.SearchBundle.search_vector`, re-scored here, is exact.

Pages. The order is (score descending, object id ascending), a total order that does not change
while people label. A cursor is the last (score, id) served, the number of objects served so
far (to size the next search) and a hash of the ranking's inputs (seeds, window, filters).
The next page is the first ``limit`` objects after the cursor in that order among those still
unlabeled, so labeling (which only removes objects) never repeats or skips one. When the seeds
or settings change, old cursors are refused (:class:`StaleCursor`) and the client starts over.

Prefixes. The index is searched for a ranking's first objects with nothing labeled left out
(64 to :data:`PREFIX_MAX_SIZE` = 1,024, a power of two), and the result is kept in the process by bundle
and ranking fingerprint: a page is that prefix less the labeled objects, so the labelers of a
campaign, who share its ranking, and every page of theirs but the first of each size, skip the
search (half of a page's CPU before: Faiss's HNSW search with the labeled objects as an
IDSelector). A ranking is a pure function of the bundle and of what the fingerprint hashes, so
a kept prefix is never stale; labels are left out afresh at every page.

Other orders. :func:`page` pages any :class:`Order`: similarity to the seeds
(:class:`SimilarityOrder`) or a campaign's probe (:class:`ml.probe.ProbeOrder`, chosen by
:mod:`server.probe.serving`). An order's sort value need not be what a page shows (a probe
sorts by its score or its uncertainty and shows its probability); its fingerprint names the
probe version, so a cursor of an older probe is stale like one of older seeds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ml.index import SearchBundle

CURSOR_VERSION = 1


class InvalidCursor(ValueError):
    """The text is not a cursor this server made."""


class StaleCursor(ValueError):
    """A cursor of another ranking: the seeds or settings changed since it was made."""


@dataclass(frozen=True)
class QuerySeed:
    """One seed as the ranking sees it."""

    seed_id: int
    vector: np.ndarray  # (d,) float32, unit length
    mag_r: float | None  # None: no magnitude (vector seeds): the window does not apply
    object_id: int | None  # excluded from the candidates


@dataclass(frozen=True)
class Ranking:
    """What determines an order: seeds, magnitude window, filters."""

    seeds: tuple[QuerySeed, ...]
    mag_window: float | None
    allowed: np.ndarray | None  # (N,) bool from the catalog filters, None: every object
    filter_key: str  # a description of the filters, for the cursor hash

    def fingerprint(self) -> str:
        parts = [f"{s.seed_id}:{s.mag_r}:{hashlib.sha256(s.vector.tobytes()).hexdigest()[:16]}"
                 for s in self.seeds]
        text = json.dumps([parts, self.mag_window, self.filter_key])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cursor:
    score: float
    object_id: int
    served: int
    ranking: str

    def encode(self) -> str:
        raw = json.dumps({"v": CURSOR_VERSION, "s": self.score, "i": self.object_id,
                          "n": self.served, "r": self.ranking}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, ranking: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(float(raw["s"]), int(raw["i"]), int(raw["n"]), str(raw["r"]))
            if raw["v"] != CURSOR_VERSION or cursor.served < 1:
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursor("this cursor is not one the server made: start from the first "
                                "page (no cursor)") from None
        if cursor.ranking != ranking:
            raise StaleCursor("the campaign's seeds, settings or probe changed since this "
                              "cursor was made: start again from the first page (no cursor)")
        return cursor


def catalog_mask(bundle: SearchBundle, mag_r_min: float | None, mag_r_max: float | None,
                 source_types: Sequence[str] | None,
                 source_type_column: np.ndarray | None) -> tuple[np.ndarray | None, str]:
    """The (N,) allowed mask of the catalog filters (None: no filter) and its description.

    Raises:
        ValueError: source types are asked for but the survey has no ``source_type`` column.
    """
    mask = None
    if mag_r_min is not None or mag_r_max is not None:  # (N,) float64: only for a filter
        mag = np.asarray(bundle.mag_r, dtype=np.float64)
    if mag_r_min is not None:
        mask = mag >= mag_r_min
    if mag_r_max is not None:
        upper = mag <= mag_r_max
        mask = upper if mask is None else mask & upper
    if source_types:
        if source_type_column is None:
            raise ValueError("the survey has no source_type column, so it cannot be filtered "
                             "by source type")
        wanted = np.isin(source_type_column, [t.strip().upper().encode() for t in source_types])
        mask = wanted if mask is None else mask & wanted
    key = json.dumps([mag_r_min, mag_r_max, sorted(t.strip().upper() for t in source_types or [])])
    return mask, key


def _scores(bundle: SearchBundle, ranking: Ranking, ids: np.ndarray) -> np.ndarray:
    """Each object's best cosine over the seeds whose window holds it (-inf: none does)."""
    vectors = np.asarray(bundle.vectors_of(ids), dtype=np.float32)  # (u, d)
    seeds = np.stack([s.vector for s in ranking.seeds])  # (m, d)
    # einsum, not BLAS: each score is summed in the same order whatever the batch, so an
    # object's score is identical from page to page
    cosines = np.einsum("ud,md->um", vectors, seeds)
    if ranking.mag_window is not None:
        mag = np.asarray(bundle.mag_r)[ids].astype(np.float64)[:, None]  # (u, 1)
        centre = np.array([np.nan if s.mag_r is None else s.mag_r for s in ranking.seeds])
        w = ranking.mag_window
        # the same comparisons as ml.index.knn.window_bounds: mag in (centre - w, centre + w)
        inside = (mag > centre - w) & (mag < centre + w)
        inside[:, np.isnan(centre)] = True  # seeds without a magnitude count everywhere
        cosines = np.where(inside, cosines, -np.inf)
    return cosines.max(axis=1).astype(np.float32)


def top(bundle: SearchBundle, ranking: Ranking, k: int,
        exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first k objects of the ranking (ids, scores), leaving out ``exclude``."""
    exclude = np.union1d(exclude, [s.object_id for s in ranking.seeds
                                   if s.object_id is not None]).astype(np.int64)
    queries = np.stack([s.vector for s in ranking.seeds])
    windowed = np.array([ranking.mag_window is not None and s.mag_r is not None
                         and np.isfinite(s.mag_r) for s in ranking.seeds])
    found = []
    if (~windowed).any():
        ids, _ = bundle.search_vector(queries[~windowed], k, exclude=exclude,
                                      allowed=ranking.allowed)
        found.append(ids.ravel())
    if windowed.any():
        mags = np.array([s.mag_r for s, w in zip(ranking.seeds, windowed, strict=True) if w])
        ids, _ = bundle.search_vector(queries[windowed], k, mag_r=mags,
                                      mag_window=ranking.mag_window, exclude=exclude,
                                      allowed=ranking.allowed)
        found.append(ids.ravel())
    union = np.unique(np.concatenate(found))
    union = union[union >= 0]
    scores = _scores(bundle, ranking, union)
    keep = np.isfinite(scores)
    union, scores = union[keep], scores[keep]
    order = np.lexsort((union, -scores))[:k]
    return union[order], scores[order]


class Order(Protocol):
    """A total order of a bundle's objects that pages can follow."""

    size: int  # how many objects it can hold at most

    def fingerprint(self) -> str:
        """A hash of what determines the order (for cursors)."""

    def first(self, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """An exact prefix of the order without ``exclude`` (at most k ids; fewer only when
        that is all that is known exactly), their sort values (non-increasing, ties by
        ascending id), and whether they are every eligible object."""


@dataclass(frozen=True)
class _Prefix:
    """A ranking's first objects with nothing labeled left out: as many as were asked for,
    unless fewer are eligible (``complete``)."""

    ids: np.ndarray
    scores: np.ndarray
    complete: bool  # every eligible object is in it


class _Prefixes:
    """Each process's recent ranking prefixes, by bundle and ranking fingerprint (LRU)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._prefixes: OrderedDict[tuple[str, str], _Prefix] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> _Prefix | None:
        with self._lock:
            prefix = self._prefixes.get(key)
            if prefix is not None:
                self._prefixes.move_to_end(key)
            return prefix

    def put(self, key: tuple[str, str], prefix: _Prefix) -> None:
        with self._lock:
            self._prefixes[key] = prefix
            self._prefixes.move_to_end(key)
            while len(self._prefixes) > self.entries:
                self._prefixes.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._prefixes.clear()


# A ranking's first objects, searched once per process and kept: the labelers of a campaign
# share its ranking, and a page is that prefix less what is labeled (the index search was a
# third of a page's CPU, more for deep pages). Prefix sizes are powers of two from
# PREFIX_MIN_SIZE; a page that needs more than PREFIX_MAX_SIZE objects of the prefix (deep, or
# behind many labeled objects) searches with the labeled objects left out, as without the cache.
# The bound is where a prefix stops paying (1M objects, HNSW, two seeds, CPU a search): 1,024
# objects take 21 ms, 4,096 take 107 ms and 8,192 take 310 ms, each blocking a worker, while
# the page of 48 behind 3,000 labeled objects, searched with them left out, takes 2.7 ms.
PREFIX_MIN_SIZE = 64
PREFIX_MAX_SIZE = 1024
PREFIXES = _Prefixes(entries=128)  # at most ~12 bytes x 1024 each: 1.6 MB a process


class SimilarityOrder:
    """The order of :func:`top`: best cosine to the seeds (the campaign's ``ranking``)."""

    def __init__(self, bundle: SearchBundle, ranking: Ranking) -> None:
        self.bundle, self.ranking, self.size = bundle, ranking, bundle.n

    def fingerprint(self) -> str:
        return self.ranking.fingerprint()

    def first(self, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        key = (self.bundle.manifest_sha256, self.fingerprint())
        prefix = PREFIXES.get(key)
        while True:
            if prefix is not None:
                keep = ~np.isin(prefix.ids, exclude)
                kept = int(np.count_nonzero(keep))
                if kept >= k or prefix.complete:
                    ids, scores = prefix.ids[keep][:k], prefix.scores[keep][:k]
                    return ids, scores, prefix.complete and kept <= k
                # labeled objects took room: a prefix with room for them and the page
                need = k + (prefix.ids.size - kept)
                size = max(2 * prefix.ids.size, 1 << (need - 1).bit_length())
            else:
                size = max(PREFIX_MIN_SIZE, 1 << (k - 1).bit_length())
            size = min(size, self.bundle.n)
            if size > PREFIX_MAX_SIZE:
                ids, scores = top(self.bundle, self.ranking, k, exclude)
                return ids, scores, len(ids) < k or k >= self.bundle.n
            ids, scores = top(self.bundle, self.ranking, size, np.zeros(0, dtype=np.int64))
            prefix = _Prefix(ids, scores, len(ids) < size or size >= self.bundle.n)
            PREFIXES.put(key, prefix)


def page(bundle: SearchBundle, order: Ranking | Order, limit: int, exclude: np.ndarray,
         cursor: Cursor | None) -> tuple[np.ndarray, np.ndarray, Cursor | None]:
    """The next ``limit`` candidates after ``cursor`` (None: the first page).

    Args:
        bundle: the bundle ordered.
        order: a similarity :class:`Ranking`, or any :class:`Order`.
        limit: page size.
        exclude: object ids left out (labeled in the campaign).
        cursor: where the previous page ended.

    Returns:
        ids (<= limit,) int64, sort values (the similarity order's are its scores), and the
        cursor of the following page (None when the order is exhausted).
    """
    if isinstance(order, Ranking):
        order = SimilarityOrder(bundle, order)
    if order.size == 0:  # no object passes the filters (an empty magnitude range, ...)
        return np.zeros(0, np.int64), np.zeros(0, np.float64), None
    served = 0 if cursor is None else cursor.served
    k = min(order.size, served + limit + 1)  # one more than the page tells whether more follow
    while True:
        ids, scores, exhausted = order.first(k, exclude)  # exhausted: every eligible object
        if cursor is not None:
            after = (scores < cursor.score) | ((scores == cursor.score)
                                               & (ids > cursor.object_id))
            after &= ids != cursor.object_id
            ids, scores = ids[after], scores[after]
        if len(ids) > limit or exhausted or k >= order.size:
            break
        k = min(order.size, 2 * k)  # objects before the cursor were labeled meanwhile: look deeper
    more = len(ids) > limit
    ids, scores = ids[:limit], scores[:limit]
    if not more:
        return ids, scores, None
    return ids, scores, Cursor(float(scores[-1]), int(ids[-1]), served + len(ids),
                               order.fingerprint())
