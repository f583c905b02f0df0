"""What every row-level screen returns (``Flags``), and the kNN class vote two screens share.

Kept apart from ``pipeline.poison`` (the whole-table screen) and ``pipeline.targeted`` (the
targeted and batch checks), which both build on it, so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Baseline:
    """The label check's count against the approved snapshot's (the lock's ``label_rates``).

    ``rate``: the share of the approved snapshot's rows cleanlab flagged when it was approved;
    ``pvalue``: one-sided binomial P(X >= this count), X ~ Bin(rows, rate); ``beyond``: that
    p is below ``witness_alpha`` and the count exceeds rate x rows by at least
    ``witness_min_excess`` x rows. Classes that overlap flag their ambiguous rows on clean data
    too (a clean 1,000 x 20 table of five classes at class_sep 0.5: 36%); the gate fails the
    label check only beyond both ``max_share`` and this.

    The near-copy checks use it too (``pipeline.targeted.near_excess``, ``batch_near_test``):
    ``rate`` is then the approved rows' near-copy share, ``basis`` names that yardstick and test.
    """

    rate: float
    expected: float
    pvalue: float
    beyond: bool
    # The near-copy checks (DATA052, DATA108): the yardstick and test, as the finding quotes it.
    basis: str = ""


@dataclass(frozen=True)
class Flags:
    """Rows one check flagged, with a score and a reason per row, and the check's run time."""

    check: str
    rows: Array
    scores: Array
    reasons: tuple[str, ...]
    seconds: float = 0.0
    # Rows the check looked at when it ran on a sample (streaming mode); None: every row.
    screened: int | None = None
    # ``near_duplicates`` only: per flagged row, the name of the row it is near (its twin).
    twins: Array | None = None
    # The label check only, when the lock records its share on the approved snapshot.
    baseline: Baseline | None = None

    @property
    def count(self) -> int:
        """How many rows are flagged."""
        return int(self.rows.size)


def knn_probabilities(
    x: Array, y: Array, *, n_classes: int, neighbors: int, max_index_rows: int, seed: int
) -> Array:
    """Share of each class among a row's k nearest other rows (standardized features).

    The index holds at most ``max_index_rows`` rows (a seeded sample); a KD/ball tree query
    per row keeps the cost O(n log m) instead of O(n^2). A row never votes for itself.
    The class prior is added as one pseudo-vote so that no probability is exactly zero.
    """
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    n = len(y)
    if n <= max_index_rows:
        sample = np.arange(n)
    else:
        sample = np.sort(np.random.default_rng(seed).choice(n, size=max_index_rows, replace=False))
    k = min(neighbors, sample.size - 1)
    index = NearestNeighbors(n_neighbors=k + 1).fit(x[sample])
    _, found = index.kneighbors(x, return_distance=True)
    rows = sample[found]
    is_self = rows == np.arange(n)[:, None]
    keep = ~is_self
    # Rows outside the index (or whose self hides behind exact duplicates) drop their farthest.
    no_self = ~is_self.any(axis=1)
    keep[no_self, -1] = False
    over = keep.sum(axis=1) > k
    keep[over, -1] = False
    votes = y[rows[keep].reshape(n, k)]
    counts = np.zeros((n, n_classes))
    for c in range(n_classes):
        counts[:, c] = (votes == c).sum(axis=1)
    prior = np.bincount(y, minlength=n_classes) / n
    return (counts + prior) / (k + 1)


def cleanlab_issues(y: Array, probs: Array) -> Array:
    """cleanlab's ``find_label_issues`` (its default: prune by noise rate), as a boolean mask."""
    from cleanlab.filter import find_label_issues  # noqa: PLC0415 - heavy, loaded on first use

    mask: Array = find_label_issues(labels=y, pred_probs=probs, n_jobs=1)
    return np.asarray(mask, dtype=bool)
