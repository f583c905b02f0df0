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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import DataPolicy
from pipeline.flags import Flags
from pipeline.poison import (
    LabelScores,
    encode_labels,
    label_flags,
    label_scores,
)
from pipeline.profile import numeric_columns

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


def _matrix(frame: pd.DataFrame, names: tuple[str, ...], fitted: _Fitted) -> Array:
    x: Array = frame[list(names)].astype("float64").to_numpy(copy=True)
    missing = np.isnan(x)
    if missing.any():
        x[missing] = np.take(fitted.median, np.nonzero(missing)[1])
    x -= fitted.mean
    x /= fitted.std
    return x


def _score_chunk(
    fitted: _Fitted, start: int, x: Array, *, one_thread: bool
) -> tuple[int, Array, Array, Array]:
    """Model probabilities, kNN vote shares and isolation scores of one chunk's rows.

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
    return start, model_p, knn_p, iso


def _fit(sample: pd.DataFrame, contract: DataPolicy, *, seed: int) -> tuple[_Fitted, Array, Array]:
    """Fit standardization, label model, kNN index and forest on the sample.

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
    fitted = _Fitted(
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


def _score_file(
    path: Path,
    contract: DataPolicy,
    fitted: _Fitted,
    *,
    rows: int,
    chunk_rows: int,
    max_bytes: int | None,
    scheduler: str | None,
    jobs: int,
    signature: tuple[int, int, int] | None,
) -> tuple[Array, Array, Array, Array]:
    """Model probabilities, kNN vote shares, isolation scores and class codes of every row."""
    import joblib  # noqa: PLC0415

    from pipeline.data import check_contract  # noqa: PLC0415
    from pipeline.errors import DataError  # noqa: PLC0415
    from pipeline.evaluate import joblib_backend  # noqa: PLC0415
    from pipeline.stream import file_signature, iter_chunks  # noqa: PLC0415

    names = numeric_columns(contract)
    model_p = np.zeros((rows, fitted.n_classes), dtype=np.float32)
    knn_p = np.zeros((rows, fitted.n_classes), dtype=np.float32)
    iso = np.zeros(rows, dtype=np.float32)
    labels = np.zeros(rows, dtype=np.int16)

    def changed(what: str) -> DataError:
        return DataError(f"{path}: the file changed while it was being scored ({what}); run again")

    # Several processes share the cores: each holds BLAS and OpenMP to one thread.
    one_thread = bool(scheduler) or jobs > 1

    def chunks() -> Iterator[Any]:
        # The same bounds as the scan's: a file swapped since is refused as it decodes.
        for chunk in iter_chunks(
            path,
            fmt=contract.resolved_format,
            chunk_rows=chunk_rows,
            max_bytes=max_bytes,
            max_chunk_bytes=contract.stream_chunk_bytes,
            max_rows=contract.max_rows,
            max_pages=contract.max_pages,
        ):
            clean, _ = check_contract(chunk.frame, contract)
            end = chunk.start + len(clean)
            if len(clean) != len(chunk.frame) or end > rows:
                raise changed(f"rows {chunk.start}-{chunk.start + len(chunk.frame) - 1}")
            labels[chunk.start : end] = encode_labels(clean[contract.label], contract.classes)
            yield joblib.delayed(_score_chunk)(
                fitted, chunk.start, _matrix(clean, names, fitted), one_thread=one_thread
            )

    scored = 0
    with joblib_backend(scheduler):
        n_jobs = -1 if scheduler else jobs
        for first, m, k, i in joblib.Parallel(n_jobs=n_jobs, pre_dispatch="2*n_jobs")(chunks()):
            end = first + len(m)
            model_p[first:end], knn_p[first:end], iso[first:end] = m, k, i
            scored += len(m)
    if scored != rows:
        raise changed(f"{scored} rows scored, {rows} scanned")
    if signature is not None and file_signature(path) != signature:
        raise changed("size, modification time or inode")
    return model_p, knn_p, iso, labels


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
) -> tuple[list[Flags], dict[str, float]]:
    """The label and isolation checks on every one of the file's ``rows`` rows, in chunks.

    ``sample`` is the scan's seeded, stratified sample, indexed by file row. Returns the two
    checks' flags (file rows, ``screened`` None: every row) and seconds per step. Without a
    Dask ``scheduler`` the chunks are scored by ``jobs`` local processes (the file is read
    here, in this process; each process holds BLAS and OpenMP to one thread when there are
    several); the scores do not depend on how many. ``signature`` is the file's
    (``pipeline.stream.file_signature``) when the scan read it: a file that changed since,
    or whose rows no longer pass the contract or number ``rows``, is a DataError.
    """
    checks = contract.checks
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    fitted, xs, ys = _fit(sample, contract, seed=seed)
    sample_scores = None
    if checks.labels.enabled:
        sample_scores = label_scores(
            xs, ys, n_classes=fitted.n_classes, check=checks.labels, seed=seed, scheduler=scheduler
        )
    seconds["fit_on_sample"] = time.perf_counter() - start

    start = time.perf_counter()
    model_p, knn_p, iso, labels = _score_file(
        path,
        contract,
        fitted,
        rows=rows,
        chunk_rows=chunk_rows,
        max_bytes=max_bytes,
        scheduler=scheduler,
        jobs=jobs,
        signature=signature,
    )
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
    return found, seconds
