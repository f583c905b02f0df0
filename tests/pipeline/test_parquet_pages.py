"""The page headers read by ``pipeline.parquet_pages`` agree with what pyarrow wrote."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import MAX_PAGES
from pipeline.parquet_pages import PageLimit, chunk_pages, held_at_once

ROWS = 30_000
_rng = np.random.default_rng(0)
TABLE = pa.table(
    {
        "f": _rng.normal(size=ROWS),
        "i": _rng.integers(0, 5, ROWS),
        "s": pa.array([None if k % 7 == 0 else f"v{k % 300}" for k in range(ROWS)]),
        "b": _rng.integers(0, 2, ROWS).astype(bool),
        "t": pa.array(["x" * (k % 50) for k in range(ROWS)]),
    }
)


OPTIONS = list(
    itertools.product(
        ["none", "snappy", "zstd", "gzip", "brotli", "lz4"],  # codec
        ["1.0", "2.0"],  # data page version
        [True, False],  # statistics
        [True, False],  # page index
        [True, False],  # dictionary
    )
)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o)))
def test_page_sizes_add_up_to_the_footer(
    tmp_path: Path, options: tuple[str, str, bool, bool, bool]
) -> None:
    codec, page_version, statistics, page_index, dictionary = options
    # An honest footer's uncompressed size is the pages' plus their headers' bytes.
    path = tmp_path / "t.parquet"
    pq.write_table(
        TABLE,
        path,
        compression=codec,
        data_page_version=page_version,
        write_statistics=statistics,
        write_page_index=page_index,
        use_dictionary=dictionary,
        row_group_size=12_000,
        data_page_size=8_192,
    )
    meta = pq.ParquetFile(path).metadata
    pages = chunk_pages(path, meta, max_pages=MAX_PAGES)
    assert len(pages) == meta.num_row_groups * meta.num_columns == 3 * 5
    for chunk in pages:
        assert 0 < chunk.total < chunk.footer < chunk.total + 2_000, chunk
        # 12,000 rows in pages of 8 KiB (at most 20,000 rows): one a page at least, and a
        # dictionary page when one is written.
        assert 1 + bool(chunk.dictionary) <= chunk.pages < 12_000 // 8, chunk
        assert chunk.largest <= chunk.total
        assert dictionary or chunk.dictionary == 0, chunk
    assert not dictionary or any(c.dictionary for c in pages)
    held = held_at_once(pages)
    assert sorted(held) == [0, 1, 2]
    assert all(
        size <= sum(c.total for c in pages if c.row_group == g) for g, (size, _) in held.items()
    )


def test_only_the_wanted_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(TABLE, path)
    pages = chunk_pages(path, pq.ParquetFile(path).metadata, ["f", "t"], max_pages=MAX_PAGES)
    assert {c.column for c in pages} == {"f", "t"}


# --- each file walked once per process, never vouching for other bytes ---------------------


def _headers_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the page headers the walk reads (parquet_pages._header's calls)."""
    import pipeline.parquet_pages as pages

    read = [0]
    header = pages._header

    def counted(*args: object, **kwargs: object) -> tuple[int, int, int, int]:
        read[0] += 1
        return header(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pages, "_header", counted)
    return read


def test_a_file_is_walked_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.stream import iter_chunks

    path = tmp_path / "t.parquet"
    pq.write_table(TABLE, path, row_group_size=12_000, data_page_size=8_192)
    meta = pq.ParquetFile(path).metadata
    read = _headers_read(monkeypatch)
    first = chunk_pages(path, meta, ["i"], max_pages=MAX_PAGES)  # the id column alone first
    whole = chunk_pages(path, meta, max_pages=MAX_PAGES)
    in_file = sum(c.pages for c in whole)
    assert read[0] == in_file > 3 * 5  # the rest of the file, not column 'i' again
    assert [c for c in whole if c.column == "i"] == first
    # Three streamed passes (the scan, two scoring passes) and the whole file again: no header
    # read, the same pages counted.
    for columns in (None, ("f", "t"), ("s",)):
        list(
            iter_chunks(
                path, fmt="parquet", chunk_rows=5_000, columns=columns, max_chunk_bytes=2**30
            )
        )
    assert chunk_pages(path, meta, max_pages=MAX_PAGES) == whole
    assert read[0] == in_file
    # The bounds still hold over the counted pages: a smaller max_pages stops the walk.
    with pytest.raises(PageLimit, match=r"more than the 20 a file may hold"):
        chunk_pages(path, meta, max_pages=20)


@pytest.mark.parametrize("clock", ["ticks", "same tick"])
def test_a_file_rewritten_between_two_reads_is_walked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: str
) -> None:
    # The same size, inode and modification time, one page header's declared size changed:
    # what was kept of the first walk must not vouch for the new bytes. "same tick": a rewrite
    # within one tick of the file system's clock leaves even the change time as it was (here
    # every signature is one): the bytes read again say it.
    if clock == "same tick":
        import pipeline.parquet_pages as pages

        monkeypatch.setattr(pages, "signature", lambda stat: (0, 0, 0, 0, 0))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": np.arange(1_000, dtype=np.int64)}), path, use_dictionary=False)
    meta = pq.ParquetFile(path).metadata
    before = chunk_pages(path, meta, max_pages=MAX_PAGES)
    data = bytearray(path.read_bytes())
    start = meta.row_group(0).column(0).data_page_offset
    # PageHeader: 0x15 type, 0x15 uncompressed_page_size (zigzag varint, here two bytes: 1,000
    # int64 values, about 8,000 bytes), ...: the size becomes 8,191, a varint as long.
    assert data[start : start + 3] == b"\x15\x00\x15"
    low, high = data[start + 3 : start + 5]
    assert low >= 0x80
    assert high < 0x80
    assert (low & 0x7F | high << 7) // 2 == before[0].largest < 8_191
    data[start + 3 : start + 5] = bytes([0xFE, 0x7F])  # zigzag(8,191) = 16,382
    stat = path.stat()
    with path.open("r+b") as handle:  # in place: the same inode
        handle.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
    )
    again = chunk_pages(path, meta, max_pages=MAX_PAGES)
    assert again[0].largest == 8_191


# --- the header budget: bytes stepped through, a string passed in one step counts 8 ---------


def test_a_header_costs_the_bytes_stepped_through() -> None:
    """A string is passed in one step: it counts 8 bytes, not its length; every field byte
    stepped through counts in full, and a header stops as soon as its cost passes the budget,
    not at its end (one of 1 MB of bool fields against 100 bytes)."""
    from pipeline.parquet_pages import _OverBudget, _read_within

    head = b"\x15\x00\x15\x10\x15\x10"  # type 0, both sizes 8
    text = head + b"\x68\xf0\x03" + b"t" * 496 + b"\x00"  # field 9: a 496-byte string
    fields, length, cost = _read_within(text, 10**9)
    assert fields == {1: 0, 2: 8, 3: 8}
    assert length == len(text)
    assert cost == len(text) - 496 + 8
    with pytest.raises(_OverBudget):
        _read_within(text, cost - 1)
    assert _read_within(text, cost)[2] == cost
    # field 9: a struct of 1,000,000 one-byte bool fields: all stepped through.
    bools = head + b"\x6c" + b"\x11" * 1_000_000 + b"\x00\x00"
    assert _read_within(bools, 10**9)[2] == len(bools)
    with pytest.raises(_OverBudget):
        _read_within(bools, 100)
