"""Load a data file per its contract, check every contract rule, and keep the data lock."""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import MAX_PAGES, ColumnRule, DataPolicy, LoadedPolicy
from pipeline.errors import DataError
from pipeline.fsio import (
    atomic_write_json,
    atomic_write_text,
    read_regular,
    sha256_file,
    strict_json,
)
from pipeline.lockserial import next_serial, serial_of
from pipeline.parquet_footer import refuse_large_footer
from pipeline.parquet_pages import PageError, chunk_pages, refuse_many_chunks
from pipeline.profile import DataProfile, build_profile, parse_profile

LOCK_SCHEMA_VERSION = 1
# A lock holds each file's digest and profile (each class's mean and covariance): 90 KB for
# 30 columns; 256 MiB leaves room for thousands of columns and refuses a multi-GB file unread.
MAX_LOCK_BYTES = 256 << 20
# How many offending rows a finding quotes; the count is always exact.
QUOTE_ROWS = 5
# Rows every declared class needs (DATA021): one held out, two for 2-fold cross-validation;
# with one row, a binary table's out-of-fold label check has a fold with one class only.
MIN_CLASS_ROWS = 3
# How many offending values a DATA017/DATA020 message picks the values it shows from.
_SAMPLE_VALUES = 50
_BOOLS = {"true": True, "false": False, "1": True, "0": False}

Array = np.ndarray[Any, Any]
# Tables of at most this many rows (a served request) check their numeric columns with numpy on
# the arrays and are assembled in one DataFrame: the same rules and the same findings as the
# pandas path, without about ten pandas operations per column (issue 18's serving benchmark).
SMALL_TABLE_ROWS = 1024


@dataclass(frozen=True)
class Violation:
    """One broken contract rule: which rule, where, what was found and what was expected."""

    rule: str
    message: str
    column: str | None = None
    rows: tuple[int, ...] = ()
    count: int = 0
    observed: str | None = None
    expected: str | None = None
    policy_key: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A contract-clean table split into features and labels, with the file it came from."""

    path: Path
    sha256: str
    features: pd.DataFrame
    labels: pd.Series
    ids: pd.Series | None = None


@dataclass(frozen=True)
class LockEntry:
    """What the lock records of one data file."""

    name: str
    sha256: str
    size: int
    rows: int
    columns: tuple[str, ...]
    profile: DataProfile | None = None
    reference: DataProfile | None = None


@dataclass(frozen=True)
class DataLock:
    """The committed lock of the approved data snapshot.

    ``serial`` grows with every lock ``data approve`` writes (0: a lock from before serials), so
    a lock's bytes never come back: a reverted snapshot approved again is a new lock, and a pull
    request's changed lock must carry a serial above the base branch's (``pipeline.approval``).
    """

    path: Path
    files: dict[str, LockEntry] = field(default_factory=dict)
    serial: int = 0


def read_table(
    path: Path, *, fmt: str, max_bytes: int | None = None, max_pages: int = MAX_PAGES
) -> pd.DataFrame:
    """Read a CSV (every cell as text, converted later per contract) or a Parquet file.

    ``max_bytes`` (policy ``[data.checks].max_file_mb``) is checked before a byte is parsed, so
    a file too large for memory is refused with a message instead of an out-of-memory kill;
    with it, a Parquet file's page headers are read first, at most ``max_pages`` of them
    (``[data].max_pages``).
    """
    check_data_file(path, max_bytes=max_bytes)
    if fmt == "parquet":
        return _read_parquet(path, max_bytes=max_bytes, max_pages=max_pages)
    return _read_csv(path)


def check_data_file(path: Path, *, max_bytes: int | None = None) -> int:
    """Refuse a missing, folder, empty or too-large data file before reading it; return its size."""
    if not path.exists():
        msg = f"{path}: data file not found"
        raise DataError(msg)
    if path.is_dir():
        msg = f"{path}: expected a data file, found a folder"
        raise DataError(msg)
    if path.stat().st_size == 0:
        msg = f"{path}: data file is empty (0 bytes)"
        raise DataError(msg)
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        msg = (
            f"{path}: data file is {size / 2**20:.1f} MiB, larger than the "
            f"{max_bytes / 2**20:.1f} MiB allowed ([data.checks].max_file_mb)"
        )
        raise DataError(msg)
    return size


@contextlib.contextmanager
def csv_errors(path: Path) -> Iterator[None]:
    """Turn pandas' CSV reading errors into one DataError naming ``path`` (whole or chunked)."""
    try:
        yield
    except UnicodeDecodeError:
        # The error's own offset is within a buffer pandas decoded, not within the file.
        msg = f"{path}: expected UTF-8 CSV, found undecodable bytes {_first_undecodable(path)}"
        raise DataError(msg) from None
    except pd.errors.EmptyDataError:
        msg = f"{path}: expected a CSV header row, found no columns"
        raise DataError(msg) from None
    except pd.errors.ParserError as err:
        msg = f"{path}: malformed CSV: {str(err).strip()}"
        raise DataError(msg) from None


def _first_undecodable(path: Path) -> str:
    """Where the first byte of ``path`` that is not UTF-8 is: its offset and line."""
    import codecs  # noqa: PLC0415

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            pending = len(decoder.getstate()[0])  # an incomplete character the last chunk ended on
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                start = err.start - pending  # the error counts from the pending bytes
                lines += chunk[: max(start, 0)].count(b"\n")
                return f"at byte {offset + start} (line {lines})"
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return "at its end (a truncated character)"


def _read_csv(path: Path) -> pd.DataFrame:
    with csv_errors(path):
        # compression=None: pandas would otherwise decompress by the file's extension (.gz, .xz,
        # .zip, ...), and a small file past [data.checks].max_file_mb could expand to gigabytes.
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, compression=None
        )
    refuse_row_labels(frame, path)
    if frame.empty:
        msg = f"{path}: expected data rows after the header, found none"
        raise DataError(msg)
    return frame


def refuse_row_labels(frame: pd.DataFrame, path: Path) -> None:
    """DataError when pandas took the first field(s) of every row as row labels.

    When every data row has more fields than the header, ``read_csv`` silently makes the extra
    leading fields the index: a column no contract rule sees, which readers that name their
    columns (``usecols``, Arrow) shift into the declared ones instead.
    """
    if isinstance(frame.index, pd.RangeIndex):
        return
    extra = frame.index.nlevels
    fields = len(frame.columns) + extra
    msg = (
        f"{path}: malformed CSV: the data rows have {fields} fields, the header "
        f"{len(frame.columns)}; the first {extra} field(s) of every row would be dropped unchecked "
        f"(first row's: {str(frame.index[0])[:40]!r})"
    )
    raise DataError(msg)


# Bytes per row a Parquet column takes at least once decoded into memory, by physical type (a
# byte array: at least a reference per row; FIXED_LEN_BYTE_ARRAY: its declared length).
PARQUET_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}


def text_columns(schema: Any, wanted: Sequence[str] | None = None) -> list[str]:
    """The string and binary columns of an Arrow schema (of ``wanted``): read as dictionaries
    by ``decoded_size``'s callers, so that a value repeated on every row is held once."""
    import pyarrow as pa  # noqa: PLC0415 - pyarrow is only needed for Parquet input

    kinds = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_string_view,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_binary_view,
    )
    return [
        f.name
        for f in schema
        if (wanted is None or f.name in wanted) and any(kind(f.type) for kind in kinds)
    ]


def refuse_nested(path: Path, schema: Any, wanted: Sequence[str] | None = None) -> None:
    """DataError for a nested column (list, struct, map): the contract's columns are flat, and
    a list holds any number of values per row, which no bound on rows sees before decoding."""
    import pyarrow as pa  # noqa: PLC0415

    for f in schema:
        if (wanted is None or f.name in wanted) and pa.types.is_nested(f.type):
            msg = (
                f"{path}: column '{f.name}' is nested ({f.type}); expected flat columns "
                "(float64, int64, string, bool), refused before decoding"
            )
            raise DataError(msg)


def refuse_twice(path: Path, names: Sequence[str]) -> None:
    """DataError naming the first column the Parquet schema ``names`` holds more than once."""
    counts = collections.Counter(names)  # a wide schema: never names.count per name
    twice = next((n for n in names if counts[n] > 1), None)
    if twice is not None:
        msg = (
            f"{path}: column '{twice}' appears {counts[twice]} times in the Parquet schema; "
            "expected each column once"
        )
        raise DataError(msg)


def parquet_frame(path: Path, table: Any) -> pd.DataFrame:
    """``table`` (read from the Parquet file ``path``) as a frame whose columns are the file's,
    once each; DataError otherwise.

    A schema may name a column twice, and the pandas metadata stored in the footer renames
    columns as ``to_pandas`` builds the frame: a column twice made every reader's
    ``frame[name]`` a table (an AttributeError traceback in ``data approve`` and the data
    gate's streaming path, red team 16); renamed, one column's values were read under another's
    name (as no other Parquet reader shows them), or a column read on its own came back under
    another name (a KeyError).
    """
    names = list(table.column_names)
    refuse_twice(path, names)
    frame: pd.DataFrame = table.to_pandas()
    columns = [str(c) for c in frame.columns]
    # The schema's names in its order; the metadata may only move a column to the index (a
    # file pandas wrote from a filtered table keeps its row labels so: then DATA010 if declared).
    present = set(columns)
    if columns != [n for n in names if n in present] or not frame.columns.is_unique:
        msg = (
            f"{path}: the Parquet file's pandas metadata names its columns otherwise than its "
            f"schema (schema {names[:8]}, read as {columns[:8]}); expected the schema's names"
        )
        raise DataError(msg)
    return frame


def refuse_large_pages(path: Path, meta: Any, max_bytes: int, max_pages: int) -> None:
    """DataError when the file's pages, as their own headers declare them, decompress to more
    than ``max_bytes`` (``parquet_pages``): Arrow decompresses a page whole before any other
    bound applies, and trusts the page header, not the footer. More than ``max_pages`` pages
    (or column chunks) stop the walk (``PageLimit``)."""
    try:
        pages = chunk_pages(path, meta, max_pages=max_pages)
    except PageError as err:
        msg = f"{path}: expected a Parquet file, found a page header that cannot be read ({err})"
        raise DataError(msg) from None
    total = sum(c.total for c in pages)
    if total > max_bytes:
        top = max(pages, key=lambda c: c.total)
        msg = (
            f"{path}: Parquet pages decompress to {total / 2**20:.1f} MiB (read from their "
            f"headers; the most: column '{top.column}' in row group {top.row_group}, "
            f"{top.total / 2**20:.1f} MiB, its footer says {top.footer / 2**20:.1f} MiB), "
            f"larger than the {max_bytes / 2**20:.1f} MiB allowed ([data.checks].max_file_mb); "
            f"{path.stat().st_size / 2**20:.2f} MiB on disk, refused before decompressing"
        )
        raise DataError(msg)


def parquet_rows(path: Path, meta: Any) -> int:
    """The rows Arrow reads from a Parquet file: the sum of its row groups' counts.

    The footer holds the count three times: for the file, per row group, and per column chunk
    (its value count, one per row in a flat column). Arrow reads each row group's rows, and
    the bounds were taken from the others: a file-level count forged to 1 over row groups of
    millions passed every bound taken from it and decoded whole; a 1 MiB fixed-width column's
    value count forged to 1 made the streaming chunk bound see 1 MiB where 200 rows decoded to
    200 MiB. DataError when they disagree, before a row is read.
    """
    rows = 0
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        rows += group.num_rows
        if group.num_columns != meta.num_columns:
            # pyarrow's ``group.column(i)`` past the schema's columns throws a C++ exception
            # nothing catches: the process aborts (red team 10, a 55-byte file)
            msg = (
                f"{path}: row group {index} declares {group.num_columns} column chunk(s), the "
                f"schema {meta.num_columns} column(s); refused before reading"
            )
            raise DataError(msg)
        for i in range(group.num_columns):
            column = group.column(i)
            flat = meta.schema.column(i).max_repetition_level == 0
            if flat and column.num_values != group.num_rows:
                msg = (
                    f"{path}: row group {index} declares {group.num_rows} rows, its column "
                    f"'{column.path_in_schema}' {column.num_values} value(s); refused before "
                    "reading (a footer whose counts disagree was written to mislead a reader's "
                    "bounds)"
                )
                raise DataError(msg)
    if rows != meta.num_rows:
        msg = (
            f"{path}: the Parquet footer declares {meta.num_rows} row(s), its row groups {rows}; "
            "refused before reading (a footer whose counts disagree was written to mislead a "
            "reader's bounds)"
        )
        raise DataError(msg)
    return int(rows)


def decoded_size(table: Any) -> int:
    """Bytes an Arrow table takes once every dictionary column is expanded (text read as
    dictionaries, and a column the file itself stores as one: pandas reads that as categories,
    which the contract's checks turn back into one value per row): each row's value length
    and an offset per row for text, the value width per row otherwise; any other column, its
    buffers."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    size = 0
    for field_, column in zip(table.schema, table.columns, strict=True):
        if not pa.types.is_dictionary(field_.type):
            size += column.nbytes
            continue
        try:
            width = max(1, field_.type.value_type.bit_width // 8)
        except ValueError:  # not of fixed width: text
            width = 0
        for chunk in column.chunks:
            if width:
                size += width * len(chunk)
                continue
            lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
            size += int(pc.sum(lengths).as_py() or 0) + 8 * len(chunk)
    return size


def expand_text(table: Any, text: Sequence[str]) -> Any:
    """The table with its ``text`` dictionary columns expanded, as read without dictionaries."""
    import pyarrow as pa  # noqa: PLC0415

    for index, field_ in enumerate(table.schema):
        if field_.name in text and pa.types.is_dictionary(field_.type):
            kind = field_.type.value_type
            column = pa.chunked_array(
                [c.dictionary_decode() for c in table.column(index).chunks], type=kind
            )
            table = table.set_column(index, field_.with_type(kind), column)
    return table


def _read_parquet(
    path: Path, *, max_bytes: int | None = None, max_pages: int = MAX_PAGES
) -> pd.DataFrame:
    """The whole Parquet file as a frame; ``max_bytes`` bounds its decoded size too.

    Parquet encodes and compresses (dictionary, run-length, codecs): 45 KB on disk can hold
    10 million rows, and even the footer's "uncompressed" sizes are of the encoded pages. The
    footer's row count (its row groups', which must agree with the file's: ``parquet_rows``)
    times each column's width in memory is a lower bound of the decoded
    size, checked against ``max_bytes`` before anything is decoded, so that such a file is
    refused with a message rather than by the out-of-memory killer. Text is not bounded by the
    footer (one 1 MiB value on 1,000 rows is 3 KB of Parquet): it is read as dictionaries and
    measured as it would be expanded (``decoded_size``), and expanded only within the limit.
    """
    import pyarrow as pa  # noqa: PLC0415 - pyarrow is only needed for Parquet input
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        if max_bytes is not None:
            refuse_large_footer(
                path, max_bytes=max_bytes, key="[data.checks].max_file_mb", max_pages=max_pages
            )
            refuse_nested(path, pq.ParquetFile(path).schema_arrow)
        refuse_twice(path, pq.ParquetFile(path).schema_arrow.names)
        if max_bytes is not None:
            meta = pq.ParquetFile(path).metadata
            refuse_many_chunks(path, meta, max_pages)
            columns = [meta.schema.column(i) for i in range(meta.num_columns)]
            width = sum(
                column.length
                if column.physical_type == "FIXED_LEN_BYTE_ARRAY"
                else PARQUET_WIDTH.get(column.physical_type, 8)
                for column in columns
            )
            rows = parquet_rows(path, meta)
            decoded = rows * width
            if decoded > max_bytes:
                msg = (
                    f"{path}: Parquet file decodes to at least {decoded / 2**20:.1f} MiB "
                    f"({rows} rows x {meta.num_columns} columns, "
                    f"{path.stat().st_size / 2**20:.2f} MiB on disk), larger than the "
                    f"{max_bytes / 2**20:.1f} MiB allowed ([data.checks].max_file_mb)"
                )
                raise DataError(msg)
            refuse_large_pages(path, meta, max_bytes, max_pages)
            text = text_columns(pq.ParquetFile(path).schema_arrow)
            table = pq.read_table(path, read_dictionary=text or None)
            decoded = decoded_size(table)
            if decoded > max_bytes:
                msg = (
                    f"{path}: Parquet file decodes to {decoded / 2**20:.1f} MiB (its text "
                    f"measured before it is expanded; {path.stat().st_size / 2**20:.2f} MiB on "
                    f"disk), larger than the {max_bytes / 2**20:.1f} MiB allowed "
                    "([data.checks].max_file_mb)"
                )
                raise DataError(msg)
            table = expand_text(table, text)
        else:
            table = pq.read_table(path)
        frame = parquet_frame(path, table)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:  # any Arrow error, bad UTF-8
        msg = f"{path}: expected a Parquet file, found something else ({err})"
        raise DataError(msg) from None
    if frame.empty:
        msg = f"{path}: expected data rows, found none"
        raise DataError(msg)
    return frame


def check_contract(
    frame: pd.DataFrame, contract: DataPolicy, *, require_label: bool = True
) -> tuple[pd.DataFrame, list[Violation]]:
    """Convert columns to their declared dtypes and return every violation of the contract.

    Row numbers in violations are 0-based data rows (the CSV header is not a row). With
    ``require_label=False`` (rows to predict) the label column may be absent. This is
    ``ContractCheck`` over one chunk: the streaming path runs the same check over many.
    """
    check = ContractCheck(contract, require_label=require_label)
    checked = check.add(frame)
    return checked, check.violations()


class ContractCheck:
    """The contract check over a table given whole or as consecutive chunks of a file.

    Each rule of each column keeps a ``_Tally`` (its first rows, its count and the value its
    message quotes) and a unique column the values seen so far (``_Uniqueness``): small states
    that carry over from one chunk to the next. Messages are written once, by ``violations``,
    from those states, so one chunk and many give the same text and the same file rows.
    """

    def __init__(
        self,
        contract: DataPolicy,
        *,
        require_label: bool = True,
        small_table_rows: int | None = None,
    ) -> None:
        self.contract = contract
        self.require_label = require_label
        # At most this many rows take the numpy path (default SMALL_TABLE_ROWS, read now); 0
        # sends every table through the pandas path (the tests compare the two).
        self.small_table_rows = SMALL_TABLE_ROWS if small_table_rows is None else small_table_rows
        self.rows = 0
        self.columns: tuple[str, ...] | None = None  # the first chunk's, for the header rules
        self.header: list[Violation] = []
        # Each column's tallies, made when the column is first checked: a clean column on the
        # numpy path never is (a served request's rows would otherwise cost ~150 objects).
        self.tallies: dict[str, dict[str, _Tally]] = _Tallies(contract)
        self.label = _label_tallies(contract)
        self.unique = {
            name: _Uniqueness() for name, rule in contract.columns.items() if rule.unique
        }
        self.class_rows: dict[str, int] = {}  # rows of each class so far
        self.all_outside = True  # every label so far outside the classes (DATA021 stays quiet)

    def add(self, frame: pd.DataFrame, *, start: int = 0) -> pd.DataFrame:
        """Check the next chunk, whose first row is file row ``start``; return it converted."""
        contract = self.contract
        if self.columns is None:
            self.columns = tuple(str(c) for c in frame.columns)
            self.header = _header_violations(self.columns, contract, self.require_label)
        self.rows += len(frame)
        small = self._small(frame, start) if len(frame) <= self.small_table_rows else None
        if small is not None:
            return small
        converted: dict[str, pd.Series] = {}
        for name, rule in contract.columns.items():
            if name in frame.columns:
                converted[name] = self._column(frame[name], name, rule, start)
        if contract.label in frame.columns:
            converted[contract.label] = self._labels(frame[contract.label], start)
        if not converted:
            return pd.DataFrame(index=frame.index)
        # concat keeps one block per column: DataFrame(dict) would copy every column into one 2-D
        # block, the largest single cost at 10M rows (issue 8's scaling benchmark).
        return pd.concat(converted, axis=1)

    def _small(self, frame: pd.DataFrame, start: int) -> pd.DataFrame | None:
        """``add`` for a few rows: the plain numeric columns as one numpy block, checked with
        numpy; the others as in the pandas path. None when the table does not fit this path."""
        contract = self.contract
        if not frame.columns.is_unique:
            return None
        dtypes = frame.dtypes
        plain = [
            name
            for name, rule in contract.columns.items()
            if name in dtypes
            and rule.dtype in ("float64", "int64")
            and _plain_numeric(dtypes[name])
        ]
        # One conversion for all of them: taking the columns one by one costs a Series each.
        whole = plain == list(frame.columns)  # a served request: no selection to make
        block = (frame if whole else frame[plain]).to_numpy(dtype="float64", copy=True)
        suspect = _suspect_columns(block, NumericRules.of([contract.columns[n] for n in plain]))
        converted: dict[str, pd.Series | Array] = {}
        for name, rule in contract.columns.items():
            if name in plain:
                values = block[:, plain.index(name)]
                if not suspect[plain.index(name)]:  # no rule can flag a row of it
                    converted[name] = values
                    continue
                tally = self.tallies[name]
                null = _numeric_small(values, rule, tally, start)
                if not rule.nullable:
                    tally["null"].add(null, start)
                if rule.unique:
                    series = pd.Series(values, index=frame.index)
                    tally["unique"].add(self.unique[name].repeats(series), start, series)
                converted[name] = values
            elif name in dtypes:
                converted[name] = self._column(frame[name], name, rule, start)
        if contract.label in dtypes:
            converted[contract.label] = self._labels(frame[contract.label], start)
        if list(converted) == plain:  # a served request: every column numeric, no label
            return pd.DataFrame(block, columns=frame.columns if whole else plain, index=frame.index)
        return pd.DataFrame(converted, index=frame.index)

    def _column(self, raw: pd.Series, name: str, rule: ColumnRule, start: int) -> pd.Series:
        tally = self.tallies[name]
        blank = _is_blank(raw)
        null = blank
        if rule.dtype in ("float64", "int64"):
            series, null = _numeric(raw, blank, rule, tally, start)
        elif rule.dtype == "bool":
            series = raw.astype(str).str.strip().str.lower().map(_BOOLS)
            tally["parse"].add(series.isna() & ~blank, start, raw)
        else:
            series = raw.where(~blank).astype("string")
            if rule.allowed is not None:
                outside = ~blank & ~series.isin(list(rule.allowed)).fillna(False)
                tally["allowed"].add(outside, start, series)
        if not rule.nullable:
            tally["null"].add(null, start)
        if rule.unique:
            tally["unique"].add(self.unique[name].repeats(series), start, series)
        return series

    def _labels(self, raw: pd.Series, start: int) -> pd.Series:
        classes = list(self.contract.classes)
        text = raw.astype("string").str.strip()
        blank = text.isna() | (text == "")
        outside = ~blank & ~text.isin(classes).fillna(False)
        self.label["blank"].add(blank, start)
        self.label["outside"].add(outside, start, text)
        # value_counts() first: iterating a million labels in Python cost a second (issue 8).
        for cls, n in text[~blank & ~outside].value_counts().items():
            self.class_rows[str(cls)] = self.class_rows.get(str(cls), 0) + int(n)
        self.all_outside = self.all_outside and bool(outside.all())
        return text

    @property
    def failed(self) -> bool:
        """Whether the rows so far break the contract (the whole-file rules aside)."""
        tallies = [*self.label.values(), *(t for c in self.tallies.values() for t in c.values())]
        # (a column whose tallies were never made has no row flagged)
        return bool(self.header) or any(t.count for t in tallies)

    @property
    def state_bytes(self) -> int:
        """Bytes the unique columns' kept values take."""
        return sum(u.seen.nbytes for u in self.unique.values())

    def violations(self) -> list[Violation]:
        """Every violation so far: the header, the row count, each column's, then the label's."""
        contract = self.contract
        found = list(self.header)
        if self.require_label and not contract.min_rows <= self.rows <= contract.max_rows:
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
        for name in contract.columns:  # the contract's order, whichever column was checked first
            if name in self.tallies:
                found.extend(t.violation() for t in self.tallies[name].values() if t.count)
        if self.columns is None or contract.label not in self.columns:
            return found
        found.extend(t.violation() for t in self.label.values() if t.count)
        few = {c: self.class_rows.get(c, 0) for c in contract.classes}
        few = {c: n for c, n in few.items() if n < MIN_CLASS_ROWS}
        if few and not self.all_outside:
            absent = [c for c, n in few.items() if n == 0]
            if len(absent) == len(few):
                message = f"label '{contract.label}': declared classes {absent} have no rows"
            else:
                counts = ", ".join(f"'{c}' {n}" for c, n in few.items())
                message = (
                    f"label '{contract.label}': declared classes with fewer than "
                    f"{MIN_CLASS_ROWS} rows ({counts}): the label check's folds and "
                    "cross-validation need every class in more than one fold"
                )
            found.append(
                Violation(
                    "DATA021",
                    message,
                    contract.label,
                    observed=", ".join(f"{c}: {n} rows" for c, n in few.items()),
                    expected=f"at least {MIN_CLASS_ROWS} rows per class",
                    policy_key="[data].classes",
                )
            )
        return found


def rows_of(mask: pd.Series | Array) -> tuple[tuple[int, ...], int]:
    """The first ``QUOTE_ROWS`` positions where ``mask`` holds, and how many there are."""
    positions = np.flatnonzero(np.asarray(mask))
    return tuple(int(p) for p in positions[:QUOTE_ROWS]), int(positions.size)


def quote_rows(rows: tuple[int, ...], count: int) -> str:
    """``row 3`` or ``12 rows (first: 3, 8, ...)``: how a finding names its rows."""
    shown = ", ".join(str(r) for r in rows)
    return f"row {shown}" if count == 1 else f"{count} rows (first: {shown})"


@dataclass
class _Tally:
    """One rule of one column over every chunk so far: its first rows, count and quoted value.

    ``keep`` is what of the flagged values the message quotes: ``first`` (the value at the
    first flagged row), ``least`` or ``largest`` (the extreme), ``sample`` (the first
    ``_SAMPLE_VALUES`` in file order); ``say`` gives the words after the row quote and the
    observed value.
    """

    rule: str
    subject: str  # "column 'x'" or "label 'y'"
    column: str
    policy_key: str
    expected: str
    say: Callable[[_Tally], tuple[str, str]]
    keep: str = ""
    rows: list[int] = field(default_factory=list)
    count: int = 0
    first: Any = None
    extreme: float = math.nan
    sample: list[str] = field(default_factory=list)

    def add(
        self, mask: pd.Series | Array, start: int, values: pd.Series | Array | None = None
    ) -> None:
        """Count the rows ``mask`` flags in a chunk starting at file row ``start``."""
        rows, count = rows_of(mask)
        if count == 0:
            return
        if values is not None and self.keep == "first" and self.count == 0:
            self.first = values.iloc[rows[0]] if isinstance(values, pd.Series) else values[rows[0]]
        elif values is not None and self.keep in ("least", "largest"):
            flagged = values[mask]
            worst = float(flagged.min() if self.keep == "least" else flagged.max())
            pick = min if self.keep == "least" else max
            self.extreme = worst if math.isnan(self.extreme) else pick(self.extreme, worst)
        elif values is not None and self.keep == "sample" and len(self.sample) < _SAMPLE_VALUES:
            wanted = _SAMPLE_VALUES - len(self.sample)
            self.sample.extend(str(v) for v in values[mask][:wanted])
        self.rows.extend(start + r for r in rows[: QUOTE_ROWS - len(self.rows)])
        self.count += count

    @property
    def shown(self) -> list[str]:
        """Up to five distinct sampled values, sorted: what a message lists as found."""
        return sorted(set(self.sample))[:5]

    def violation(self) -> Violation:
        """The finding, written from what was kept."""
        rows = tuple(self.rows)
        words, observed = self.say(self)
        return Violation(
            self.rule,
            f"{self.subject}: {quote_rows(rows, self.count)} {words}",
            self.column,
            rows,
            self.count,
            observed=observed,
            expected=self.expected,
            policy_key=self.policy_key,
        )


class _Tallies(dict[str, dict[str, _Tally]]):
    """``ContractCheck.tallies``: a column's tallies are made on first use."""

    def __init__(self, contract: DataPolicy) -> None:
        super().__init__()
        self.contract = contract

    def __missing__(self, name: str) -> dict[str, _Tally]:
        tallies = self[name] = _column_tallies(name, self.contract.columns[name])
        return tallies


def _column_tallies(name: str, rule: ColumnRule) -> dict[str, _Tally]:
    """The rules ``rule`` sets on column ``name``, in the order their violations are listed."""
    key = f"[data.columns].{name}"

    def tally(
        rule_id: str,
        field: str,
        expected: str,
        say: Callable[[_Tally], tuple[str, str]],
        keep: str = "",
    ) -> _Tally:
        return _Tally(rule_id, f"column '{name}'", name, f"{key}.{field}", expected, say, keep)

    def example(t: _Tally) -> str:
        return str(t.first)[:40]

    found: dict[str, _Tally] = {}
    if rule.dtype in ("float64", "int64"):
        found["parse"] = tally(
            "DATA012",
            "dtype",
            rule.dtype,
            lambda t: (f"not {rule.dtype} (e.g. {example(t)!r})", repr(example(t))),
            "first",
        )
        found["infinite"] = tally(
            "DATA014", "dtype", "finite numbers", lambda t: ("infinite", "inf")
        )
        if rule.dtype == "int64":
            found["whole"] = tally(
                "DATA012",
                "dtype",
                "int64",
                lambda t: (f"not whole numbers (e.g. {t.first!r})", repr(float(t.first))),
                "first",
            )
        if rule.min is not None:
            low = rule.min
            found["min"] = tally(
                "DATA015", "min", f">= {low:g}", _extreme("below min", low), "least"
            )
        if rule.max is not None:
            high = rule.max
            found["max"] = tally(
                "DATA016", "max", f"<= {high:g}", _extreme("above max", high), "largest"
            )
    elif rule.dtype == "bool":
        found["parse"] = tally(
            "DATA012",
            "dtype",
            "true/false",
            lambda t: (f"not bool (e.g. {t.first!r})", repr(t.first)),
            "first",
        )
    elif rule.allowed is not None:
        allowed = list(rule.allowed)
        found["allowed"] = tally(
            "DATA017",
            "allowed",
            ", ".join(allowed),
            lambda t: (
                f"outside the allowed values {allowed} (found {t.shown})",
                ", ".join(t.shown),
            ),
            "sample",
        )
    if not rule.nullable:
        found["null"] = tally(
            "DATA013",
            "nullable",
            "a value",
            lambda t: ("empty or NaN, and nulls are not allowed", "null"),
        )
    if rule.unique:
        found["unique"] = tally(
            "DATA018",
            "unique",
            "unique values",
            lambda t: ("repeat an earlier value; it must be unique", repr(t.first)),
            "first",
        )
    return found


def _extreme(word: str, bound: float) -> Callable[[_Tally], tuple[str, str]]:
    return lambda t: (f"{word} {bound:g} (extreme {t.extreme:g})", f"{t.extreme:g}")


def _label_tallies(contract: DataPolicy) -> dict[str, _Tally]:
    classes = list(contract.classes)
    subject = f"label '{contract.label}'"
    return {
        "blank": _Tally(
            "DATA020",
            subject,
            contract.label,
            "[data].classes",
            " / ".join(classes),
            lambda t: ("have no label", "empty"),
        ),
        "outside": _Tally(
            "DATA020",
            subject,
            contract.label,
            "[data].classes",
            ", ".join(classes),
            lambda t: (
                f"outside the declared classes {classes} (found {t.shown})",
                ", ".join(t.shown),
            ),
            "sample",
        ),
    }


def _header_violations(
    columns: tuple[str, ...], contract: DataPolicy, require_label: bool
) -> list[Violation]:
    """DATA010 for each declared column the table lacks, DATA011 for each it has undeclared."""
    labelled = require_label or contract.label in columns
    declared = [*contract.columns, contract.label] if labelled else [*contract.columns]
    found = [
        Violation(
            rule="DATA010",
            message=f"column '{name}' is missing",
            column=name,
            expected="present",
            observed="absent",
            policy_key=f"[data.columns].{name}" if name != contract.label else "[data].label",
        )
        for name in declared
        if name not in columns
    ]
    found.extend(
        Violation(
            rule="DATA011",
            message=f"column '{name}' is not declared in the contract",
            column=name,
            expected="only declared columns",
            observed=name,
            policy_key="[data.columns]",
        )
        for name in columns
        if name not in declared
    )
    return found


def _is_blank(raw: pd.Series) -> pd.Series:
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        return raw.isna() | (raw.astype(str).str.strip() == "")
    return raw.isna()


def _parse_float(text: pd.Series) -> pd.Series:
    """Parse a column as float64, unparsable cells becoming NaN.

    Text goes through Arrow's strict parser first (about 10x pandas' on 1M cells, issue 8's
    contract benchmark); when any cell is not a plain number Arrow refuses the whole column
    and pandas' per-cell parser decides, so the result is the same either way.
    """
    if text.dtype == object or pd.api.types.is_string_dtype(text):
        import pyarrow as pa  # noqa: PLC0415 - a dependency already (Parquet); loaded on demand
        import pyarrow.compute as pc  # noqa: PLC0415

        try:
            parsed = pc.cast(pa.Array.from_pandas(text), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # Arrow refused a cell: fall back to pandas below (unparsable cells become NaN)
        else:
            return pd.Series(
                parsed.to_numpy(zero_copy_only=False), index=text.index, dtype="float64"
            )
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _plain_numeric(dtype: Any) -> bool:
    """A numpy integer or float column (no text to parse, no pandas NA to interpret)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "fiu"


@dataclass(frozen=True)
class NumericRules:
    """The rules of plain numeric columns as arrays, in column order: what the small-table
    path's whole-block screen (``_suspect_columns``) compares a block with. ``ContractCheck``
    makes them per table; the inference service once, at start (``small_block_clean``).
    Read-only, so requests may share them."""

    low: Array
    high: Array
    whole: Array
    strict: Array
    unique: Array

    @classmethod
    def of(cls, rules: Sequence[ColumnRule]) -> NumericRules:
        """The arrays of ``rules`` (``min``, ``max``, int64, not nullable, unique)."""
        arrays = (
            np.array([-np.inf if r.min is None else float(r.min) for r in rules], dtype="float64"),
            np.array([np.inf if r.max is None else float(r.max) for r in rules], dtype="float64"),
            np.array([r.dtype == "int64" for r in rules], dtype=bool),
            np.array([not r.nullable for r in rules], dtype=bool),
            np.array([r.unique for r in rules], dtype=bool),
        )
        for array in arrays:
            array.flags.writeable = False
        return cls(*arrays)


def _suspect_columns(block: Array, rules: NumericRules) -> Array:
    """For each column of ``block``, whether one of ``_numeric_small``'s rules (or the null or
    unique rule) might flag a row of it: every rule over the whole block at once, so a clean
    column costs no per-column numpy calls. It may say yes where no rule fires (an infinity is
    also compared with the bounds), never no where one does."""
    nan = np.isnan(block)
    with np.errstate(invalid="ignore"):
        flagged = np.isinf(block) | (block < rules.low) | (block > rules.high)
        if rules.whole.any():  # no int64 column: no rounding to do
            flagged |= rules.whole & ~nan & (block != np.round(block))
    flagged |= nan & rules.strict
    return np.asarray(flagged.any(axis=0) | rules.unique)


def small_block_clean(block: Array, rules: NumericRules) -> bool:
    """Whether ``ContractCheck`` (``require_label=False``) would find nothing in ``block``, a
    float64 table whose columns are exactly the contract's, in its order, every one numeric
    (``rules`` is ``NumericRules.of`` their rules), and give it back unchanged as float64.

    True only for a table of at most ``SMALL_TABLE_ROWS`` rows that the small-table path's
    screen clears in every column: that path then checks no column further, and the header
    and label rules have nothing to find. False says nothing: check the table with
    ``ContractCheck``, which names every break.
    """
    return len(block) <= SMALL_TABLE_ROWS and not _suspect_columns(block, rules).any()


def _numeric_small(values: Array, rule: ColumnRule, tally: dict[str, _Tally], start: int) -> Array:
    """``_numeric`` on a plain numeric column with numpy: the same rules, the same tallies.

    Such a column has nothing unparsable and no null written as text, so DATA012's parse rule
    cannot fire; its blanks (returned) are its NaNs.
    """
    non_finite = np.isinf(values)
    tally["infinite"].add(non_finite, start)
    finite = np.where(non_finite, np.nan, values) if non_finite.any() else values
    with np.errstate(invalid="ignore"):
        if "whole" in tally:
            tally["whole"].add(~np.isnan(finite) & (finite != np.round(finite)), start, finite)
        if rule.min is not None:
            tally["min"].add(finite < rule.min, start, finite)
        if rule.max is not None:
            tally["max"].add(finite > rule.max, start, finite)
    return np.isnan(values)


def _numeric(
    raw: pd.Series, blank: pd.Series, rule: ColumnRule, tally: dict[str, _Tally], start: int
) -> tuple[pd.Series, pd.Series]:
    """Parse a numeric column and tally its dtype and range rules; return values and nulls."""
    textual = raw.dtype == object or pd.api.types.is_string_dtype(raw)
    # A numeric column's blanks are its NaNs already: masking them again would only copy it.
    values = _parse_float(raw.where(~blank) if textual else raw)
    unparsable = values.isna() & ~blank
    # Text such as "nan" parses to NaN: it is a null written as text, not a number.
    # Only unparsable cells are turned to text: on a float column (Parquet) that is none of them.
    text_nan = unparsable.copy()
    if unparsable.any():
        text_nan[unparsable] = (
            raw[unparsable].astype(str).str.strip().str.lower().isin(["nan", "na", "null"])
        )
    unparsable &= ~text_nan
    tally["parse"].add(unparsable, start, raw)
    non_finite = np.isinf(values.to_numpy())
    tally["infinite"].add(non_finite, start)
    finite = values.where(~non_finite) if non_finite.any() else values
    if "whole" in tally:
        tally["whole"].add(finite.notna() & (finite != finite.round()), start, finite)
    if rule.min is not None:
        tally["min"].add(finite.lt(rule.min).fillna(False), start, finite)
    if rule.max is not None:
        tally["max"].add(finite.gt(rule.max).fillna(False), start, finite)
    return values, blank | text_nan


class _Uniqueness:
    """What a unique column has seen: earlier chunks' values as keys, the last chunk's as is.

    Within a chunk pandas' ``duplicated`` decides, exactly; a value repeating one of an
    earlier chunk is found by its key (``_unique_keys``) among ``seen``. The last chunk's
    values become keys only when another chunk comes, so one chunk (``check_contract``)
    costs what ``duplicated`` costs.
    """

    def __init__(self) -> None:
        self.seen = _SeenValues()
        self.last: tuple[pd.Series, Array | None] | None = None

    def repeats(self, series: pd.Series) -> Array:
        """Mask of the rows of ``series`` (a chunk) whose value came earlier."""
        present = series.notna()
        repeat: Array = (series.duplicated(keep="first") & present).to_numpy(copy=True)
        if self.last is not None:
            values, keys = self.last
            self.seen.add(_unique_keys(values) if keys is None else keys)
        values, keys = series[present], None
        if self.seen.runs:
            keys = _unique_keys(values)
            repeat[np.flatnonzero(present.to_numpy())] |= self.seen.contains(keys)
        self.last = (values, keys)
        return repeat


class _SeenValues:
    """A set of keys, as sorted numpy runs merged like a log-structured tree.

    Membership is a binary search per run (at most log2(rows / chunk) runs); memory is 8 bytes
    per key kept (16 while two runs merge).
    """

    def __init__(self) -> None:
        self.runs: list[Array] = []

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept keys."""
        return sum(run.nbytes for run in self.runs)

    def contains(self, keys: Array) -> Array:
        """Mask of ``keys`` already kept."""
        hit = np.zeros(keys.size, dtype=bool)
        for run in self.runs:
            index = np.searchsorted(run, keys)
            inside = index < run.size
            hit[inside] |= run[index[inside]] == keys[inside]
        return hit

    def add(self, keys: Array) -> None:
        """Keep ``keys``."""
        if keys.size == 0:
            return
        self.runs.append(np.unique(keys))
        while len(self.runs) > 1 and self.runs[-2].size <= 2 * self.runs[-1].size:
            last = self.runs.pop()
            self.runs[-1] = np.unique(np.concatenate([self.runs[-1], last]))


def _unique_keys(series: pd.Series) -> Array:
    """What a unique column's values are compared by: the float itself, or a 64-bit text hash.

    A hash collision can only report a repeat that is not one (the check fails closed), and
    only across chunks: within a chunk the values themselves are compared.
    """
    if pd.api.types.is_float_dtype(series.dtype):
        # + 0.0 makes -0.0 equal to 0.0, as pandas' duplicated() sees them.
        values: Array = series.to_numpy(dtype="float64") + 0.0
        return values
    text = series.astype(str).to_numpy(dtype=object)
    hashed: Array = pd.util.hash_array(text, categorize=False)
    return hashed


# --- the lock -----------------------------------------------------------------------------


def read_lock(path: Path) -> DataLock:
    """Parse the data lock; a missing or malformed lock is a DataError naming it."""
    try:
        document = strict_json(read_regular(path, limit=MAX_LOCK_BYTES).decode("utf-8"))
    except FileNotFoundError:
        msg = f"{path}: data lock not found (approve the data with: python -m gates data approve)"
        raise DataError(msg) from None
    except OSError as err:
        msg = f"{path}: data lock refused, not read: {err}"
        raise DataError(msg) from None
    # JSON, UTF-8, nesting, a 4,300-digit number; a name twice in one object, NaN, Infinity.
    except (ValueError, RecursionError) as err:
        msg = f"{path}: data lock is not valid JSON: {err}"
        raise DataError(msg) from None
    try:
        serial = serial_of(document, where=str(path))
        if document["schema_version"] != LOCK_SCHEMA_VERSION:
            msg = (
                f"{path}: schema_version: expected {LOCK_SCHEMA_VERSION}, "
                f"found {document['schema_version']!r}"
            )
            raise DataError(msg)
        files = {
            name: LockEntry(
                name=name,
                sha256=str(entry["sha256"]),
                size=int(entry["size"]),
                rows=int(entry["rows"]),
                columns=tuple(str(c) for c in entry["columns"]),
                profile=parse_profile(entry["profile"], where=f"{path} profile")
                if entry.get("profile") is not None
                else None,
                reference=parse_profile(entry["reference"], where=f"{path} reference")
                if entry.get("reference") is not None
                else None,
            )
            for name, entry in document["files"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{path}: data lock is malformed: missing or wrong key {err}"
        raise DataError(msg) from None
    return DataLock(path=path, files=files, serial=serial)


def lock_key(policy: LoadedPolicy, data_path: Path) -> str:
    """The name a data file has in the lock: its path relative to the lock's folder."""
    lock_dir = policy.resolve(policy.policy.data.lock).parent
    try:
        return data_path.resolve().relative_to(lock_dir.resolve()).as_posix()
    except ValueError:
        return data_path.resolve().as_posix()


def verify_lock(policy: LoadedPolicy) -> list[Violation]:
    """Compare the data file with the lock (and the sha256sum-format checksums file)."""
    data = policy.policy.data
    data_path = policy.resolve(data.path)
    lock = read_lock(policy.resolve(data.lock))
    key = lock_key(policy, data_path)
    if not data_path.exists():
        msg = f"{data_path}: data file not found"
        raise DataError(msg)
    actual = sha256_file(data_path)
    found: list[Violation] = []
    entry = lock.files.get(key)
    if entry is None:
        found.append(
            Violation(
                "DATA001",
                f"{key} is not in the data lock {lock.path.name}: the data was never approved",
                observed="not locked",
                expected="a locked, approved file",
                policy_key="[data].lock",
            )
        )
    elif entry.sha256 != actual:
        found.append(
            Violation(
                "DATA001",
                f"{key}: SHA-256 {actual[:12]}... differs from the approved {entry.sha256[:12]}... "
                f"in {lock.path.name}; approve the change with: python -m gates data approve",
                observed=actual,
                expected=entry.sha256,
                policy_key="[data].lock",
            )
        )
    if data.checksums is not None:
        sums_path = policy.resolve(data.checksums)
        sums = _read_sha256sums(sums_path)
        name = data_path.name
        if sums.get(name) != actual:
            found.append(
                Violation(
                    "DATA002",
                    f"{sums_path.name}: checksum of {name} is "
                    f"{(sums.get(name) or 'absent')[:12]}..., the file's is {actual[:12]}...; "
                    "python -m gates data approve writes its line",
                    observed=sums.get(name) or "absent",
                    expected=actual,
                    policy_key="[data].checksums",
                )
            )
    return found


def _read_sha256sums(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = (
            f"{path}: checksum file not found (approve the data with: python -m gates data approve)"
        )
        raise DataError(msg) from None
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            msg = f"{path}:{number}: expected '<sha256>  <file>' (sha256sum format), found {line!r}"
            raise DataError(msg)
        sums[name.lstrip("*")] = digest
    return sums


def write_lock(
    policy: LoadedPolicy,
    frame: pd.DataFrame,
    *,
    profile: DataProfile | None = None,
    reference: DataProfile | None = None,
    above: int = 0,
) -> LockEntry:
    """Record the data file in the lock and the checksums file, atomically.

    ``profile`` describes this snapshot (profiled here when not given and the contract holds);
    ``reference`` is the baseline the data gate measures drift and range against: by default
    the lock's earlier baseline is kept, and the first approval makes its own profile the
    baseline. The lock's ``serial`` is one above both the lock on disk's and ``above`` (the
    base branch's approved lock's, when known).
    """
    data = policy.policy.data
    if profile is None:
        clean, violations = check_contract(frame, data)
        profile = None if violations else build_profile(clean, data)
    return write_lock_entry(
        policy,
        rows=len(frame),
        columns=tuple(str(c) for c in frame.columns),
        profile=profile,
        reference=reference,
        above=above,
    )


def write_lock_entry(
    policy: LoadedPolicy,
    *,
    rows: int,
    columns: tuple[str, ...],
    profile: DataProfile | None,
    reference: DataProfile | None = None,
    above: int = 0,
) -> LockEntry:
    """``write_lock`` for a file that was never loaded whole: its shape and profile are given.

    The lock's ``serial`` is one above both the lock on disk's and ``above``."""
    data = policy.policy.data
    data_path = policy.resolve(data.path)
    previous = _previous_lock(policy)
    if reference is None:
        entry = previous.files.get(lock_key(policy, data_path)) if previous else None
        reference = (entry.reference if entry is not None else None) or profile
    entry = LockEntry(
        name=lock_key(policy, data_path),
        sha256=sha256_file(data_path),
        size=data_path.stat().st_size,
        rows=rows,
        columns=columns,
        profile=profile,
        reference=reference,
    )
    record: dict[str, Any] = {
        "sha256": entry.sha256,
        "size": entry.size,
        "rows": entry.rows,
        "columns": list(entry.columns),
    }
    if entry.profile is not None:
        record["profile"] = entry.profile.to_dict()
    if entry.reference is not None:
        record["reference"] = entry.reference.to_dict()
    document = {
        "schema_version": LOCK_SCHEMA_VERSION,
        "serial": next_serial(previous.serial if previous else 0, above),
        "files": {entry.name: record},
    }
    # The checksums file first, the lock last: the lock is the approval, so a kill between the
    # two leaves the data unapproved (DATA001, approve again), never a lock the checksums
    # contradict.
    write_checksums(policy, entry.sha256)
    atomic_write_json(policy.resolve(data.lock), document)
    return entry


def write_checksums(policy: LoadedPolicy, sha256: str) -> None:
    """Write the data file's line of ``[data].checksums`` (sha256sum format), atomically, if set.

    Every other line (another table's, a comment-free sha256sum listing) is kept as it was, in
    its place; the data file's line replaces its earlier one(s) or is appended. A file that is
    not in sha256sum format is refused (DataError naming the line), never rewritten.
    """
    data = policy.policy.data
    if data.checksums is None:
        return
    path = policy.resolve(data.checksums)
    name = policy.resolve(data.path).name
    ours = f"{sha256}  {name}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{path}: cannot read the checksums file ({err}); expected sha256sum lines"
        raise DataError(msg) from None
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if _sha256sum_name(path, number, line) == name:
            if ours not in lines:
                lines.append(ours)
            continue
        lines.append(line)
    if ours not in lines:
        lines.append(ours)
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def _sha256sum_name(path: Path, number: int, line: str) -> str:
    """The file a sha256sum line names (``*`` binary mark dropped); DataError when malformed."""
    digest, sep, name = line.partition("  ")
    if not sep or len(digest) != 64 or not name.strip():
        msg = f"{path}:{number}: expected '<sha256>  <file>' (sha256sum format), found {line!r}"
        raise DataError(msg)
    return name.lstrip("*")


def _previous_lock(policy: LoadedPolicy) -> DataLock | None:
    """The lock on disk before it is rewritten; None when missing or unreadable."""
    try:
        return read_lock(policy.resolve(policy.policy.data.lock))
    except DataError:
        return None


# --- loading for training --------------------------------------------------------------------


def load_dataset(policy: LoadedPolicy) -> Dataset:
    """Load the approved data for training: the lock must match and the contract must hold."""
    data = policy.policy.data
    problems = verify_lock(policy)
    path = policy.resolve(data.path)
    frame = read_table(
        path,
        fmt=data.resolved_format,
        max_bytes=data.checks.max_file_bytes,
        max_pages=data.max_pages,
    )
    clean, violations = check_contract(frame, data)
    problems.extend(violations)
    if problems:
        shown = "\n  ".join(f"{v.rule} {v.message}" for v in problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        msg = f"{path}: refused: the data breaks its lock or contract:\n  {shown}{more}"
        raise DataError(msg)
    features = model_features(clean, data)
    labels = clean[data.label].astype(str)
    ids = clean[data.id_column] if data.id_column else None
    return Dataset(path=path, sha256=sha256_file(path), features=features, labels=labels, ids=ids)


def model_features(clean: pd.DataFrame, contract: DataPolicy) -> pd.DataFrame:
    """The feature columns of a contract-clean table as the model takes them.

    Numeric columns stay float64 (a null is NaN). String and bool columns become text with a
    null as the empty string (what a blank CSV cell holds), so that the model's one-hot encoder
    sees one kind of value and a null is one more category (``pipeline.model``).
    """
    names = list(contract.feature_columns)
    features = clean if list(clean.columns) == names else clean[names]
    categorical = [
        name
        for name in contract.feature_columns
        if contract.columns[name].dtype in ("string", "bool")
    ]
    if not categorical:
        return features
    features = features.copy()
    for name in categorical:
        column = features[name]
        if contract.columns[name].dtype == "bool":
            column = column.map({True: "true", False: "false"})
        features[name] = column.astype(object).where(column.notna(), "").astype(str)
    return features


def describe_value(value: float) -> str:
    """Short, stable text for a number in a message."""
    return "nan" if math.isnan(value) else f"{value:g}"
