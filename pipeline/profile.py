"""Reference profiles of an approved data snapshot, their differences, and drift (PSI) against them."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import DataPolicy
from pipeline.errors import DataError

PROFILE_VERSION = 1
# Deciles: ten bins per numeric column are the usual PSI resolution (Siddiqi, "Credit Risk
# Scorecards", 2006) and keep the lock small.
QUANTILES: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))
# Row digests let `approve` name rows added/removed/changed by id; above this many rows the
# lock would grow too large, so only counts are reported.
MAX_ROW_DIGESTS = 100_000
# PSI is undefined for an empty bin; the customary floor.
_PSI_FLOOR = 1e-4

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class ColumnProfile:
    """What the reference snapshot looked like in one column."""

    name: str
    kind: str  # "numeric" or "categorical"
    null_share: float
    minimum: float | None = None
    maximum: float | None = None
    quantiles: tuple[float, ...] = ()
    bin_shares: tuple[float, ...] = ()
    categories: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {"kind": self.kind, "null_share": self.null_share}
        if self.kind == "numeric":
            data.update(
                min=self.minimum,
                max=self.maximum,
                quantiles=list(self.quantiles),
                bin_shares=list(self.bin_shares),
            )
        else:
            data["categories"] = dict(self.categories)
        return data

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> ColumnProfile:
        """Inverse of ``to_dict``."""
        kind = str(data["kind"])
        if kind not in ("numeric", "categorical"):
            msg = f"kind {kind!r}"
            raise ValueError(msg)
        return cls(
            name=name,
            kind=kind,
            null_share=float(data["null_share"]),
            minimum=_opt_float(data.get("min")),
            maximum=_opt_float(data.get("max")),
            quantiles=tuple(float(v) for v in data.get("quantiles", ())),
            bin_shares=tuple(float(v) for v in data.get("bin_shares", ())),
            categories={str(k): float(v) for k, v in data.get("categories", {}).items()},
        )


@dataclass(frozen=True)
class ClassMoments:
    """One class of the approved snapshot: its rows, mean vector and covariance (raw units)."""

    rows: int
    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rows": self.rows, "mean": list(self.mean), "cov": [list(r) for r in self.cov]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], dims: int) -> ClassMoments:
        """Inverse of ``to_dict``; ValueError unless the shapes match ``dims`` features."""
        mean = tuple(float(v) for v in data["mean"])
        cov = tuple(tuple(float(v) for v in row) for row in data["cov"])
        rows = int(data["rows"])
        if rows < 2 or len(mean) != dims or len(cov) != dims or any(len(r) != dims for r in cov):
            msg = f"class moments of {dims} features with at least 2 rows"
            raise ValueError(msg)
        if not all(math.isfinite(v) for v in (*mean, *(v for r in cov for v in r))):
            msg = "finite class moments"
            raise ValueError(msg)
        return cls(rows=rows, mean=mean, cov=cov)


@dataclass(frozen=True)
class DataProfile:
    """A snapshot's profile: rows, per-column profiles, class balance, and row digests by id."""

    rows: int
    columns: dict[str, ColumnProfile]
    class_balance: dict[str, float]
    row_digests: dict[str, str] | None = None
    # Share of rows each label-disagreement witness flags on this snapshot ("knn": fewer than
    # half of a row's neighbours share its label; "both": the neighbours and the out-of-fold
    # model both give its label less than 0.5). The data gate adds the excess over these rates
    # to the label check.
    label_rates: dict[str, float] | None = None
    # Per class, the mean and covariance of the numeric features ``moment_columns`` (in that
    # order): the yardstick of the whole-table class-conditional shift test (DATA043). None in
    # a lock approved before they were recorded, or with more than
    # [data.checks.class_means].max_features features.
    moment_columns: tuple[str, ...] = ()
    class_moments: dict[str, ClassMoments] | None = None
    # (rows the near-duplicate check flagged, rows it looked at) on this snapshot: the
    # whole-table near-copy check (DATA052) fails beyond max_near_share only when the table's
    # count also exceeds this share significantly. None (a lock approved before it was
    # recorded): max_near_share alone decides.
    near_copies: tuple[int, int] | None = None
    # The features whose values ``row_digests`` joined, in that order (the contract's when
    # approved). The gate digests the table's rows in this order, not the pull request's
    # contract's: the policy comparison reads ``[data.columns]`` as a table, so reordering it
    # is no change there, and every approved row read as new (red team 15). Empty (a lock
    # approved before it was recorded): the contract's order.
    digest_columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
            "class_balance": dict(self.class_balance),
        }
        if self.row_digests is not None:
            data["row_digests"] = dict(self.row_digests)
            if self.digest_columns:
                data["digest_columns"] = list(self.digest_columns)
        if self.label_rates is not None:
            data["label_rates"] = dict(self.label_rates)
        if self.near_copies is not None:
            data["near_copies"] = {"flagged": self.near_copies[0], "rows": self.near_copies[1]}
        if self.class_moments is not None:
            data["class_moments"] = {
                "columns": list(self.moment_columns),
                "classes": {k: m.to_dict() for k, m in self.class_moments.items()},
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataProfile:
        """Inverse of ``to_dict``; raises KeyError, TypeError or ValueError when malformed."""
        if data["version"] != PROFILE_VERSION:
            msg = f"profile version {data['version']!r}, expected {PROFILE_VERSION}"
            raise ValueError(msg)
        digests = data.get("row_digests")
        rates = data.get("label_rates")
        moments = data.get("class_moments")
        columns: tuple[str, ...] = ()
        by_class: dict[str, ClassMoments] | None = None
        if moments is not None:
            columns = tuple(str(c) for c in moments["columns"])
            by_class = {
                str(k): ClassMoments.from_dict(v, len(columns))
                for k, v in moments["classes"].items()
            }
        return cls(
            rows=int(data["rows"]),
            columns={
                str(name): ColumnProfile.from_dict(str(name), col)
                for name, col in data["columns"].items()
            },
            class_balance={str(k): float(v) for k, v in data["class_balance"].items()},
            row_digests={str(k): str(v) for k, v in digests.items()} if digests else None,
            label_rates={str(k): _fraction(v) for k, v in rates.items()} if rates else None,
            moment_columns=columns,
            class_moments=by_class,
            near_copies=_near_copies(data.get("near_copies")),
            digest_columns=_names(data.get("digest_columns", [])),
        )


def _names(value: Any) -> tuple[str, ...]:
    """The lock's ``digest_columns``: ValueError unless a list of distinct strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"digest_columns {value!r}: expected a list of column names"
        raise ValueError(msg)
    if len(set(value)) != len(value):
        msg = f"digest_columns {value!r}: a column named twice"
        raise ValueError(msg)
    return tuple(value)


def _near_copies(value: Any) -> tuple[int, int] | None:
    """The lock's ``near_copies`` as (flagged, rows); ValueError unless 0 <= flagged <= rows."""
    if value is None:
        return None
    flagged, rows = value["flagged"], value["rows"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (flagged, rows)):
        msg = f"near_copies {value!r}: flagged and rows must be integers"
        raise ValueError(msg)
    if not 0 <= flagged <= rows:
        msg = f"near_copies {value!r}: expected 0 <= flagged <= rows"
        raise ValueError(msg)
    return int(flagged), int(rows)


def _fraction(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        msg = f"label rate {value!r} outside [0, 1]"
        raise ValueError(msg)
    return number


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def stable_round(value: float) -> float:
    """``value`` to 10 significant digits, as every share and quantile in a profile is kept."""
    # Stable JSON across platforms: 10 significant digits is far below any threshold we use.
    return float(f"{value:.10g}")


def numeric_columns(contract: DataPolicy) -> tuple[str, ...]:
    """Feature columns the numeric checks read: int64, float64 and bool, never the id column."""
    return tuple(
        name
        for name in contract.feature_columns
        if contract.columns[name].dtype in ("float64", "int64", "bool")
    )


def numeric_values(series: pd.Series) -> Array:
    """A numeric (or bool) column's non-null values as float64."""
    values: Array = series.astype("float64").to_numpy()
    return values[~np.isnan(values)]


def count_into(counts: dict[str, int], series: pd.Series) -> None:
    """Add how often each value of ``series`` occurs (as text) to ``counts``."""
    for value, n in series.astype(str).value_counts().items():
        counts[str(value)] = counts.get(str(value), 0) + int(n)


@dataclass
class ColumnStats:
    """What merges exactly over chunks for one feature column."""

    name: str
    rows: int = 0
    nulls: int = 0
    count: int = 0
    minimum: float | None = None
    maximum: float | None = None
    categories: dict[str, int] = field(default_factory=dict)


class ProfileCounts:
    """The exact part of a profile, counted over a table or chunk by chunk.

    Rows, nulls, min/max and categories per column, the class counts and the row digests
    merge over chunks exactly; the deciles do not, so ``profile`` is given them (and the rows
    per decile bin): ``build_profile`` from numpy over the whole table, the streaming path
    from its histogram passes.
    """

    def __init__(self, contract: DataPolicy) -> None:
        self.contract = contract
        self.numeric = numeric_columns(contract)
        self.rows = 0
        self.columns = {name: ColumnStats(name) for name in contract.feature_columns}
        self.classes: dict[str, int] = {}
        self.digests: dict[str, str] | None = {} if contract.id_column is not None else None

    def add(self, clean: pd.DataFrame) -> None:
        """Count a contract-clean chunk (as ``check_contract`` returns it)."""
        self.rows += len(clean)
        for name, stats in self.columns.items():
            series = clean[name]
            stats.rows += len(series)
            stats.nulls += int(series.isna().sum())
            if name not in self.numeric:
                count_into(stats.categories, series.dropna())
                continue
            values = numeric_values(series)
            if values.size:
                low, high = float(values.min()), float(values.max())
                stats.count += int(values.size)
                stats.minimum = low if stats.minimum is None else min(stats.minimum, low)
                stats.maximum = high if stats.maximum is None else max(stats.maximum, high)
        count_into(self.classes, clean[self.contract.label])
        if self.digests is not None:
            if self.rows <= MAX_ROW_DIGESTS:
                self.digests.update(row_digests(clean, self.contract))
            else:
                self.digests = None

    def profile(
        self, quantiles: Mapping[str, tuple[float, ...]], bins: Mapping[str, Array]
    ) -> DataProfile:
        """The profile, given each numeric column's deciles and its rows per decile bin."""
        total = sum(self.classes.values())
        return DataProfile(
            rows=self.rows,
            columns={
                name: _column_profile(
                    stats,
                    numeric=name in self.numeric,
                    quantiles=quantiles.get(name, ()),
                    counts=bins.get(name),
                )
                for name, stats in self.columns.items()
            },
            class_balance={
                c: stable_round(self.classes.get(c, 0) / total) if total else 0.0
                for c in self.contract.classes
            },
            row_digests=self.digests,
            digest_columns=self.contract.feature_columns if self.digests is not None else (),
        )


def _column_profile(
    stats: ColumnStats, *, numeric: bool, quantiles: tuple[float, ...], counts: Array | None
) -> ColumnProfile:
    """A column's profile from its counts, deciles and rows per decile bin."""
    name = stats.name
    null_share = stable_round(stats.nulls / stats.rows) if stats.rows else 0.0
    if not numeric:
        total = sum(stats.categories.values())
        return ColumnProfile(
            name=name,
            kind="categorical",
            null_share=null_share,
            categories={k: stable_round(v / total) for k, v in sorted(stats.categories.items())},
        )
    if not stats.count or counts is None:
        return ColumnProfile(name=name, kind="numeric", null_share=null_share)
    total = max(int(counts.sum()), 1)
    return ColumnProfile(
        name=name,
        kind="numeric",
        null_share=null_share,
        # Exact (not rounded): a rounded max would put the real max out of range.
        minimum=stats.minimum,
        maximum=stats.maximum,
        quantiles=quantiles,
        bin_shares=tuple(stable_round(float(c) / total) for c in counts),
    )


def build_profile(clean: pd.DataFrame, contract: DataPolicy) -> DataProfile:
    """Profile a contract-clean frame (as returned by ``check_contract``): exact deciles."""
    counts = ProfileCounts(contract)
    counts.add(clean)
    quantiles: dict[str, tuple[float, ...]] = {}
    bins: dict[str, Array] = {}
    for name in counts.numeric:
        values = numeric_values(clean[name])
        if values.size:
            quantiles[name] = tuple(stable_round(float(q)) for q in np.quantile(values, QUANTILES))
            bins[name] = bin_counts(values, quantiles[name])
    profile = counts.profile(quantiles, bins)
    columns, moments = class_moments(clean, contract)
    return replace(profile, moment_columns=columns, class_moments=moments)


def raw_matrix(clean: pd.DataFrame, columns: tuple[str, ...]) -> Array:
    """Numeric features as float64 in their own units, nulls imputed with the column median."""
    matrix: Array = clean[list(columns)].astype("float64").to_numpy(copy=True)
    for j in range(matrix.shape[1]):
        column = matrix[:, j]
        missing = np.isnan(column)
        if missing.any():
            column[missing] = np.nanmedian(column) if (~missing).any() else 0.0
    return matrix


def class_moments(
    clean: pd.DataFrame, contract: DataPolicy
) -> tuple[tuple[str, ...], dict[str, ClassMoments] | None]:
    """Per class (at least 2 rows), the mean and covariance of the numeric features.

    None when the check is disabled, or with no numeric feature or more than
    ``[data.checks.class_means].max_features`` of them (d x d numbers per class in the lock).
    The numbers are ``np.cov``'s (the mean first, then the centred cross-products over
    n - 1), summed over blocks of rows in two passes: memory is one block, not a float64 copy
    of the features and of each class (about 2.5 copies of the table, +386 MiB at 1M x 20).
    """
    check = contract.checks.class_means
    columns = numeric_columns(contract)
    if not check.enabled or not columns or len(columns) > check.max_features:
        return (), None
    fills = _fill_values(clean, columns)
    labels = clean[contract.label].astype("string").to_numpy(dtype=object)
    dims = len(columns)
    rows, sums = _class_sums(clean, columns, fills, labels)
    kept = [c for c in sorted(rows) if rows[c] >= 2]  # a covariance needs two rows
    means = {c: sums[c] / rows[c] for c in kept}
    cross = {c: np.zeros((dims, dims)) for c in kept}
    for start, block in _raw_blocks(clean, columns, fills):
        found = labels[start : start + len(block)]
        for cls in kept:
            centred = block[found == cls] - means[cls]
            cross[cls] += centred.T @ centred
    return columns, {
        cls: ClassMoments(
            rows=rows[cls],
            mean=tuple(stable_round(float(v)) for v in means[cls]),
            cov=tuple(
                tuple(stable_round(float(v)) for v in row) for row in cross[cls] / (rows[cls] - 1)
            ),
        )
        for cls in kept
    }


# Rows per block in ``class_moments``: 8 MiB of float64 at 20 features, 40 MiB at the
# largest ``max_features`` (1,000).
_MOMENT_BLOCK_ROWS = 50_000


def _fill_values(clean: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, float]:
    """What ``raw_matrix`` puts in a column's nulls: its median (0.0 when all are null)."""
    fills: dict[str, float] = {}
    for name in columns:
        column = clean[name].astype("float64").to_numpy()
        missing = np.isnan(column)
        if missing.any():
            fills[name] = float(np.nanmedian(column)) if (~missing).any() else 0.0
    return fills


def _class_sums(
    clean: pd.DataFrame, columns: tuple[str, ...], fills: dict[str, float], labels: Array
) -> tuple[dict[str, int], dict[str, Array]]:
    """Per class label, its rows and the sum of its ``raw_matrix`` rows, a block at a time."""
    classes = sorted({str(v) for v in labels})
    rows = dict.fromkeys(classes, 0)
    sums = {c: np.zeros(len(columns)) for c in classes}
    for start, block in _raw_blocks(clean, columns, fills):
        found = labels[start : start + len(block)]
        for cls in classes:
            part = block[found == cls]
            rows[cls] += len(part)
            sums[cls] += part.sum(axis=0)
    return rows, sums


def _raw_blocks(
    clean: pd.DataFrame, columns: tuple[str, ...], fills: dict[str, float]
) -> Iterator[tuple[int, Array]]:
    """``raw_matrix`` a block of rows at a time: (first row, float64 rows x columns)."""
    for start in range(0, len(clean), _MOMENT_BLOCK_ROWS):
        stop = min(start + _MOMENT_BLOCK_ROWS, len(clean))
        block: Array = np.empty((stop - start, len(columns)))
        for j, name in enumerate(columns):
            column = clean[name].iloc[start:stop].astype("float64").to_numpy()
            block[:, j] = (
                np.where(np.isnan(column), fills[name], column) if name in fills else column
            )
        yield start, block


@dataclass(frozen=True)
class ClassMeanShift:
    """One class's mean vector in the table against the approved snapshot's (DATA043)."""

    cls: str
    rows: int
    approved_rows: int
    dims: int
    t2: float
    pvalue: float  # Bonferroni-adjusted over the classes tested
    worst_column: str
    worst_shift: float  # in approved within-class standard deviations


def class_mean_shifts(
    clean: pd.DataFrame, contract: DataPolicy, reference: DataProfile
) -> list[ClassMeanShift]:
    """Each class's mean in the table against the approved class's mean and covariance.

    One-sample Hotelling T^2 on the approved class's leading principal axes (eigenvalues above
    1e-9 of the largest, at most ``dims_share`` x its approved rows of them, as DATA107 does:
    the smallest axes of a covariance estimated from few rows are noise, and with every axis
    the test failed 75% of disjoint clean halves of digits-10): T^2 = d' S^-1 d / (1/n + 1/m), with d the
    difference of the means, S the approved covariance (m rows) and n the table's rows of the
    class; (m - k) / (k (m - 1)) T^2 follows F(k, m - k) when the table's rows come from the
    approved class's distribution (a table that shares rows with the snapshot varies less,
    so the test is conservative there). Bonferroni over the classes tested. Empty without
    recorded moments or without a numeric column both the moments and the contract name.

    The columns are matched by name (``moment_columns``): a contract that lists them in
    another order (no policy change by meaning) or drops some is tested on the columns both
    name, the recorded mean and covariance restricted to them (the marginal of the approved
    moments). Comparing the tuples skipped the test on a reordered ``[data.columns]``, with a
    warning only (red team 15).
    """
    columns, _ = moment_overlap(reference, contract)
    if not reference.class_moments or not columns:
        return []
    # The class sums a block of rows at a time (as class_moments): no float64 copy of the
    # table, nor of each class's rows.
    labels = clean[contract.label].astype("string").to_numpy(dtype=object)
    counts, sums = _class_sums(clean, columns, _fill_values(clean, columns), labels)
    return mean_shifts(counts, sums, contract, reference)


class ClassSums:
    """Rows and feature sums per class over ``moment_overlap``'s columns, chunk by chunk: what
    ``mean_shifts`` needs, so the streaming path runs DATA043 too (red team 15: a table padded
    past ``stream_above_mb`` ran no class-mean test and said nothing). A null counts as the
    approved median (the reference's middle decile; the in-memory path uses the table's own,
    not known before the last chunk)."""

    def __init__(self, reference: DataProfile, contract: DataPolicy) -> None:
        self.reference = reference
        self.contract = contract
        self.columns, _ = moment_overlap(reference, contract)
        self.fills = {}
        for name in self.columns:
            column = reference.columns.get(name)
            deciles = column.quantiles if column is not None else ()
            self.fills[name] = float(deciles[len(deciles) // 2]) if deciles else 0.0
        self.counts: dict[str, int] = {}
        self.sums: dict[str, Array] = {}

    def add(self, clean: pd.DataFrame) -> None:
        """Count a contract-clean chunk."""
        if not self.columns:
            return
        labels = clean[self.contract.label].astype("string").to_numpy(dtype=object)
        counts, sums = _class_sums(clean, self.columns, self.fills, labels)
        for cls, n in counts.items():
            self.counts[cls] = self.counts.get(cls, 0) + n
            self.sums[cls] = self.sums[cls] + sums[cls] if cls in self.sums else sums[cls]

    def shifts(self) -> list[ClassMeanShift]:
        """``mean_shifts`` over every chunk counted."""
        if not self.reference.class_moments or not self.columns:
            return []
        return mean_shifts(self.counts, self.sums, self.contract, self.reference)


def mean_shifts(
    counts: Mapping[str, int],
    sums: Mapping[str, Array],
    contract: DataPolicy,
    reference: DataProfile,
) -> list[ClassMeanShift]:
    """``class_mean_shifts`` from each class's rows and feature sums over ``moment_overlap``'s
    columns."""
    from scipy.stats import f as f_dist  # noqa: PLC0415 - heavy, used here only

    moments = reference.class_moments or {}
    columns, keep = moment_overlap(reference, contract)
    check = contract.checks.class_means
    found: list[tuple[str, int, int, int, float, float, str, float]] = []
    for cls, ref in sorted(moments.items()):
        n, m = counts.get(cls, 0), ref.rows
        if n == 0 or m < 3:  # F(k, m - k) with k <= m - 2
            continue
        cov = np.asarray(ref.cov, dtype=float)[np.ix_(keep, keep)]
        diff = sums[cls] / n - np.asarray(ref.mean, dtype=float)[keep]
        # Principal axes in the features' own units, as the approved covariance has them. On
        # the correlation scale instead, near-constant features (a digit's mostly blank
        # pixel) become axes of their own and one new row moves them by many SDs: 2 of 40
        # grown clean digits-10 tables failed, none in these units (bench/poisoning.py).
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        if values[0] <= 0:
            continue
        rank = int((values > 1e-9 * values[0]).sum())
        k = max(1, min(rank, int(check.dims_share * m), m - 2))
        z = vectors[:, :k].T @ diff
        t2 = float((z**2 / values[:k]).sum()) / (1.0 / n + 1.0 / m)
        pvalue = float(f_dist.sf((m - k) / (k * (m - 1)) * t2, k, m - k))
        variances = np.diag(cov)
        standardized = np.where(variances > 0, diff / np.sqrt(np.maximum(variances, 1e-300)), 0.0)
        worst = int(np.argmax(np.abs(standardized)))
        found.append((cls, n, m, k, t2, pvalue, columns[worst], float(standardized[worst])))
    tested = len(found)
    return [
        ClassMeanShift(c, n, m, k, t2, min(1.0, p * tested), col, shift)
        for c, n, m, k, t2, p, col, shift in found
    ]


def moment_overlap(reference: DataProfile, contract: DataPolicy) -> tuple[tuple[str, ...], Array]:
    """The contract's numeric columns that the reference's class moments record (in the
    contract's order), and each one's index in ``moment_columns``."""
    recorded = {name: i for i, name in enumerate(reference.moment_columns)}
    columns = tuple(c for c in numeric_columns(contract) if c in recorded)
    return columns, np.array([recorded[c] for c in columns], dtype=int)


def row_digests(
    clean: pd.DataFrame, contract: DataPolicy, columns: tuple[str, ...] = ()
) -> dict[str, str]:
    """A 16-hex SHA-256 of each row's features and label, by id text (empty without an id).

    ``columns``: the features in the order an approval joined them (``digest_columns``);
    empty: the contract's feature columns in its order."""
    if contract.id_column is None:
        return {}
    ids = [id_text(v) for v in clean[contract.id_column]]
    return dict(zip(ids, row_digest_list(clean, contract, columns), strict=True))


def row_digest_list(
    clean: pd.DataFrame, contract: DataPolicy, columns: tuple[str, ...] = ()
) -> list[str]:
    """``row_digests``' digest of each row, in the table's order: one per row also where an id
    repeats (a dict by id keeps the last row of each id)."""
    body = [*(columns or contract.feature_columns), contract.label]
    # Column-wise concatenation stays vectorized (a row-wise join is 50x slower).
    text = _cells_text(clean[body[0]])
    for name in body[1:]:
        text = text + "\x1f" + _cells_text(clean[name])
    return [hashlib.sha256(t.encode("utf-8")).hexdigest()[:16] for t in text]


# What a null reads as in ``str``: pd.NA, None, NaN.
_NULL_TEXT = frozenset({"<NA>", "None", "nan"})


def _cells_text(column: pd.Series) -> pd.Series:
    """Each cell as ``row_digest_list`` joins it: ``str`` of the value, except text that reads
    as a null or holds the separator ``\x1f`` (or the escape ``\x1b``), which is written
    ``\x1b`` + the text with ``\x1b`` and ``\x1f`` escaped by ``\x1b``. A blank string cell
    (null, ``<NA>``) and a cell holding ``<NA>`` had one digest while the model saw ``""`` and
    ``<NA>`` (red team 19); a null's text, and so every digest a lock recorded, is unchanged.
    """
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype(object).map(str)
    return column.astype(object).map(_cell_text)


def _cell_text(value: Any) -> str:
    text = str(value)
    if isinstance(value, str) and (text in _NULL_TEXT or "\x1f" in text or "\x1b" in text):
        return "\x1b" + text.replace("\x1b", "\x1b\x1b").replace("\x1f", "\x1b\x1f")
    return text


def id_text(value: Any) -> str:
    """An id as text: int64 ids arrive as float64 after the contract's parse, and 298.0 reads as 298."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bin_counts(values: np.ndarray[Any, Any], quantiles: tuple[float, ...]) -> np.ndarray[Any, Any]:
    """Counts per decile bin of the reference; values outside the reference go to the end bins."""
    interior = np.asarray(quantiles[1:-1], dtype="float64")
    # side="right": a value equal to an edge falls in the upper bin, as np.histogram does.
    index = np.searchsorted(interior, values, side="right")
    return np.bincount(index, minlength=len(quantiles) - 1)


def psi(
    expected: tuple[float, ...] | list[float], actual: tuple[float, ...] | list[float]
) -> float:
    """Population stability index between two share vectors of the same bins."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_, a_ = max(e, _PSI_FLOOR), max(a, _PSI_FLOOR)
        total += (a_ - e_) * math.log(a_ / e_)
    return total


@dataclass(frozen=True)
class ColumnDrift:
    """PSI of one column against the reference profile."""

    column: str
    psi: float


class DriftCounts:
    """Rows per reference decile bin and per category, over a table or chunk by chunk.

    PSI needs only these counts, so the drift of a file read in chunks is the drift of the
    whole: ``column_drift`` is this over one chunk.
    """

    def __init__(self, reference: DataProfile) -> None:
        self.reference = reference
        self.bins: dict[str, Array] = {}
        self.categories: dict[str, dict[str, int]] = {}

    def add(self, clean: pd.DataFrame) -> None:
        """Count a contract-clean chunk."""
        for name, ref in self.reference.columns.items():
            if name not in clean.columns:
                continue
            if ref.kind != "numeric":
                count_into(self.categories.setdefault(name, {}), clean[name].dropna())
            elif ref.quantiles:
                counts = bin_counts(numeric_values(clean[name]), ref.quantiles)
                self.bins[name] = self.bins[name] + counts if name in self.bins else counts

    def drift(self) -> list[ColumnDrift]:
        """PSI per column counted (a numeric column needs a value)."""
        found = []
        for name, ref in self.reference.columns.items():
            if ref.kind == "numeric":
                counts = self.bins.get(name)
                if counts is None or int(counts.sum()) == 0:
                    continue
                total = int(counts.sum())
                found.append(
                    ColumnDrift(name, psi(list(ref.bin_shares), [float(c) / total for c in counts]))
                )
            elif name in self.categories:
                held = self.categories[name]
                total = sum(held.values())
                keys = sorted(set(ref.categories) | set(held))
                found.append(
                    ColumnDrift(
                        name,
                        psi(
                            [ref.categories.get(k, 0.0) for k in keys],
                            [held.get(k, 0) / total if total else 0.0 for k in keys],
                        ),
                    )
                )
        return found


def column_drift(clean: pd.DataFrame, reference: DataProfile) -> list[ColumnDrift]:
    """PSI per column present in both the data and the reference profile."""
    counts = DriftCounts(reference)
    counts.add(clean)
    return counts.drift()


def class_shift(labels: pd.Series, reference: DataProfile) -> tuple[str, float]:
    """The class whose share moved most against the reference, and by how much (absolute)."""
    counts: dict[str, int] = {}
    count_into(counts, labels)
    return shift_of(counts, reference)


def shift_of(counts: Mapping[str, int], reference: DataProfile) -> tuple[str, float]:
    """``class_shift`` from the rows per class."""
    total = sum(counts.values())
    worst, amount = "", 0.0
    for cls in sorted(set(reference.class_balance) | set(counts)):
        share = counts.get(cls, 0) / total if total else 0.0
        moved = abs(share - reference.class_balance.get(cls, 0.0))
        if moved > amount:
            worst, amount = cls, moved
    return worst, amount


def describe_changes(old: DataProfile | None, new: DataProfile) -> list[str]:
    """Lines a reviewer reads: rows added/removed/changed, columns, categories, class balance."""
    if old is None:
        return ["first profiled approval: no earlier profile to compare with"]
    lines = [f"rows {old.rows} -> {new.rows} ({new.rows - old.rows:+d})"]
    if old.row_digests is not None and new.row_digests is not None:
        before, after = old.row_digests, new.row_digests
        added = sorted(set(after) - set(before), key=_id_key)
        removed = sorted(set(before) - set(after), key=_id_key)
        changed = sorted(
            (i for i in set(after) & set(before) if after[i] != before[i]), key=_id_key
        )
        for word, ids in (("added", added), ("removed", removed), ("changed", changed)):
            if ids:
                lines.append(f"rows {word} ({len(ids)}): ids {_shown(ids)}")
    new_cols = [c for c in new.columns if c not in old.columns]
    gone_cols = [c for c in old.columns if c not in new.columns]
    if new_cols:
        lines.append(f"new columns: {', '.join(new_cols)}")
    if gone_cols:
        lines.append(f"columns removed: {', '.join(gone_cols)}")
    for name, col in new.columns.items():
        ref = old.columns.get(name)
        if ref is None or col.kind != "categorical" or ref.kind != "categorical":
            continue
        fresh = sorted(set(col.categories) - set(ref.categories))
        if fresh:
            lines.append(f"column '{name}': new categories {fresh}")
    for cls in sorted(set(old.class_balance) | set(new.class_balance)):
        before_share = old.class_balance.get(cls, 0.0)
        after_share = new.class_balance.get(cls, 0.0)
        if abs(after_share - before_share) >= 0.0005:
            lines.append(
                f"class '{cls}': share {before_share:.3f} -> {after_share:.3f} "
                f"({after_share - before_share:+.3f})"
            )
    return lines


def _id_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _shown(ids: list[str], limit: int = 10) -> str:
    text = ", ".join(ids[:limit])
    return text + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def parse_profile(data: Any, *, where: str) -> DataProfile:
    """Parse a profile from the lock; any problem is a DataError naming ``where``."""
    try:
        return DataProfile.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{where}: profile is malformed: missing or wrong key {err}"
        raise DataError(msg) from None
