"""The page headers read by ``pipeline.parquet_pages`` agree with what pyarrow wrote."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import MAX_PAGES
from pipeline.parquet_pages import chunk_pages, held_at_once

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
