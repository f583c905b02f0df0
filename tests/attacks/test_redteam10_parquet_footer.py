"""Planted attack (red team 10, 7 December): a Parquet footer that Arrow builds into gigabytes.

Arrow parses the whole footer (Thrift's ``FileMetaData``) when it opens a file, before any of
the data gate's bounds (rows, column chunks, pages, decoded bytes) can look at it, and a column
chunk of 3 bytes on disk (its ``file_offset``, nothing else) becomes a C++ ``ColumnChunk`` of
about 690 bytes: 30 MB of them (10 row groups x 1,000,000) peaked at 6.9 GB in
``pq.ParquetFile(path).metadata`` (14 s), far within ``[data.checks].max_file_mb`` (2048) and
within ``stream_above_mb`` (256). Under a 3 GiB address space the data gate, in memory and
streamed, died in Arrow (red before ``pipeline.parquet_footer``); unbounded, a 300 MB file asks
for 69 GB. The footer is now walked first and refused naming the file and the key.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import read_table
from pipeline.errors import DataError
from pipeline.parquet_footer import FooterLimit, refuse_large_footer
from pipeline.stream import iter_chunks
from tests.hostile_support import run_gates
from tests.parquet_support import (
    BINARY,
    I32,
    I64,
    LIST,
    STRUCT,
    field,
    list_header,
    parquet_project,
    row_group,
    sized,
    write_footer,
    zigzag,
)


def _footer(groups: int, chunks: int, *, before: bytes = b"") -> bytes:
    """FileMetaData: version 1, a schema of one required INT64 column 'a', 0 rows, ``groups``
    row groups of ``chunks`` column chunks each holding only ``file_offset`` (3 bytes);
    ``before``: fields (full ids) written ahead of the row groups."""
    root = field(4, BINARY) + sized(b"schema") + field(1, I32) + zigzag(1) + b"\x00"
    column = (
        field(1, I32) + zigzag(2) + field(2, I32) + zigzag(0) + field(1, BINARY) + sized(b"a")
    ) + b"\x00"
    chunk = field(2, I64) + zigzag(0) + b"\x00"
    group = row_group(chunk, chunks)
    head = field(1, I32) + zigzag(1) + field(1, LIST) + list_header(STRUCT, 2) + root + column
    rows = field(1, I64) + zigzag(0)
    # field 4 (row_groups) by its full id, after ``before``'s fields
    groups_field = bytes([LIST]) + zigzag(4) + list_header(STRUCT, groups) + group * groups
    return head + rows + before + groups_field + b"\x00"


def _bomb(path: Path, groups: int = 10, chunks: int = 1_000_000, *, before: bytes = b"") -> Path:
    return write_footer(path, _footer(groups, chunks, before=before))


def _project(root: Path, *, streamed: bool, groups: int = 10, chunks: int = 1_000_000) -> Path:
    return parquet_project(root, _footer(groups, chunks), streamed=streamed)


def _data_gate(root: Path) -> subprocess.CompletedProcess[str]:
    return run_gates(root, "run", "data", "--no-cache")


@pytest.mark.parametrize("streamed", [False, True], ids=["in memory", "streamed"])
def test_the_data_gate_refuses_a_footer_arrow_would_build_into_gigabytes(
    tmp_path: Path, streamed: bool
) -> None:
    root = _project(tmp_path / "project", streamed=streamed)
    done = _data_gate(root)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    key = "[data].stream_chunk_mb" if streamed else "[data.checks].max_file_mb"
    assert "DATA000" in out, out
    assert "the Parquet footer (30,000,129 bytes) would take Arrow more than" in out, out
    assert key in out, out


@pytest.mark.parametrize("streamed", [False, True], ids=["in memory", "streamed"])
def test_a_row_group_with_more_chunks_than_the_schema_is_refused_not_an_abort(
    tmp_path: Path, streamed: bool
) -> None:
    """55 bytes: a row group of 2 column chunks over a schema of 1 column. pyarrow's
    ``group.column(1)`` threw a C++ exception nothing caught: the gate's process aborted
    (SIGABRT, no report, no verdict line; red before the check in ``parquet_rows``)."""
    root = _project(tmp_path / "project", streamed=streamed, groups=1, chunks=2)
    done = _data_gate(root)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "terminate called" not in out
    assert "Traceback" not in out
    assert "row group 0 declares 2 column chunk(s), the schema 1 column(s)" in out, out


def test_a_bomb_behind_a_field_the_walk_cannot_read_is_refused_too(tmp_path: Path) -> None:
    """A footer that stops the walk before its bomb (a field nested past Thrift's limit, or any
    unreadable bytes) is refused, not handed to Arrow unchecked."""
    deep = bytes([STRUCT]) + zigzag(900) + field(1, STRUCT) * 70 + b"\x00" * 71
    path = _bomb(tmp_path / "deep.parquet", groups=1, chunks=100, before=deep)
    with pytest.raises(FooterLimit, match=r"cannot be read as Thrift"):
        refuse_large_footer(path, max_bytes=2**30, key="[data.checks].max_file_mb", max_pages=10)


def test_a_footer_of_many_small_fields_stops_at_the_step_budget(tmp_path: Path) -> None:
    """Within the memory bound, the walk itself is bounded: ``max_pages`` x 128 bytes."""
    noise = bytes([LIST]) + zigzag(900) + list_header(I64, 100_000) + b"\x01" * 100_000
    path = _bomb(tmp_path / "steps.parquet", groups=1, chunks=1, before=noise)
    with pytest.raises(FooterLimit, match=r"more than 51,200 bytes to step through"):
        refuse_large_footer(path, max_bytes=2**30, key="[data.checks].max_file_mb", max_pages=100)


def test_the_bomb_is_refused_by_every_reader_naming_file_and_key(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "bomb.parquet", groups=2, chunks=200_000)
    with pytest.raises(DataError, match=r"bomb\.parquet: the Parquet footer .*max_file_mb"):
        read_table(path, fmt="parquet", max_bytes=64 << 20)
    with pytest.raises(DataError, match=r"bomb\.parquet: the Parquet footer .*stream_chunk_mb"):
        next(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=64 << 20))


def _honest(path: Path, shape: str) -> None:
    rng = np.random.default_rng(0)
    rows = 5_000
    table = pa.table(
        {
            **{f"x{i}": rng.normal(size=rows) for i in range(20)},
            "s": pa.array([f"value {i % 97}" * 20 for i in range(rows)]),
            "n": pa.array([None if i % 7 else i for i in range(rows)], type=pa.int32()),
            "b": pa.array([i % 2 == 0 for i in range(rows)]),
        }
    )
    options: dict[str, object] = {
        "small row groups": {"row_group_size": 100},
        "page index, v2 pages, zstd": {
            "write_page_index": True,
            "data_page_version": "2.0",
            "compression": "zstd",
        },
        "no statistics, no dictionary": {"write_statistics": False, "use_dictionary": False},
        "sorted, key-value metadata": {
            "sorting_columns": [pq.SortingColumn(0)],
            "store_schema": True,
        },
    }[shape]  # type: ignore[assignment]
    table = table.replace_schema_metadata({b"k" * 100: b"v" * 100_000})
    pq.write_table(table, path, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape",
    [
        "small row groups",
        "page index, v2 pages, zstd",
        "no statistics, no dictionary",
        "sorted, key-value metadata",
    ],
)
def test_a_footer_pyarrow_writes_passes_and_the_file_reads(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "honest.parquet"
    _honest(path, shape)
    refuse_large_footer(path, max_bytes=64 << 20, key="k", max_pages=250_000)
    assert read_table(path, fmt="parquet", max_bytes=2 << 30).shape == (5_000, 23)


@pytest.mark.parametrize("streamed", [False, True], ids=["in memory", "streamed"])
def test_a_footer_text_that_is_not_utf8_is_data000_not_a_crash(
    tmp_path: Path, streamed: bool
) -> None:
    """pyarrow's ``meta.created_by`` raises UnicodeDecodeError on a writer name that is not
    UTF-8 (found by fuzzing the footer): the page walk read it, and the data gate crashed
    (ERRORED, a traceback in its log; red before) where a file it cannot read is DATA000."""
    root = _project(tmp_path / "project", streamed=streamed, groups=1, chunks=1)
    path = root / "data" / "breast_cancer.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), path)
    data = path.read_bytes()
    writer = b"parquet-cpp-arrow"
    assert data.count(writer) == 1
    path.write_bytes(data.replace(writer, b"parquet-cpp-arr\xc3w"))
    done = _data_gate(root)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "DATA000" in out, out
    assert "expected a Parquet file, found something else ('utf-8' codec can't decode" in out, out


def test_every_one_character_change_of_the_stored_arrow_schema_is_a_data_error(
    tmp_path: Path,
) -> None:
    """pyarrow keeps the Arrow schema base64-encoded in the footer (``ARROW:schema``); one
    character changed there made pyarrow raise ArrowNotImplementedError ("Integers with less
    than 8 bits"), which escaped ``read_table`` (found by fuzzing the footer; red before: the
    data gate crashed, ERRORED). Each position is changed once: the file reads or is refused
    with a DataError, nothing else escapes."""
    base = tmp_path / "base.parquet"
    pq.write_table(
        pa.table({"a": [1, 2, 3], "s": ["x", "y", "x"], "f": [0.5, None, 1.5]}),
        base,
        row_group_size=2,
    )
    data = base.read_bytes()
    key = data.index(b"ARROW:schema")
    start = key + len(b"ARROW:schema") + 2  # the value's field header and length
    end = data.index(b"\x00", start)
    path = tmp_path / "changed.parquet"
    escaped: dict[int, str] = {}
    for at in range(start, min(end, start + 400)):
        changed = bytearray(data)
        changed[at] = ord("m") if data[at] != ord("m") else ord("A")
        path.write_bytes(bytes(changed))
        try:
            read_table(path, fmt="parquet", max_bytes=64 << 20, max_pages=1000)
        except DataError:
            pass
        except Exception as err:  # any other escape is what this test looks for
            escaped[at - start] = f"{type(err).__name__}: {err}"
    assert escaped == {}
