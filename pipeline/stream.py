"""Data larger than memory: the contract check, profile, drift, range and duplicates in chunks.

The file is read in chunks (CSV by ``pandas.read_csv(chunksize=...)``, cells as text exactly as
``pipeline.data.read_table``; Parquet by record batches within row groups) and each chunk goes
through the same ``check_contract`` as the in-memory path. Rules that need more than one chunk
keep state: unique columns keep every value seen (8 bytes per row: the float value of a
numeric column, a 64-bit hash of a text one), duplicates keep two 64-bit hashes and a class
code per row (17 bytes per row). Everything else is bounded by the chunk. Row numbers are
global (0-based data rows of the file), as the in-memory path reports them.

Deciles need the whole column. ``stream_profile`` reads the file twice more: a histogram of
``HISTOGRAM_BINS`` equal bins between each column's exact min and max, keeping each bin's
smallest and largest value, gives every order statistic to within its bin, so each decile is
off by at most ``(max - min) / HISTOGRAM_BINS`` (and exact when the bin holds one distinct
value); the bin shares are then counted exactly against those deciles, so data measured
against its own streamed profile has PSI 0, as in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import DataPolicy
from pipeline.data import Violation, check_contract, check_data_file, csv_errors, quote_rows
from pipeline.errors import DataError
from pipeline.poison import (
    Flags,
    Screening,
    duplicates_from_hashes,
    encode_labels,
    feature_matrix,
    label_issues,
    off_manifold,
    out_of_range,
    row_hashes,
)
from pipeline.profile import (
    MAX_ROW_DIGESTS,
    QUANTILES,
    ColumnDrift,
    ColumnProfile,
    DataProfile,
    bin_counts,
    id_text,
    numeric_columns,
    psi,
    row_digests,
    stable_round,
)

Array = np.ndarray[Any, Any]
# 2**14 bins: a decile is off by at most 1/16384 of the column's range (6e-5), far below what
# PSI's ten bins can tell apart, for 16384 x 3 numbers per column.
HISTOGRAM_BINS = 2**14
# How many outside values a DATA017/DATA020 message samples from (as check_contract does).
_OUTSIDE_SAMPLE = 50
# Order of a column's violations in check_contract; the label's come after every column's.
_COLUMN_ORDER = ("DATA012", "DATA014", "DATA012:whole", "DATA015", "DATA016", "DATA017")
_COLUMN_ORDER_TAIL = ("DATA013", "DATA018")
_LABEL_ORDER = ("DATA020:blank", "DATA020:outside", "DATA021")


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of a data file: ``start`` is the file row of the first one."""

    start: int
    frame: pd.DataFrame


def iter_chunks(
    path: Path,
    *,
    fmt: str,
    chunk_rows: int,
    max_bytes: int | None = None,
    columns: tuple[str, ...] | None = None,
) -> Iterator[Chunk]:
    """Yield the file in chunks of at most ``chunk_rows`` rows, read as ``read_table`` reads it.

    Each chunk's index is its file rows (``start`` ..). Bad input is a DataError with the same
    message as the in-memory reader's, raised when the chunk holding it is reached.
    """
    check_data_file(path, max_bytes=max_bytes)
    chunks = _parquet_chunks if fmt == "parquet" else _csv_chunks
    start = 0
    for frame in chunks(path, chunk_rows=chunk_rows, columns=columns):
        if frame.empty:
            continue
        frame.index = pd.RangeIndex(start, start + len(frame))
        yield Chunk(start=start, frame=frame)
        start += len(frame)
    if start == 0:
        where = "data rows" if fmt == "parquet" else "data rows after the header"
        msg = f"{path}: expected {where}, found none"
        raise DataError(msg)


def _csv_chunks(
    path: Path, *, chunk_rows: int, columns: tuple[str, ...] | None
) -> Iterator[pd.DataFrame]:
    try:
        with csv_errors(path):
            reader = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                chunksize=chunk_rows,
                usecols=list(columns) if columns is not None else None,
            )
            with reader:
                yield from reader
    except ValueError as err:  # usecols naming a column the file lacks
        msg = f"{path}: expected columns {list(columns or ())}, found otherwise ({err})"
        raise DataError(msg) from None


def _parquet_chunks(
    path: Path, *, chunk_rows: int, columns: tuple[str, ...] | None
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa  # noqa: PLC0415 - pyarrow is only needed for Parquet input
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(
            batch_size=chunk_rows, columns=list(columns) if columns is not None else None
        ):
            frame: pd.DataFrame = pa.Table.from_batches([batch]).to_pandas()
            yield frame.reset_index(drop=True)
    except (pa.ArrowInvalid, OSError) as err:
        msg = f"{path}: expected a Parquet file, found something else ({err})"
        raise DataError(msg) from None


# --- state that spans chunks ------------------------------------------------------------------


class _SeenValues:
    """Every value seen so far, as sorted numpy runs merged like a log-structured tree.

    Membership is a binary search per run (at most log2(rows / chunk) runs); memory is 8 bytes
    per value kept (16 while two runs merge).
    """

    def __init__(self) -> None:
        self._runs: list[Array] = []

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept values."""
        return sum(run.nbytes for run in self._runs)

    def contains(self, values: Array) -> Array:
        """Mask of ``values`` already seen."""
        hit = np.zeros(values.size, dtype=bool)
        for run in self._runs:
            index = np.searchsorted(run, values)
            inside = index < run.size
            hit[inside] |= run[index[inside]] == values[inside]
        return hit

    def add(self, values: Array) -> None:
        """Keep ``values`` (none of them seen before)."""
        if values.size == 0:
            return
        self._runs.append(np.sort(values))
        while len(self._runs) > 1 and self._runs[-2].size <= 2 * self._runs[-1].size:
            last = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]))


def _unique_keys(series: pd.Series) -> Array:
    """What a unique column's values are compared by: the float itself, or a 64-bit text hash."""
    if pd.api.types.is_float_dtype(series.dtype):
        # + 0.0 makes -0.0 equal to 0.0, as pandas' duplicated() sees them.
        values: Array = series.to_numpy(dtype="float64") + 0.0
        return values
    text = series.astype(str).to_numpy(dtype=object)
    hashed: Array = pd.util.hash_array(text, categorize=False)
    return hashed


@dataclass
class _Merged:
    """One (column, kind) violation gathered over chunks."""

    first: Violation
    rows: list[int]
    count: int
    extreme: Violation


@dataclass
class _ContractState:
    """What the contract check carries from chunk to chunk."""

    contract: DataPolicy
    rows: int = 0
    header: list[Violation] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    merged: dict[tuple[str, str], _Merged] = field(default_factory=dict)
    outside: dict[str, list[str]] = field(default_factory=dict)
    seen: dict[str, _SeenValues] = field(default_factory=dict)
    unique_rows: dict[str, list[int]] = field(default_factory=dict)
    unique_count: dict[str, int] = field(default_factory=dict)
    unique_observed: dict[str, str] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    labelled: bool = False
    all_outside: bool = True

    def add(self, chunk: Chunk) -> pd.DataFrame:
        """Check one chunk; returns its converted columns (as ``check_contract`` does)."""
        contract = self.contract
        frame = chunk.frame
        checked, found = check_contract(frame, contract)
        if self.rows == 0:
            self.columns = tuple(str(c) for c in frame.columns)
            self.header = [v for v in found if v.rule in ("DATA010", "DATA011")]
            self.labelled = contract.label in frame.columns
        self.rows += len(frame)
        for violation in found:
            kind = _kind(violation)
            if kind in ("DATA010", "DATA011", "DATA018", "DATA021", "DATA030"):
                continue  # the header, once; rules that span chunks, below
            self._merge(violation, kind, chunk.start)
        for name, rule in contract.columns.items():
            if name in checked.columns:
                if rule.allowed is not None:
                    series = checked[name]
                    mask = series.notna() & ~series.isin(list(rule.allowed))
                    self._sample_outside(name, series[mask])
                if rule.unique:
                    self._unique(name, checked[name], chunk.start)
        if self.labelled:
            text = checked[contract.label]
            blank = text.isna() | (text == "")
            outside = ~blank & ~text.isin(list(contract.classes)).fillna(False)
            self._sample_outside(contract.label, text[outside])
            self.present |= set(text[~blank & ~outside].unique())
            self.all_outside = self.all_outside and bool(outside.all())
        return checked

    def _merge(self, violation: Violation, kind: str, start: int) -> None:
        key = (violation.column or "", kind)
        rows = [r + start for r in violation.rows]
        held = self.merged.get(key)
        if held is None:
            self.merged[key] = _Merged(violation, rows, violation.count, violation)
            return
        held.rows.extend(rows[: max(0, 5 - len(held.rows))])
        held.count += violation.count
        if kind in ("DATA015", "DATA016"):
            worse = float(violation.observed or "nan")
            now = float(held.extreme.observed or "nan")
            if (worse < now) if kind == "DATA015" else (worse > now):
                held.extreme = violation

    def _sample_outside(self, name: str, values: pd.Series) -> None:
        kept = self.outside.setdefault(name, [])
        if len(kept) < _OUTSIDE_SAMPLE:
            kept.extend(str(v) for v in values.head(_OUTSIDE_SAMPLE - len(kept)))

    def _unique(self, name: str, series: pd.Series, start: int) -> None:
        present = series.notna().to_numpy()
        keys = _unique_keys(series[present])
        seen = self.seen.setdefault(name, _SeenValues())
        repeat = pd.Series(keys).duplicated(keep="first").to_numpy() | seen.contains(keys)
        seen.add(keys[~repeat])
        positions = np.flatnonzero(present)[repeat]
        if positions.size == 0:
            return
        if name not in self.unique_observed:
            self.unique_observed[name] = repr(series.iloc[int(positions[0])])
        kept = self.unique_rows.setdefault(name, [])
        kept.extend(int(p) + start for p in positions[: max(0, 5 - len(kept))])
        self.unique_count[name] = self.unique_count.get(name, 0) + int(positions.size)

    def violations(self) -> list[Violation]:
        """Every violation, in ``check_contract``'s order, with file rows."""
        contract = self.contract
        found = list(self.header)
        if not contract.min_rows <= self.rows <= contract.max_rows:
            found.append(
                Violation(
                    rule="DATA030",
                    message=f"{self.rows} rows, expected between {contract.min_rows} and {contract.max_rows}",
                    count=self.rows,
                    observed=str(self.rows),
                    expected=f"{contract.min_rows}..{contract.max_rows}",
                    policy_key="[data].min_rows / [data].max_rows",
                )
            )
        for name in contract.columns:
            for kind in (*_COLUMN_ORDER, *_COLUMN_ORDER_TAIL):
                if kind == "DATA018" and name in self.unique_count:
                    found.append(self._unique_violation(name))
                elif (name, kind) in self.merged:
                    found.append(self._render(name, kind))
        if self.labelled:
            for kind in _LABEL_ORDER[:2]:
                if (contract.label, kind) in self.merged:
                    found.append(self._render(contract.label, kind))
            absent = [c for c in contract.classes if c not in self.present]
            if absent and not self.all_outside:
                found.append(
                    Violation(
                        "DATA021",
                        f"label '{contract.label}': declared classes {absent} have no rows",
                        contract.label,
                        observed="0 rows",
                        expected="at least one row per class",
                        policy_key="[data].classes",
                    )
                )
        return found

    def _render(self, name: str, kind: str) -> Violation:
        held = self.merged[(name, kind)]
        first = held.first
        rows = tuple(held.rows)
        head, tail = _split_quote(first, name)
        observed = first.observed
        if kind in ("DATA015", "DATA016"):
            _, tail = _split_quote(held.extreme, name)
            observed = held.extreme.observed
        elif kind in ("DATA017", "DATA020:outside"):
            shown = sorted(set(self.outside.get(name, [])))[:5]
            tail = tail[: tail.rindex(" (found ")] + f" (found {shown})"
            observed = ", ".join(shown)
        return Violation(
            first.rule,
            head + quote_rows(rows, held.count) + tail,
            first.column,
            rows,
            held.count,
            observed=observed,
            expected=first.expected,
            policy_key=first.policy_key,
        )

    def _unique_violation(self, name: str) -> Violation:
        rows = tuple(self.unique_rows[name])
        count = self.unique_count[name]
        return Violation(
            "DATA018",
            f"column '{name}': {quote_rows(rows, count)} repeat an earlier value; it must be unique",
            name,
            rows,
            count,
            observed=self.unique_observed[name],
            expected="unique values",
            policy_key=f"[data.columns].{name}.unique",
        )

    @property
    def failed(self) -> bool:
        """Whether a chunk so far broke the contract."""
        return bool(self.header or self.merged or self.unique_count)

    @property
    def state_bytes(self) -> int:
        """Bytes the unique columns' kept values take."""
        return sum(s.nbytes for s in self.seen.values())


def _split_quote(violation: Violation, name: str) -> tuple[str, str]:
    """A chunk's message around its row quote (built from the chunk's own rows)."""
    head = f"'{name}': "
    at = violation.message.index(head) + len(head)
    quote = quote_rows(violation.rows, violation.count)
    if not violation.message.startswith(quote, at):
        msg = f"cannot merge {violation.rule} messages of '{name}': {violation.message!r}"
        raise DataError(msg)
    return violation.message[:at], violation.message[at + len(quote) :]


def _kind(violation: Violation) -> str:
    if violation.rule == "DATA012" and "not whole numbers" in violation.message:
        return "DATA012:whole"
    if violation.rule == "DATA020":
        return "DATA020:blank" if "have no label" in violation.message else "DATA020:outside"
    return violation.rule


# --- one pass: contract, the profile's exact parts, drift, range, duplicates, a sample -------


@dataclass(frozen=True)
class ColumnStats:
    """What merges exactly over chunks for one feature column."""

    name: str
    rows: int
    nulls: int
    count: int = 0
    minimum: float | None = None
    maximum: float | None = None
    categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamScan:
    """One streaming pass over a data file (``scan``): everything it found, with file rows."""

    path: Path
    rows: int
    columns: tuple[str, ...]
    violations: tuple[Violation, ...]
    class_counts: dict[str, int]
    stats: dict[str, ColumnStats]
    row_digests: dict[str, str] | None
    drift: tuple[ColumnDrift, ...]
    class_shift: tuple[str, float]
    range_flags: Flags | None
    duplicates: tuple[Flags, Flags] | None
    sample: pd.DataFrame | None
    largest_chunk: int
    state_bytes: int
    seconds: dict[str, float]
    signature: tuple[int, int, int]


def file_signature(path: Path) -> tuple[int, int, int]:
    """Size, modification time and inode: a file rewritten between passes changes them."""
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _row_keys(rows: Array, seed: int) -> Array:
    """A seeded pseudo-random 64-bit key per file row (splitmix64), whatever the chunking."""
    z = rows.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Sampler:
    """A seeded, stratified sample of at most ``size`` rows: per class, the rows of least key."""

    def __init__(self, classes: tuple[str, ...], *, size: int, seed: int) -> None:
        self.classes = classes
        self.size = size
        self.seed = seed
        self.kept: dict[int, tuple[pd.DataFrame, Array]] = {}
        self.counts = np.zeros(len(classes), dtype=np.int64)

    def add(self, checked: pd.DataFrame, codes: Array, start: int) -> None:
        keys = _row_keys(np.arange(start, start + len(checked)), self.seed)
        for code in np.unique(codes[codes >= 0]):
            mask = codes == code
            self.counts[code] += int(mask.sum())
            frame, held = checked[mask], keys[mask]
            if code in self.kept:
                frame = pd.concat([self.kept[code][0], frame])
                held = np.concatenate([self.kept[code][1], held])
            if held.size > self.size:
                keep = np.sort(np.argpartition(held, self.size - 1)[: self.size])
                frame, held = frame.iloc[keep], held[keep]
            self.kept[int(code)] = (frame, held)

    def sample(self) -> pd.DataFrame | None:
        total = int(self.counts.sum())
        if total == 0:
            return None
        target = min(self.size, total)
        exact = self.counts * target / total
        quota = np.floor(exact).astype(np.int64)
        for code in np.argsort(-(exact - quota), kind="stable")[: target - int(quota.sum())]:
            quota[code] += 1
        parts = []
        for code, (frame, held) in sorted(self.kept.items()):
            order = np.argsort(held, kind="stable")[: quota[code]]
            parts.append(frame.iloc[np.sort(order)])
        return pd.concat(parts).sort_index()

    @property
    def nbytes(self) -> int:
        return sum(int(f.memory_usage(deep=False).sum()) + k.nbytes for f, k in self.kept.values())


def scan(
    path: Path,
    contract: DataPolicy,
    *,
    chunk_rows: int,
    max_bytes: int | None = None,
    reference: DataProfile | None = None,
    drift: bool = True,
    range_margin: float | None = None,
    duplicates: bool = False,
    sample_rows: int = 0,
    seed: int = 0,
) -> StreamScan:
    """Read the file once in chunks: the contract, exact column stats, and what is asked for.

    ``drift`` (with ``reference``) bins every chunk on the reference's deciles and categories;
    ``range_margin`` (with ``reference``) flags rows beyond its min/max widened by the margin;
    ``duplicates`` keeps two hashes and a class code per row (17 bytes) for the exact-duplicate
    and conflicting-label flags; ``sample_rows`` keeps a seeded sample stratified by class (at
    most that many rows per class while reading) for the checks that need rows in memory.
    """
    signature = file_signature(path) if path.exists() else (0, 0, 0)
    scanner = _Scanner(
        contract,
        reference=reference,
        drift=drift and reference is not None,
        range_margin=range_margin if reference is not None else None,
        duplicates=duplicates,
        sampler=_Sampler(contract.classes, size=sample_rows, seed=seed) if sample_rows else None,
    )
    for chunk in iter_chunks(
        path, fmt=contract.resolved_format, chunk_rows=chunk_rows, max_bytes=max_bytes
    ):
        scanner.add(chunk)
    if file_signature(path) != signature:
        msg = f"{path}: the file changed while it was being read; run again"
        raise DataError(msg)
    return scanner.result(path, signature)


@dataclass
class _Scanner:
    """The state of one ``scan`` between chunks."""

    contract: DataPolicy
    reference: DataProfile | None
    drift: bool
    range_margin: float | None
    duplicates: bool
    sampler: _Sampler | None
    state: _ContractState = field(init=False)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    class_counts: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] | None = None
    bins: dict[str, Array] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    ranges: list[Flags] = field(default_factory=list)
    hashes: list[tuple[Array, Array, Array]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    largest: int = 0

    def __post_init__(self) -> None:
        self.state = _ContractState(self.contract)
        self.digests = {} if self.contract.id_column is not None else None
        self.seconds = {"duplicates": 0.0, "drift": 0.0, "range": 0.0}

    def add(self, chunk: Chunk) -> None:
        contract = self.contract
        self.largest = max(self.largest, len(chunk.frame))
        checked = self.state.add(chunk)
        if self.state.failed:
            return  # the contract has failed: nothing else is reported, so nothing else is kept
        for name, rule in contract.columns.items():
            if rule.dtype == "bool":
                # One dtype in every chunk (bool, or object when the chunk has a null): the
                # hashes of equal rows must not depend on which chunk they are in.
                checked[name] = checked[name].astype(object)
        _add_stats(self.stats, checked, contract, set(numeric_columns(contract)))
        labels = checked[contract.label].astype(str)
        for cls, n in labels.value_counts().items():
            self.class_counts[str(cls)] = self.class_counts.get(str(cls), 0) + int(n)
        if self.digests is not None:
            if self.state.rows <= MAX_ROW_DIGESTS:
                self.digests.update(row_digests(checked, contract))
            else:
                self.digests = None
        codes = pd.Index(list(contract.classes)).get_indexer(pd.Index(labels)).astype(np.int16)
        if self.drift and self.reference is not None:
            start = time.perf_counter()
            _add_drift(self.bins, self.categories, checked, self.reference)
            self.seconds["drift"] += time.perf_counter() - start
        if self.range_margin is not None and self.reference is not None:
            found = out_of_range(checked, contract, self.reference, margin=self.range_margin)
            self.ranges.append(_shift(found, chunk.start))
            self.seconds["range"] += found.seconds
        if self.duplicates:
            start = time.perf_counter()
            self.hashes.append((*row_hashes(checked, contract), codes))
            self.seconds["duplicates"] += time.perf_counter() - start
        if self.sampler is not None:
            self.sampler.add(checked, codes, chunk.start)

    def result(self, path: Path, signature: tuple[int, int, int]) -> StreamScan:
        contract, state = self.contract, self.state
        whole = not state.failed
        kept = sum(a.nbytes for triple in self.hashes for a in triple)
        dup_flags = None
        if self.duplicates and whole and self.hashes:
            start = time.perf_counter() - self.seconds["duplicates"]
            columns = [np.concatenate([h[i] for h in self.hashes]) for i in range(3)]
            self.hashes.clear()  # the per-chunk arrays go as soon as they are joined
            dup_flags = duplicates_from_hashes(
                columns[0], columns[1], columns[2], start=start, classes=contract.classes
            )
            del columns
        drifts: tuple[ColumnDrift, ...] = ()
        shift: tuple[str, float] = ("", 0.0)
        if self.drift and whole and self.reference is not None:
            drifts = tuple(_drift(self.bins, self.categories, self.reference))
            total = sum(self.class_counts.values())
            shift = _class_shift(self.class_counts, total, self.reference)
        return StreamScan(
            path=path,
            rows=state.rows,
            columns=state.columns,
            violations=tuple(state.violations()),
            class_counts=self.class_counts,
            stats={name: ColumnStats(name=name, **values) for name, values in self.stats.items()},
            row_digests=self.digests,
            drift=drifts,
            class_shift=shift,
            range_flags=_join("range", self.ranges) if self.ranges else None,
            duplicates=dup_flags,
            sample=self.sampler.sample() if self.sampler is not None and whole else None,
            largest_chunk=self.largest,
            state_bytes=state.state_bytes
            + kept
            + (self.sampler.nbytes if self.sampler is not None else 0),
            seconds=self.seconds,
            signature=signature,
        )


def _add_stats(
    stats: dict[str, dict[str, Any]], checked: pd.DataFrame, contract: DataPolicy, numeric: set[str]
) -> None:
    for name in contract.feature_columns:
        series = checked[name]
        held = stats.setdefault(name, {"rows": 0, "nulls": 0})
        held["rows"] += len(series)
        held["nulls"] += int(series.isna().sum())
        if name in numeric:
            values = series.astype("float64").to_numpy()
            values = values[~np.isnan(values)]
            if values.size:
                low, high = float(values.min()), float(values.max())
                held["count"] = held.get("count", 0) + int(values.size)
                held["minimum"] = low if held.get("minimum") is None else min(held["minimum"], low)
                held["maximum"] = (
                    high if held.get("maximum") is None else max(held["maximum"], high)
                )
        else:
            counts = held.setdefault("categories", {})
            for value, n in series.dropna().astype(str).value_counts().items():
                counts[str(value)] = counts.get(str(value), 0) + int(n)


def _add_drift(
    bins: dict[str, Array],
    categories: dict[str, dict[str, int]],
    checked: pd.DataFrame,
    reference: DataProfile,
) -> None:
    for name, ref in reference.columns.items():
        if name not in checked.columns:
            continue
        series = checked[name]
        if ref.kind == "numeric":
            if not ref.quantiles:
                continue
            values = series.astype("float64").to_numpy()
            values = values[~np.isnan(values)]
            counts = bin_counts(values, ref.quantiles)
            bins[name] = bins[name] + counts if name in bins else counts
        else:
            held = categories.setdefault(name, {})
            for value, n in series.dropna().astype(str).value_counts().items():
                held[str(value)] = held.get(str(value), 0) + int(n)


def _drift(
    bins: dict[str, Array], categories: dict[str, dict[str, int]], reference: DataProfile
) -> list[ColumnDrift]:
    """``column_drift`` from merged counts: the same shares, so the same PSI."""
    found = []
    for name, ref in reference.columns.items():
        if ref.kind == "numeric":
            counts = bins.get(name)
            if counts is None or int(counts.sum()) == 0:
                continue
            total = int(counts.sum())
            found.append(
                ColumnDrift(name, psi(list(ref.bin_shares), [float(c) / total for c in counts]))
            )
        elif name in categories:
            held = categories[name]
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


def _class_shift(counts: dict[str, int], total: int, reference: DataProfile) -> tuple[str, float]:
    worst, amount = "", 0.0
    for cls in sorted(set(reference.class_balance) | set(counts)):
        share = counts.get(cls, 0) / total if total else 0.0
        moved = abs(share - reference.class_balance.get(cls, 0.0))
        if moved > amount:
            worst, amount = cls, moved
    return worst, amount


def _shift(found: Flags, start: int) -> Flags:
    return Flags(found.check, found.rows + start, found.scores, found.reasons, found.seconds)


def _join(check: str, parts: list[Flags]) -> Flags:
    return Flags(
        check,
        np.concatenate([p.rows for p in parts]).astype(np.int64),
        np.concatenate([p.scores for p in parts]).astype(np.float64),
        tuple(r for p in parts for r in p.reasons),
        sum(p.seconds for p in parts),
    )


# --- the profile: two more passes for deciles and their bin shares ---------------------------


def stream_profile(
    first: StreamScan,
    contract: DataPolicy,
    *,
    chunk_rows: int,
    max_bytes: int | None = None,
) -> DataProfile:
    """The profile ``build_profile`` would give, from a clean ``scan`` and two more passes.

    Counts, nulls, min/max, categories, class balance and row digests are exact (from the
    scan). Pass 2 bins each numeric column into ``HISTOGRAM_BINS`` equal bins between its exact
    min and max, keeping each bin's count, smallest and largest value; an order statistic is
    read inside its bin (linearly between those two values), so each decile differs from
    numpy's exact ``np.quantile`` by at most the width of one bin, ``(max - min) / 16384``, and
    not at all when the bin holds a single distinct value. Pass 3 counts rows per decile bin
    exactly. Memory: three arrays of ``HISTOGRAM_BINS`` floats per numeric column, plus a chunk.
    """
    if first.violations:
        msg = f"{first.path}: cannot profile data that breaks its contract"
        raise DataError(msg)
    numeric = numeric_columns(contract)
    spread = tuple(n for n in numeric if _spread(first.stats[n]))
    hist = {n: _Histogram(first.stats[n]) for n in spread}
    for chunk in _numeric_chunks(first, contract, spread, chunk_rows, max_bytes):
        for name in spread:
            hist[name].add(chunk[name])
    quantiles = {n: hist[n].quantiles() for n in spread}
    for name in numeric:
        stats = first.stats[name]
        if stats.count and name not in quantiles:  # one distinct value: exact
            quantiles[name] = tuple(stable_round(float(stats.minimum or 0.0)) for _ in QUANTILES)
    counts: dict[str, Array] = {n: np.zeros(len(QUANTILES) - 1, dtype=np.int64) for n in quantiles}
    for chunk in _numeric_chunks(first, contract, tuple(quantiles), chunk_rows, max_bytes):
        for name, edges in quantiles.items():
            counts[name] += bin_counts(chunk[name], edges)
    if file_signature(first.path) != first.signature:
        msg = f"{first.path}: the file changed while it was being profiled; run again"
        raise DataError(msg)
    total = sum(first.class_counts.values())
    return DataProfile(
        rows=first.rows,
        columns={
            name: _column_profile(
                first.stats[name],
                numeric=name in numeric,
                quantiles=quantiles.get(name, ()),
                counts=counts.get(name),
            )
            for name in contract.feature_columns
        },
        class_balance={
            c: stable_round(first.class_counts.get(c, 0) / total) if total else 0.0
            for c in contract.classes
        },
        row_digests=first.row_digests,
    )


def _column_profile(
    stats: ColumnStats, *, numeric: bool, quantiles: tuple[float, ...], counts: Array | None
) -> ColumnProfile:
    """A column's profile from its merged stats, deciles and decile counts (``build_profile``'s)."""
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
        minimum=stats.minimum,
        maximum=stats.maximum,
        quantiles=quantiles,
        bin_shares=tuple(stable_round(float(c) / total) for c in counts),
    )


def _spread(stats: ColumnStats) -> bool:
    return stats.minimum is not None and stats.maximum is not None and stats.maximum > stats.minimum


def _numeric_chunks(
    first: StreamScan,
    contract: DataPolicy,
    names: tuple[str, ...],
    chunk_rows: int,
    max_bytes: int | None,
) -> Iterator[dict[str, Array]]:
    """The non-null float values of ``names`` per chunk, converted as the contract converts."""
    if not names:
        return
    for chunk in iter_chunks(
        first.path,
        fmt=contract.resolved_format,
        chunk_rows=chunk_rows,
        max_bytes=max_bytes,
        columns=names,
    ):
        checked, _ = check_contract(chunk.frame, contract)
        out = {}
        for name in names:
            values = checked[name].astype("float64").to_numpy()
            out[name] = values[~np.isnan(values)]
        yield out


class _Histogram:
    """``HISTOGRAM_BINS`` equal bins over [min, max] with each bin's count, least and largest value."""

    def __init__(self, stats: ColumnStats) -> None:
        self.low = float(stats.minimum or 0.0)
        self.high = float(stats.maximum or 0.0)
        self.scale = HISTOGRAM_BINS / (self.high - self.low)
        self.counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.least = np.full(HISTOGRAM_BINS, np.inf)
        self.largest = np.full(HISTOGRAM_BINS, -np.inf)

    def add(self, values: Array) -> None:
        # floor((v - min) * scale) is monotonic in v, so order statistics keep their bin.
        index = np.clip(((values - self.low) * self.scale).astype(np.int64), 0, HISTOGRAM_BINS - 1)
        self.counts += np.bincount(index, minlength=HISTOGRAM_BINS)
        np.minimum.at(self.least, index, values)
        np.maximum.at(self.largest, index, values)

    def order_statistic(self, k: int, cumulative: Array) -> float:
        """The k-th smallest value (0-based), to within its bin's least and largest value."""
        b = int(np.searchsorted(cumulative, k, side="right"))
        inside = k - (int(cumulative[b]) - int(self.counts[b]))
        n = int(self.counts[b])
        low, high = float(self.least[b]), float(self.largest[b])
        if n == 1 or high == low:
            return low
        return low + (high - low) * inside / (n - 1)

    def quantiles(self) -> tuple[float, ...]:
        """The deciles (``QUANTILES``), interpolated between order statistics as numpy does."""
        cumulative = np.cumsum(self.counts)
        n = int(cumulative[-1])
        found = []
        for q in QUANTILES:
            if q == 0.0:
                found.append(self.low)
                continue
            if q == 1.0:
                found.append(self.high)
                continue
            h = (n - 1) * q
            k = math.floor(h)
            value = self.order_statistic(k, cumulative)
            if h > k and k + 1 < n:
                value += (h - k) * (self.order_statistic(k + 1, cumulative) - value)
            found.append(value)
        return tuple(stable_round(v) for v in found)


# --- the screen on a sample, and ids of flagged rows ---------------------------------------


def screen_scan(
    scan_: StreamScan, contract: DataPolicy, *, seed: int, scheduler: str | None = None
) -> Screening:
    """The data gate's ``Screening`` from a scan: duplicates, drift and range on every row;
    the label and isolation checks on the scan's sample, their rows mapped back to file rows.
    With a Dask ``scheduler`` the label check's out-of-fold fits run on that cluster.
    """
    checks = contract.checks
    flags: list[Flags] = []
    seconds = {k: v for k, v in scan_.seconds.items() if v}
    if scan_.duplicates is not None:
        flags += list(scan_.duplicates)
    if scan_.range_flags is not None:
        flags.append(scan_.range_flags)
    sample = scan_.sample
    if sample is not None and numeric_columns(contract):
        start = time.perf_counter()
        x = feature_matrix(sample, contract)
        seconds["standardize"] = time.perf_counter() - start
        rows_of = sample.index.to_numpy(dtype=np.int64)
        if checks.labels.enabled:
            y = encode_labels(sample[contract.label], contract.classes)
            found, _ = label_issues(
                x, y, classes=contract.classes, check=checks.labels, seed=seed, scheduler=scheduler
            )
            flags.append(_on_file_rows(found, rows_of))
            seconds["label"] = found.seconds
        if checks.isolation.enabled:
            found = off_manifold(x, check=checks.isolation, seed=seed)
            flags.append(_on_file_rows(found, rows_of))
            seconds["isolation"] = found.seconds
    return Screening(
        rows=scan_.rows,
        flags=tuple(flags),
        drift=scan_.drift,
        class_shift=scan_.class_shift,
        seconds=seconds,
    )


def _on_file_rows(found: Flags, rows_of: Array) -> Flags:
    return Flags(
        found.check,
        rows_of[found.rows],
        found.scores,
        found.reasons,
        found.seconds,
        screened=int(rows_of.size),
    )


def ids_at(path: Path, contract: DataPolicy, *, rows: Array, chunk_rows: int) -> dict[int, str]:
    """The id text of each of ``rows`` (file rows), reading only the id column in chunks."""
    name = contract.id_column
    if name is None or rows.size == 0:
        return {}
    wanted = np.unique(rows)
    found: dict[int, str] = {}
    for chunk in iter_chunks(
        path, fmt=contract.resolved_format, chunk_rows=chunk_rows, columns=(name,)
    ):
        end = chunk.start + len(chunk.frame)
        here = wanted[(wanted >= chunk.start) & (wanted < end)]
        if here.size == 0:
            continue
        checked, _ = check_contract(chunk.frame, contract)
        for row in here:
            found[int(row)] = id_text(checked[name].iloc[int(row) - chunk.start])
    return found
