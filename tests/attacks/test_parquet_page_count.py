"""Planted attack: a Parquet file of many tiny pages holds the data gate on its page walk.

Before Arrow decompresses anything, ``pipeline.parquet_pages`` reads every page header (Python's
Thrift reader, 25-50 us each) whatever its page holds: 1,000,000 one-value pages are 75 MB,
walked in 52 s where Arrow reads them in 0.8 s; ``[data.checks].max_file_mb`` (2048) let such
a file hold CI and a reviewer's laptop for tens of minutes. 100,000 one-row row groups took
13.6 s in Arrow itself. Every reader now counts the pages (and column chunks) it walks and
stops past ``[data].max_pages``, naming the file, where it stopped, the count and the key;
each shape an attacker could pick is planted here, in memory and streamed, and each file is
read under a bound it fits.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import read_table
from pipeline.errors import DataError
from pipeline.stream import iter_chunks

LIMIT = 200
_RUNNING = r"{name}: 201 Parquet pages read when the walk stopped \(column '\w+' in row group \d+, byte \d+\), more than the 200 a file may hold \(\[data\]\.max_pages\); refused before decompressing"
_CHUNKS = r"{name}: the Parquet footer declares {chunks} column chunks \({groups} row groups x {columns} columns\), each read as one page at least: more than the 200 pages a file may hold \(\[data\]\.max_pages\); refused before reading"


def _zero_values(path: Path) -> None:
    """Every page header of the one column rewritten to declare 0 values (its
    ``data_page_header.num_values``, zigzag 2 -> 0: the same length): a bound on values or rows
    would not see these pages; the walk reads each header all the same."""
    data = path.read_bytes()
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start, end = chunk.data_page_offset, chunk.data_page_offset + chunk.total_compressed_size
    # pyarrow's header without statistics: type, both sizes, then field 5 (data_page_header,
    # 0x2C) whose first field (0x15: num_values, an i32) is 1 (zigzag 0x02).
    one, zero = b"\x2c\x15\x02", b"\x2c\x15\x00"
    region = data[start:end]
    assert region.count(one) == 300
    path.write_bytes(data[:start] + region.replace(one, zero) + data[end:])


def _write(path: Path, shape: str) -> tuple[str, dict[str, int] | None]:
    """A file of ``shape``: the message expected past 200 pages, and for a refusal before the
    walk the footer's counts."""
    values = pa.array(range(300), type=pa.int64())
    if shape in ("one-value pages", "v2 one-value pages", "zero-value pages"):
        pq.write_table(
            pa.table({"x": values}),
            path,
            use_dictionary=False,
            write_statistics=shape != "zero-value pages",
            compression="none" if shape == "zero-value pages" else "snappy",
            data_page_size=1,
            write_batch_size=1,
            data_page_version="2.0" if shape.startswith("v2") else "1.0",
        )
        if shape == "zero-value pages":
            _zero_values(path)
        return _RUNNING, None
    if shape == "row groups of a dictionary and a data page":  # 150 chunks, 300 pages
        pq.write_table(pa.table({"x": values.slice(0, 150)}), path, row_group_size=1)
        return _RUNNING, None
    if shape == "columns of a dictionary and a data page":  # 150 chunks, 300 pages
        pq.write_table(pa.table({f"c{i}": [i] for i in range(150)}), path)
        return _RUNNING, None
    if shape == "one-row row groups":  # 250 chunks: refused from the footer
        pq.write_table(
            pa.table({"x": values.slice(0, 250)}), path, row_group_size=1, use_dictionary=False
        )
        return _CHUNKS, {"chunks": 250, "groups": 250, "columns": 1}
    assert shape == "many columns"  # 300 chunks in one row group
    pq.write_table(pa.table({f"c{i}": [i] for i in range(300)}), path, use_dictionary=False)
    return _CHUNKS, {"chunks": 300, "groups": 1, "columns": 300}


SHAPES = [
    "one-value pages",
    "v2 one-value pages",
    "zero-value pages",
    "row groups of a dictionary and a data page",
    "columns of a dictionary and a data page",
    "one-row row groups",
    "many columns",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_more_parquet_pages_than_allowed_stop_the_walk(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "pages.parquet"
    expected, counts = _write(path, shape)
    message = expected.format(name=r"pages\.parquet", **(counts or {}))
    with pytest.raises(DataError, match=message):
        read_table(path, fmt="parquet", max_bytes=2**30, max_pages=LIMIT)
    with pytest.raises(DataError, match=message):
        list(
            iter_chunks(path, fmt="parquet", chunk_rows=100, max_chunk_bytes=2**30, max_pages=LIMIT)
        )
    if shape == "zero-value pages":
        return  # Arrow's reading of a forged file is not the point
    # Control: under a bound it fits, the same file reads, in memory and streamed.
    rows = pq.ParquetFile(path).metadata.num_rows
    assert len(read_table(path, fmt="parquet", max_bytes=2**30, max_pages=400)) == rows
    chunks = iter_chunks(path, fmt="parquet", chunk_rows=100, max_chunk_bytes=2**30, max_pages=400)
    assert sum(len(c.frame) for c in chunks) == rows


@pytest.mark.parametrize("shape", ["one-row row groups", "many columns"])
def test_too_many_column_chunks_are_refused_before_the_footer_is_looped_over(
    tmp_path: Path, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The footer's own checks (``parquet_rows``: every column chunk of every row group, in
    Python) cost per chunk too: the count of chunks, one multiplication, comes first."""
    import pipeline.data
    import pipeline.stream

    def looped(*_: Any) -> int:
        raise AssertionError("the footer was looped over before its chunks were counted")

    monkeypatch.setattr(pipeline.data, "parquet_rows", looped)
    monkeypatch.setattr(pipeline.stream, "parquet_rows", looped)
    path = tmp_path / "pages.parquet"
    expected, counts = _write(path, shape)
    message = expected.format(name=r"pages\.parquet", **(counts or {}))
    with pytest.raises(DataError, match=message):
        read_table(path, fmt="parquet", max_bytes=2**30, max_pages=LIMIT)
    with pytest.raises(DataError, match=message):
        list(
            iter_chunks(path, fmt="parquet", chunk_rows=100, max_chunk_bytes=2**30, max_pages=LIMIT)
        )


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


# What fills a crafted header after its type and sizes: about 200 bytes, each stepped through
# by the walk (nothing in them is passed in one step).
_FILLS = {
    # field 4: a struct of 190 one-byte bool fields; its end, the header's end
    "bool fields": b"\x1c" + b"\x11" * 190 + b"\x00\x00",
    # field 4: a map of 94 bytes to bytes; the header's end
    "a map of bytes": b"\x1b" + _varint(94) + b"\x33" + b"\x00" * 188 + b"\x00",
    # field 4: a struct of 19 strings of 8 bytes (what a string costs at most: 8)
    "short strings": b"\x1c" + (b"\x18\x08" + b"s" * 8) * 19 + b"\x00\x00",
}


def _crafted_headers(path: Path, fill: bytes) -> None:
    """Five pages whose headers hold ``fill``: a file of five 1,000-value pages, its chunk
    rewritten in place as five headers (type 0, 8 bytes uncompressed, its compressed size)
    followed by that many bytes, the chunk's size unchanged (no page reads in Arrow: the walk
    is what is tested)."""
    pq.write_table(
        pa.table({"x": pa.array(range(5_000), type=pa.int64())}),
        path,
        use_dictionary=False,
        write_statistics=False,
        compression="none",
        data_page_size=1,
        write_batch_size=1_000,
    )
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start, size = chunk.data_page_offset, chunk.total_compressed_size
    head = 7 + len(fill)  # \x15\x00 \x15\x10 \x15 and a two-byte compressed size
    base, extra = divmod(size - 5 * head, 5)
    blob = b"".join(
        b"\x15\x00\x15\x10\x15"
        + _varint(2 * (base + (k < extra)))
        + fill
        + bytes(base + (k < extra))
        for k in range(5)
    )
    assert len(blob) == size
    data = path.read_bytes()
    path.write_bytes(data[:start] + blob + data[start + size :])


_BUDGET = (
    r"headers\.parquet: Parquet page headers past 640 bytes stepped through when the walk "
    r"stopped \(column 'x' in row group 0, byte \d+, 3 pages read\), more than "
    r"\[data\]\.max_pages \(5\) x 128 bytes a file may hold \(a string or a run of "
    r"fixed-width values counts 8\); refused before decompressing"
)


@pytest.mark.parametrize("fill", list(_FILLS))
def test_few_pages_with_large_headers_stop_the_walk_at_their_bytes(
    tmp_path: Path, fill: str
) -> None:
    """A header costs the bytes its reader steps through (0.2-0.4 us each, bench/parquet_pages.py;
    1-5 us with Thrift's reader), and a header may take 16 MiB: 128 such pages, well under any
    page count, held the walk for hours. The walk steps through at most ``max_pages x 128``
    header bytes; here five pages whose headers hold about 200 bytes of one-byte fields, map
    entries or short strings against 5 x 128: the fourth header passes the 640 bytes."""
    from pipeline.parquet_pages import HEADER_BYTES_PER_PAGE, chunk_pages

    assert HEADER_BYTES_PER_PAGE == 128
    path = tmp_path / "headers.parquet"
    _crafted_headers(path, _FILLS[fill])
    with pytest.raises(DataError, match=_BUDGET):
        read_table(path, fmt="parquet", max_bytes=2**30, max_pages=5)
    with pytest.raises(DataError, match=_BUDGET):
        list(iter_chunks(path, fmt="parquet", chunk_rows=100, max_chunk_bytes=2**30, max_pages=5))
    # Control: with room for 10 pages' headers, the walk reads all five, every byte counted.
    (chunk,) = chunk_pages(path, pq.ParquetFile(path).metadata, max_pages=10)
    assert chunk.pages == 5
    assert chunk.header_cost == chunk.header_bytes == 5 * (7 + len(_FILLS[fill]))


def test_long_text_one_value_a_page_is_within_the_header_budget(tmp_path: Path) -> None:
    """pyarrow's page statistics hold the min and max of a text up to 4,096 bytes: one
    4,000-character value a page makes 8 KB headers, of which the walk steps through about 80
    (the two strings are passed in one step each, counted 8; the first 35 bytes are stepped
    through twice: a 4 KB window ends inside the first string, a larger one is read). Counted by their bytes, 100 such pages
    passed the 100 x 128 header bytes after one page (and at the default bound, 5,000 rows'
    40 MB passed 32 MB); counted by what is stepped through, they read."""
    from pipeline.parquet_pages import chunk_pages

    path = tmp_path / "text.parquet"
    text = [f"{i:05d}" + "y" * 3_995 for i in range(100)]
    pq.write_table(
        pa.table({"t": text}), path, use_dictionary=False, data_page_size=1, write_batch_size=1
    )
    (chunk,) = chunk_pages(path, pq.ParquetFile(path).metadata, max_pages=100)
    assert chunk.pages == 100
    assert chunk.header_bytes > 100 * 8_000
    assert chunk.header_cost < 100 * 100
    assert read_table(path, fmt="parquet", max_bytes=2**30, max_pages=100)["t"].tolist() == text
    chunks = iter_chunks(path, fmt="parquet", chunk_rows=30, max_chunk_bytes=2**30, max_pages=100)
    assert [v for c in chunks for v in c.frame["t"]] == text
    # The same file under a bound it does not fit in pages still stops at the page count.
    with pytest.raises(
        DataError, match=r"100 Parquet pages read when the walk stopped .* more than the 99 a file"
    ):
        read_table(path, fmt="parquet", max_bytes=2**30, max_pages=99)


def test_files_pyarrow_and_pandas_write_by_default_are_within_the_default(tmp_path: Path) -> None:
    """52 pages a column per million rows (20,000 rows a page) and a dictionary page: 200,000
    rows x 20 columns walk 220 pages, far under [data].max_pages' 250,000."""
    from pipeline.config import MAX_PAGES
    from pipeline.parquet_pages import chunk_pages

    rows = 200_000
    frame = pd.DataFrame({f"f{i}": [float(k % 977) for k in range(rows)] for i in range(19)})
    frame["y"] = ["a", "b"] * (rows // 2)
    for writer in ("pyarrow", "pandas"):
        path = tmp_path / f"{writer}.parquet"
        if writer == "pandas":
            frame.to_parquet(path, index=False)
        else:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        pages = chunk_pages(path, pq.ParquetFile(path).metadata, max_pages=MAX_PAGES)
        assert sum(c.pages for c in pages) == 20 * (1 + 10), writer
        assert len(read_table(path, fmt="parquet", max_bytes=2**30)) == rows


def _parquet_data(project: Any, *, pages: int, **policy: Any) -> None:
    """The project's data as Parquet, its first column in ``pages`` one-row pages (one row
    group), under ``policy`` edits."""
    frame = pd.read_csv(project.data_path)
    frame = frame.loc[frame.index.repeat(-(-pages // len(frame)))].head(pages)
    frame["id"] = range(1, len(frame) + 1)
    pq.write_table(
        pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False),
        project.data_path,
        data_page_size=1,
        write_batch_size=1,
    )
    project.edit_policy(**{"data.format": "parquet", **policy})


@pytest.mark.parametrize("streamed", [False, True], ids=["in memory", "streamed"])
def test_the_data_gate_stops_at_the_policys_page_bound(
    project: Any, gates_cli: Any, streamed: bool
) -> None:
    extra = {"data.stream_above_mb": 0.001} if streamed else {}
    _parquet_data(project, pages=600, **{"data.max_pages": 500, **extra})
    done = gates_cli(project.root, "run", "data")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "breast_cancer.csv: 501 Parquet pages read when the walk stopped" in done.stdout
    assert "more than the 500 a file may hold ([data].max_pages)" in done.stdout
    assert "Traceback" not in done.stderr


FOUND = r"501 Parquet pages read when the walk stopped .*\(\[data\]\.max_pages\)"


def test_predict_stops_at_the_policys_page_bound(project: Any) -> None:
    """``python -m pipeline predict`` reads its input under the data gate's bounds."""
    from pipeline.predict import predict_file

    _parquet_data(project, pages=600, **{"data.max_pages": 500})
    rows = project.root / "rows.parquet"  # predict reads Parquet by the input's suffix
    rows.write_bytes(project.data_path.read_bytes())
    with pytest.raises(DataError, match=r"rows\.parquet: " + FOUND):
        predict_file(project.load(), model=None, input_path=rows)


@pytest.mark.parametrize("streamed", [False, True], ids=["in memory", "streamed"])
def test_data_approve_stops_at_the_policys_page_bound(project: Any, streamed: bool) -> None:
    from gates.approve import approve

    extra = {"data.stream_above_mb": 0.001} if streamed else {}
    _parquet_data(project, pages=600, **{"data.max_pages": 500, **extra})
    with pytest.raises(DataError, match=r"breast_cancer\.csv: " + FOUND):
        approve(project.load(), out=io.StringIO())


def test_a_feedback_batch_screen_stops_at_the_policys_page_bound(
    project: Any, tmp_path: Path
) -> None:
    """A feedback batch is screened against the training data (``gates.feedback.quarantine``),
    read under the same bound."""
    from gates.feedback import quarantine

    _parquet_data(project, pages=600, **{"data.max_pages": 500})
    source = tmp_path / "outcomes.csv"
    rows = pq.read_table(project.data_path).to_pandas().head(3)
    rows["id"] = range(10_000_000, 10_000_003)
    rows["prediction"] = rows["diagnosis"]
    rows.to_csv(source, index=False)
    with pytest.raises(DataError, match=r"breast_cancer\.csv: " + FOUND):
        quarantine.ingest(project.load(), source)
