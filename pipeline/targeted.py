"""Detectors for targeted poisoning: label associations, near-duplicate bursts, batch screening.

Three families, each returning ``Flags`` (0-based rows, a score and the evidence per row):

- ``associations``: feature-value combinations (one feature's quantile bin, or a pair of bins)
  whose share of one label departs from what a model says the rows' features predict. A
  backdoor trigger (a rare but valid combination, every row carrying one label) is such a cell.
  One-sided binomial test per (cell, class), Bonferroni over every tested (cell, class).
- ``bursts``: one point copied many times with small jitter: rows with at least ``min_copies``
  other rows closer than ``radius`` x the median nearest-neighbour distance.
- ``near_duplicates``: a row copied once with a tiny move (a pair, not a burst): rows with
  another row within ``radius`` x the median distance to the ``min_copies``-th nearest row.
- ``screen_batch``: new rows against the approved (trusted) rows only. Everything it learns
  (neighbours, class-conditional densities, the label model, bins, base rates) comes from the
  approved rows, so poisoned new rows cannot move the yardstick. It adds the class-conditional
  mean-shift tests and the impact of the batch on a model trained on approved rows (reject on
  negative impact, measured on a holdout of approved rows).

Everything is seeded and deterministic.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pipeline.config import AssociationCheck, BatchCheck, BurstCheck, DuplicatesCheck, LabelCheck
from pipeline.flags import Baseline, Flags, cleanlab_issues, knn_probabilities

Array = np.ndarray[Any, Any]

# Expected label shares are clipped away from 0 and 1: a model's p = 0.0001 must not make a
# single disagreeing row "significant".
_P_FLOOR = 0.02
# Class-conditional SDs (in overall SDs of the approved rows) are floored at this for the mean
# shift; features below a fifth of it within a class are not tested.
_MIN_CLASS_SD = 0.25


def _flags(check: str, rows: Array, scores: Array, reasons: Sequence[str], start: float) -> Flags:
    order = np.argsort(rows, kind="stable")
    return Flags(
        check=check,
        rows=np.asarray(rows, dtype=np.int64)[order],
        scores=np.asarray(scores, dtype=np.float64)[order],
        reasons=tuple(reasons[i] for i in order),
        seconds=time.perf_counter() - start,
    )


# --- label associations of feature-value combinations ---------------------------------------


def bin_edges(
    x: Array, bins: int, *, outside: Array | None = None, bounds: Array | None = None
) -> list[Array]:
    """Interior quantile edges per column (duplicates removed), from the rows given.

    With ``bounds`` (per column the approved [low, high] in ``x``'s units, NaN where unknown)
    and ``outside`` (per row and column: the value is beyond them), the quantiles come from the
    values inside and two more edges put the values below ``low`` and above ``high`` in bins of
    their own. On a table inside the approved range every cell keeps its rows.
    """
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    edges = []
    for j in range(x.shape[1]):
        values = x[:, j] if outside is None else x[~outside[:, j], j]
        inner = np.quantile(values, qs) if values.size else np.zeros(0)
        if bounds is not None and not np.isnan(bounds[j]).any():
            low, high = float(bounds[j, 0]), float(bounds[j, 1])
            inner = np.concatenate([[low], inner, [np.nextafter(high, np.inf)]])
        edges.append(np.unique(inner))
    return edges


def bin_codes(x: Array, edges: list[Array]) -> Array:
    """Each value's bin (0..bins-1) under ``edges``; beyond the outer edges: the end bins."""
    codes = np.empty(x.shape, dtype=np.int16)
    for j, e in enumerate(edges):
        codes[:, j] = np.searchsorted(e, x[:, j], side="right")
    return codes


def _describe_bin(name: str, edges: Array, code: int) -> str:
    low = "-inf" if code == 0 else f"{edges[code - 1]:.4g}"
    high = "+inf" if code >= edges.size else f"{edges[code]:.4g}"
    return f"{name} in [{low}, {high})"


class LinearExpectation:
    """What a seeded logistic regression predicts for each row's label, with or without features.

    Out of fold by default (every row scored by a model that did not see it; each fold's model
    fitted on at most ``max_fit_rows`` rows); with ``fit_rows`` (the approved rows of a batch)
    one model fitted on those rows scores every row. ``without(columns)`` refits with those
    features left out: what the row's *other* features say about its label, so that a trigger
    cannot explain itself, while features that really predict the label are replaced by the
    others that carry the same information (a refit, not a dropped term).
    """

    def __init__(
        self,
        x: Array,
        y: Array,
        *,
        n_classes: int,
        folds: int,
        max_fit_rows: int,
        seed: int,
        fit_rows: Array | None = None,
        unfit_rows: Array | None = None,
    ) -> None:
        self.x, self.y = x, y
        # Rows no model is fitted on (still scored): values beyond the approved range.
        self.unfit_rows = np.zeros(0, dtype=np.int64) if unfit_rows is None else unfit_rows
        self.n_classes, self.folds = n_classes, folds
        self.max_fit_rows, self.seed = max_fit_rows, seed
        self.fit_rows = fit_rows
        self._cache: dict[tuple[int, ...], Array] = {}
        self._logits: Array = np.zeros(0)
        self._fold_of: Array = np.zeros(0, dtype=np.int64)
        self._coefs: Array = np.zeros(0)
        self._mean: Array = np.zeros(0)
        self._cov: Array = np.zeros(0)

    def without(self, columns: tuple[int, ...] = ()) -> Array:
        """Class probabilities of every row from a model that does not see ``columns``."""
        if columns not in self._cache:
            keep = [j for j in range(self.x.shape[1]) if j not in columns]
            self._cache[columns] = self._fit(self.x[:, keep])
        return self._cache[columns]

    def dropped(self, columns: tuple[int, ...]) -> Array:
        """Cheap stand-in for ``without``: the full model's logits with ``columns`` replaced by
        their least-squares prediction from the other features (as the streaming screen,
        ``_predictors``). Not a refit, so it only screens for candidates that ``without`` then
        tests.
        """
        self.without()
        logits = self._logits.copy()
        if self._cov.size == 0:
            # Learned where the model is: the approved rows of a batch, never ``unfit_rows``.
            rows = np.arange(len(self.y)) if self.fit_rows is None else np.asarray(self.fit_rows)
            fit = np.setdiff1d(rows, self.unfit_rows)
            fit = fit if fit.size > 1 else rows
            self._mean = self.x[fit].mean(axis=0)
            self._cov = _covariance(self.x[fit] - self._mean)
        centred = self.x - self._mean
        guess = centred @ _restore(self._cov, (columns[0], columns[-1]))
        for i, j in enumerate(columns):
            kept = centred[:, j] - guess[:, i]
            logits -= self._coefs[self._fold_of, :, j] * kept[:, None]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out: Array = e / e.sum(axis=1, keepdims=True)
        return out

    def _fit(self, x: Array) -> Array:
        from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

        n, k = len(self.y), self.n_classes
        counts = np.bincount(self.y, minlength=k)
        if x.shape[1] == 0:
            return np.tile(counts / counts.sum(), (n, 1))
        rng = np.random.default_rng(self.seed)
        if self.fit_rows is not None:
            plan = [(np.asarray(self.fit_rows), np.arange(n))]
        else:
            splits = max(2, min(self.folds, int(counts[counts > 0].min())))
            splitter = StratifiedKFold(n_splits=splits, shuffle=True, random_state=self.seed)
            plan = list(splitter.split(x, self.y))
        logits = np.zeros((n, k))
        fold_of = np.zeros(n, dtype=np.int64)
        coefs = np.zeros((len(plan), k, x.shape[1]))
        for f, (train, test) in enumerate(plan):
            fit = np.setdiff1d(train, self.unfit_rows) if self.unfit_rows.size else train
            if fit.size == 0:  # every row beyond the approved range: nothing else to learn from
                fit = train
            if fit.size > self.max_fit_rows:
                fit = np.sort(rng.choice(fit, size=self.max_fit_rows, replace=False))
            coef, intercept = _full(_fit_model(x[fit], self.y[fit], k), k, x.shape[1])
            coefs[f] = coef
            logits[test] = x[test] @ coef.T + intercept
            fold_of[test] = f
        if x.shape[1] == self.x.shape[1]:
            self._logits, self._fold_of, self._coefs = logits, fold_of, coefs
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        probs: Array = e / e.sum(axis=1, keepdims=True)
        return probs


def _full(model: Any, n_classes: int, d: int) -> tuple[Array, Array]:
    """A fitted LogisticRegression's coefficients and intercepts as (C, d) and (C,)."""
    coef = np.zeros((n_classes, d))
    intercept = np.full(n_classes, -30.0)  # a class the fit never saw: p ~ 0
    classes = np.asarray(model.classes_)
    if classes.size == 2 and model.coef_.shape[0] == 1:
        coef[classes[1]] = model.coef_[0]
        intercept[classes[0]] = 0.0
        intercept[classes[1]] = model.intercept_[0]
    else:
        coef[classes] = model.coef_
        intercept[classes] = model.intercept_
    return coef, intercept


def linear_expectation(
    x: Array,
    y: Array,
    *,
    n_classes: int,
    folds: int,
    max_fit_rows: int,
    seed: int,
    fit_rows: Array | None = None,
    unfit_rows: Array | None = None,
) -> LinearExpectation:
    """A ``LinearExpectation`` (see there): out of fold, or fitted on ``fit_rows``; never
    fitted on ``unfit_rows``."""
    return LinearExpectation(
        x,
        y,
        n_classes=n_classes,
        folds=folds,
        max_fit_rows=max_fit_rows,
        seed=seed,
        fit_rows=fit_rows,
        unfit_rows=unfit_rows,
    )


def _cell_counts(
    cell: Array, yy: Array, p: Array, size: int, n_classes: int
) -> tuple[Array, Array, Array]:
    n_cell = np.bincount(cell, minlength=size)
    counts = np.bincount(cell * n_classes + yy, minlength=size * n_classes).reshape(size, n_classes)
    sums = np.stack(
        [np.bincount(cell, weights=p[:, c], minlength=size) for c in range(n_classes)], axis=1
    )
    return n_cell, counts, sums


def _candidates(
    c: Array,
    yy: Array,
    expected: LinearExpectation,
    subset: Array,
    pairs: list[tuple[int, int]],
    *,
    bins: int,
    check: AssociationCheck,
) -> tuple[int, dict[tuple[int, int], float]]:
    """The cheap first stage: (tested cells x classes, feature pairs with a candidate cell)."""
    n_classes = expected.n_classes
    size = bins * bins
    tested = 0
    hits: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for j, k in pairs:
        cell = c[:, j] * bins + c[:, k]
        n_cell = np.bincount(cell, minlength=size)
        big = n_cell >= check.min_rows
        if not big.any():
            continue
        # Screen with the full model's logits minus the cell's features' terms: a trigger the
        # model learned (an extreme value) must not explain itself even at this stage.
        dropped = np.clip(
            expected.dropped((j, k) if k != j else (j,))[subset], _P_FLOOR, 1 - _P_FLOOR
        )
        n_cell, counts, sums = _cell_counts(cell, yy, dropped, size, n_classes)
        tested += int(big.sum()) * n_classes
        found = _screen_hits(n_cell, counts, sums, check)
        if found:
            hits[(j, k)] = found
    limit = check.alpha / max(tested, 1)
    candidates = {}
    for pair, found in hits.items():
        kept = _screen_kept(found, check, limit)
        if kept:
            candidates[pair] = min(pvalue for pvalue, _ in kept)
    return tested, candidates


def _screen_kept(
    found: list[tuple[float, float]], check: AssociationCheck, limit: float
) -> list[tuple[float, float]]:
    """The screen hits that make their feature set a candidate: a share gap of at least
    ``min_gap`` at p < ``alpha``, or (the unexplained share alone) p below the refit test's own
    Bonferroni ``limit``: that second route is for strong cells, so that it refits few more
    feature sets (it tripled the screen's candidates, and the gate's time, on the synthetic
    benchmark set at ``alpha``)."""
    return [(pvalue, gap) for pvalue, gap in found if gap >= check.min_gap or pvalue < limit]


def _screen_hits(
    n_cell: Array, counts: Array, sums: Array, check: AssociationCheck
) -> list[tuple[float, float]]:
    """(screen p-value, share gap) of each cell and class that passes the screen (share gap at
    least ``min_gap`` or unexplained share at least ``min_unexplained``, as ``_significant``)."""
    from scipy.stats import binom  # noqa: PLC0415

    big = n_cell >= check.min_rows
    n_safe = np.maximum(n_cell, 1)[:, None]
    gaps = counts / n_safe - sums / n_safe
    unexplained = (counts - sums) / np.maximum(counts, 1)
    hit = big[:, None] & ((gaps >= check.min_gap) | (unexplained >= check.min_unexplained))
    found = []
    for cell_id, cls in zip(*np.nonzero(hit), strict=True):
        share = min(max(sums[cell_id, cls] / n_cell[cell_id], _P_FLOOR), 1 - _P_FLOOR)
        pvalue = float(binom.sf(counts[cell_id, cls] - 1, n_cell[cell_id], share))
        if pvalue < check.alpha:
            found.append((pvalue, float(gaps[cell_id, cls])))
    return found


# The one-sided level of the lower bound on a neighbouring trend's share of a class
# (``_neighbour_excess``): one standard error below its estimate, Phi(-1).
_TREND_LEVEL = 0.1587


def _neighbour_excess(
    n_cell: Array,
    counts: Array,
    sums: Array,
    *,
    bins: int,
    single: bool,
    trend_from: tuple[Array, Array, Array] | None = None,
) -> Array:
    """Per cell and class, the expected count raised by a trend its neighbouring cells show.

    A linear expectation cannot follow a class that gathers in a corner of two features (clean
    classes drawn as clusters): the corner cell holds far more of the class than its other
    features predict, and so, less and less, do the cells leading up to it. A trigger is a
    sharp bump: its rows sit in one cell, and the cells around it are as the model predicts.
    So a cell's expected count of a class is the model's plus the excess share (rows of the
    class less their summed probabilities, over the rows) that **both** of the next two cells
    on one line out of it show, times the cell's rows, the largest over the 8 directions of a
    pair's bins x bins grid or the 2 of a single feature's bins. On each line:

    - the smaller of the two cells' excess shares (each cell with at least 2 rows, so that a
      share is more than one row's label; only an excess): the cell's own rows never count,
      and a trigger split over two adjacent cells does not explain itself, the cell beyond its
      partner being clean;
    - and no more than the two cells' rows together support: the one-sided Clopper-Pearson
      lower bound (``_TREND_LEVEL``, one standard error) of their pooled share of the class,
      less their summed probabilities. Two cells of a few rows each show an excess of 0.2 by
      chance, and over 8 directions one of them does; that chance trend absorbed an in-range
      trigger (tests/attacks/test_outlier_leverage.py);
    - times at most as many rows as the fuller of the two cells holds (scaled by the tested
      rows over the trend's rows): a trend explains the share of the rows a neighbourhood
      holds, and a trigger adds its rows to its cell (the rows beyond stay the model's).

    ``trend_from``: the (rows, class counts, summed probabilities) per cell whose shares make
    the trend, when they are other rows than the tested ones (a batch's approved rows: the new
    rows' own neighbouring cells would let the attack's rows raise their own expectation).
    """
    from scipy.stats import beta  # noqa: PLC0415

    k = counts.shape[1]
    n_trend, c_trend, s_trend = (n_cell, counts, sums) if trend_from is None else trend_from
    scale = float(n_cell.sum()) / max(float(n_trend.sum()), 1.0)
    own = n_cell
    if single:
        idx = np.arange(bins) * (bins + 1)
        n_trend, c_trend, s_trend, own = n_trend[idx], c_trend[idx], s_trend[idx], n_cell[idx]
        shape, directions = (1, bins), [(0, 1), (0, -1)]
    else:
        shape = (bins, bins)
        directions = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)]
    rows, cols = shape
    # Per cell: rows (repeated per class), rows of each class, their summed probabilities;
    # padded with two empty cells on every side.
    grids = [
        np.pad(g.reshape(rows, cols, -1).astype(float), ((2, 2), (2, 2), (0, 0)))
        for g in (np.repeat(np.reshape(n_trend, (-1, 1)), k, axis=1), c_trend, s_trend)
    ]
    own_rows = np.reshape(own, (rows, cols, 1)).astype(float)

    def shifted(step: int, di: int, dj: int) -> list[Array]:
        r, c = 2 + step * di, 2 + step * dj
        return [g[r : r + rows, c : c + cols] for g in grids]

    def excess(n: Array, c: Array, s: Array) -> Array:
        out: Array = np.where(n >= 2, (c - s) / np.maximum(n, 1), 0.0)
        return out

    added = np.zeros((rows, cols, k))
    for di, dj in directions:
        (n1, c1, s1), (n2, c2, s2) = shifted(1, di, dj), shifted(2, di, dj)
        n, c = n1 + n2, c1 + c2
        low = np.where(c > 0, beta.ppf(_TREND_LEVEL, np.maximum(c, 1), n - c + 1), 0.0)
        pooled = np.where(n > 0, low - (s1 + s2) / np.maximum(n, 1), 0.0)
        trend = np.minimum(np.minimum(excess(n1, c1, s1), excess(n2, c2, s2)), pooled)
        held = np.minimum(own_rows, scale * np.maximum(n1, n2))
        added = np.maximum(added, np.maximum(trend, 0.0) * held)
    raised = sums.astype(float)
    if single:
        raised[idx] = sums[idx] + added[0]
    else:
        raised = raised + added.reshape(bins * bins, k)
    capped: Array = np.minimum(raised, n_cell[:, None] * (1 - _P_FLOOR))
    return capped


def _significant(
    n_cell: Array, counts: Array, sums: Array, check: AssociationCheck, limit: float
) -> list[tuple[int, int, float, int, float, float]]:
    """The (cell, class) pairs that pass the real test: (cell, class, a, n, expected, p).

    One-sided binomial P(X >= a), X ~ Bin(n, E / n) with E the summed refit probabilities
    (with ``neighbour_trend``, raised by the neighbouring cells' excess: ``_neighbour_excess``);
    at least ``min_rows`` rows, share gap at least ``min_gap`` or at least ``min_unexplained``
    of the cell's rows of the class unexplained ((rows - E) / rows: the clean rows of other
    classes sharing a trigger's cell dilute the gap, not this share), p below ``limit``.
    """
    from scipy.stats import binom  # noqa: PLC0415

    n_safe = np.maximum(n_cell, 1)[:, None]
    gap = counts / n_safe - sums / n_safe
    unexplained = (counts - sums) / np.maximum(counts, 1)
    large = (gap >= check.min_gap) | (unexplained >= check.min_unexplained)
    hit = (n_cell >= check.min_rows)[:, None] & large
    found = []
    for cell_id, cls in zip(*np.nonzero(hit), strict=True):
        a, m, e = float(counts[cell_id, cls]), int(n_cell[cell_id]), float(sums[cell_id, cls])
        pvalue = float(binom.sf(a - 1, m, min(max(e / m, _P_FLOOR), 1 - _P_FLOOR)))
        if pvalue < limit:
            found.append((int(cell_id), int(cls), a, m, e, pvalue))
    return found


def _approved_explain(
    found: list[tuple[int, int, float, int, float, float]],
    approved: Array,
    where: tuple[Array, Array, Array, Array],
    pair: tuple[int, int],
    *,
    bins: int,
    limit: float,
) -> list[tuple[int, int, float, int, float, float]]:
    """The significant cells that the approved rows in the same cell do not explain either.

    A linear model of the other features cannot follow a class drawn as several clusters: a
    clean cell at such a cluster's corner holds far more of the class than the model predicts
    (bench/clean_tables.py's ``mc-1k-8f-2c-sep0.5``), and so do the approved rows in that
    cell. A trigger is new: the approved rows with its value combination carry their own
    labels. So where the approved rows are known (a batch, or the whole table with the trusted
    lock's rows), a cell's approved rows show how far the model falls short there: their
    excess share of class c (their share at its one-sided Clopper-Pearson lower bound,
    ``_TREND_LEVEL``, one standard error, less their summed p(c): a few approved rows show a
    share by chance) raises the expected count of the cell's other rows, and the approved
    rows among the tested ones (the whole table) count their own labels. The cell stays
    significant when its p-value against the larger of that count and the test's is still
    below the Bonferroni ``limit``. Rows a pull request adds never explain a cell.

    ``where``: the bin codes and labels of every row, the tested rows, and every row's
    probabilities of each class from the other features (the refit).
    """
    from scipy.stats import beta, binom  # noqa: PLC0415

    codes, y, subset, probs = where
    j, k = pair
    is_approved = np.zeros(len(codes), dtype=bool)
    is_approved[approved] = True
    out = []
    for cell_id, cls, a, m, e, pvalue in found:
        bj, bk = divmod(cell_id, bins)
        mine = approved[(codes[approved, j] == bj) & (codes[approved, k] == bk)]
        c_ap = int((y[mine] == cls).sum())
        if c_ap == 0:
            out.append((cell_id, cls, a, m, e, pvalue))
            continue
        low = float(beta.ppf(_TREND_LEVEL, c_ap, mine.size - c_ap + 1))
        excess = max(low - float(probs[mine, cls].mean()), 0.0)
        cell = subset[(codes[subset, j] == bj) & (codes[subset, k] == bk)]
        own = cell[is_approved[cell]]
        rest = cell[~is_approved[cell]]
        counted = (y[own] == cls).sum() + probs[rest, cls].sum() + excess * rest.size
        e2 = max(e, float(counted))
        if binom.sf(a - 1, m, min(max(e2 / m, _P_FLOOR), 1 - _P_FLOOR)) < limit:
            out.append((cell_id, cls, a, m, e, pvalue))
    return out


def _cell_reason(
    pair: tuple[int, int],
    cell_id: int,
    bins: int,
    found: tuple[float, int, float, float],
    *,
    edges: Sequence[Array],
    names: Sequence[str],
    label: str,
    limit: float,
    tested: int,
    model: float,
) -> str:
    """A significant cell's evidence: where, how many rows of the label, expected, p
    (``model``: the expected count before the neighbouring cells' trend raised it to ``e``)."""
    j, k = pair
    a, m, e, pvalue = found
    bj, bk = divmod(cell_id, bins)
    where = _describe_bin(names[j], edges[j], bj)
    if k != j:
        where += " and " + _describe_bin(names[k], edges[k], bk)
    expected = f"{e:.1f}"
    if e - model >= 0.05:
        expected = f"{model:.1f}, {e:.1f} with the neighbouring cells' trend"
    return (
        f"{where}: {int(a)} of {m} rows labelled '{label}' where their other "
        f"features predict {expected} (p={pvalue:.2g} < {limit:.2g}, Bonferroni over "
        f"{tested} tests)"
    )


def associations(
    codes: Array,
    y: Array,
    expected: LinearExpectation,
    *,
    edges: list[Array],
    names: Sequence[str],
    classes: Sequence[str],
    check: AssociationCheck,
    rows: Array | None = None,
    trend_rows: Array | None = None,
) -> Flags:
    """Cells (one bin, or a pair of bins) where one label is over-represented against ``expected``.

    Two stages. First every cell is screened with the full model's logits minus the terms of
    the cell's features (cheap; observed share at least ``min_gap`` above that, binomial p
    below ``alpha``). Then, for the ``max_refits`` feature sets with the strongest candidates, the
    model is refitted without those features and the cell is tested for real: the expected
    count of class c is the sum of p(c | the rows' other features); one-sided binomial
    P(X >= a), X ~ Bin(n, E / n); it counts when n >= ``min_rows``, the share gap is at least
    ``min_gap`` (or the share of the class's rows unexplained, (a - E) / a, at least
    ``min_unexplained``) and p < ``alpha`` / (every tested cell x class) (Bonferroni).
    ``rows`` restricts the test to those rows (the new rows of a batch). In a significant cell
    the rows flagged are those carrying the over-represented label whose other features give
    it p < ``member_below``. With ``neighbour_trend`` and ``rows``, the neighbouring cells'
    trend is measured on the other rows (a batch's approved rows), never on the tested ones:
    in a batch of a few hundred new rows the neighbouring cells hold a few rows each, and the
    attack's own rows there raised its cells' expectation (the benchmark's digits_10
    classflip: 7 of 20 flipped rows no longer in a significant cell). ``trend_rows`` (the
    whole table, ``rows`` None): the rows the trend is measured on instead of every row, the
    approved rows the trusted lock's row digests name: rows a pull request plants in the
    cells beside a trigger are new rows and make no trend (docs/data-defence.md, Known limits).
    With those approved rows (``rows`` or ``trend_rows``) a significant cell is tested once
    more against what its own approved rows show (``_approved_explain``): a clean class
    gathered in a corner no linear model follows is there in the approved rows too, a trigger
    of new rows is not.
    """
    start = time.perf_counter()
    n_classes = len(classes)
    subset = np.arange(len(y)) if rows is None else np.asarray(rows, dtype=np.int64)
    if subset.size == 0 or codes.shape[1] == 0:
        return _flags("association", np.zeros(0), np.zeros(0), [], start)
    c = codes[subset].astype(np.int64)
    yy = y[subset]
    # The rows the neighbouring cells' trend is measured on: the others than the tested ones
    # when there are any (the approved rows of a batch), the approved rows of the whole table
    # (``trend_rows``), else the tested rows themselves.
    others = np.setdiff1d(np.arange(len(y)), subset) if rows is not None else subset
    if rows is None and trend_rows is not None:
        others = np.unique(np.asarray(trend_rows, dtype=np.int64))
    if others.size == 0:
        others = subset
    d = min(c.shape[1], check.max_features)
    bins = int(c[:, :d].max()) + 1
    if check.neighbour_trend and others is not subset:
        bins = max(bins, int(codes[others][:, :d].max()) + 1)
    size = bins * bins
    pairs: list[tuple[int, int]] = [(j, j) for j in range(d)]
    pairs += [(j, k) for j in range(d) for k in range(j + 1, d)]
    tested, candidates = _candidates(c, yy, expected, subset, pairs, bins=bins, check=check)
    limit = check.alpha / max(tested, 1)
    flagged: dict[int, tuple[float, str]] = {}
    for j, k in sorted(candidates, key=lambda pair: candidates[pair])[: check.max_refits]:
        columns = (j, k) if k != j else (j,)
        p = np.clip(expected.without(columns)[subset], _P_FLOOR, 1 - _P_FLOOR)
        cell = c[:, j] * bins + c[:, k]
        n_cell, counts, sums = _cell_counts(cell, yy, p, size, n_classes)
        raised = sums
        if check.neighbour_trend:
            trend_from = None
            if others is not subset:
                po = np.clip(expected.without(columns)[others], _P_FLOOR, 1 - _P_FLOOR)
                co = codes[others].astype(np.int64)
                trend_from = _cell_counts(
                    co[:, j] * bins + co[:, k], y[others], po, size, n_classes
                )
            raised = _neighbour_excess(
                n_cell, counts, sums, bins=bins, single=k == j, trend_from=trend_from
            )
        found = _significant(n_cell, counts, raised, check, limit)
        if found and check.neighbour_trend and others is not subset:
            every = np.clip(expected.without(columns), _P_FLOOR, 1 - _P_FLOOR)
            found = _approved_explain(
                found, others, (codes, y, subset, every), (j, k), bins=bins, limit=limit
            )
        for cell_id, cls, a, m, e, pvalue in found:
            bj, bk = divmod(cell_id, bins)
            reason = _cell_reason(
                (j, k),
                cell_id,
                bins,
                (a, m, e, pvalue),
                edges=edges,
                names=names,
                label=classes[cls],
                limit=limit,
                tested=tested,
                model=float(sums[cell_id, cls]),
            )
            # Only the cell's rows whose other features do not predict their label: a trigger
            # moves rows of other classes into the cell; the cell's own rows of that class
            # (which their other features explain) are its clean neighbours, not the attack.
            members = (
                (c[:, j] == bj) & (c[:, k] == bk) & (yy == cls) & (p[:, cls] < check.member_below)
            )
            score = -np.log10(max(pvalue, 1e-300))
            for r in subset[members]:
                if int(r) not in flagged or flagged[int(r)][0] < score:
                    flagged[int(r)] = (score, reason)
    keys = np.array(sorted(flagged), dtype=np.int64)
    return _flags(
        "association",
        keys,
        np.array([flagged[int(r)][0] for r in keys]),
        [flagged[int(r)][1] for r in keys],
        start,
    )


# --- label associations over every row of a streamed file -----------------------------------
#
# The same two stages as ``associations``, with every count taken over the whole file in
# chunks: the bins and the models come from the streaming path's sample, each chunk adds its
# rows to per (feature set, cell, class) counters (rows of the class, and the sum of the
# model's probability of it), and the test runs on the totals. Memory: feature sets x cells x
# classes counters, never rows; the work is linear in the rows.


@dataclass(frozen=True)
class CellModels:
    """What counting a chunk's cells needs; fitted on the sample, small enough to ship to workers.

    ``coef`` / ``intercept``: the full logistic model (the screen drops the cell's features'
    terms from its logits). ``refits``: per feature set of the second stage, the kept columns
    and the model refitted without the set's features.
    """

    edges: tuple[Array, ...]
    pairs: tuple[tuple[int, int], ...]
    bins: int
    n_classes: int
    coef: Array
    intercept: Array
    refits: tuple[tuple[Array, Array, Array], ...] = ()
    # Per feature set, the least-squares coefficients of its features (columns) on the other
    # features (rows; zero at the set's own): the screen replaces the set's features by that
    # prediction instead of by nothing.
    predictors: Array | None = None


def _probabilities(logits: Array) -> Array:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: Array = np.clip(e / e.sum(axis=1, keepdims=True), _P_FLOOR, 1 - _P_FLOOR)
    return out


def _tally(cell: Array, y: Array, p: Array, size: int, n_classes: int) -> tuple[Array, Array]:
    counts = np.bincount(cell * n_classes + y, minlength=size * n_classes).reshape(size, n_classes)
    sums = np.stack(
        [np.bincount(cell, weights=p[:, c], minlength=size) for c in range(n_classes)], axis=1
    )
    return counts, sums


def fit_cell_models(
    x: Array,
    y: Array,
    *,
    n_classes: int,
    check: AssociationCheck,
    max_fit_rows: int,
    seed: int,
) -> CellModels:
    """Quantile bins and the full expectation model from the sample (``x`` standardized)."""
    edges = bin_edges(x, check.bins)
    d = min(x.shape[1], check.max_features)
    pairs = [(j, j) for j in range(d)] + [(j, k) for j in range(d) for k in range(j + 1, d)]
    fit = np.arange(len(y))
    if fit.size > max_fit_rows:
        fit = np.sort(np.random.default_rng(seed).choice(fit, size=max_fit_rows, replace=False))
    coef, intercept = _full(_fit_model(x[fit], y[fit], n_classes), n_classes, x.shape[1])
    return CellModels(
        edges=tuple(edges),
        pairs=tuple(pairs),
        bins=max((e.size for e in edges[:d]), default=0) + 1,
        n_classes=n_classes,
        coef=coef,
        intercept=intercept,
        predictors=_predictors(x[fit], pairs),
    )


def _predictors(x: Array, pairs: Sequence[tuple[int, int]]) -> Array:
    """Per feature set (j, k): the coefficients (d x 2) predicting x_j and x_k from the other
    features by least squares on ``x`` (standardized, so centred), zero rows at j and k.

    Dropping a feature's terms from the full model is no refit: a feature that repeats
    another's information (a linear combination of two predictive features) keeps the weight
    that balanced them, and the cells of those features look far from their expectation (over
    1,000,000 clean rows, gaps of 0.8-0.96 on pairs of the two most predictive features, above
    a trigger's 0.75). Replacing the dropped features by their prediction from the others is
    what a linear refit would do with that information.
    """
    cov = _covariance(x)
    return (
        np.stack([_restore(cov, pair) for pair in pairs])
        if pairs
        else np.zeros((0, cov.shape[0], 2))
    )


def _covariance(x: Array) -> Array:
    """The features' covariance (``x`` centred), with a small ridge; the identity below 2 rows."""
    d = x.shape[1]
    cov: Array = np.atleast_2d(np.cov(x, rowvar=False)) if len(x) > 1 else np.eye(d)
    out: Array = cov + 1e-6 * np.eye(d)
    return out


def _restore(cov: Array, pair: tuple[int, int]) -> Array:
    """The coefficients (d x 2) predicting x_j and x_k of ``pair`` from the other features by
    least squares (``cov`` their covariance), zero rows at j and k."""
    j, k = pair
    d = cov.shape[0]
    out = np.zeros((d, 2))
    others = np.array([c for c in range(d) if c not in (j, k)], dtype=np.int64)
    if others.size == 0:
        return out
    targets = np.array([j] if k == j else [j, k], dtype=np.int64)
    out[others, : len(targets)] = np.linalg.solve(
        cov[np.ix_(others, others)], cov[np.ix_(others, targets)]
    )
    return out


def with_refits(
    models: CellModels,
    x: Array,
    y: Array,
    sets: Sequence[tuple[int, int]],
    *,
    max_fit_rows: int,
    seed: int,
) -> CellModels:
    """``models`` with a model refitted on the sample without each feature set of ``sets``."""
    fit = np.arange(len(y))
    if fit.size > max_fit_rows:
        fit = np.sort(np.random.default_rng(seed).choice(fit, size=max_fit_rows, replace=False))
    refits = []
    for j, k in sets:
        keep = np.array([c for c in range(x.shape[1]) if c not in (j, k)], dtype=np.int64)
        if keep.size == 0:
            prior = np.bincount(y, minlength=models.n_classes) / max(len(y), 1)
            coef = np.zeros((models.n_classes, 0))
            intercept = np.log(np.maximum(prior, 1e-12))
        else:
            coef, intercept = _full(
                _fit_model(x[fit][:, keep], y[fit], models.n_classes), models.n_classes, keep.size
            )
        refits.append((keep, coef, intercept))
    return replace(models, pairs=tuple(sets), refits=tuple(refits))


def screen_tallies(models: CellModels, x: Array, y: Array) -> tuple[Array, Array]:
    """The first stage's counters for one chunk: per feature set, cell and class, the rows
    carrying the class and the sum of the screen's probability of it (the full model's logits
    minus the set's features' terms, as ``LinearExpectation.dropped``)."""
    size, k = models.bins * models.bins, models.n_classes
    counts = np.zeros((len(models.pairs), size, k), dtype=np.int64)
    sums = np.zeros((len(models.pairs), size, k))
    if len(y) == 0:
        return counts, sums
    c = bin_codes(x, list(models.edges)).astype(np.intp)
    logits = x @ models.coef.T + models.intercept
    if k == 2:
        return _binary_screen(models, x, y, c, logits)
    for i, (j, jj) in enumerate(models.pairs):
        guess = x @ models.predictors[i] if models.predictors is not None else np.zeros((len(y), 2))
        dropped = logits - models.coef[:, j] * (x[:, j] - guess[:, 0])[:, None]
        if jj != j:
            dropped -= models.coef[:, jj] * (x[:, jj] - guess[:, 1])[:, None]
        cell = c[:, j] * models.bins + c[:, jj]
        counts[i], sums[i] = _tally(cell, y, _probabilities(dropped), size, k)
    return counts, sums


def _binary_screen(
    models: CellModels, x: Array, y: Array, c: Array, logits: Array
) -> tuple[Array, Array]:
    """``screen_tallies`` for two classes: p(class 1) is the logistic of the logit
    difference less the set's features' terms (single precision: a screen), p(class 0) its
    complement, whose clipped sum per cell is the cell's rows less class 1's. About 4x less
    work per feature set than the softmax (1 M rows x 210 sets)."""
    from scipy.special import expit  # noqa: PLC0415

    bins = models.bins
    size = bins * bins
    counts = np.zeros((len(models.pairs), size, 2), dtype=np.int64)
    sums = np.zeros((len(models.pairs), size, 2))
    base = (logits[:, 1] - logits[:, 0]).astype(np.float32)
    weight = models.coef[1] - models.coef[0]
    terms = (x * weight).astype(np.float32)
    # Each set's features' terms come back as their prediction from the other features:
    # weight_j x predicted x_j + weight_k x predicted x_k, one column per set.
    back = np.zeros((len(models.pairs), x.shape[1]))
    if models.predictors is not None:
        for i, (j, jj) in enumerate(models.pairs):
            back[i] = models.predictors[i][:, 0] * weight[j]
            if jj != j:
                back[i] += models.predictors[i][:, 1] * weight[jj]
    # cell x 2 + label = (code_j x bins + code_k) x 2 + label, from two per-feature parts.
    high = c * (2 * bins)
    low = c * 2 + y.astype(np.intp)[:, None]
    z = np.empty(len(y), dtype=np.float32)
    labelled = np.empty(len(y), dtype=np.intp)
    block = 64
    for i, (j, jj) in enumerate(models.pairs):
        if i % block == 0:
            restored = (x @ back[i : i + block].T).astype(np.float32)
        np.subtract(base, terms[:, j], out=z)
        if jj != j:
            z -= terms[:, jj]
        z += restored[:, i % block]
        expit(z, out=z)
        np.clip(z, _P_FLOOR, 1 - _P_FLOOR, out=z)
        np.add(high[:, j], low[:, jj], out=labelled)
        counts[i] = np.bincount(labelled, minlength=2 * size).reshape(size, 2)
        ones = np.bincount(labelled >> 1, weights=z, minlength=size)
        sums[i, :, 1] = ones
        sums[i, :, 0] = counts[i].sum(axis=1) - ones
    return counts, sums


def refit_tallies(models: CellModels, x: Array, y: Array) -> tuple[Array, Array]:
    """The second stage's counters for one chunk, with each set's refitted model."""
    size, k = models.bins * models.bins, models.n_classes
    counts = np.zeros((len(models.pairs), size, k), dtype=np.int64)
    sums = np.zeros((len(models.pairs), size, k))
    if len(y) == 0:
        return counts, sums
    c = bin_codes(x, list(models.edges)).astype(np.int64)
    for i, ((j, jj), (keep, coef, intercept)) in enumerate(
        zip(models.pairs, models.refits, strict=True)
    ):
        p = _probabilities(x[:, keep] @ coef.T + intercept)
        counts[i], sums[i] = _tally(c[:, j] * models.bins + c[:, jj], y, p, size, k)
    return counts, sums


def cell_members(
    models: CellModels, hits: Sequence[tuple[int, int, int]], x: Array, y: Array, below: float
) -> list[Array]:
    """Per hit (feature set index, cell, class): the chunk's rows in the cell carrying the class
    whose other features give it less than ``below`` (as ``associations`` flags them)."""
    if len(y) == 0:
        return [np.zeros(0, dtype=np.int64) for _ in hits]
    c = bin_codes(x, list(models.edges)).astype(np.int64)
    found = []
    for i, cell_id, cls in hits:
        j, jj = models.pairs[i]
        keep, coef, intercept = models.refits[i]
        bj, bk = divmod(cell_id, models.bins)
        inside = (c[:, j] == bj) & (c[:, jj] == bk) & (y == cls)
        p = _probabilities(x[inside][:, keep] @ coef.T + intercept)
        found.append(np.flatnonzero(inside)[p[:, cls] < below])
    return found


def screen_candidates(
    models: CellModels, counts: Array, sums: Array, check: AssociationCheck
) -> tuple[int, list[tuple[int, int]]]:
    """Every tested (cell, class) and the ``max_refits`` feature sets with the strongest
    candidate cells, from the whole file's screen counters (``associations``' first stage,
    ranked by p-value floored at the Bonferroni limit, then by the share gap)."""
    tested = 0
    hits: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for i, pair in enumerate(models.pairs):
        n_cell = counts[i].sum(axis=1)
        big = n_cell >= check.min_rows
        if not big.any():
            continue
        tested += int(big.sum()) * models.n_classes
        found = _screen_hits(n_cell, counts[i], sums[i], check)
        if found:
            hits[pair] = found
    # Over a whole file many cells' screen p-values underflow to 0 (a strongly predictive
    # feature's extreme bins, thousands of rows each), and ranking by p alone kept the first
    # sets in column order. Every p below the Bonferroni limit counts as one; among them the
    # largest departure (share gap) ranks first: a forced label's cell is far from what its
    # other features predict, a feature's own predictive bins barely pass ``min_gap``.
    limit = check.alpha / max(tested, 1)
    best = {
        pair: min((max(pvalue, limit), -gap) for pvalue, gap in kept)
        for pair, found in hits.items()
        if (kept := _screen_kept(found, check, limit))
    }
    ranked = sorted(best, key=lambda pair: best[pair])[: check.max_refits]
    return tested, ranked


def significant_cells(
    models: CellModels,
    counts: Array,
    sums: Array,
    *,
    tested: int,
    check: AssociationCheck,
    names: Sequence[str],
    classes: Sequence[str],
) -> list[tuple[tuple[int, int, int], float, str]]:
    """The second stage's test on the whole file's counters: per significant cell its
    (feature set index, cell, class), score (-log10 p) and reason, as ``associations``."""
    limit = check.alpha / max(tested, 1)
    found = []
    for i, pair in enumerate(models.pairs):
        n_cell = counts[i].sum(axis=1)
        near = sums[i]
        if check.neighbour_trend:
            near = _neighbour_excess(
                n_cell, counts[i], sums[i], bins=models.bins, single=pair[0] == pair[1]
            )
        for cell_id, cls, a, m, e, pvalue in _significant(n_cell, counts[i], near, check, limit):
            reason = _cell_reason(
                pair,
                cell_id,
                models.bins,
                (a, m, e, pvalue),
                edges=models.edges,
                names=names,
                label=classes[cls],
                limit=limit,
                tested=tested,
                model=float(sums[i][cell_id, cls]),
            )
            found.append(((i, cell_id, cls), -np.log10(max(pvalue, 1e-300)), reason))
    return found


# --- near-duplicate bursts ------------------------------------------------------------------


def bursts(
    x: Array,
    *,
    check: BurstCheck,
    seed: int,
    rows: Array | None = None,
    scale_from: Array | None = None,
) -> Flags:
    """Rows with at least ``min_copies`` other rows within ``radius`` x the median 1-NN distance.

    The median nearest-neighbour distance is measured on ``scale_from`` (the approved rows in a
    batch) or on the rows themselves. ``rows`` restricts the search to those rows (a batch's new
    rows). Above ``max_rows`` rows a seeded sample of that many is searched (and says so).
    """
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    start = time.perf_counter()
    subset = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
    screened = None
    if subset.size > check.max_rows:
        rng = np.random.default_rng(seed)
        subset = np.sort(rng.choice(subset, size=check.max_rows, replace=False))
        screened = int(subset.size)
    k = check.min_copies
    if subset.size <= k:
        return _flags("burst", np.zeros(0), np.zeros(0), [], start)
    points = x[subset]
    base = points if scale_from is None else scale_from
    if len(base) > check.max_rows:
        rng = np.random.default_rng(seed + 1)
        base = base[rng.choice(len(base), size=check.max_rows, replace=False)]
    nearest = NearestNeighbors(n_neighbors=2).fit(base).kneighbors(base)[0][:, 1]
    positive = nearest[nearest > 0]
    scale = float(np.median(positive)) if positive.size else 0.0
    if scale == 0.0:
        return _flags("burst", np.zeros(0), np.zeros(0), [], start)
    radius = check.radius * scale
    dist, found = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    hit = np.flatnonzero(dist[:, k] <= radius)
    reasons = [
        f"{k} or more rows within {dist[i, k]:.3g} (radius {radius:.3g} = {check.radius:g} x the "
        f"median nearest-neighbour distance {scale:.3g}), e.g. rows "
        f"{', '.join(str(int(subset[f])) for f in found[i, 1:4])}"
        for i in hit
    ]
    out = _flags("burst", subset[hit], 1.0 - dist[hit, k] / radius, reasons, start)
    if screened is not None:
        out = Flags(out.check, out.rows, out.scores, out.reasons, out.seconds, screened=screened)
    return out


# --- near-duplicate pairs -------------------------------------------------------------------

# How many (row, twin) pairs a near-duplicate finding quotes; the count is always exact.
_QUOTED_PAIRS = 3
# The near-duplicate scale is at least this x the median distance between random pairs of rows,
# which copies do not move. On the five clean benchmark sets the median 5th-neighbour distance
# is 0.42-0.57 x that median, so the floor never binds there; six copies of every row at one
# tiny distance made the 5th neighbour a copy and hid every copy without it.
_PAIR_FLOOR = 0.2
# The share of evenly spread rows the near-duplicate radius may take in few dimensions.
_CLEAN_NEAR_SHARE = 0.0005


def _near_scale(base: Array, check: BurstCheck, seed: int) -> float:
    """Median distance from a row of ``base`` to its ``min_copies``-th nearest other row.

    Not the 1-NN distance ``bursts`` uses: a table where every row has a near twin would make
    that median a twin distance and the radius too small to see the twins (one-ulp copies of
    every breast-cancer row: 34% of the copies seen at the 1-NN scale, wine 0%). A row has at
    most ``min_copies`` - 1 near copies before ``bursts`` flags it, so its ``min_copies``-th
    neighbour is another point. With ``min_copies`` or more copies of every row it is a copy
    again, so the scale is floored at ``_PAIR_FLOOR`` x the median distance of random pairs.
    """
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    if len(base) > check.max_rows:
        rng = np.random.default_rng(seed + 1)
        base = base[rng.choice(len(base), size=check.max_rows, replace=False)]
    k = min(check.min_copies, len(base) - 1)
    if k < 1:
        return 0.0
    far = NearestNeighbors(n_neighbors=k + 1).fit(base).kneighbors(base)[0][:, k]
    positive = far[far > 0]
    scale = float(np.median(positive)) if positive.size else 0.0
    pairs = np.random.default_rng(seed + 3).integers(0, len(base), (2, len(base)))
    pairs = pairs[:, pairs[0] != pairs[1]]
    spread = np.linalg.norm(base[pairs[0]] - base[pairs[1]], axis=1)
    return max(scale, _PAIR_FLOOR * float(np.median(spread))) if spread.size else scale


def _near_radius(base: Array, check: BurstCheck, seed: int) -> tuple[float, float]:
    """``near_duplicates``' radius on ``base`` as (factor, scale): the radius is their product.

    In few dimensions rows spread evenly already meet within radius x scale: about
    min_copies x factor^d of them per row (2 features, factor 0.1: 5%). The factor shrinks
    until that is _CLEAN_NEAR_SHARE; from 4 features on, check.radius itself is smaller.
    Dimensions: the columns that vary (a constant one adds no distance).
    """
    scale = _near_scale(base, check, seed)
    dims = max(1, int(np.count_nonzero(np.ptp(base, axis=0) > 0))) if len(base) else 1
    factor = min(check.radius, (_CLEAN_NEAR_SHARE / check.min_copies) ** (1 / dims))
    return factor, scale


def _twin_count(index: Array, queries: Array, radius: float, *, same: bool) -> tuple[int, int]:
    """(rows of ``queries`` with a row of ``index`` within ``radius``, rows asked); ``same``:
    ``queries`` are rows of ``index``, whose own distance 0 does not count."""
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    k = 2 if same else 1
    if len(index) < k or not len(queries):
        return 0, len(queries)
    dist = NearestNeighbors(n_neighbors=k).fit(index).kneighbors(queries)[0][:, k - 1]
    return int(np.count_nonzero(dist <= radius)), len(queries)


def _later_copies(x: Array, radius: float, neighbours: int) -> int:
    """Rows of ``x`` within ``radius`` of another row of ``x``, every copy after the first:
    those rows less the groups they form, each row joined to its ``neighbours`` nearest other
    rows within the radius (a pair counts 1, four copies of one point 3; the nearest row alone
    split four copies into two pairs, 2). Never more than the rows with a copy less one per
    group of copies, whatever the ties among exact copies."""
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    k = min(neighbours, len(x) - 1)
    if k < 1:
        return 0
    dist, found = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    rows = np.repeat(np.arange(len(x)), k + 1)
    link = (dist.ravel() <= radius) & (found.ravel() != rows)
    rows, cols = rows[link], found.ravel()[link]
    if not rows.size:
        return 0
    nodes = np.union1d(rows, cols)
    graph = coo_matrix(
        (np.ones(rows.size), (np.searchsorted(nodes, rows), np.searchsorted(nodes, cols))),
        shape=(nodes.size, nodes.size),
    )
    return int(nodes.size - connected_components(graph, directed=False)[0])


def batch_near_test(
    new: Array, approved: Array, *, check: BurstCheck, seed: int, alpha: float
) -> Baseline:
    """DATA108's yardstick: the new rows' near copies against the approved rows' own.

    Measurements recorded coarsely repeat on clean data (iris: rows 102 and 143 of 150 are
    equal), so the count of new rows within ``near_duplicates``' radius of another row is
    judged against how often approved rows have one, like with like (a row has more chances
    of a near copy among more rows: new rows counted against approved and new rows together
    made a clean coarse batch as large as its approved rows fail, p = 6e-5):

    - new rows with an approved row within the radius, of the new rows, against approved rows
      with another approved row within it, of the approved rows (the same number of partners;
      one-sided Fisher exact test, both shares are estimates);
    - copies among the new rows, every copy after the first (``_later_copies``: a pair counts
      1), against the approved rows' share with a near copy, given a +1 pseudo-count,
      s = (k + 1) / (n + 2), carried from their ``len(approved) - 1`` partners to the
      ``(len(new) - 1) / 2`` earlier new rows a new row has on average: each row is a later
      copy with chance 1 - (1 - s) ^ (those partners / the approved ones'), one-sided binomial.
      A pair counted as its two rows made a single pair look 60 times rarer than it is;
      counted once, a pair among 40 new rows whose 300 approved rows have no near copy has
      p=0.01 (passes), three copies of one new point (3 later copies) p=2e-7. Against a draw
      of as many approved rows (Fisher, until 7 December) 3-9 copies of one new point among
      43-137 new rows (the benchmark's wine, breast cancer and digits 3-vs-8 bursts) passed DATA108.

    Beyond when either p is below ``alpha`` / 2. Above ``max_rows`` rows a seeded sample of
    that many is asked (the copies among new rows: within the sample, and its size counts as
    the new rows). A cluster of ``min_copies`` new copies of one point is DATA103's too.
    """
    from scipy.stats import binom, fisher_exact  # noqa: PLC0415

    factor, scale = _near_radius(approved, check, seed)
    radius = factor * scale
    rng = np.random.default_rng(seed + 5)

    def sample(x: Array) -> Array:
        if len(x) <= check.max_rows:
            return x
        return x[np.sort(rng.choice(len(x), size=check.max_rows, replace=False))]

    cross = _twin_count(approved, sample(new), radius, same=False)
    own = _twin_count(approved, sample(approved), radius, same=True)
    among = sample(new)
    later = _later_copies(among, radius, check.min_copies + 1) if len(approved) > 1 else 0
    pvalues: dict[str, float] = {"an approved row": 1.0, "another new row": 1.0}
    if cross[0] and own[1]:
        table = [[cross[0], cross[1] - cross[0]], [own[0], own[1] - own[0]]]
        pvalues["an approved row"] = float(fisher_exact(table, alternative="greater").pvalue)
    share = (own[0] + 1) / (own[1] + 2)
    partners = (len(among) - 1) / 2 / max(len(approved) - 1, 1)
    rate = 1.0 - (1.0 - share) ** partners
    if later:
        pvalues["another new row"] = float(binom.sf(later - 1, len(among), rate))
    worst = min(pvalues, key=pvalues.__getitem__)
    parts = (
        f"{cross[0]} of {cross[1]} new rows near an approved row vs {own[0]} of {own[1]} "
        f"approved, Fisher p={pvalues['an approved row']:.2g}; {later} of {len(among)} new rows "
        f"a later copy of another new row vs {rate * len(among):.2g} expected from the approved "
        f"rows' ({own[0]} + 1) / ({own[1]} + 2), binomial p={pvalues['another new row']:.2g}"
    )
    asked, base = (cross[1], own[0] / own[1] if own[1] else 0.0)
    if worst == "another new row":
        asked, base = len(among), rate
    return Baseline(
        rate=base,
        expected=base * asked,
        pvalue=pvalues[worst],
        beyond=pvalues[worst] < alpha / 2,
        basis=f"the approved rows' own near copies ({parts}; [data.checks.batch].alpha {alpha:g} / 2)",
    )


def near_excess(flagged: int, rows: int, base: tuple[int, int], *, alpha: float) -> Baseline:
    """DATA052's yardstick: ``flagged`` near copies among ``rows`` rows against ``base``, the
    lock's (flagged, rows) of the approved snapshot (``near_copies``).

    One-sided binomial P(X >= flagged), X ~ Bin(rows, that share), beyond when below
    ``alpha``, as the label check's baseline: the table is mostly the approved snapshot's own
    rows, so its share is not a second, independent estimate. A share of 0 fails any count.
    """
    from scipy.stats import binom  # noqa: PLC0415

    twins, looked = base
    rate = min(max(twins / looked, 0.0), 1.0) if looked else 0.0
    pvalue = 1.0
    if flagged and rows:
        pvalue = float(binom.sf(flagged - 1, rows, min(max(rate, 1e-9), 1.0)))
    return Baseline(
        rate=rate,
        expected=rate * rows,
        pvalue=pvalue,
        beyond=pvalue < alpha,
        basis=(
            f"the approved snapshot's {twins} of {looked} rows (binomial p={pvalue:.2g}, "
            f"[data.checks.batch].alpha {alpha:g})"
        ),
    )


def near_duplicates(
    x: Array,
    *,
    check: BurstCheck,
    seed: int,
    approved: Array | None = None,
    names: Array | None = None,
    approved_names: Array | None = None,
) -> Flags:
    """Rows of ``x`` within ``radius`` x ``_near_scale`` of another row: every copy after the first.

    Exact copies are included (distance 0). Of two rows that are each other's nearest row the
    later one is flagged, so a pair counts once, like an exact copy; a row whose nearest row
    has a nearer one is flagged itself. With ``approved`` (the batch setting: ``x`` are the new
    rows) the scale is measured on the approved rows, and a new row within the radius of an
    approved row is flagged as well. ``names`` / ``approved_names``: the table row of each row
    of ``x`` / ``approved``, for the reasons and the result's ``twins`` (each flagged row's
    nearest row). Above ``max_rows`` rows a seeded sample of that many is searched (and says
    so), each sampled row against every row of ``x`` and every approved row: a pair is seen
    whenever one of its rows is drawn, so the flagged share of the sample estimates the
    table's. (Sample against sample, a pair counted only when both rows were drawn, undercounted
    the share by the sampling rate: 5% one-ulp copies on a table ten times ``max_rows`` showed
    as 0.5% and passed the 2% limit.) The cost is the sample times the rows, not the sample
    squared.
    """
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    start = time.perf_counter()
    check_name = "near_duplicate" if approved is None else "batch_near_duplicate"
    subset = np.arange(len(x))
    screened = None
    if subset.size > check.max_rows:
        rng = np.random.default_rng(seed)
        subset = np.sort(rng.choice(subset, size=check.max_rows, replace=False))
        screened = int(subset.size)
    points = x[subset]
    base = points if approved is None else approved
    factor, scale = _near_radius(base, check, seed)
    empty = _flags(check_name, np.zeros(0), np.zeros(0), [], start)
    if scale == 0.0 or subset.size == 0:
        return empty
    radius = factor * scale
    all_names = np.arange(len(x)) if names is None else np.asarray(names)
    label = all_names[subset]
    twin_dist = np.full(subset.size, np.inf)
    twin_name = np.full(subset.size, -1, dtype=np.int64)
    twin_kind = np.full(subset.size, "row", dtype=object)
    if len(x) > 1:
        # Every row is the index (not the sample): a sampled row's twin counts when it was not drawn.
        index = NearestNeighbors(n_neighbors=2).fit(x)
        dist, found = index.kneighbors(points)
        # Exact copies tie at distance 0: the row itself need not come first.
        other = np.where(found[:, 0] == subset, found[:, 1], found[:, 0])
        # Of two rows that are each other's nearest, the earlier is not flagged; whether the twin's
        # nearest is this row is asked of the rows near enough to be flagged only.
        near = np.flatnonzero(dist[:, 1] <= factor * scale)
        first_of_pair = np.zeros(subset.size, dtype=bool)
        if near.size:
            back = index.kneighbors(x[other[near]])[1]
            back_other = np.where(back[:, 0] == other[near], back[:, 1], back[:, 0])
            first_of_pair[near] = (back_other == subset[near]) & (subset[near] < other[near])
        twin_dist = np.where(first_of_pair, np.inf, dist[:, 1])
        twin_name = all_names[other]
    if approved is not None and len(approved):
        pool = approved
        pool_names = np.arange(len(approved)) if approved_names is None else approved_names
        adist, afound = NearestNeighbors(n_neighbors=1).fit(pool).kneighbors(points)
        closer = adist[:, 0] <= twin_dist
        twin_dist = np.where(closer, adist[:, 0], twin_dist)
        twin_name = np.where(closer, np.asarray(pool_names)[afound[:, 0]], twin_name)
        twin_kind = np.where(closer, "approved row", twin_kind)
    hit = np.flatnonzero(twin_dist <= radius)
    reasons = [
        f"within {twin_dist[i]:.3g} of {twin_kind[i]} {int(twin_name[i])} (radius {radius:.3g} = "
        f"{factor:.3g} x {scale:.3g}, the median distance to the {check.min_copies}th "
        f"nearest row, or {_PAIR_FLOOR:g} x that of random pairs if larger); pairs: "
        + ", ".join(f"{int(label[j])}~{int(twin_name[j])}" for j in hit[:_QUOTED_PAIRS])
        for i in hit
    ]
    out = _flags(check_name, subset[hit], 1.0 - twin_dist[hit] / radius, reasons, start)
    # subset and hit are ascending, so _flags keeps their order and the twins line up.
    return replace(out, screened=screened, twins=twin_name[hit])


# --- the batch setting: new rows against approved rows ----------------------------------------


@dataclass(frozen=True)
class RateTest:
    """A flagged share among new rows against the same check's share among approved rows."""

    check: str
    flagged: int
    rows: int
    base_rate: float
    pvalue: float
    failed: bool
    # "binomial": against a rate fixed by construction (the density check's quantile);
    # "Fisher": against a rate counted on the approved rows, itself an estimate.
    test: str = "binomial"
    # The table row farthest beyond the check's limit (named when no row is reported).
    farthest: int | None = None
    # The approved rows' (flagged, rows) behind a Fisher test's base rate.
    base_counts: tuple[int, int] | None = None
    # The label rule's: the approved rows' out-of-fold mean and variance of 1 - p(label).
    base_doubt: tuple[float, float] | None = None
    # The label rule's: the tests that decided whether its rows are reported.
    reporting: str = ""
    # The label rule's doubt mass over every new row against the approved rows' (normal z, p);
    # significant at ``batch.alpha`` with an excess of at least ``batch.min_excess`` per new
    # row, it fails the batch like the count does.
    mass: tuple[float, float] | None = None
    # The label rule's tail scan (``_tail_verdict``): at its most significant level, the new
    # rows doubted beyond it, the count the approved rows' share there predicts, the level
    # (an approved row's doubt) and the Bonferroni-adjusted beta-binomial p.
    tail: tuple[int, float, float, float] | None = None


@dataclass(frozen=True)
class MeanShift:
    """One class's mean of one feature: new rows vs approved rows (Mann-Whitney U, Holm)."""

    label: str
    column: str
    shift_sd: float
    pvalue: float


@dataclass(frozen=True)
class JointShift:
    """One class's mean over all features at once: new vs approved rows (two-sample Hotelling)."""

    label: str
    pvalue: float  # Bonferroni over the classes tested
    dims: int
    approved: int
    new: int


@dataclass(frozen=True)
class Impact:
    """Holdout accuracy (approved rows) of a model trained on approved rows with/without the batch.

    ``worse`` / ``better``: the holdout rows the model trained with the batch (index 0) or with
    the batch minus its flagged rows (index 1) gets wrong where the approved rows' model is
    right / right where it is wrong: McNemar's discordant pairs.
    """

    holdout_rows: int
    approved_only: float
    with_batch: float
    without_flagged: float
    max_drop: float
    worse: tuple[int, int] = (0, 0)
    better: tuple[int, int] = (0, 0)
    alpha: float = 0.05

    def pvalue(self, *, quarantine: bool = False) -> float:
        """McNemar's exact one-sided p: more holdout rows turned wrong than right, by chance."""
        from scipy.stats import binomtest  # noqa: PLC0415

        i = 1 if quarantine else 0
        pairs = self.worse[i] + self.better[i]
        if pairs == 0:
            return 1.0
        return float(binomtest(self.worse[i], pairs, 0.5, alternative="greater").pvalue)

    def failed(self, *, quarantine: bool = False) -> bool:
        """Whether the rows training would use lower the holdout accuracy by more than allowed.

        Both: the drop is over ``max_drop`` and McNemar's exact test on the holdout rows the
        two models disagree on says it is not the holdout's noise (p < ``alpha``): on a
        32-row holdout one row is 3.1%, over ``max_drop`` 0.02 by itself. With quarantine,
        training drops the flagged rows, so the batch without them is judged.
        """
        trained = self.without_flagged if quarantine else self.with_batch
        if trained >= self.approved_only - self.max_drop:
            return False
        return self.pvalue(quarantine=quarantine) < self.alpha


@dataclass(frozen=True)
class BatchScreening:
    """What screening the new rows against the approved rows found."""

    approved: int
    new: int
    flags: tuple[Flags, ...]
    rates: tuple[RateTest, ...] = ()
    shifts: tuple[MeanShift, ...] = ()
    joint_shifts: tuple[JointShift, ...] = ()
    impact: Impact | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    # The approved rows' positions (the whole-table label check adds no unexplained-excess
    # witness rows among them: see ``pipeline.poison.label_flags``).
    approved_rows: Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Approved rows whose label the approved rows alone support: cleanlab on the approved
    # rows' out-of-fold probabilities does not flag them. The whole-table label check does not
    # report them (a doubt about them can only come from the new rows).
    cleared_rows: Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def flagged_rows(self) -> Array:
        """Every new row any batch check flagged, sorted and unique."""
        if not self.flags:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([f.rows for f in self.flags]))

    def explaining_rows(self) -> Array:
        """New rows a batch check other than the label rule flagged (a trigger's, a burst's, a
        row far from its class): they explain the whole-table kNN witness's excess. The batch
        label rule's rows do not: they are the same evidence as the witness's, and the
        whole-table label check reports them itself (DATA070)."""
        parts = [f.rows for f in self.flags if f.check != "batch_label"]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))


@dataclass(frozen=True)
class _OneClass:
    """What a logistic regression fitted on rows of one class would say: always that class.

    scikit-learn refuses to fit on a single class; the approved rows (or a fold of them) can
    hold only one, and then every other label is one the trusted data never supports.
    """

    label: int
    width: int

    @property
    def classes_(self) -> Array:
        return np.array([self.label])

    @property
    def coef_(self) -> Array:
        return np.zeros((1, self.width))

    @property
    def intercept_(self) -> Array:
        return np.zeros(1)

    def predict_proba(self, x: Array) -> Array:
        return np.ones((len(x), 1))

    def predict(self, x: Array) -> Array:
        return np.full(len(x), self.label)


def _fit_model(x: Array, y: Array, n_classes: int) -> Any:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    present = np.unique(y)
    if present.size == 1:
        return _OneClass(int(present[0]), x.shape[1])
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(max_iter=1000, C=1.0).fit(x, y)


def _predict(model: Any, x: Array, n_classes: int) -> Array:
    probs = np.zeros((len(x), n_classes))
    probs[:, model.classes_] = model.predict_proba(x)
    return probs


def _knn_to(x_index: Array, y_index: Array, x: Array, *, n_classes: int, k: int) -> Array:
    """Class shares among each row's k nearest index rows (plus the prior as one pseudo-vote)."""
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    k = min(k, len(x_index))
    found = NearestNeighbors(n_neighbors=k).fit(x_index).kneighbors(x, return_distance=False)
    votes = y_index[found]
    counts = np.stack([(votes == c).sum(axis=1) for c in range(n_classes)], axis=1)
    prior = np.bincount(y_index, minlength=n_classes) / len(y_index)
    return (counts + prior) / (k + 1)


def label_rule(model: Array, knn: Array, y: Array, labels: LabelCheck) -> Array:
    """The label disagreement rule shared by the batch screen and its base rate.

    Flag when the combined probability of the given label is below 0.5 and another class is
    more likely, or when the kNN vote for it is below ``knn_vote_below`` and the model's
    probability below ``knn_model_below``.
    """
    idx = np.arange(len(y))
    combined = labels.model_weight * model + (1 - labels.model_weight) * knn
    given = combined[idx, y]
    rule = (given < 0.5) & (combined.argmax(axis=1) != y)
    rule |= (knn[idx, y] < labels.knn_vote_below) & (model[idx, y] < labels.knn_model_below)
    return np.asarray(rule, dtype=bool)


def _rate_test(
    check: str,
    hits: int,
    n: int,
    base: float,
    batch: BatchCheck,
    *,
    base_counts: tuple[int, int] | None = None,
) -> RateTest:
    """The new rows' flagged share against the approved rows'.

    With ``base_counts`` (flagged, rows) the approved rows' share is an estimate from that
    many rows, not a known rate: one-sided Fisher exact test of the 2 x 2 table. A binomial
    test against the estimate as if it were exact failed a clean batch (the held-out
    synthetic set of ``bench/poisoning.py --seed 7``: 77 of 720 new rows vs 7.1% of 1,680
    approved, binomial p = 2e-4, Fisher p = 2e-3). Without, ``base`` is a rate fixed by
    construction (the density check's quantile): binomial test.
    """
    from scipy.stats import binom, fisher_exact  # noqa: PLC0415

    if base_counts is not None:
        base_hits, base_rows = base_counts
        base = base_hits / max(base_rows, 1)
        pvalue = (
            float(
                fisher_exact(
                    [[hits, n - hits], [base_hits, base_rows - base_hits]], alternative="greater"
                ).pvalue
            )
            if hits
            else 1.0
        )
        test = "Fisher"
    else:
        base = min(max(base, 1.0 / max(n, 1) / 10), 1.0)
        pvalue = float(binom.sf(hits - 1, n, base)) if hits else 1.0
        test = "binomial"
    failed = (
        hits >= batch.min_flagged
        and pvalue < batch.alpha
        and hits / max(n, 1) - base >= batch.min_excess
    )
    return RateTest(check, hits, n, base, pvalue, failed, test, base_counts=base_counts)


@dataclass(frozen=True)
class _Split:
    """Approved rows (x, y) and new rows (x, y, their rows in the table)."""

    xt: Array
    yt: Array
    xn: Array
    yn: Array
    new: Array
    n_classes: int


def _batch_labels(
    s: _Split, *, classes: Sequence[str], labels: LabelCheck, batch: BatchCheck, seed: int
) -> tuple[Flags, RateTest, Array, Array, Array]:
    """A model and neighbours fitted on approved rows judge each new row's label.

    The base rate is the same rule on the approved rows themselves, out of fold (model) and
    leaving each row out (neighbours). Returns the flags, the rate test, the combined
    probabilities of the new rows (the association test's expectation), per approved row
    (of ``s.xt``) whether the whole-table label check would flag it on the approved rows alone
    (cleanlab on their out-of-fold combined probabilities, as when they were approved), and
    the approved rows' out-of-fold doubts, 1 - p(label) (what the reporting rule compares with).
    """
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    start = time.perf_counter()
    k = s.n_classes
    model = _predict(_fit_model(s.xt, s.yt, k), s.xn, k)
    knn = _knn_to(s.xt, s.yt, s.xn, n_classes=k, k=batch.neighbors)
    present = np.bincount(s.yt, minlength=k)
    smallest = int(present[present > 0].min())
    oof = np.zeros((len(s.yt), k))
    splitter = StratifiedKFold(n_splits=max(2, min(5, smallest)), shuffle=True, random_state=seed)
    for fit_rows, test_rows in splitter.split(s.xt, s.yt):
        fitted = _fit_model(s.xt[fit_rows], s.yt[fit_rows], k)
        oof[test_rows] = _predict(fitted, s.xt[test_rows], k)
    knn_t = knn_probabilities(
        s.xt, s.yt, n_classes=k, neighbors=batch.neighbors, max_index_rows=len(s.yt), seed=seed
    )
    base_hits = int(label_rule(oof, knn_t, s.yt, labels).sum())
    # A class with fewer than two approved rows: cleanlab cannot judge it, so no approved row
    # is cleared (each keeps the whole-table label check's verdict).
    combined_t = labels.model_weight * oof + (1 - labels.model_weight) * knn_t
    doubt_t = 1.0 - combined_t[np.arange(len(s.yt)), s.yt]
    doubted = (
        cleanlab_issues(s.yt, combined_t)
        if (present >= 2).all()
        else np.ones(len(s.yt), dtype=bool)
    )
    hit = label_rule(model, knn, s.yn, labels)
    combined = labels.model_weight * model + (1 - labels.model_weight) * knn
    rows = np.flatnonzero(hit)
    yn = s.yn
    reasons = [
        f"label '{classes[yn[i]]}': approved rows give it p={combined[i, yn[i]]:.3f} (model "
        f"{model[i, yn[i]]:.3f}, {batch.neighbors} nearest approved rows {knn[i, yn[i]]:.3f}); "
        f"likely '{classes[int(combined[i].argmax())]}'"
        for i in rows
    ]
    given = combined[np.arange(len(yn)), yn]
    flags = _flags("batch_label", s.new[rows], 1.0 - given[rows], reasons, start)
    rate = _rate_test(
        "batch_label",
        int(rows.size),
        len(yn),
        base_hits / max(len(s.yt), 1),
        batch,
        base_counts=(base_hits, len(s.yt)),
    )
    rate = replace(rate, base_doubt=(float(doubt_t.mean()), float(doubt_t.var())))
    rate = _doubt_mass_verdict(rate, 1.0 - given, batch)
    rate = _tail_verdict(rate, 1.0 - given, doubt_t, batch)
    if rows.size:
        rate = replace(rate, farthest=int(s.new[rows[int(given[rows].argmin())]]))
    return flags, rate, combined, doubted, doubt_t


# The tail scan's levels: beyond the 1st, 2nd and 3rd most doubted approved rows.
_TAIL_LEVELS = 3


def _doubt_mass_verdict(rate: RateTest, doubt: Array, batch: BatchCheck) -> RateTest:
    """The label rule's verdict also fails on the doubt mass of every new row.

    The count test needs ``batch.min_flagged`` flagged rows and a Fisher p below ``batch.alpha``:
    a few confidently mislabelled rows in a small batch can never reach it (the benchmark's
    wine batches: 4 in-range trigger rows among 43 new rows, Fisher p = 0.12, and the batch
    passed with its 4 rows reported). The doubt mass, the sum over the new rows of
    1 - p(label) (the combined probability the rule uses), tested against the approved rows'
    out-of-fold mean and variance (one-sided normal, as the reporting rule's), fails the batch
    when p < ``batch.alpha`` and the excess is at least ``batch.min_excess`` per new row: the
    same two thresholds as the count's, nothing new tuned.
    """
    from scipy.stats import norm  # noqa: PLC0415

    if rate.base_doubt is None or doubt.size == 0:
        return rate
    mean, var = rate.base_doubt
    n = int(doubt.size)
    excess = float(doubt.sum()) - n * mean
    z = excess / max(float(np.sqrt(n * var)), 1e-12)
    pvalue = float(norm.sf(z))
    failed = pvalue < batch.alpha and excess / n >= batch.min_excess
    return replace(rate, mass=(z, pvalue), failed=rate.failed or failed)


def _tail_verdict(rate: RateTest, doubt: Array, approved: Array, batch: BatchCheck) -> RateTest:
    """The label rule's verdict also fails on the most doubted new rows: a tail scan.

    The count and the doubt mass are averages over every new row, and rows the pull request
    makes dilute them: 400 rows interpolated between approved neighbours of one class are
    typical and carry little doubt, and beside them 12 benign rows relabelled malignant were
    15 of 412 flagged vs 2.15% of the approved rows (Fisher p = 0.12, mass z = 1.5: red team
    19). The extreme tail dilutes far less: a deep flip (a row inside its class's region given
    the other label) is doubted beyond all but a few approved rows' out-of-fold doubts, where
    the approved share is j / (N + 1), and typical made rows do not get there.

    At each level t_j, the j-th largest of the N approved rows' doubts (``approved``), j = 1 ..
    ``_TAIL_LEVELS``, the count c of the n new rows doubted more (``doubt``) is, when new and
    approved rows are exchangeable, beta-binomial(n, j, N + 1 - j) exactly (the conformal
    count: the share beyond the j-th largest of N is Beta(j, N + 1 - j)); a binomial with the
    share j / (N + 1) as if known is not (it fails clean batches, as the count's did before
    Fisher). One-sided p per level, Bonferroni over the levels; it fails the batch when the
    smallest adjusted p is below ``batch.alpha`` and the excess there, c less e = n j / (N + 1)
    (``_beyond_approved``'s expectation) rounded up, is at least ``batch.min_flagged`` rows: the count's
    thresholds, nothing new tuned. Few levels, so Bonferroni costs little: the tail's evidence
    is a handful of rows, and deeper levels are the count test's.

    A limit, not a cure: against N approved rows the tail's share is known only to about
    1 / N, so enough made rows dilute this too (c against e = n j / (N + 1) grows with n).
    """
    from scipy.stats import betabinom  # noqa: PLC0415

    n, total = int(doubt.size), int(approved.size)
    levels = min(_TAIL_LEVELS, total)
    if n == 0 or levels == 0:
        return rate
    order = np.arange(1, levels + 1)
    steps = np.sort(approved)[::-1][:levels]
    beyond = n - np.searchsorted(np.sort(doubt), steps, side="right")
    pvalues = betabinom.sf(beyond - 1, n, order, total + 1 - order)
    adjusted = np.minimum(pvalues * levels, 1.0)
    expected = n * order / (total + 1)
    best = int(np.argmin(adjusted))
    tail = (int(beyond[best]), float(expected[best]), float(steps[best]), float(adjusted[best]))
    return replace(rate, tail=tail, failed=rate.failed or _tail_failed(tail, batch))


def _tail_failed(tail: tuple[int, float, float, float] | None, batch: BatchCheck) -> bool:
    """Whether the tail scan (``_tail_verdict``) fails DATA100 by itself."""
    if tail is None:
        return False
    count, expected, _, pvalue = tail
    # The excess as ``_beyond_approved`` counts it: a part of a row counted as one.
    return pvalue < batch.alpha and int(np.ceil(count - expected - 1e-9)) >= batch.min_flagged


def _beyond_approved(doubt: Array, levels: Array, approved: Array) -> tuple[int, int, float]:
    """How many of the most doubted new rows the approved rows' doubt does not explain.

    At each of ``levels`` (the doubts of the rows the label rule flags), the new rows at least
    as doubted (c, of ``doubt``) against what the approved rows' share at least as doubted
    predicts for as many rows, e = n x (a + 1) / (N + 1) (``approved``: their out-of-fold
    doubts; the +1 keeps a doubt beyond every approved row's from being a zero rate). The
    excess c - e, a part of a row counted as one, is the estimate of how many of them the
    approved rows do not explain (DATA070's witness adds a slack of sqrt(e) on top: here the
    reporting test has already found an excess, and the slack would drop true rows, 2 of the
    benchmark's 3 near-range trigger rows among 43 new wine rows, e = 0.9). Returns the
    largest excess over the levels (0: none), with its c and e.
    """
    n = doubt.size
    if n == 0 or levels.size == 0:
        return 0, 0, 0.0
    at_least = n - np.searchsorted(np.sort(doubt), levels, side="left")
    base = approved.size - np.searchsorted(np.sort(approved), levels, side="left")
    expected = n * (base + 1) / (approved.size + 1)
    excess = np.ceil(at_least - expected - 1e-9)
    best = int(np.argmax(excess))
    return max(int(excess[best]), 0), int(at_least[best]), float(expected[best])


def _unexplained_labels(
    flags: Flags,
    rate: RateTest,
    *,
    new: Array,
    explained: Array,
    doubt: Array,
    approved_doubt: Array,
    batch: BatchCheck,
    quarantine: bool = False,
) -> tuple[Flags, str]:
    """Which of the label rule's rows (DATA100) are reported, and why.

    On a clean batch the rule flags new rows at the approved rows' own out-of-fold rate (the
    data's label noise: 53 of 720 clean new rows of the benchmark's synthetic set), and those
    rows were reported beside every attack's rows, whatever the attack. Reporting them needs
    evidence that the batch carries more label doubt than the approved rows **beyond the rows
    other checks already explain**: ``explained`` (a mask over the new rows: beyond the
    approved range, far from their class, in a significant association cell or a burst) are
    set aside, and among the other new rows two one-sided tests ask whether they doubt their
    labels more than the approved rows do: the rule's count against the approved rows' (Fisher
    exact, as the verdict's), and the doubt mass, the sum of 1 - p(label) (``doubt``, per new
    row), against the approved rows' out-of-fold mean and variance (normal; a few confidently
    mislabelled rows, 4 trigger rows among 43 new wine rows, move the mass but not the count).

    - They fail DATA100 by themselves (either test as the verdict judges it: p < ``alpha``,
      excess >= ``min_excess``): every row the rule flags is reported.
    - Either is significant only at ``label_report_alpha``: only the rows **beyond what the
      approved rows' doubt explains** (``_beyond_approved``: at each doubt level, the new rows
      at least as doubted less what the approved rows' share predicts), the most doubted.
      Every row was reported before: a batch whose new rows are only somewhat harder than the
      approved ones (the held-out synthetic split of ``--seed 7``: 74 of 672 clean new rows vs
      7.08% of the approved rows, Fisher p = 0.0014) got all 74 reported beside 48 outliers.
    - Neither: only the rule's rows among ``explained`` (flagged anyway; their label evidence
      is added).

    The verdict (``rate``) is unchanged: it counts every row. When the tail scan
    (``_tail_verdict``) fails among those other new rows too, every rule row among them doubted
    beyond the failing level is reported as well (at least the rows beyond the approved rows'
    share there, the most doubted). Among every new row it added clean rows beside rows other
    checks already report (the benchmark's digits 3-vs-8 region, outlier and trigger cells:
    precision 1.00 -> 0.90-0.93).

    With ``quarantine`` the rows reported are the rows dropped from training: every row the
    rule flags is reported, as on the whole table (``pipeline.poison``). Reporting only the
    excess kept a poisoned row that was less doubted than others in training (red team 18).
    """
    if rate.base_counts is None or rate.base_doubt is None or flags.count == 0:
        return flags, ""
    if quarantine:
        return flags, "every row reported: with quarantine the rows reported are dropped"
    rest = ~explained
    n = int(rest.sum())
    hit = np.isin(new, flags.rows)
    count = _rate_test(
        "batch_label", int((hit & rest).sum()), n, 0.0, batch, base_counts=rate.base_counts
    )
    judged = _doubt_mass_verdict(replace(count, base_doubt=rate.base_doubt), doubt[rest], batch)
    z, mass = judged.mass if judged.mass is not None else (0.0, 1.0)
    why = (
        f"among the {n} new rows no other check explains, {count.flagged} flagged vs "
        f"{count.base_rate:.2%} of the approved rows (Fisher p={count.pvalue:.2g}), doubt mass "
        f"z={z:.1f} (p={mass:.2g})"
    )
    if judged.failed:
        return flags, f"every row reported, they fail the rule by themselves: {why}"
    inside = np.isin(flags.rows, new[explained])
    if min(count.pvalue, mass) < batch.label_report_alpha:
        levels = flags.scores[~inside]
        extra, at_least, expected = _beyond_approved(doubt[rest], levels, approved_doubt)
        if extra > 0:
            level = np.sort(doubt[rest])[::-1][extra - 1]
            inside |= flags.scores >= level
        beyond = int((~np.isin(flags.rows, new[explained]) & inside).sum())
        why = (
            f"{f'only the {beyond} most doubted' if beyond else 'none of its other rows'} "
            f"beyond the approved rows' doubt reported ({at_least} new rows at least as "
            f"doubted as the least of them vs {expected:.1f} expected from the approved rows' "
            f"share): {why}; "
            f"significant at {batch.label_report_alpha:g}, not failed"
        )
    else:
        why = (
            f"only the rows other checks flag reported, the rest is the approved rate: {why}, "
            f"both >= {batch.label_report_alpha:g}"
        )
    # The tail scan among the same rows (the verdict's counts every new row): when it fails,
    # every rule row among them beyond the failing level is reported, c rows of which about e
    # are the approved rows' share (1 or 2 rows); only the c - e most doubted dropped a flip
    # that tied. Among every new row it added clean rows beside rows other checks report.
    tail = _tail_verdict(count, doubt[rest], approved_doubt, batch).tail
    if tail is not None and _tail_failed(tail, batch):
        at_least, expected, level, pvalue = tail
        before = int(inside.sum())
        inside |= (flags.scores > level) & np.isin(flags.rows, new[rest])
        why += (
            f"; the tail fails the rule: {at_least} of them doubted beyond {level:.3f} vs "
            f"{expected:.1f} expected from the approved rows' share (beta-binomial, Bonferroni "
            f"over {_TAIL_LEVELS} levels, p={pvalue:.2g}), {int(inside.sum()) - before} more "
            f"of its most doubted rows reported"
        )
    kept = Flags(
        flags.check,
        flags.rows[inside],
        flags.scores[inside],
        tuple(r for r, keep in zip(flags.reasons, inside, strict=True) if keep),
        flags.seconds,
        screened=flags.screened,
    )
    return kept, why


def _benjamini_hochberg(pvalues: Array, q: float) -> Array:
    """Which of ``pvalues`` Benjamini-Hochberg selects at false discovery rate ``q``."""
    n = pvalues.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(pvalues, kind="stable")
    below = pvalues[order] <= q * np.arange(1, n + 1) / n
    selected = np.zeros(n, dtype=bool)
    if below.any():
        selected[order[: int(np.flatnonzero(below).max()) + 1]] = True
    return selected


def _batch_density(
    s: _Split, *, classes: Sequence[str], batch: BatchCheck, settled: Array | None = None
) -> tuple[Flags, RateTest]:
    """Distance to the k-th nearest approved row of the row's class, vs the approved rows' own.

    Two questions, two tests. The verdict (the rate test) counts the new rows beyond the
    ``density_quantile`` of the approved rows' own leave-one-out distances: on clean data
    1 - quantile of them are, a binomial count. Which rows are *reported* is a per-row
    question: each new row's conformal p-value, (1 + approved rows of its class at least as far
    from their neighbours) / (approved rows + 1), which is valid for a clean row exchangeable
    with the approved ones, and Benjamini-Hochberg over every new row at ``density_fdr``; a row
    is flagged when it is beyond the quantile and selected. Before, every row beyond the
    quantile was flagged: about 1% of a clean batch (4 of 137 clean new rows of breast cancer),
    which is the check's null rate, not evidence against those rows.

    ``settled`` (a mask over the new rows): rows another check flags on its own, beyond the
    approved range plus margin (DATA060). Benjamini-Hochberg runs on them and on the other new
    rows as two families, each at ``density_fdr``. In one family, far outliers' tiny p-values
    raised BH's threshold for every row: 9 outliers in 137 new rows of breast cancer got 4
    clean rows reported; the question the report answers for the other rows, which of them
    are far from their class, does not depend on how many outliers came along.
    """
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    start = time.perf_counter()
    # (new index, distance, limit, conformal p, class, k)
    beyond: list[tuple[int, float, float, float, int, int]] = []
    pvalues = np.ones(len(s.yn))
    for cls in range(s.n_classes):
        mine = s.yt == cls
        batch_rows = np.flatnonzero(s.yn == cls)
        if mine.sum() < 3 or batch_rows.size == 0:
            continue
        k = min(5, int(mine.sum()) - 1)
        index = NearestNeighbors(n_neighbors=k + 1).fit(s.xt[mine])
        own = np.sort(index.kneighbors(s.xt[mine])[0][:, k])
        limit = float(np.quantile(own, batch.density_quantile))
        dist = index.kneighbors(s.xn[batch_rows], n_neighbors=k)[0][:, k - 1]
        at_least = own.size - np.searchsorted(own, dist, side="left")
        pvalues[batch_rows] = (1 + at_least) / (own.size + 1)
        for i, d in zip(batch_rows, dist, strict=True):
            if limit > 0 and d > limit:
                beyond.append((int(i), float(d), limit, float(pvalues[i]), cls, k))
    selected = np.zeros(len(s.yn), dtype=bool)
    apart = np.zeros(len(s.yn), dtype=bool) if settled is None else settled
    for family in (apart, ~apart):
        selected[family] = _benjamini_hochberg(pvalues[family], batch.density_fdr)
    rows: list[int] = []
    scores: list[float] = []
    reasons: list[str] = []
    for at, d, limit, p, cls, kth in beyond:
        if not selected[at]:
            continue
        rows.append(int(s.new[at]))
        scores.append(d / limit)
        reasons.append(
            f"{d / limit:.2f}x farther from the approved '{classes[cls]}' rows than "
            f"{batch.density_quantile:.0%} of them are from each other ({kth}-NN distance "
            f"{d:.3g} > {limit:.3g}; conformal p={p:.2g}, selected by Benjamini-Hochberg at "
            f"FDR {batch.density_fdr:g} over {int((apart == apart[at]).sum())} new rows"
            + (" beyond the approved range)" if apart[at] else ")")
        )
    flags = _flags("batch_density", np.array(rows), np.array(scores), reasons, start)
    rate = _rate_test("batch_density", len(beyond), len(s.yn), 1 - batch.density_quantile, batch)
    if beyond:
        far = max(beyond, key=lambda b: b[1] / b[2])
        rate = replace(rate, farthest=int(s.new[far[0]]))
    return flags, rate


def _mean_shifts(
    s: _Split, *, classes: Sequence[str], names: Sequence[str], batch: BatchCheck
) -> list[MeanShift]:
    """Mann-Whitney U per class and feature (new vs approved rows), Holm over all of them.

    A rank test, not a t test: pixels and counts are zero-inflated and heavy-tailed, where a t
    test's variance misleads both ways. Welch's t took the new rows' variance from the new
    rows, and a sparse sample's (3 of 42 new rows non-zero where 28% of the approved are) low
    mean comes with a low variance: t inflated, a false DATA104 on clean digits 4-vs-9. The
    approved rows' SD for both (tried) fails the other way: one new row at 15 on a pixel 2 of
    120 approved rows light is "2.5 SD" away, p = 1e-30. Ranks bound each row's weight, and
    against a Gaussian shift the test keeps 95% of the t test's efficiency. The size of the
    move (the verdict's ``min_mean_shift``) is still the means' difference in approved SDs.
    """
    from scipy.stats import mannwhitneyu  # noqa: PLC0415

    tests: list[tuple[float, int, int, float]] = []
    for cls in range(s.n_classes):
        a, b = s.xn[s.yn == cls], s.xt[s.yt == cls]
        if len(a) < 3 or len(b) < 3:
            continue
        # Features are standardized on the approved rows; a feature (nearly) constant within the
        # class (a pixel always blank in approved '0's) makes the test meaningless and any
        # difference "many SDs": it is skipped, and SDs are floored at 0.25 overall SDs.
        raw_sd = b.std(axis=0)
        sd = np.maximum(raw_sd, _MIN_CLASS_SD)
        with warnings.catch_warnings():
            # Columns constant in both groups give nan (handled below) with a warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            _, pvalues = mannwhitneyu(a, b, axis=0, alternative="two-sided", method="asymptotic")
        delta = (a.mean(axis=0) - b.mean(axis=0)) / sd
        for j in range(s.xt.shape[1]):
            if raw_sd[j] < _MIN_CLASS_SD / 5:
                continue
            pv = float(pvalues[j]) if np.isfinite(pvalues[j]) else 1.0
            tests.append((pv, cls, j, float(delta[j])))
    tests.sort(key=lambda t: t[0])
    shifts: list[MeanShift] = []
    for rank, (pv, cls, j, delta) in enumerate(tests):
        adjusted = min(1.0, pv * (len(tests) - rank))
        if adjusted >= batch.alpha:
            break  # Holm: stop at the first test that is not significant
        if abs(delta) >= batch.min_mean_shift:
            shifts.append(MeanShift(classes[cls], names[j], delta, adjusted))
    return shifts


def _joint_shifts(s: _Split, *, classes: Sequence[str], batch: BatchCheck) -> list[JointShift]:
    """Two-sample Hotelling T^2 per class, new vs approved rows, on the approved principal axes.

    A half-SD shift of a few rows on every feature moves each feature's class mean by too little
    for a per-feature test (DATA104), but the shift is consistent across features, which a joint
    test of the mean vector sees. The approved rows of the class give the principal axes (at
    most ``joint_dims_share`` x the class's rows of them, so the pooled covariance stays well
    conditioned: digits have more pixels than rows per class); the F form of T^2 with the
    pooled covariance is exact for Gaussian classes. Bonferroni over the classes tested.
    """
    from scipy.stats import f as f_dist  # noqa: PLC0415

    if batch.joint_dims_share <= 0:
        return []
    tests: list[tuple[int, float, int, int, int]] = []
    for cls in range(s.n_classes):
        a, b = s.xt[s.yt == cls], s.xn[s.yn == cls]
        n1, n2 = len(a), len(b)
        if n1 < 5 or n2 < 5:
            continue
        _, sing, axes = np.linalg.svd(a - a.mean(axis=0), full_matrices=False)
        if sing.size == 0 or sing[0] <= 0:
            continue
        rank = int((sing > 1e-8 * sing[0]).sum())
        dims = min(rank, max(1, int(batch.joint_dims_share * (n1 + n2))), n1 + n2 - 2)
        if dims < 1:
            continue
        pa, pb = a @ axes[:dims].T, b @ axes[:dims].T
        pooled = (
            (n1 - 1) * np.atleast_2d(np.cov(pa, rowvar=False))
            + (n2 - 1) * np.atleast_2d(np.cov(pb, rowvar=False))
        ) / (n1 + n2 - 2)
        delta = pa.mean(axis=0) - pb.mean(axis=0)
        try:
            t2 = float(n1 * n2 / (n1 + n2) * delta @ np.linalg.solve(pooled, delta))
        except np.linalg.LinAlgError:
            continue
        stat = (n1 + n2 - dims - 1) / (dims * (n1 + n2 - 2)) * t2
        pvalue = float(f_dist.sf(stat, dims, n1 + n2 - dims - 1))
        tests.append((cls, pvalue if np.isfinite(pvalue) else 1.0, dims, n1, n2))
    return [
        JointShift(classes[cls], min(1.0, pv * len(tests)), dims, n1, n2)
        for cls, pv, dims, n1, n2 in tests
        if pv * len(tests) < batch.alpha
    ]


def _impact(s: _Split, flagged: Array, *, batch: BatchCheck, seed: int) -> Impact | None:
    """Reject on negative impact: approved rows split into a fit part and a holdout."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    counts = np.bincount(s.yt, minlength=s.n_classes)
    if len(s.yt) < 20 or counts[counts > 0].min() < 2:
        return None
    fit_idx, hold_idx = train_test_split(
        np.arange(len(s.yt)), test_size=batch.holdout_fraction, stratify=s.yt, random_state=seed
    )
    flagged_new = np.isin(s.new, flagged)

    def right(extra_x: Array, extra_y: Array) -> Array:
        model = _fit_model(
            np.concatenate([s.xt[fit_idx], extra_x]),
            np.concatenate([s.yt[fit_idx], extra_y]),
            s.n_classes,
        )
        return np.asarray(model.predict(s.xt[hold_idx]) == s.yt[hold_idx])

    base = right(s.xn[:0], s.yn[:0])
    with_batch = right(s.xn, s.yn)
    without = right(s.xn[~flagged_new], s.yn[~flagged_new])
    return Impact(
        holdout_rows=int(hold_idx.size),
        approved_only=float(base.mean()),
        with_batch=float(with_batch.mean()),
        without_flagged=float(without.mean()),
        max_drop=batch.max_impact,
        worse=(int((base & ~with_batch).sum()), int((base & ~without).sum())),
        better=(int((~base & with_batch).sum()), int((~base & without).sum())),
        alpha=batch.impact_alpha,
    )


def screen_batch(
    x: Array,
    y: Array,
    approved: Array,
    *,
    classes: Sequence[str],
    names: Sequence[str],
    labels: LabelCheck,
    association: AssociationCheck,
    burst: BurstCheck,
    batch: BatchCheck,
    seed: int,
    beyond_range: Array | None = None,
    duplicates: DuplicatesCheck | None = None,
    quarantine: bool = False,
) -> BatchScreening:
    """Screen rows not in ``approved`` (a boolean mask) against the approved rows alone.

    ``x`` are numeric features standardized with the approved rows' mean and deviation.
    ``beyond_range``: table positions of rows beyond the approved range plus margin (DATA060),
    a family of their own for the density check's Benjamini-Hochberg (see ``_batch_density``).
    ``quarantine`` (``[data.checks].quarantine``): every row DATA100 flags is reported (and
    dropped), never only the excess (see ``_unexplained_labels``).
    """
    trusted = np.flatnonzero(approved)
    new = np.flatnonzero(~approved)
    if new.size == 0 or trusted.size == 0:
        return BatchScreening(
            approved=int(trusted.size), new=int(new.size), flags=(), approved_rows=trusted
        )
    xt, yt = x[trusted], y[trusted]
    judged = trusted
    if trusted.size > batch.max_rows:
        keep = np.sort(
            np.random.default_rng(seed).choice(trusted.size, size=batch.max_rows, replace=False)
        )
        xt, yt = xt[keep], yt[keep]
        judged = trusted[keep]
    split = _Split(xt, yt, x[new], y[new], new, len(classes))
    seconds: dict[str, float] = {}
    label_flags, label_rate, label_probs, doubted, approved_doubt = _batch_labels(
        split, classes=classes, labels=labels, batch=batch, seed=seed
    )
    settled = None if beyond_range is None else np.isin(new, np.asarray(beyond_range))
    density_flags, density_rate = _batch_density(
        split, classes=classes, batch=batch, settled=settled
    )
    flags = [label_flags, density_flags]
    if association.enabled:
        start = time.perf_counter()
        edges = bin_edges(xt, association.bins)
        expected = linear_expectation(
            np.concatenate([xt, split.xn]),
            np.concatenate([yt, split.yn]),
            n_classes=len(classes),
            folds=1,
            max_fit_rows=batch.max_rows,
            seed=seed,
            fit_rows=np.arange(len(yt)),
        )
        found = associations(
            bin_codes(np.concatenate([xt, split.xn]), edges),
            np.concatenate([yt, split.yn]),
            expected,
            rows=np.arange(len(yt), len(yt) + len(split.yn)),
            edges=edges,
            names=names,
            classes=classes,
            check=association,
        )
        flags.append(
            Flags(
                "batch_association",
                new[found.rows - len(yt)],
                found.scores,
                found.reasons,
                time.perf_counter() - start,
            )
        )
    if burst.enabled:
        found = bursts(split.xn, check=burst, seed=seed, scale_from=xt)
        flags.append(
            Flags("batch_burst", new[found.rows], found.scores, found.reasons, found.seconds)
        )
    if duplicates is not None and duplicates.enabled:
        found = near_duplicates(
            split.xn, check=burst, seed=seed, approved=xt, names=new, approved_names=judged
        )
        # Judged against the approved rows' own near copies (coarse measurements repeat).
        baseline = batch_near_test(split.xn, xt, check=burst, seed=seed, alpha=batch.alpha)
        flags.append(
            Flags(
                found.check,
                new[found.rows],
                found.scores,
                found.reasons,
                found.seconds,
                baseline=baseline,
            )
        )
    explained = np.zeros(new.size, dtype=bool) if settled is None else settled.copy()
    explained |= np.isin(new, np.concatenate([f.rows for f in flags[1:]]))
    given = label_probs[np.arange(new.size), split.yn]
    flags[0], why = _unexplained_labels(
        label_flags,
        label_rate,
        new=new,
        explained=explained,
        doubt=1.0 - given,
        approved_doubt=approved_doubt,
        batch=batch,
        quarantine=quarantine,
    )
    label_rate = replace(label_rate, reporting=why)
    for f in flags:
        seconds[f.check] = f.seconds
    start = time.perf_counter()
    shifts = _mean_shifts(split, classes=classes, names=names, batch=batch)
    seconds["batch_shift"] = time.perf_counter() - start
    start = time.perf_counter()
    impact = _impact(split, np.concatenate([f.rows for f in flags]), batch=batch, seed=seed)
    seconds["batch_impact"] = time.perf_counter() - start
    return BatchScreening(
        approved=int(trusted.size),
        new=int(new.size),
        approved_rows=trusted,
        cleared_rows=judged[~doubted],
        flags=tuple(flags),
        rates=(label_rate, density_rate),
        shifts=tuple(shifts),
        joint_shifts=tuple(_joint_shifts(split, classes=classes, batch=batch)),
        impact=impact,
        seconds=seconds,
    )
