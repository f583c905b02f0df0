"""The page walk (``pipeline.parquet_pages``) against Arrow's own read, for files of many pages.

python bench/parquet_pages.py [--pages 10000 100000 1000000] [--repeat 3]: for each N, writes
with pyarrow (one int64 column, no dictionary, N rows) a file of N one-value pages in one row
group (``data_page_size=1, write_batch_size=1``) and, up to 100,000, a file of N one-row row
groups; then times the page walk (``chunk_pages``, without and with the page bound), the
footer's row-group loop (``parquet_rows``) and ``pyarrow.parquet.read_table``, best of
``--repeat``, and how long the walk takes to refuse the file under [data].max_pages' default
(once). For scale: how many pages pyarrow writes by default for 1,000,000 rows x 20
columns (the legitimate side of the page bound), and the page headers' bytes of long text
(1,000,000 rows of 200 characters, with and without a dictionary, and of 4,000 characters)
against the [data].max_pages x 128 header bytes a file may hold: their bytes, what the walk
steps through ("cost": a string passed in one step counts 8 bytes, not its length; absent
before that rule) and whether the default bound passes the file (5,000 and 50,000 rows of one
4,000-character value a page were refused when the budget counted bytes). Then the adversary of
that budget: the 1,000,000-page file's chunk rewritten as exactly max_pages pages whose headers
are 128 bytes each of one-byte bool fields (a nested struct), or of a map of bytes to bytes
(the costliest bytes to step through, 1 MB headers below): the file is at both bounds, so the
walk reads all of it; and the same with 129-byte headers, refused at the budget
(``--budget-file`` skips these). Last, what one header's bytes cost, by what fills it: the
walk's header reader on 1 MB headers.

Each walk is timed on a cold process cache (``forget``: a file is walked once per process);
"again" is the same walk reusing what it kept (the file's signature and the header bytes read
again and digested).
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

from pipeline import config, parquet_pages  # noqa: E402
from pipeline.data import parquet_rows  # noqa: E402
from pipeline.parquet_pages import chunk_pages  # noqa: E402

BOUNDED = "max_pages" in inspect.signature(chunk_pages).parameters
MAX_PAGES = getattr(config, "MAX_PAGES", 0)  # before the bound: none
HEADER_BYTES_PER_PAGE = getattr(parquet_pages, "HEADER_BYTES_PER_PAGE", 0)
forget: Callable[[], None] = getattr(parquet_pages, "forget", lambda: None)  # before: no cache


def best(repeat: int, run: Callable[[], Any], *, cold: bool = True) -> float:
    times = []
    for _ in range(repeat):
        if cold:
            forget()
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
    again = best(repeat, lambda: chunk_pages(path, meta, **unbounded), cold=False)
    rows = best(repeat, lambda: parquet_rows(path, meta))
    arrow = best(repeat, lambda: pq.read_table(path))
    line = (
        f"{label:<26} {size:8.2f} MiB  walk {walk:7.3f} s ({walk / meta.num_rows * 1e6:5.1f} us/page)"
        f"  again {again:6.3f} s  footer loop {rows:6.3f} s  Arrow read {arrow:6.3f} s"
        f"  walk/Arrow {walk / arrow:5.1f}x"
    )
    if BOUNDED:
        from pipeline.errors import DataError

        forget()
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
    parser.add_argument("--pages", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget-file", action=argparse.BooleanOptionalAction, default=True)
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
        forget()
        start = time.perf_counter()
        count = pages_of(path)
        seconds = time.perf_counter() - start
        print(
            f"pyarrow defaults, {rows:,} rows x 20 columns: {path.stat().st_size / 2**20:.1f} MiB,"
            f" {meta.num_row_groups} row group(s), "
            + (f"{count:,} pages" if BOUNDED else "pages not counted (no bound)")
            + f", walked in {seconds:.3f} s"
        )
        text_headers(Path(folder))
        if args.budget_file and BOUNDED:
            for fill in ("bool fields", "a map of bytes to bytes"):
                for size in (HEADER_BYTES_PER_PAGE, HEADER_BYTES_PER_PAGE + 1):
                    at_the_budget(Path(folder), fill, size)
    header_bytes()


def text_headers(folder: Path) -> None:
    """Header bytes of long text, legitimately written, against the byte budget."""
    if not BOUNDED or not HEADER_BYTES_PER_PAGE:
        return
    rng = np.random.default_rng(0)
    from pipeline.errors import DataError

    budget = MAX_PAGES * HEADER_BYTES_PER_PAGE
    rows = 1_000_000
    few = np.array(["".join(rng.choice(list("abcd"), 200)) for _ in range(1_000)])
    distinct = pa.array([f"{i:012d}" + "x" * 188 for i in range(rows)])
    long = pa.array([f"{i:012d}" + "y" * 3_988 for i in range(100_000)])
    cases: list[tuple[str, pa.Array, dict[str, Any]]] = [
        ("1,000,000 x 200 chars (1,000 distinct), defaults", pa.array(few[rng.integers(0, 1_000, rows)]), {}),
        ("1,000,000 x 200 chars (1,000 distinct), no dictionary", pa.array(few[rng.integers(0, 1_000, rows)]), {"use_dictionary": False}),
        ("1,000,000 x 200 chars, one value, no dictionary", pa.array(["a" * 200] * rows), {"use_dictionary": False}),
        ("1,000,000 x 200 chars, all distinct, defaults", distinct, {}),
        ("1,000,000 x 200 chars, all distinct, no dictionary", distinct, {"use_dictionary": False}),
        ("100,000 x 4,000 chars, all distinct, no dictionary", long, {"use_dictionary": False}),
        ("5,000 x 4,000 chars, one value a page, no dictionary", long[:5_000], {"use_dictionary": False, "data_page_size": 1, "write_batch_size": 1}),
        ("50,000 x 4,000 chars, one value a page, no dictionary", long[:50_000], {"use_dictionary": False, "data_page_size": 1, "write_batch_size": 1}),
    ]  # fmt: skip
    for label, values, options in cases:
        path = folder / "text.parquet"
        pq.write_table(pa.table({"t": values}), path, **options)
        meta = pq.ParquetFile(path).metadata
        forget()
        start = time.perf_counter()
        found = chunk_pages(path, meta, max_pages=2**62)
        seconds = time.perf_counter() - start
        pages = sum(c.pages for c in found)
        held = sum(getattr(c, "header_bytes", 0) for c in found)
        cost = sum(getattr(c, "header_cost", getattr(c, "header_bytes", 0)) for c in found)
        start = time.perf_counter()
        chunk_pages(path, meta, max_pages=2**62)
        again = time.perf_counter() - start
        forget()
        start = time.perf_counter()
        try:
            chunk_pages(path, meta, max_pages=MAX_PAGES)
            verdict = "passes"
        except DataError:
            verdict = "refused"
        bound = time.perf_counter() - start
        print(
            f"{label:<54} {path.stat().st_size / 2**20:6.1f} MiB {pages:>6,} pages, header bytes"
            f" {held:>11,} ({held / pages:5.0f} a page), cost {cost:>10,} ({cost / pages:5.0f}"
            f" a page, {cost / budget:7.2%} of {budget:,}), walked in {seconds:.2f} s, again"
            f" {again:.2f} s; default bound: {verdict} in {bound:.2f} s",
            flush=True,
        )


def _fill(kind: str, size: int) -> bytes:
    """What follows a crafted header's type and sizes (7 bytes) to make it ``size`` bytes."""
    if kind == "bool fields":  # field 4: a struct of one-byte bool fields; ends
        return b"\x1c" + b"\x11" * (size - 10) + b"\x00\x00"
    # field 4: a map of m bytes to bytes (a bool field 5 to make the length), the header's end
    m, odd = divmod(size - 7 - 4, 2)
    assert m < 128
    return b"\x1b" + bytes([m]) + b"\x33" + b"\x00" * 2 * m + b"\x11" * odd + b"\x00"


def at_the_budget(folder: Path, kind: str, header: int) -> None:
    """The byte budget's adversary: max_pages headers of ``header`` bytes, each stepped through."""
    from pipeline.errors import DataError

    pages = MAX_PAGES
    path = folder / "budget.parquet"
    table = pa.table({"x": np.arange(1_000_000, dtype=np.int64)})
    pq.write_table(table, path, use_dictionary=False, data_page_size=1, write_batch_size=1)
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(0)
    start, size = chunk.data_page_offset, chunk.total_compressed_size
    # type 0, uncompressed 8, compressed q (a two-byte zigzag varint), field 4: a struct of
    # one-byte bool fields (delta 1, true) closed, then the header's end: 128 bytes.
    base, extra = divmod(size - pages * header, pages)
    assert 64 <= base < 8_191, base
    fill = _fill(kind, header)
    assert len(fill) == header - 7
    blob = bytearray()
    for k in range(pages):
        q = base + (k < extra)
        blob += b"\x15\x00\x15\x10\x15" + _varint(2 * q) + fill + bytes(q)
    assert len(blob) == size
    with path.open("r+b") as handle:
        handle.seek(start)
        handle.write(blob)
    forget()
    started = time.perf_counter()
    try:
        found = chunk_pages(path, meta, max_pages=MAX_PAGES)
    except DataError as err:
        seconds = time.perf_counter() - started
        print(
            f"past the budget: {pages:,} pages of {header}-byte headers of {kind}, refused in "
            f"{seconds:.2f} s ({str(err).split(' (column')[0].split(': ', 1)[1]})",
            flush=True,
        )
        return
    seconds = time.perf_counter() - started
    held = sum(getattr(c, "header_bytes", 0) for c in found)
    print(
        f"at the budget: {sum(c.pages for c in found):,} pages of {header}-byte "
        f"headers of {kind} ({held:,} header bytes), passes [data].max_pages "
        f"({MAX_PAGES:,}): walked in {seconds:.2f} s ({seconds / (pages * header) * 1e6:.2f} us/byte)",
        flush=True,
    )
    started = time.perf_counter()
    chunk_pages(path, meta, max_pages=MAX_PAGES)
    print(f"  again (kept): {time.perf_counter() - started:.2f} s", flush=True)


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
    n = 500_000
    bodies = {
        "500,000 bool fields": b"\x6c" + b"\x01\x02" * n + b"\x00\x00",
        "a list of 500,000 bytes": b"\x69\xf3" + _varint(n) + b"\x00" * n + b"\x00",
        "1,000,000 one-byte bool fields": b"\x69\xfc"
        + _varint(n // 8)
        + (b"\x11" * 15 + b"\x00") * (n // 8)
        + b"\x00",
        "a list of 1,000,000 empty lists": b"\x69\xf9" + _varint(2 * n) + b"\x03" * 2 * n + b"\x00",
        "a list of 1,000,000 empty binaries": b"\x69\xf8"
        + _varint(2 * n)
        + b"\x00" * 2 * n
        + b"\x00",
        "a map of 500,000 bytes to bytes": b"\x6b"
        + _varint(n)
        + b"\x33"
        + b"\x00" * 2 * n
        + b"\x00",
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
