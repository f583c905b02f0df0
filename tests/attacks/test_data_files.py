"""Planted attack: a data column no contract rule sees.

When every data row of a CSV has one field more than the header, pandas' ``read_csv`` makes
the first field of each row the index and says nothing: the data gate checked, the lock
approved and training read a table without it, while the file carried a column of arbitrary
text. Readers that name their columns shift it into the declared ones instead: the streaming
reader's one-column pass (``usecols``, the ids of flagged rows) read that text as the id.

Each reader must refuse the file, naming it and the field counts.

Also: pandas decompresses a CSV by its extension, so a data file of a few kilobytes named
``.csv.xz`` or ``.csv.gz`` passed ``[data.checks].max_file_mb`` (checked on the file's bytes)
and expanded in memory to whatever it holds (29 KB of xz is 200 MB of rows). A data file is
read as the bytes it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _extra_leading_field(project: Any, *, lock: bool = True) -> Path:
    """Every data row gets a leading field; locked as ``data approve`` locked it before (the
    same table, so the same profile; only the file's digest is new)."""
    from pipeline.data import lock_key, read_lock, write_lock_entry

    policy = project.load()
    lines = project.data_path.read_text(encoding="utf-8").splitlines(keepends=True)
    hidden = [lines[0]] + [f"HIDDEN-{i}," + line for i, line in enumerate(lines[1:])]
    project.data_path.write_text("".join(hidden), encoding="utf-8")
    if lock:
        lock_path = policy.resolve(policy.policy.data.lock)
        entry = read_lock(lock_path).files[lock_key(policy, project.data_path)]
        write_lock_entry(
            policy,
            rows=entry.rows,
            columns=entry.columns,
            profile=entry.profile,
            reference=entry.reference,
        )
    path: Path = project.data_path
    return path


def test_the_data_gate_refuses_rows_with_a_field_the_header_lacks(project: Any) -> None:
    from gates.base import Status

    _extra_leading_field(project)
    result = project.run("data").results[0]
    assert result.status is not Status.PASSED, result.summary
    messages = " ".join(f.message for f in result.findings)
    assert "malformed CSV: the data rows have 33 fields, the header 32" in messages
    assert "breast_cancer.csv" in messages


def test_the_streaming_reader_refuses_it_too(project: Any) -> None:
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = _extra_leading_field(project, lock=False)
    with pytest.raises(DataError, match="the data rows have 33 fields, the header 32"):
        for _ in iter_chunks(path, fmt="csv", chunk_rows=100):
            pass


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zip"])
def test_a_compressed_file_is_not_expanded_past_the_size_limit(
    project: Any, tmp_path: Path, suffix: str
) -> None:
    import bz2
    import gzip
    import lzma
    import zipfile

    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    raw = project.data_path.read_bytes()
    packed = tmp_path / f"breast_cancer.csv{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("breast_cancer.csv", raw)
    else:
        packer = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}[suffix]
        packed.write_bytes(packer(raw))
    limit = packed.stat().st_size + 1  # the file fits, its contents do not
    assert len(raw) > limit
    with pytest.raises(DataError, match="expected UTF-8 CSV"):
        read_table(packed, fmt="csv", max_bytes=limit)
    with pytest.raises(DataError, match="expected UTF-8 CSV"):
        for _ in iter_chunks(packed, fmt="csv", chunk_rows=100, max_bytes=limit):
            pass


def test_a_parquet_file_that_decodes_past_the_size_limit_is_refused(tmp_path: Path) -> None:
    """A few kilobytes of Parquet (run-length, dictionary) decode to many megabytes: the
    footer's row count times each column's width in memory is checked against
    [data.checks].max_file_mb before anything is decoded."""
    import numpy as np
    import pandas as pd

    from pipeline.data import read_table
    from pipeline.errors import DataError

    path = tmp_path / "bomb.parquet"
    rows = 2_000_000
    pd.DataFrame({"a": np.zeros(rows), "b": np.ones(rows)}).to_parquet(path, index=False)
    assert path.stat().st_size < 200_000  # small on disk
    with pytest.raises(
        DataError, match=r"bomb\.parquet: Parquet file decodes to at least 30\.5 MiB"
    ):
        read_table(path, fmt="parquet", max_bytes=4 * 2**20)
    # Control: under a limit it fits, the same file reads.
    assert len(read_table(path, fmt="parquet", max_bytes=64 * 2**20)) == rows


def test_parquet_text_that_decodes_past_the_size_limit_is_refused(tmp_path: Path) -> None:
    """Text escapes the footer's bound (a reference per row): one 64 KiB value on 2,000 rows,
    dictionary-encoded and compressed, is under 8 KB that decodes to 125 MiB. It is
    read as a dictionary, measured as it would be expanded, and refused before expanding."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError

    path = tmp_path / "bomb.parquet"
    rows = 2_000
    text = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["t" * 64 * 1024])
    )
    table = pa.table({"id": pa.array(np.arange(rows)), "text": text})
    pq.write_table(table, path, store_schema=False, compression="zstd")
    assert path.stat().st_size < 8_192
    with pytest.raises(
        DataError,
        match=r"bomb\.parquet: Parquet file decodes to 125\.0 MiB \(its text measured before "
        r"it is expanded; 0\.\d\d MiB on disk\), larger than the 64\.0 MiB allowed",
    ):
        read_table(path, fmt="parquet", max_bytes=64 * 2**20)
    # Control: under a limit it fits, the text reads as text, as without a limit.
    frame = read_table(path, fmt="parquet", max_bytes=256 * 2**20)
    assert frame["text"].iloc[-1] == "t" * 64 * 1024
    assert frame.equals(read_table(path, fmt="parquet"))


def test_a_nested_parquet_column_is_refused_before_it_decodes(tmp_path: Path) -> None:
    """A list column holds any number of values per row (4 million zeros in one row: a few KB
    on disk, 32 MiB decoded), which the footer's rows x widths does not see; the contract's
    columns are flat, so a nested one is refused before anything is decoded, in memory and
    streamed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "nested.parquet"
    values = pa.array(np.zeros(4_000_000, dtype=np.int64))
    column = pa.ListArray.from_arrays(pa.array([0, 4_000_000], type=pa.int32()), values)
    pq.write_table(pa.table({"id": [1], "x": column}), path, compression="zstd")
    assert path.stat().st_size < 64 * 1024
    pattern = r"nested\.parquet: column 'x' is nested \(list<element: int64>\)"
    with pytest.raises(DataError, match=pattern):
        read_table(path, fmt="parquet", max_bytes=4 * 2**20)
    with pytest.raises(DataError, match=pattern):
        list(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=4 * 2**20))


def test_text_of_every_arrow_string_type_is_measured_before_it_is_expanded(
    tmp_path: Path,
) -> None:
    """A file's stored Arrow schema may call its text large_string (or a view): such a column
    is read as a dictionary and measured too (4,000 rows of one 256 KiB value stored as
    large_string, 11 KB on disk, peaked at 2.1 GiB before it was refused, at 147 MiB now)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.data import read_table, text_columns

    kinds = {
        "s": pa.string(),
        "ls": pa.large_string(),
        "sv": pa.string_view(),
        "b": pa.binary(),
        "lb": pa.large_binary(),
        "bv": pa.binary_view(),
        "i": pa.int64(),
    }
    assert text_columns(pa.schema(list(kinds.items()))) == ["s", "ls", "sv", "b", "lb", "bv"]
    # Read within the limit, such text reads as it does without one.
    path = tmp_path / "large.parquet"
    table = pa.table({"id": list(range(50)), "t": pa.array(["x" * 20] * 50, pa.large_string())})
    pq.write_table(table, path)
    assert read_table(path, fmt="parquet", max_bytes=2**20).equals(read_table(path, fmt="parquet"))


def test_parquet_text_stored_as_categories_is_measured_as_the_contract_reads_it(
    tmp_path: Path,
) -> None:
    """A file whose own Arrow schema says dictionary reads as pandas categories (small), but
    the contract's checks turn them into one string per row: one 64 KiB value on 2,000 rows
    counts as 125 MiB, not as the one value it is stored as (500 rows of a 1 MiB value
    peaked at 1.7 GiB in check_contract before)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError

    path = tmp_path / "categories.parquet"
    rows = 2_000
    text = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["t" * 64 * 1024])
    )
    codes = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array([7], pa.int64())
    )
    pq.write_table(pa.table({"text": text, "code": codes}), path)  # with Arrow's schema
    assert pa.types.is_dictionary(pq.read_schema(path).field("text").type)
    with pytest.raises(DataError, match=r"categories\.parquet: Parquet file decodes to 125\.0 "):
        read_table(path, fmt="parquet", max_bytes=64 * 2**20)
    assert len(read_table(path, fmt="parquet", max_bytes=256 * 2**20)) == rows


def _one_page(path: Path, mib: int) -> None:
    """One row whose text is ``mib`` MiB of zeros, in one page: a few KB of zstd."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [1], "x": ["0" * (mib * 2**20)]})
    pq.write_table(table, path, compression="zstd", use_dictionary=False)


def _forge_footer(path: Path, column: int) -> None:
    """Rewrite the footer's total_uncompressed_size of one column chunk to 1,000 bytes (a
    varint of the same length: Thrift's compact reader takes the padded form) and break the
    chunk's compressed bytes after its page header, as a file built by hand could."""
    import struct

    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(column)
    data = bytearray(path.read_bytes())
    footer_start = len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]

    def varint(n: int, width: int = 0) -> bytes:
        out = bytearray()
        while n >= 0x80 or len(out) + 1 < width:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes([*out, n])

    true = varint(2 * chunk.total_uncompressed_size)  # zigzag of a positive i64
    footer = bytes(data[footer_start:-8])
    assert footer.count(true) == 1
    data[footer_start:-8] = footer.replace(true, varint(2 * 1000, len(true)))
    body = chunk.data_page_offset + 64  # past the page header: into the compressed bytes
    data[body : body + 32] = b"\xff" * 32
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.row_group(0).column(column).total_uncompressed_size == 1000


def test_one_parquet_page_that_decompresses_past_the_limit_is_refused_before_it_is(
    tmp_path: Path,
) -> None:
    """Arrow decompresses a page whole before any bound on rows or decoded bytes applies: one
    row of 300 MiB of zeros is 10 KB of zstd and peaked at 1 GiB under a 64 MiB limit
    (in memory and streamed under a 16 MiB chunk) before it was refused. The page headers
    are read first; a file whose page is within the limit still reads."""
    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "page.parquet"
    _one_page(path, 48)
    assert path.stat().st_size < 16_384
    with pytest.raises(
        DataError,
        match=r"page\.parquet: Parquet pages decompress to 48\.0 MiB \(read from their headers; "
        r"the most: column 'x' in row group 0, 48\.0 MiB, its footer says 48\.0 MiB\), larger "
        r"than the 16\.0 MiB allowed \(\[data\.checks\]\.max_file_mb\); 0\.0\d MiB on disk, "
        r"refused before decompressing",
    ):
        read_table(path, fmt="parquet", max_bytes=16 * 2**20)
    with pytest.raises(
        DataError,
        match=r"page\.parquet: row group 0's pages decompress to 48\.0 MiB at once .* the most: "
        r"column 'x', 48\.0 MiB.* more than the 16\.0 MiB a chunk may take "
        r"\(\[data\]\.stream_chunk_mb\); refused before decompressing",
    ):
        list(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=16 * 2**20))
    # Control: under limits it fits, the same file reads in memory and streamed.
    assert len(read_table(path, fmt="parquet", max_bytes=256 * 2**20)) == 1
    chunks = list(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=2**30))
    assert [len(c.frame) for c in chunks] == [1]


def test_a_footer_that_understates_a_page_does_not_hide_it(tmp_path: Path) -> None:
    """Arrow sizes a page's buffer by the page's own header and never compares it with the
    footer: a footer rewritten to say the chunk is 1,000 bytes read the same 300 MiB page.
    The bound reads the page headers, before any byte is decompressed (the chunk's compressed
    bytes are broken here: decompressing them would fail with another message)."""
    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "forged.parquet"
    _one_page(path, 48)
    _forge_footer(path, column=1)
    with pytest.raises(
        DataError,
        match=r"forged\.parquet: Parquet pages decompress to 48\.0 MiB .*column 'x' in row "
        r"group 0, 48\.0 MiB, its footer says 0\.0 MiB\)",
    ):
        read_table(path, fmt="parquet", max_bytes=16 * 2**20)
    with pytest.raises(DataError, match=r"forged\.parquet: row group 0's pages decompress to 48"):
        list(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=16 * 2**20))


def test_a_parquet_page_header_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError

    path = tmp_path / "header.parquet"
    pq.write_table(pq.read_table(_small(tmp_path)), path, compression="zstd")
    start = pq.ParquetFile(path).metadata.row_group(0).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[start] = 0x1E  # field 1 with compact type 14: no such type (13 is a UUID)
    path.write_bytes(bytes(data))
    with pytest.raises(
        DataError,
        match=r"header\.parquet: expected a Parquet file, found a page header that cannot be "
        r"read \(column 'id' in row group 0, byte \d+: unknown Thrift type 14\)",
    ):
        read_table(path, fmt="parquet", max_bytes=16 * 2**20)


def _padded_writer(path: Path, created_by: str) -> None:
    """One row of 1 MiB of zeros in one zstd page (89 bytes with its header), the footer's
    ``created_by`` rewritten to ``created_by`` (same length) and the chunk's
    ``total_compressed_size`` to 0: the page lies wholly in the 100 bytes Arrow reads past a
    chunk an old parquet-mr wrote (PARQUET-816)."""
    import struct

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": ["0" * 2**20]}), path, compression="zstd", use_dictionary=False)
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(0)
    assert chunk.total_compressed_size <= 100
    data = bytearray(path.read_bytes())
    footer_start = len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]
    footer = bytes(data[footer_start:-8])
    old = str(meta.created_by).encode()
    new = created_by.encode().ljust(len(old))[: len(old)]
    true = _varint(2 * chunk.total_compressed_size)  # zigzag of a positive i64
    zero = b"\x00".rjust(len(true), b"\x80")  # 0, padded to the same length
    assert footer.count(old) == 1
    assert footer.count(true) == 2  # the chunk's and its row group's total
    data[footer_start:-8] = footer.replace(old, new).replace(true, zero)
    path.write_bytes(bytes(data))
    forged = pq.ParquetFile(path).metadata
    assert forged.row_group(0).column(0).total_compressed_size == 0
    assert str(forged.created_by).encode() == new


@pytest.mark.parametrize("created_by", [" parquet-mr version 1.2.8", "\tparquet-mr version 1.2.8"])
def test_a_page_in_the_old_writer_padding_is_seen_whatever_spells_the_writer(
    tmp_path: Path, created_by: str
) -> None:
    """Arrow reads 100 bytes past a column chunk when the footer's ``created_by`` names
    parquet-mr before 1.2.9, and its parser strips the spaces around the application name; the
    page walk padded only a ``created_by`` starting with ``parquet-mr``. With a leading space
    and the chunk's size forged to 0, the walk saw no page and Arrow decompressed the whole
    1 MiB page found in the padding, under a 512 KiB limit (red team, 6 December)."""
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "padded.parquet"
    _padded_writer(path, created_by)
    assert len(pq.read_table(path)["x"][0].as_py()) == 2**20  # Arrow reads the hidden page
    with pytest.raises(
        DataError,
        match=r"padded\.parquet: Parquet pages decompress to 1\.0 MiB .*column 'x' in row group "
        r"0, 1\.0 MiB, its footer says 1\.0 MiB\).* refused before decompressing",
    ):
        read_table(path, fmt="parquet", max_bytes=2**19)
    with pytest.raises(
        DataError,
        match=r"padded\.parquet: row group 0's pages decompress to 1\.0 MiB at once .* refused "
        r"before decompressing",
    ):
        list(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=2**19))


def _read_varint(data: bytes | bytearray, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _rewrite_first_header(path: Path, forgery: str) -> None:
    """Rewrite the first page header of the file's one column chunk (PAR1, then the header's
    type, uncompressed and compressed sizes as i32 fields, then field 5) as Apache Thrift's
    C++ reader (Arrow's) and its Python reader (the walk's) read differently, and the chunk's
    size in the footer to match. ``field id``: the uncompressed size written as 10, then again
    under the long-form field id 65538 (C++ keeps a field id's low 16 bits: field 2 again);
    ``wide size``: the compressed size with bit 32 set (C++ keeps an i32's low 32 bits)."""
    import struct

    import pyarrow.parquet as pq

    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    data = bytearray(path.read_bytes())
    at, sizes = 4, []
    for _ in range(3):
        assert data[at] == 0x15  # the next field id, an i32
        value, end = _read_varint(data, at + 1)
        sizes.append(value)
        at = end
    assert data[at] == 0x2C  # field 5 (data_page_header), a struct
    kind, uncompressed, compressed = (_varint(v) for v in sizes)
    if forgery == "field id":
        header = (
            b"\x15" + kind + b"\x15" + _varint(2 * 10) + b"\x15" + compressed
            + b"\x05" + _varint(2 * 65538) + uncompressed  # long-form field id 65538, an i32
            + b"\x0c" + _varint(2 * 5)  # field 5 by its long form: the same id to both readers
        )  # fmt: skip
    else:
        wide = sizes[2] + 2**32
        header = b"\x15" + kind + b"\x15" + uncompressed + b"\x15" + _varint(wide) + b"\x2c"
    grown = len(header) - (at + 1 - 4)
    data[4 : at + 1] = header
    footer_start = len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]
    footer = bytes(data[footer_start:-8])
    true = _varint(2 * chunk.total_compressed_size)
    assert footer.count(true) == 2  # the chunk's and its row group's total
    footer = footer.replace(true, _varint(2 * (chunk.total_compressed_size + grown)))
    path.write_bytes(bytes(data[:footer_start]) + footer + struct.pack("<I", len(footer)) + b"PAR1")


@pytest.mark.parametrize("forgery", ["field id", "wide size"])
def test_a_page_header_read_otherwise_by_arrow_is_refused(tmp_path: Path, forgery: str) -> None:
    """Apache Thrift's C++ compact reader (Arrow's) keeps the low 16 bits of a field id and
    the low 32 of an i32; its Python reader (the page walk's) keeps every bit. A header
    with the uncompressed size written twice, the second under field id 65538, said 10 bytes
    to the walk and 1 MiB to Arrow; a compressed size with bit 32 set made the walk jump past
    the chunk while Arrow read on to a 1 MiB page the walk never saw. Both were decompressed
    under a 512 KiB limit (red team, 6 December). Ids and sizes beyond their widths are
    refused: no writer makes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "wide.parquet"
    pages = ["a", "0" * 2**20] if forgery == "wide size" else ["0" * 2**20]
    pq.write_table(
        pa.table({"x": pages}),
        path,
        compression="zstd",
        use_dictionary=False,
        data_page_size=1,
        write_batch_size=1,
    )
    _rewrite_first_header(path, forgery)
    assert len(pq.read_table(path)["x"][-1].as_py()) == 2**20  # Arrow reads the 1 MiB page
    found = r"wide\.parquet: expected a Parquet file, found a page header that cannot be read "
    why = (
        "field id 65538 beyond 16 bits" if forgery == "field id" else r"field 3's i32 \d+ beyond 32"
    )
    with pytest.raises(DataError, match=found + r"\(column 'x' in row group 0, byte 4: " + why):
        read_table(path, fmt="parquet", max_bytes=2**19)
    with pytest.raises(DataError, match=found):
        list(iter_chunks(path, fmt="parquet", chunk_rows=10, max_chunk_bytes=2**19))


def _small(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "small.parquet"
    pq.write_table(pa.table({"id": list(range(100)), "x": [f"v{i}" for i in range(100)]}), path)
    return path


# --- a Parquet footer whose counts disagree (red team, 6 December) ---------------------------


def _varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _forge_counts(path: Path, rows: int, *, keep: int) -> None:
    """Rewrite the footer's row counts (Thrift compact i64 fields: the file's num_rows first,
    then each column chunk's num_values, then the row group's num_rows) to 1, every occurrence
    but those whose bit is set in ``keep``."""
    import struct

    raw = path.read_bytes()
    size = struct.unpack("<I", raw[-8:-4])[0]
    footer = raw[-8 - size : -8]
    pattern = b"\x16" + _varint(2 * rows)  # field delta 1, type i64, zigzag varint
    found, at = [], footer.find(pattern)
    while at >= 0:
        found.append(at)
        at = footer.find(pattern, at + 1)
    for number, at in reversed(list(enumerate(found))):
        if not keep >> number & 1:
            footer = footer[:at] + b"\x16" + _varint(2) + footer[at + len(pattern) :]
    path.write_bytes(raw[: -8 - size] + footer + struct.pack("<I", len(footer)) + b"PAR1")


def test_a_parquet_footer_declaring_one_row_is_refused_before_its_rows_decode(
    tmp_path: Path,
) -> None:
    """The footer's file-level row count was the bound the in-memory reader checked before
    decoding, and the streaming reader's ``[data].max_rows``; Arrow reads the row groups'
    counts. That count forged to 1 (the row groups' left at 2,000,000): the bound passed and the
    file decoded whole (30.5 MiB here; 100 million rows x 10 columns, a few MB on disk, is 8 GB)
    before the size was measured. The counts must agree, refused before a row is read."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from pipeline.data import read_table
    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "forged.parquet"
    rows = 2_000_000
    pd.DataFrame({"a": np.zeros(rows), "b": np.ones(rows)}).to_parquet(
        path, index=False, row_group_size=rows
    )
    # Occurrences: file num_rows (0), column a's and b's num_values (1, 2), row group (3).
    _forge_counts(path, rows, keep=0b1110)
    meta = pq.ParquetFile(path).metadata
    assert (meta.num_rows, meta.row_group(0).num_rows) == (1, rows)
    assert pq.read_table(path).num_rows == rows  # what Arrow reads: the row groups' count
    pattern = (
        r"forged\.parquet: the Parquet footer declares 1 row\(s\), its row groups 2000000; "
        r"refused before reading"
    )
    with pytest.raises(DataError, match=pattern):
        read_table(path, fmt="parquet", max_bytes=4 * 2**20)
    with pytest.raises(DataError, match=pattern):
        list(iter_chunks(path, fmt="parquet", chunk_rows=1000, max_chunk_bytes=2**20, max_rows=10))


def test_a_parquet_column_declaring_one_value_is_refused_before_its_rows_decode(
    tmp_path: Path,
) -> None:
    """The streaming reader's bound before reading is each column's value count x its width
    per chunk; Arrow reads a row group's rows. A 1 MiB fixed-width column of 200 rows (456 bytes
    on disk) whose value count is forged to 1: the bound saw 1 MiB, and the chunk decoded to
    200 MiB before it was measured (20,000 such rows: 20 GB). Refused before reading."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.errors import DataError
    from pipeline.stream import iter_chunks

    path = tmp_path / "forged.parquet"
    rows = 200
    table = pa.table({"f": pa.array([b"\0" * 2**20] * rows, pa.binary(2**20))})
    pq.write_table(table, path, compression="zstd", row_group_size=rows)
    # Occurrences: file num_rows (0), column f's num_values (1), row group (2).
    _forge_counts(path, rows, keep=0b101)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).num_values == 1
    pattern = (
        r"forged\.parquet: row group 0 declares 200 rows, its column 'f' 1 value\(s\); "
        r"refused before reading"
    )
    with pytest.raises(DataError, match=pattern):
        list(iter_chunks(path, fmt="parquet", chunk_rows=rows, max_chunk_bytes=8 * 2**20))
