"""Data larger than memory: a chunked reader driving the in-memory path's engines.

The file is read in chunks (CSV by ``pandas.read_csv(chunksize=...)``, cells as text exactly as
``pipeline.data.read_table``; Parquet by record batches within row groups). Each chunk goes
through the engines the in-memory path runs over one chunk: ``ContractCheck`` (the contract,
with state that carries over: the first rows, counts and quoted values of each rule, and the
values a unique column has seen, 8 bytes per row), ``ProfileCounts`` (the profile's exact
parts), ``DriftCounts`` (rows per reference bin and category, for PSI), and the poisoning
screen's ``out_of_range`` and ``row_hashes`` (duplicates keep two 64-bit hashes and a class code
per row, 17 bytes). Everything else is bounded by the chunk. Row numbers are global (0-based
data rows of the file), as the in-memory path reports them.

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import MAX_PAGES, DataPolicy
from pipeline.data import (
    PARQUET_WIDTH,
    ContractCheck,
    Violation,
    check_contract,
    check_data_file,
    csv_errors,
    decoded_size,
    expand_text,
    parquet_frame,
    parquet_rows,
    refuse_nested,
    refuse_row_labels,
    text_columns,
)
from pipeline.errors import DataError
from pipeline.flags import Flags
from pipeline.parquet_footer import refuse_large_footer
from pipeline.parquet_pages import PageError, chunk_pages, held_at_once, refuse_many_chunks
from pipeline.poison import (
    Screening,
    duplicates_from_hashes,
    out_of_range,
    row_hashes,
    sample_checks,
)
from pipeline.profile import (
    QUANTILES,
    ClassMeanShift,
    ClassSums,
    ColumnDrift,
    ColumnStats,
    DataProfile,
    DriftCounts,
    ProfileCounts,
    bin_counts,
    id_text,
    numeric_columns,
    numeric_values,
    shift_of,
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
    max_chunk_bytes: int | None = None,
    max_rows: int | None = None,
    max_pages: int = MAX_PAGES,
) -> Iterator[Chunk]:
    """Yield the file in chunks of at most ``chunk_rows`` rows, read as ``read_table`` reads it.

    Each chunk's index is its file rows (``start`` ..). Bad input is a DataError with the same
    message as the in-memory reader's, raised when the chunk holding it is reached.

    ``max_bytes`` bounds the file's bytes (a CSV is read as the bytes it is, never decompressed
    by its extension, so its chunks decode to no more than the file). A Parquet file decodes to
    far more than its bytes (1,000 rows of one 64 KiB text value compress to a few hundred
    bytes): ``max_chunk_bytes`` bounds what one chunk decodes to (``[data].stream_chunk_mb``)
    and ``max_rows`` the rows its footer declares (``[data].max_rows``), and with
    ``max_chunk_bytes`` the page headers are read first, at most ``max_pages`` of them
    (``[data].max_pages``); see ``_parquet_chunks``.
    """
    check_data_file(path, max_bytes=max_bytes)
    if fmt == "parquet":
        chunks = _parquet_chunks(
            path,
            chunk_rows=chunk_rows,
            columns=columns,
            max_chunk_bytes=max_chunk_bytes,
            max_rows=max_rows,
            max_pages=max_pages,
        )
    else:
        chunks = _csv_chunks(path, chunk_rows=chunk_rows, columns=columns)
    start = 0
    for frame in chunks:
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
                compression=None,  # as read_table: never decompressed by the file's extension
                chunksize=chunk_rows,
                usecols=list(columns) if columns is not None else None,
            )
            with reader:
                for frame in reader:
                    refuse_row_labels(frame, path)
                    yield frame
    except ValueError as err:  # usecols naming a column the file lacks
        msg = f"{path}: expected columns {list(columns or ())}, found otherwise ({err})"
        raise DataError(msg) from None


def _parquet_chunks(
    path: Path,
    *,
    chunk_rows: int,
    columns: tuple[str, ...] | None,
    max_chunk_bytes: int | None = None,
    max_rows: int | None = None,
    max_pages: int = MAX_PAGES,
) -> Iterator[pd.DataFrame]:
    """Record batches of at most ``chunk_rows`` rows, each as a frame.

    Bounded (when given), before and while decoding: the footer's row count against
    ``max_rows``, and each row group's footer (value counts x column widths, a lower bound)
    against ``max_chunk_bytes`` per chunk, before a byte of data is read; then each batch as
    decoded, before it is turned into a frame. Text columns are read as dictionaries for that
    measure (a value repeated on every row is held once), and expanded only when the batch is
    within the budget: a few hundred bytes of Parquet that decode to gigabytes are refused, not
    killed by the out-of-memory killer.
    """
    import pyarrow as pa  # noqa: PLC0415 - pyarrow is only needed for Parquet input
    import pyarrow.parquet as pq  # noqa: PLC0415

    wanted = list(columns) if columns is not None else None
    if max_chunk_bytes is not None:
        refuse_large_footer(
            path, max_bytes=max_chunk_bytes, key="[data].stream_chunk_mb", max_pages=max_pages
        )
    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        if max_chunk_bytes is not None:
            refuse_many_chunks(path, meta, max_pages)
        rows = parquet_rows(path, meta)
        if max_rows is not None and rows > max_rows:
            msg = (
                f"{path}: the Parquet footer declares {rows} rows, more than "
                f"[data].max_rows ({max_rows}); refused before reading"
            )
            raise DataError(msg)
        text: list[str] = []
        if max_chunk_bytes is not None:
            refuse_nested(path, parquet.schema_arrow, wanted)
            _check_row_groups(path, meta, chunk_rows, max_chunk_bytes, wanted)
            _check_pages(path, meta, max_chunk_bytes, wanted, max_pages)
            text = text_columns(parquet.schema_arrow, wanted)
            if text:
                parquet = pq.ParquetFile(path, read_dictionary=text)
        groups = np.cumsum([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
        start = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            table = pa.Table.from_batches([batch])
            if max_chunk_bytes is not None:
                decoded = decoded_size(table)
                if decoded > max_chunk_bytes:
                    group = int(np.searchsorted(groups, start, side="right"))
                    msg = (
                        f"{path}: row group {group} (file rows {start}..{start + len(table) - 1})"
                        f" decodes to {decoded / 2**20:.1f} MiB in a chunk of {len(table)} rows, "
                        f"more than the {max_chunk_bytes / 2**20:.1f} MiB a chunk may take "
                        f"([data].stream_chunk_mb); {path.stat().st_size / 2**20:.2f} MiB on disk"
                    )
                    raise DataError(msg)
                table = expand_text(table, text)  # measured: expanded as read without a bound
            start += len(table)
            frame = parquet_frame(path, table)
            yield frame.reset_index(drop=True)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:  # any Arrow error, bad UTF-8
        msg = f"{path}: expected a Parquet file, found something else ({err})"
        raise DataError(msg) from None


def _check_pages(
    path: Path, meta: Any, max_chunk_bytes: int, wanted: list[str] | None, max_pages: int
) -> None:
    """DataError when a row group's pages, as their headers declare them, decompress to more
    than a chunk may take at once (each column's dictionary page and its largest other page:
    Arrow decompresses a page whole, whatever the batch size), or when the file holds more
    than ``max_pages`` pages or column chunks (``PageLimit``: the walk stops there)."""
    try:
        pages = chunk_pages(path, meta, wanted, max_pages=max_pages)
    except PageError as err:
        msg = f"{path}: expected a Parquet file, found a page header that cannot be read ({err})"
        raise DataError(msg) from None
    for group, (held, top) in sorted(held_at_once(pages).items()):
        if held > max_chunk_bytes:
            msg = (
                f"{path}: row group {group}'s pages decompress to {held / 2**20:.1f} MiB at once "
                f"(read from their headers: each column's dictionary page and largest page; the "
                f"most: column '{top.column}', {(top.dictionary + top.largest) / 2**20:.1f} MiB, "
                f"its footer says {top.footer / 2**20:.1f} MiB for the whole chunk), more than "
                f"the {max_chunk_bytes / 2**20:.1f} MiB a chunk may take ([data].stream_chunk_mb)"
                "; refused before decompressing"
            )
            raise DataError(msg)


def _check_row_groups(
    path: Path, meta: Any, chunk_rows: int, max_chunk_bytes: int, wanted: list[str] | None
) -> None:
    """DataError when a row group's footer says a chunk of it decodes to more than allowed."""
    schema = [meta.schema.column(i) for i in range(meta.num_columns)]
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        if group.num_rows == 0:
            continue
        values = 0  # bytes of the whole row group, decoded (a lower bound)
        for i, column in enumerate(schema):
            if wanted is not None and column.path.split(".")[0] not in wanted:
                continue
            width = (
                column.length
                if column.physical_type == "FIXED_LEN_BYTE_ARRAY"
                else PARQUET_WIDTH.get(column.physical_type, 8)
            )
            values += group.column(i).num_values * width
        rows = min(group.num_rows, chunk_rows)
        decoded = values * rows // group.num_rows
        if decoded > max_chunk_bytes:
            msg = (
                f"{path}: row group {index} ({group.num_rows} rows) decodes to at least "
                f"{decoded / 2**20:.2f} MiB per chunk of {rows} rows (the footer's value counts "
                f"x column widths), more than the {max_chunk_bytes / 2**20:.1f} MiB a chunk may "
                "take ([data].stream_chunk_mb); refused before reading"
            )
            raise DataError(msg)


# --- one pass: contract, the profile's exact parts, drift, range, duplicates, a sample -------


@dataclass(frozen=True)
class StreamScan:
    """One streaming pass over a data file (``scan``): everything it found, with file rows."""

    path: Path
    rows: int
    columns: tuple[str, ...]
    violations: tuple[Violation, ...]
    counts: ProfileCounts  # what the profile counts exactly (empty when the contract failed)
    drift: tuple[ColumnDrift, ...]
    class_shift: tuple[str, float]
    range_flags: Flags | None
    duplicates: tuple[Flags, Flags] | None
    sample: pd.DataFrame | None
    largest_chunk: int
    state_bytes: int
    seconds: dict[str, float]
    signature: tuple[int, int, int]
    # DATA043 over every row (``class_means`` with a reference recording class moments).
    class_means: tuple[ClassMeanShift, ...] = ()

    @property
    def class_counts(self) -> dict[str, int]:
        """Rows per class."""
        return self.counts.classes


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
    digests: bool = True,
    class_means: bool = False,
) -> StreamScan:
    """Read the file once in chunks: the contract, exact column stats, and what is asked for.

    ``drift`` (with ``reference``) bins every chunk on the reference's deciles and categories;
    ``range_margin`` (with ``reference``) flags rows beyond its min/max widened by the margin;
    ``duplicates`` keeps two hashes and a class code per row (17 bytes) for the exact-duplicate
    and conflicting-label flags; ``sample_rows`` keeps a seeded sample stratified by class (at
    most that many rows per class while reading) for the checks that need rows in memory;
    ``digests=False`` skips the row digests by id (``approve`` records them; the gate's pass
    does not use them); ``class_means`` (with ``reference``) sums each class's features for
    the class-mean test (DATA043) against the reference's class moments.
    """
    signature = file_signature(path) if path.exists() else (0, 0, 0)
    scanner = _Scanner(
        contract,
        reference=reference,
        drift=drift and reference is not None,
        range_margin=range_margin if reference is not None else None,
        duplicates=duplicates,
        sampler=_Sampler(contract.classes, size=sample_rows, seed=seed) if sample_rows else None,
        sums=ClassSums(reference, contract) if class_means and reference is not None else None,
    )
    if not digests:
        scanner.counts.digests = None
    for chunk in iter_chunks(
        path,
        fmt=contract.resolved_format,
        chunk_rows=chunk_rows,
        max_bytes=max_bytes,
        max_chunk_bytes=contract.stream_chunk_bytes,
        max_rows=contract.max_rows,
        max_pages=contract.max_pages,
    ):
        scanner.add(chunk)
    if file_signature(path) != signature:
        msg = f"{path}: the file changed while it was being read; run again"
        raise DataError(msg)
    return scanner.result(path, signature)


@dataclass
class _Scanner:
    """The state of one ``scan`` between chunks: the engines of the in-memory path, fed chunks."""

    contract: DataPolicy
    reference: DataProfile | None
    drift: bool
    range_margin: float | None
    duplicates: bool
    sampler: _Sampler | None
    sums: ClassSums | None = None
    check: ContractCheck = field(init=False)
    counts: ProfileCounts = field(init=False)
    drift_counts: DriftCounts | None = field(init=False)
    ranges: list[Flags] = field(default_factory=list)
    hashes: list[tuple[Array, Array, Array]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    largest: int = 0

    def __post_init__(self) -> None:
        self.check = ContractCheck(self.contract)
        self.counts = ProfileCounts(self.contract)
        use_drift = self.drift and self.reference is not None
        self.drift_counts = DriftCounts(self.reference) if use_drift and self.reference else None
        self.seconds = {"duplicates": 0.0, "drift": 0.0, "range": 0.0}

    def add(self, chunk: Chunk) -> None:
        contract = self.contract
        self.largest = max(self.largest, len(chunk.frame))
        checked = self.check.add(chunk.frame, start=chunk.start)
        if self.check.failed:
            return  # the contract has failed: nothing else is reported, so nothing else is kept
        for name, rule in contract.columns.items():
            if rule.dtype == "bool":
                # One dtype in every chunk (bool, or object when the chunk has a null): the
                # hashes of equal rows must not depend on which chunk they are in.
                checked[name] = checked[name].astype(object)
        self.counts.add(checked)
        if self.sums is not None:
            start = time.perf_counter()
            self.sums.add(checked)
            self.seconds["class_means"] = self.seconds.get("class_means", 0.0) + (
                time.perf_counter() - start
            )
        labels = checked[contract.label].astype(str)
        codes = pd.Index(list(contract.classes)).get_indexer(pd.Index(labels)).astype(np.int16)
        if self.drift_counts is not None:
            start = time.perf_counter()
            self.drift_counts.add(checked)
            self.seconds["drift"] += time.perf_counter() - start
        if self.range_margin is not None and self.reference is not None:
            found = out_of_range(checked, contract, self.reference, margin=self.range_margin)
            self.ranges.append(replace(found, rows=found.rows + chunk.start))
            self.seconds["range"] += found.seconds
        if self.duplicates:
            start = time.perf_counter()
            self.hashes.append((*row_hashes(checked, contract), codes))
            self.seconds["duplicates"] += time.perf_counter() - start
        if self.sampler is not None:
            self.sampler.add(checked, codes, chunk.start)

    def result(self, path: Path, signature: tuple[int, int, int]) -> StreamScan:
        contract, check = self.contract, self.check
        whole = not check.failed
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
        if self.drift_counts is not None and whole:
            drifts = tuple(self.drift_counts.drift())
            shift = shift_of(self.counts.classes, self.drift_counts.reference)
        return StreamScan(
            path=path,
            rows=check.rows,
            columns=check.columns or (),
            violations=tuple(check.violations()),
            counts=self.counts,
            drift=drifts,
            class_shift=shift,
            range_flags=_join("range", self.ranges) if self.ranges else None,
            duplicates=dup_flags,
            sample=self.sampler.sample() if self.sampler is not None and whole else None,
            largest_chunk=self.largest,
            state_bytes=check.state_bytes
            + kept
            + (self.sampler.nbytes if self.sampler is not None else 0),
            seconds=self.seconds,
            signature=signature,
            class_means=tuple(self.sums.shifts()) if self.sums is not None and whole else (),
        )


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
    stats = first.counts.columns
    spread = tuple(n for n in numeric if _spread(stats[n]))
    hist = {n: _Histogram(stats[n]) for n in spread}
    for chunk in _numeric_chunks(first, contract, spread, chunk_rows, max_bytes):
        for name in spread:
            hist[name].add(chunk[name])
    quantiles = {n: hist[n].quantiles() for n in spread}
    for name in numeric:
        if stats[name].count and name not in quantiles:  # one distinct value: exact
            quantiles[name] = tuple(
                stable_round(float(stats[name].minimum or 0.0)) for _ in QUANTILES
            )
    counts: dict[str, Array] = {n: np.zeros(len(QUANTILES) - 1, dtype=np.int64) for n in quantiles}
    for chunk in _numeric_chunks(first, contract, tuple(quantiles), chunk_rows, max_bytes):
        for name, edges in quantiles.items():
            counts[name] += bin_counts(chunk[name], edges)
    if file_signature(first.path) != first.signature:
        msg = f"{first.path}: the file changed while it was being profiled; run again"
        raise DataError(msg)
    return first.counts.profile(quantiles, counts)


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
        max_chunk_bytes=contract.stream_chunk_bytes,
        max_rows=contract.max_rows,
        max_pages=contract.max_pages,
    ):
        checked, _ = check_contract(chunk.frame, contract)
        yield {name: numeric_values(checked[name]) for name in names}


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
    scan_: StreamScan,
    contract: DataPolicy,
    *,
    seed: int,
    scheduler: str | None = None,
    rates: Mapping[str, float] | None = None,
) -> Screening:
    """The data gate's ``Screening`` from a scan: duplicates, drift and range on every row;
    the label and isolation checks on the scan's sample, their rows mapped back to file rows.
    With a Dask ``scheduler`` the label check's out-of-fold fits run on that cluster.
    """
    flags: list[Flags] = []
    seconds = {k: v for k, v in scan_.seconds.items() if v}
    if scan_.duplicates is not None:
        flags += list(scan_.duplicates)
    if scan_.range_flags is not None:
        flags.append(scan_.range_flags)
    sample = scan_.sample
    if sample is not None:
        found, took = sample_checks(sample, contract, seed=seed, scheduler=scheduler, rates=rates)
        rows_of = sample.index.to_numpy(dtype=np.int64)
        flags += [replace(f, rows=rows_of[f.rows], screened=int(rows_of.size)) for f in found]
        seconds.update(took)
    return Screening(
        rows=scan_.rows,
        flags=tuple(flags),
        drift=scan_.drift,
        class_shift=scan_.class_shift,
        seconds=seconds,
        class_means=scan_.class_means,
    )


def ids_at(path: Path, contract: DataPolicy, *, rows: Array, chunk_rows: int) -> dict[int, str]:
    """The id text of each of ``rows`` (file rows), reading only the id column in chunks."""
    name = contract.id_column
    if name is None or rows.size == 0:
        return {}
    wanted = np.unique(rows)
    found: dict[int, str] = {}
    for chunk in iter_chunks(
        path,
        fmt=contract.resolved_format,
        chunk_rows=chunk_rows,
        columns=(name,),
        max_chunk_bytes=contract.stream_chunk_bytes,
        max_rows=contract.max_rows,
        max_pages=contract.max_pages,
    ):
        end = chunk.start + len(chunk.frame)
        here = wanted[(wanted >= chunk.start) & (wanted < end)]
        if here.size == 0:
            continue
        checked, _ = check_contract(chunk.frame, contract)
        for row in here:
            found[int(row)] = id_text(checked[name].iloc[int(row) - chunk.start])
    return found
