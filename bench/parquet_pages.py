"""The page walk (``pipeline.parquet_pages``) against Arrow's own read, for files of many pages.

python bench/parquet_pages.py [--pages 10000 100000 1000000] [--repeat 3]: for each N, writes
with pyarrow (one int64 column, no dictionary, N rows) a file of N one-value pages in one row
group (``data_page_size=1, write_batch_size=1``) and, up to 100,000, a file of N one-row row
groups; then times the page walk (``chunk_pages``, without and with the page bound), the
footer's row-group loop (``parquet_rows``) and ``pyarrow.parquet.read_table``, best of
``--repeat``, and how long the walk takes to refuse the file under [data].max_pages' default
(once). For scale: how many pages pyarrow writes by default for 1,000,000 rows x 20
columns (the legitimate side of the page bound). Last, what one header's bytes cost: a 1 MB
header of unknown bool fields and one of a list of 500,000 bytes (what an attacker fills a
header with: the walk skips them), read by the walk's header reader.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import config  # noqa: E402
from pipeline.data import parquet_rows  # noqa: E402
from pipeline.parquet_pages import chunk_pages  # noqa: E402

BOUNDED = "max_pages" in inspect.signature(chunk_pages).parameters
MAX_PAGES = getattr(config, "MAX_PAGES", 0)  # before the bound: none


def best(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def pages_of(path: Path) -> int:
    kwargs = {"max_pages": 2**62} if BOUNDED else {}
    found = chunk_pages(path, pq.ParquetFile(path).metadata, **kwargs)
    return sum(getattr(c, "pages", 0) for c in found)


def measure(label: str, path: Path, repeat: int) -> None:
    meta = pq.ParquetFile(path).metadata
    size = path.stat().st_size / 2**20
    unbounded = {"max_pages": 2**62} if BOUNDED else {}
    walk = best(repeat, lambda: chunk_pages(path, meta, **unbounded))
    rows = best(repeat, lambda: parquet_rows(path, meta))
    arrow = best(repeat, lambda: pq.read_table(path))
    line = (
        f"{label:<26} {size:8.2f} MiB  walk {walk:7.3f} s ({walk / meta.num_rows * 1e6:5.1f} us/page)"
        f"  footer loop {rows:6.3f} s  Arrow read {arrow:6.3f} s  walk/Arrow {walk / arrow:5.1f}x"
    )
    if BOUNDED:
        from pipeline.errors import DataError

        start = time.perf_counter()
        try:
            chunk_pages(path, meta, max_pages=MAX_PAGES)
            refused = "passes"
        except DataError:
            refused = "refused"
        line += (
            f"  default bound ({MAX_PAGES:,}): {refused} in {time.perf_counter() - start:6.3f} s"
        )
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"pyarrow {pa.__version__}; page bound in chunk_pages: {BOUNDED}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.pages:
            table = pa.table({"x": np.arange(n, dtype=np.int64)})
            path = Path(folder) / f"pages-{n}.parquet"
            pq.write_table(table, path, use_dictionary=False, data_page_size=1, write_batch_size=1)
            assert not BOUNDED or pages_of(path) == n
            measure(f"{n:>9,} one-value pages", path, args.repeat)
            if n <= 100_000:
                path = Path(folder) / f"groups-{n}.parquet"
                pq.write_table(table, path, use_dictionary=False, row_group_size=1)
                measure(f"{n:>9,} one-row groups", path, args.repeat)
        rows = 1_000_000
        rng = np.random.default_rng(0)
        legit = pa.table(
            {f"f{i}": np.round(rng.normal(0, 10, rows), 4) for i in range(19)}
            | {"y": pa.array(np.where(rng.random(rows) < 0.3, "b", "a"))}
        )
        path = Path(folder) / "defaults.parquet"
        pq.write_table(legit, path)
        meta = pq.ParquetFile(path).metadata
        start = time.perf_counter()
        count = pages_of(path)
        seconds = time.perf_counter() - start
        print(
            f"pyarrow defaults, {rows:,} rows x 20 columns: {path.stat().st_size / 2**20:.1f} MiB,"
            f" {meta.num_row_groups} row group(s), "
            + (f"{count:,} pages" if BOUNDED else "pages not counted (no bound)")
            + f", walked in {seconds:.3f} s"
        )
    header_bytes()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def header_bytes() -> None:
    from pipeline.parquet_pages import _read_header

    # type 0, both sizes 8 (i32, zigzag), then field 9: a struct of 500,000 bool fields in
    # the long form (type 1, field id 1), or a list (0xF3: i8 elements) of 500,000 bytes.
    head = b"\x15\x00\x15\x10\x15\x10"
    bodies = {
        "500,000 bool fields": b"\x6c" + b"\x01\x02" * 500_000 + b"\x00\x00",
        "a list of 500,000 bytes": b"\x69\xf3" + _varint(500_000) + b"\x00" * 500_000 + b"\x00",
    }
    for label, body in bodies.items():
        start = time.perf_counter()
        _, length = _read_header(head + body)
        seconds = time.perf_counter() - start
        print(
            f"one header of {label}: {length:,} bytes in {seconds:.2f} s ({seconds / length * 1e6:.2f} us/byte)"
        )


if __name__ == "__main__":
    main()
