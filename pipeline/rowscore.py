"""Every row scored at scale: the label and off-manifold checks fit on a bounded sample and
score the whole file in chunks.

On the streaming path (a file over ``[data].stream_above_mb``) the data never sits in memory
whole. The models are fitted on the scan's seeded, stratified sample (at most
``[data.checks.labels].max_fit_rows`` rows): standardization, the label model, the kNN index
(at most ``max_index_rows`` of those rows) and the IsolationForest. Then the file is read
again in chunks and every row is scored. Sample rows keep their out-of-fold scores (the same
as the in-memory check), every other row is scored by models that never saw it. The label
decision (cleanlab plus the witnesses' excess) then runs on all rows' probabilities, which
take 3 x classes x 4 bytes per row (240 MB for 10 million rows and two classes).

With a Dask scheduler the chunks are scored on the cluster (joblib's Dask backend); the
reading stays here, so the workers need no access to the file. The result does not depend on
where the chunks run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import BurstCheck, DataPolicy
from pipeline.flags import Flags
from pipeline.poison import (
    LabelScores,
    encode_labels,
    label_flags,
    label_scores,
)
from pipeline.profile import numeric_columns
from pipeline.targeted import (
    CellModels,
    cell_members,
    fit_cell_models,
    refit_tallies,
    screen_candidates,
    screen_tallies,
    significant_cells,
    with_refits,
)

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class _Fitted:
    """Everything fitted on the sample that scoring a chunk needs (small: shipped to workers)."""

    median: Array
    mean: Array
    std: Array
    n_classes: int
    model: Any  # LogisticRegression or None
    index: Any  # NearestNeighbors over the index rows, or None
    index_rows: Array  # file rows of the index
    index_labels: Array
    prior: Array
    neighbors: int
    forest: Any  # IsolationForest or None
    cells: CellModels | None = None  # the association's bins and screen model
    grid: BurstGrid | None = None  # the burst check's grid


@dataclass(frozen=True)
class BurstGrid:
    """The burst check's radius for the whole file, and the grid its rows are counted in.

    ``scale`` is the median distance from a row to its nearest other row among all ``rows``
    of the file, estimated from the sample: measured on ``measured`` sample rows (``near``)
    and on a quarter of them, whose ratio gives the data's dimension ``dims`` (the distance
    shrinks as n^(-1/dims)), then carried to ``rows``. ``radius`` = ``[data.checks.bursts]
    .radius`` x ``scale``, as in memory (where the median is measured on the rows searched);
    the grid's cells are ``_CELL`` x ``radius`` wide (standardized units).
    """

    near: float
    measured: int
    dims: float
    rows: int
    scale: float
    radius: float
    width: float


def _matrix(frame: pd.DataFrame, names: tuple[str, ...], fitted: _Fitted) -> Array:
    x: Array = frame[list(names)].astype("float64").to_numpy(copy=True)
    missing = np.isnan(x)
    if missing.any():
        x[missing] = np.take(fitted.median, np.nonzero(missing)[1])
    x -= fitted.mean
    x /= fitted.std
    return x


def _score_chunk(
    fitted: _Fitted,
    start: int,
    x: Array,
    *,
    one_thread: bool,
    y: Array | None = None,
    counted: Array | None = None,
) -> tuple[int, Array, Array, Array, tuple[Array, Array] | None, Array | None]:
    """Model probabilities, kNN vote shares and isolation scores of one chunk's rows, the
    association screen's counters of its rows ``counted`` (None: every row; labels ``y``),
    and each row's burst grid cell (``cell_hashes``; None without the burst check).

    ``one_thread``: BLAS and OpenMP (the kNN distance reduction) use one thread, for a process
    that shares the cores with others scoring chunks; otherwise only BLAS is held to one.
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    n = len(x)
    model_p = np.zeros((n, fitted.n_classes), dtype=np.float32)
    knn_p = np.zeros((n, fitted.n_classes), dtype=np.float32)
    iso = np.zeros(n, dtype=np.float32)
    with threadpool_limits(limits=1, user_api=None if one_thread else "blas"):
        if fitted.model is not None:
            model_p[:, fitted.model.classes_] = fitted.model.predict_proba(x)
        if fitted.index is not None:
            k = fitted.neighbors
            found = fitted.index.kneighbors(x, n_neighbors=k + 1, return_distance=False)
            rows = fitted.index_rows[found]
            own = np.arange(start, start + n)
            is_self = rows == own[:, None]
            keep = ~is_self
            keep[~is_self.any(axis=1), -1] = False  # not in the index: drop the farthest
            votes = fitted.index_labels[found[keep].reshape(n, k)]
            for c in range(fitted.n_classes):
                knn_p[:, c] = ((votes == c).sum(axis=1) + fitted.prior[c]) / (k + 1)
        if fitted.forest is not None:
            iso[:] = -fitted.forest.score_samples(x)
        tallies = None
        if fitted.cells is not None and y is not None:
            mine = slice(None) if counted is None else counted
            tallies = screen_tallies(fitted.cells, x[mine], y[mine])
    cells = None if fitted.grid is None else cell_hashes(x, fitted.grid.width)
    return start, model_p, knn_p, iso, tallies, cells


def _refit_chunk(
    models: CellModels, start: int, x: Array, y: Array, keep: Array | None
) -> tuple[int, tuple[Array, Array]]:
    """The association's second-stage counters of one chunk's rows ``keep`` (None: all)."""
    if keep is not None:
        x, y = x[keep], y[keep]
    return start, refit_tallies(models, x, y)


def _member_chunk(
    models: CellModels,
    start: int,
    x: Array,
    y: Array,
    keep: Array | None,
    *,
    hits: list[tuple[int, int, int]],
    below: float,
) -> tuple[int, list[Array]]:
    """Per significant cell, the file rows of one chunk that the association flags."""
    rows = np.arange(start, start + len(y)) if keep is None else start + np.flatnonzero(keep)
    if keep is not None:
        x, y = x[keep], y[keep]
    return start, [rows[found] for found in cell_members(models, hits, x, y, below)]


def _fit(
    sample: pd.DataFrame,
    contract: DataPolicy,
    *,
    seed: int,
    exclude: Array | None = None,
    rows: int | None = None,
) -> tuple[_Fitted, Array, Array]:
    """Fit standardization, label model, kNN index, forest and the association's bins and
    screen model on the sample (the association without the file rows ``exclude``), and the
    burst check's radius and grid for a file of ``rows`` rows (None: no burst check).

    Returns the fitted parts, the standardized sample, and its labels.
    """
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    checks = contract.checks
    names = numeric_columns(contract)
    raw = sample[list(names)].astype("float64").to_numpy(copy=True)
    median = np.nanmedian(raw, axis=0) if len(raw) else np.zeros(len(names))
    median = np.where(np.isnan(median), 0.0, median)
    missing = np.isnan(raw)
    raw[missing] = np.take(median, np.nonzero(missing)[1])
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    std[std == 0] = 1.0
    xs = (raw - mean) / std
    ys = encode_labels(sample[contract.label], contract.classes)
    n_classes = len(contract.classes)
    rows_of = sample.index.to_numpy(dtype=np.int64)
    model = index = forest = None
    index_rows = index_labels = np.zeros(0, dtype=np.int64)
    if checks.labels.enabled:
        fit = np.arange(len(ys))
        if fit.size > checks.labels.max_fit_rows:
            rng = np.random.default_rng(seed)
            fit = np.sort(rng.choice(fit, size=checks.labels.max_fit_rows, replace=False))
        with threadpool_limits(limits=1, user_api="blas"):
            model = LogisticRegression(max_iter=1000, C=1.0).fit(xs[fit], ys[fit])
        # The same index rows as knn_probabilities draws on the sample.
        if len(ys) <= checks.labels.max_index_rows:
            chosen = np.arange(len(ys))
        else:
            chosen = np.sort(
                np.random.default_rng(seed).choice(
                    len(ys), size=checks.labels.max_index_rows, replace=False
                )
            )
        index = NearestNeighbors().fit(xs[chosen])
        index_rows, index_labels = rows_of[chosen], ys[chosen]
    if checks.isolation.enabled:
        forest = IsolationForest(
            n_estimators=checks.isolation.trees, random_state=seed, n_jobs=1
        ).fit(xs)
    cells = None
    if checks.association.enabled and len(ys) and names:
        kept = _kept(rows_of, exclude)
        cells = fit_cell_models(
            xs[kept],
            ys[kept],
            n_classes=n_classes,
            check=checks.association,
            max_fit_rows=checks.labels.max_fit_rows,
            seed=seed,
        )
    grid = None
    if checks.bursts.enabled and names and rows is not None:
        grid = burst_grid(xs, check=checks.bursts, rows=rows, seed=seed)
    fitted = _Fitted(
        grid=grid,
        cells=cells,
        median=median,
        mean=mean,
        std=std,
        n_classes=n_classes,
        model=model,
        index=index,
        index_rows=index_rows,
        index_labels=index_labels,
        prior=np.bincount(ys, minlength=n_classes) / max(len(ys), 1),
        neighbors=min(checks.labels.neighbors, max(len(index_rows) - 1, 1)),
        forest=forest,
    )
    return fitted, xs, ys


def _kept(rows: Array, exclude: Array | None) -> Array:
    """Which of ``rows`` (file rows) are not in ``exclude`` (sorted file rows), as a mask."""
    if exclude is None or exclude.size == 0:
        return np.ones(rows.size, dtype=bool)
    return ~np.isin(rows, exclude)


# The burst grid's cells are this x the burst radius wide: rows within the radius of each
# other share a cell unless a cell boundary falls between them (per feature, a chance of their
# distance along it / the width), and clean rows almost never share one (a cell is 0.2 x the
# median nearest-neighbour distance wide).
_CELL = 2.0
# Two grids, the second shifted half a cell along every feature: a burst placed on the first
# grid's cell corners (its copies spread over 2^features cells, none shared) sits in the middle
# of a cell of the second; to split it in both, each grid needs features of its own.
_SHIFTS = (0.0, 0.5)
# Mixes the per-feature SipHashes of a row's cell into one 64-bit hash (pandas' own constant).
_MIX = np.uint64(1000003)


def _median_nearest(x: Array) -> float:
    """Median distance from a row of ``x`` to its nearest other row (positive distances)."""
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    nearest = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x)[0][:, 1]
    positive = nearest[nearest > 0]
    return float(np.median(positive)) if positive.size else 0.0


def burst_grid(xs: Array, *, check: BurstCheck, rows: int, seed: int) -> BurstGrid | None:
    """The burst radius for a file of ``rows`` rows from the standardized sample ``xs``, and
    the grid that counts them (None when the sample has no distance to measure, as in memory).

    The in-memory check's radius is ``radius`` x the median nearest-neighbour distance of the
    rows it searches; over every row of a larger file that distance is smaller (each row has
    more neighbours), so it is measured on at most ``max_rows`` sample rows and on a quarter of
    them, and carried to ``rows`` by the power law the two give: d = ln 4 / ln(quarter's /
    whole's). Kept from the larger one: a radius fitted on the sample would put more than
    ``min_copies`` clean rows within it in a file of few dimensions.
    """
    take = min(len(xs), check.max_rows)
    if take <= 4 * (check.min_copies + 1):
        return None
    order = np.random.default_rng(seed + 5).permutation(len(xs))[:take]
    near = _median_nearest(xs[order])
    quarter = _median_nearest(xs[order[: take // 4]])
    if near == 0.0:
        return None
    dims = np.inf
    if quarter > near:
        dims = max(1.0, float(np.log(4.0) / np.log(quarter / near)))
    scale = near * (take / max(rows, take)) ** (1.0 / dims)
    radius = check.radius * scale
    return BurstGrid(
        near=near,
        measured=take,
        dims=dims,
        rows=rows,
        scale=scale,
        radius=radius,
        width=_CELL * radius,
    )


def cell_hashes(x: Array, width: float) -> Array:
    """Per row of ``x`` and grid of ``_SHIFTS``, a 64-bit hash of the row's cell
    (``floor(x / width + shift)`` per feature); shape (rows, grids).

    Each feature's cell number is hashed with pandas' SipHash and the hashes are mixed; rows in
    one cell always get one hash, and rows in two cells the same hash only by a 64-bit chance
    (which puts more rows through the exact check, never fewer)."""
    out = np.zeros((len(x), len(_SHIFTS)), dtype=np.uint64)
    scaled = np.clip(x / width, -(2.0**52), 2.0**52)
    for g, shift in enumerate(_SHIFTS):
        cells = np.floor(scaled + shift).astype(np.int64)
        for j in range(cells.shape[1]):
            out[:, g] = (out[:, g] * _MIX) ^ pd.util.hash_array(cells[:, j])
    return out


def _pick_rows(start: int, x: Array, y: Array) -> tuple[int, Array, Array]:
    return start, x, y


def _burst_chunk(
    trees: tuple[Any, tuple[Any, ...]],
    start: int,
    x: Array,
    y: Array,
    own: Array,
    *,
    radius: float,
    min_copies: int,
) -> tuple[int, Array, Array, Array, Array, Array]:
    """Rows of one chunk with ``min_copies`` or more other shared-cell rows within ``radius``.

    ``trees``: a KD-tree of the rows sharing a cell, and one per class of them (None: no such
    row of that class); ``own``: each chunk row's position in the first, or -1. Per flagged
    row (chunk position): how many such rows lie within the radius, the ``min_copies``-th
    distance, the nearest ``_QUOTED`` (tree positions) and the count per class. Bounded by
    the flagged rows, however many rows a cell holds."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    tree, by_class = trees
    with threadpool_limits(limits=1, user_api="blas"):
        counts = tree.query_radius(x, radius, count_only=True) - (own >= 0)
        hit = np.flatnonzero(counts >= min_copies)
        mine = own[hit]
        nearest = min(min_copies + 1, len(tree.data))
        dist, ind = tree.query(x[hit], k=nearest) if hit.size else (np.zeros((0, nearest)),) * 2
        ind = ind.astype(np.int64)
        # Drop the row itself (exact copies tie at 0: it need not come first), else the farthest.
        drop = np.where(
            (ind == mine[:, None]).any(axis=1), np.argmax(ind == mine[:, None], axis=1), nearest - 1
        )
        keep = np.ones(ind.shape, dtype=bool)
        keep[np.arange(hit.size), drop] = False
        dist = dist[keep].reshape(hit.size, nearest - 1)
        ind = ind[keep].reshape(hit.size, nearest - 1)
        classes = np.zeros((hit.size, len(by_class)), dtype=np.int64)
        for c, part in enumerate(by_class):
            if part is not None and hit.size:
                classes[:, c] = part.query_radius(x[hit], radius, count_only=True)
        classes[np.flatnonzero(mine >= 0), y[hit][mine >= 0]] -= 1
    return start, hit, counts[hit], dist[:, min_copies - 1], ind[:, :_QUOTED], classes


# Rows quoted per burst row as examples.
_QUOTED = 3


def _bursts(
    reading: _Reading, fitted: _Fitted, grid: BurstGrid, cells: Array, labels: Array
) -> tuple[Flags, dict[str, float]]:
    """The burst check (DATA072) over every row: rows with ``min_copies`` or more other rows
    within the radius.

    Every row's grid cell was hashed while the rows were scored. The rows whose cell holds
    another row are collected in a second pass (clean rows almost never share a cell; a
    burst's copies mostly share their source's). When some of them lie close enough together
    to make a burst, a third pass counts, for every row, those rows within the radius: a copy a
    cell boundary split from the others is still within the radius of the rest."""
    import joblib  # noqa: PLC0415
    from sklearn.neighbors import KDTree  # noqa: PLC0415

    check = reading.contract.checks.bursts
    k = check.min_copies
    seconds: dict[str, float] = {}
    empty = Flags("burst", np.zeros(0, dtype=np.int64), np.zeros(0), ())
    together = np.zeros(len(cells), dtype=bool)
    for g in range(cells.shape[1]):
        _, inverse, counts = np.unique(cells[:, g], return_inverse=True, return_counts=True)
        together |= counts[inverse] >= 2
        del inverse
    shared = np.flatnonzero(together)
    del together
    if shared.size <= k:
        return empty, seconds

    start = time.perf_counter()

    def pick(first: int, x: Array, y: Array, keep: Array | None) -> Any:
        mine = shared[(shared >= first) & (shared < first + len(y))] - first
        return joblib.delayed(_pick_rows)(first, x[mine], y[mine])

    parts = list(_pass(reading, fitted, pick))
    points = np.concatenate([p[1] for p in parts])
    seconds["burst_collect_pass"] = time.perf_counter() - start
    tree = KDTree(points)
    # A row with min_copies shared-cell rows within the radius has them within twice the radius
    # of one another: without such a group no row can be flagged, and the last pass is skipped.
    close = tree.query_radius(points, 2 * grid.radius, count_only=True) - 1
    if int(close.max()) < k - 1:
        return empty, seconds

    start = time.perf_counter()
    names = reading.contract.classes
    codes = labels[shared]
    trees = (
        tree,
        tuple(
            KDTree(points[codes == c]) if (codes == c).any() else None for c in range(len(names))
        ),
    )

    def count(first: int, x: Array, y: Array, keep: Array | None) -> Any:
        rows = np.arange(first, first + len(y))
        at = np.minimum(np.searchsorted(shared, rows), shared.size - 1)
        own = np.where(shared[at] == rows, at, -1)
        return joblib.delayed(_burst_chunk)(
            trees, first, x, y, own, radius=grid.radius, min_copies=k
        )

    hits: list[int] = []
    scores: list[float] = []
    reasons: list[str] = []
    for first, hit, within, kth, quoted, classes in _pass(reading, fitted, count):
        for i, n, d, near, share in zip(hit, within, kth, quoted, classes, strict=True):
            hits.append(first + int(i))
            scores.append(1.0 - float(d) / grid.radius)
            reasons.append(
                f"{int(n)} other rows within {grid.radius:.3g} (radius {check.radius:g} x "
                f"{grid.scale:.3g}, the median nearest-neighbour distance over all "
                f"{grid.rows} rows, carried from {grid.near:.3g} on {grid.measured} sample rows "
                f"at dimension {grid.dims:.3g}; counted among the {shared.size} rows sharing "
                f"a grid cell with another), the {k}th at {float(d):.3g}; their "
                "labels: "
                + ", ".join(f"{names[c]} {int(m)}" for c, m in enumerate(share) if m)
                + f"; e.g. rows {', '.join(str(int(r)) for r in shared[near])}"
            )
    seconds["burst_count_pass"] = time.perf_counter() - start
    return (
        Flags(
            "burst",
            np.array(hits, dtype=np.int64),
            np.array(scores, dtype=np.float64),
            tuple(reasons),
        ),
        seconds,
    )


@dataclass(frozen=True)
class _Reading:
    """How the file is read again, and where the chunks run (see ``score_every_row``)."""

    path: Path
    contract: DataPolicy
    rows: int
    chunk_rows: int
    max_bytes: int | None
    scheduler: str | None
    jobs: int
    signature: tuple[int, int, int] | None
    exclude: Array | None = None


def _pass(reading: _Reading, fitted: _Fitted, task: Any) -> Iterator[Any]:
    """Read the file in chunks and run ``task(start, x, y, keep)`` (a ``joblib.delayed`` call)
    on each, locally or on the cluster; yield the results in file order.

    ``keep``: the chunk's rows not in ``reading.exclude`` (None: all of them). A chunk that no
    longer passes the contract, a row count or a file signature that changed since the scan is
    a DataError.
    """
    import joblib  # noqa: PLC0415

    from pipeline.data import check_contract  # noqa: PLC0415
    from pipeline.errors import DataError  # noqa: PLC0415
    from pipeline.evaluate import joblib_backend  # noqa: PLC0415
    from pipeline.stream import file_signature, iter_chunks  # noqa: PLC0415

    path, contract, rows = reading.path, reading.contract, reading.rows
    names = numeric_columns(contract)

    def changed(what: str) -> DataError:
        return DataError(f"{path}: the file changed while it was being scored ({what}); run again")

    seen = [0]

    def chunks() -> Iterator[Any]:
        # The same bounds as the scan's: a file swapped since is refused as it decodes.
        for chunk in iter_chunks(
            path,
            fmt=contract.resolved_format,
            chunk_rows=reading.chunk_rows,
            max_bytes=reading.max_bytes,
            max_chunk_bytes=contract.stream_chunk_bytes,
            max_rows=contract.max_rows,
            max_pages=contract.max_pages,
        ):
            clean, _ = check_contract(chunk.frame, contract)
            end = chunk.start + len(clean)
            if len(clean) != len(chunk.frame) or end > rows:
                raise changed(f"rows {chunk.start}-{chunk.start + len(chunk.frame) - 1}")
            seen[0] += len(clean)
            y = encode_labels(clean[contract.label], contract.classes)
            keep = None
            if reading.exclude is not None and reading.exclude.size:
                mask = _kept(np.arange(chunk.start, end), reading.exclude)
                keep = None if mask.all() else mask
            yield task(chunk.start, _matrix(clean, names, fitted), y, keep)

    with joblib_backend(reading.scheduler):
        n_jobs = -1 if reading.scheduler else reading.jobs
        yield from joblib.Parallel(n_jobs=n_jobs, pre_dispatch="2*n_jobs")(chunks())
    if seen[0] != rows:
        raise changed(f"{seen[0]} rows scored, {rows} scanned")
    if reading.signature is not None and file_signature(path) != reading.signature:
        raise changed("size, modification time or inode")


def _score_file(
    reading: _Reading, fitted: _Fitted
) -> tuple[Array, Array, Array, Array, tuple[Array, Array] | None, Array | None]:
    """Model probabilities, kNN vote shares, isolation scores and class codes of every row,
    the association screen's counters over every row not excluded, and every row's burst grid
    cells (8 bytes a row per grid; None without the burst check)."""
    import joblib  # noqa: PLC0415

    rows = reading.rows
    model_p = np.zeros((rows, fitted.n_classes), dtype=np.float32)
    knn_p = np.zeros((rows, fitted.n_classes), dtype=np.float32)
    iso = np.zeros(rows, dtype=np.float32)
    labels = np.zeros(rows, dtype=np.int16)
    # Several processes share the cores: each holds BLAS and OpenMP to one thread.
    one_thread = bool(reading.scheduler) or reading.jobs > 1

    def task(start: int, x: Array, y: Array, keep: Array | None) -> Any:
        labels[start : start + len(y)] = y
        return joblib.delayed(_score_chunk)(
            fitted, start, x, one_thread=one_thread, y=y, counted=keep
        )

    totals: tuple[Array, Array] | None = None
    grid = None if fitted.grid is None else np.zeros((rows, len(_SHIFTS)), dtype=np.uint64)
    for first, m, k, i, tallies, cells in _pass(reading, fitted, task):
        end = first + len(m)
        model_p[first:end], knn_p[first:end], iso[first:end] = m, k, i
        if tallies is not None:
            totals = tallies if totals is None else (totals[0] + tallies[0], totals[1] + tallies[1])
        if grid is not None and cells is not None:
            grid[first:end] = cells
    return model_p, knn_p, iso, labels, totals, grid


def _associations(
    reading: _Reading,
    cells: CellModels,
    fitted: _Fitted,
    *,
    screen: tuple[Array, Array],
    xs: Array,
    ys: Array,
    kept: Array,
    seed: int,
) -> tuple[Flags, dict[str, float]]:
    """The association test (DATA071) over every row: the screen's counters (taken while the
    rows were scored), then, for the ``max_refits`` strongest feature sets, a pass counting
    the cells with models refitted on the sample without those features, and, when a cell is
    significant, a pass collecting its rows."""
    import joblib  # noqa: PLC0415

    contract = reading.contract
    check = contract.checks.association
    seconds: dict[str, float] = {}
    begin = time.perf_counter()
    tested, sets = screen_candidates(cells, screen[0], screen[1], check)
    found: dict[int, tuple[float, str]] = {}
    if sets:
        start = time.perf_counter()
        models = with_refits(
            cells,
            xs[kept],
            ys[kept],
            sets,
            max_fit_rows=contract.checks.labels.max_fit_rows,
            seed=seed,
        )
        counts = np.zeros((len(sets), models.bins**2, models.n_classes), dtype=np.int64)
        sums = np.zeros(counts.shape)

        def refit(start: int, x: Array, y: Array, keep: Array | None) -> Any:
            return joblib.delayed(_refit_chunk)(models, start, x, y, keep)

        for _, (c, e) in _pass(reading, fitted, refit):
            counts += c
            sums += e
        hits = significant_cells(
            models,
            counts,
            sums,
            tested=tested,
            check=check,
            names=numeric_columns(contract),
            classes=contract.classes,
        )
        seconds["association_refit_pass"] = time.perf_counter() - start
        if hits:
            start = time.perf_counter()
            where = [h[0] for h in hits]

            def members(start: int, x: Array, y: Array, keep: Array | None) -> Any:
                return joblib.delayed(_member_chunk)(
                    models, start, x, y, keep, hits=where, below=check.member_below
                )

            for _, per_hit in _pass(reading, fitted, members):
                for (_, score, reason), rows in zip(hits, per_hit, strict=True):
                    for r in rows:
                        if int(r) not in found or found[int(r)][0] < score:
                            found[int(r)] = (score, reason)
            seconds["association_member_pass"] = time.perf_counter() - start
    keys = np.array(sorted(found), dtype=np.int64)
    flags = Flags(
        "association",
        keys,
        np.array([found[int(r)][0] for r in keys], dtype=np.float64),
        tuple(found[int(r)][1] for r in keys),
        seconds=time.perf_counter() - begin,
    )
    seconds["association"] = flags.seconds
    return flags, seconds


def score_every_row(
    path: Path,
    contract: DataPolicy,
    sample: pd.DataFrame,
    *,
    rows: int,
    chunk_rows: int,
    max_bytes: int | None,
    seed: int,
    scheduler: str | None = None,
    rates: Mapping[str, float] | None = None,
    jobs: int = 1,
    signature: tuple[int, int, int] | None = None,
    exclude: Array | None = None,
) -> tuple[list[Flags], dict[str, float]]:
    """The label, isolation and association checks on every one of the file's ``rows`` rows,
    in chunks.

    ``sample`` is the scan's seeded, stratified sample, indexed by file row. Returns the
    checks' flags (file rows, ``screened`` None: every row) and seconds per step.
    ``exclude``: file rows the association test leaves out (the range check's: beyond the
    approved range plus margin, as in memory). The association's bins and models come from
    the sample (every row, sample rows included, is scored by models fitted on the sample);
    its counters per (feature set, cell, class) cover every row. Without a
    Dask ``scheduler`` the chunks are scored by ``jobs`` local processes (the file is read
    here, in this process; each process holds BLAS and OpenMP to one thread when there are
    several); the scores do not depend on how many. ``signature`` is the file's
    (``pipeline.stream.file_signature``) when the scan read it: a file that changed since,
    or whose rows no longer pass the contract or number ``rows``, is a DataError.
    """
    checks = contract.checks
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    exclude = None if exclude is None else np.unique(np.asarray(exclude, dtype=np.int64))
    fitted, xs, ys = _fit(sample, contract, seed=seed, exclude=exclude, rows=rows)
    sample_scores = None
    if checks.labels.enabled:
        sample_scores = label_scores(
            xs, ys, n_classes=fitted.n_classes, check=checks.labels, seed=seed, scheduler=scheduler
        )
    seconds["fit_on_sample"] = time.perf_counter() - start

    start = time.perf_counter()
    reading = _Reading(
        path=path,
        contract=contract,
        rows=rows,
        chunk_rows=chunk_rows,
        max_bytes=max_bytes,
        scheduler=scheduler,
        jobs=jobs,
        signature=signature,
        exclude=exclude,
    )
    model_p, knn_p, iso, labels, screen, grid = _score_file(reading, fitted)
    seconds["score_every_row"] = time.perf_counter() - start

    found: list[Flags] = []
    sample_rows = sample.index.to_numpy(dtype=np.int64)
    if checks.labels.enabled and sample_scores is not None:
        start = time.perf_counter()
        # Sample rows keep their out-of-fold scores: exactly what the in-memory check computes.
        model_p[sample_rows] = sample_scores.model
        knn_p[sample_rows] = sample_scores.knn
        weight = checks.labels.model_weight
        model64 = model_p.astype(np.float64)
        knn64 = knn_p.astype(np.float64)
        scores = LabelScores(
            model=model64, knn=knn64, combined=weight * model64 + (1 - weight) * knn64
        )
        y = labels.astype(np.int64)
        label = label_flags(
            scores,
            y,
            classes=contract.classes,
            rates=rates,
            slack=checks.labels.witness_slack,
            alpha=checks.labels.witness_alpha,
            explained=checks.labels.witness_explained,
            min_excess=checks.labels.witness_min_excess,
            model_below=checks.labels.witness_model_below,
            # Reported as in memory (``poison._label_check``): beyond the approved snapshot's
            # own doubt, or every row with quarantine. The other checks' rows are not known
            # yet here, so none counts as explained: below that doubt no label row is reported
            # (in memory those another check also flags are).
            report_alpha=None if checks.quarantine else checks.labels.witness_alpha,
        )
        found.append(label)
        seconds["label_decision"] = time.perf_counter() - start
    if checks.isolation.enabled:
        score = iso.astype(np.float64)
        hit = np.flatnonzero(score >= checks.isolation.min_score)
        found.append(
            Flags(
                "isolation",
                hit,
                score[hit],
                tuple(
                    f"isolation score {score[r]:.3f} >= {checks.isolation.min_score:g}: far from "
                    "the bulk of the data (forest fitted on the sample)"
                    for r in hit
                ),
            )
        )
    if fitted.cells is not None and screen is not None:
        association, took = _associations(
            reading,
            fitted.cells,
            fitted,
            screen=screen,
            xs=xs,
            ys=ys,
            kept=_kept(sample_rows, exclude),
            seed=seed,
        )
        found.append(association)
        seconds.update(took)
    if checks.bursts.enabled:
        start = time.perf_counter()
        if fitted.grid is not None and grid is not None:
            burst, took = _bursts(reading, fitted, fitted.grid, grid, labels)
            seconds.update(took)
        else:  # no distance to measure a radius by (as in memory): nothing to flag
            burst = Flags("burst", np.zeros(0, dtype=np.int64), np.zeros(0), ())
        seconds["burst"] = time.perf_counter() - start
        found.append(replace(burst, seconds=seconds["burst"]))
    return found, seconds
