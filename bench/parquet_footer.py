"""The footer walk (``pipeline.parquet_footer.refuse_large_footer``) against Arrow opening the file.

python bench/parquet_footer.py [--chunks 1000 10000 100000] [--repeat 3] [--probe-mb 2]
[--worst | --no-worst] [--root PATH]: for each N, writes with pyarrow (defaults: statistics,
dictionaries) a file of N column chunks (100 float64 columns, N/100 one-row row groups) and
times the walk at the policy's defaults ([data.checks].max_file_mb, [data].max_pages) beside
``pq.ParquetFile(path).metadata``, best of ``--repeat``. Then the walk's adversary: footers of
one unknown field holding what costs the walk most per byte (one-byte bool fields, integers
of 2 and 4 bytes, empty containers and strings in a list, a map of bytes to bytes), each
``--probe-mb`` long, timed per byte; for each, the longest footer both bounds let through
(the bytes stepped through, ``max_pages`` x ``FOOTER_BYTES_PER_PAGE``, and what Arrow would
allocate, ``max_file_mb``) and the walk's time there, extrapolated; with ``--worst`` (default)
the costliest of them is written at that length and walked once, and Arrow opens it (or
refuses it: its Thrift reader's own limits on a container's size).

``--root``: the checkout whose ``pipeline`` is imported (another worktree: its figures before a
change); the files are the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def best(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def write_footer(path: Path, footer: bytes) -> Path:
    path.write_bytes(b"PAR1" + footer + len(footer).to_bytes(4, "little") + b"PAR1")
    return path


# name: (bytes per unit, what Arrow would allocate per unit by the walk's estimate, the payload
# of ``units`` units: the value of field 900 of the FileMetaData, its compact type)
SHAPES: dict[str, tuple[int, int, Callable[[int], tuple[int, bytes]]]] = {
    "one-byte bool fields": (1, 0, lambda k: (12, b"\x11" * k + b"\x00")),
    "2-byte integer fields": (3, 0, lambda k: (12, b"\x16\x81\x01" * k + b"\x00")),
    "4-byte integer fields": (5, 0, lambda k: (12, b"\x16\x81\x81\x81\x01" * k + b"\x00")),
    "empty structs in a list": (1, 1024, lambda k: (9, b"\xfc" + _varint(k) + b"\x00" * k)),
    "empty lists in a list": (1, 24, lambda k: (9, b"\xf9" + _varint(k) + b"\x03" * k)),
    "empty maps in a list": (1, 24, lambda k: (9, b"\xfb" + _varint(k) + b"\x00" * k)),
    "empty strings in a list": (1, 32, lambda k: (9, b"\xf8" + _varint(k) + b"\x00" * k)),
    "a map of bytes to bytes": (2, 80, lambda k: (11, _varint(k) + b"\x33" + b"\x00" * 2 * k)),
    # what the runs above do not pass in one step
    "empty struct fields": (2, 0, lambda k: (12, b"\x1c\x00" * k + b"\x00")),
    "empty list fields": (2, 0, lambda k: (12, b"\x19\x03" * k + b"\x00")),
    "empty map fields": (2, 0, lambda k: (12, b"\x1b\x00" * k + b"\x00")),
    "structs of a bool field in a list": (
        2,
        1024,
        lambda k: (9, b"\xfc" + _varint(k) + b"\x11\x00" * k),
    ),
    "lists of one byte in a list": (2, 32, lambda k: (9, b"\xf9" + _varint(k) + b"\x13\x00" * k)),
    "maps of one entry in a list": (
        4,
        104,
        lambda k: (9, b"\xfb" + _varint(k) + b"\x01\x33\x00\x00" * k),
    ),
    "strings of one byte in a list": (2, 33, lambda k: (9, b"\xf8" + _varint(k) + b"\x01a" * k)),
}


def shaped(name: str, units: int) -> bytes:
    kind, payload = SHAPES[name][2](units)
    return bytes([kind]) + _zigzag(900) + payload + b"\x00"


def honest(path: Path, chunks: int) -> Path:
    columns = 100
    groups = max(1, chunks // columns)
    table = pa.table({f"c{i}": np.arange(groups, dtype=np.float64) for i in range(columns)})
    pq.write_table(table, path, row_group_size=1)
    return path


def walk_worst(path: Path, worst: tuple[float, str, int], walk: Callable[[Path], None]) -> None:
    """The costliest footer within the bounds, written and walked once; and Arrow's open."""
    at_bound, name, units = worst
    write_footer(path, shaped(name, units))
    started = time.perf_counter()
    walk(path)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    try:
        opened = f"{pq.ParquetFile(path).metadata.num_rows} rows"
    except OSError as err:  # Arrow's own limits (Thrift's container and string sizes)
        opened = f"refused: {err}"
    arrow = time.perf_counter() - started
    print(
        f"worst within the bounds: {name}, {path.stat().st_size / 1e6:,.1f} MB of footer,"
        f" passes: walked in {ours:.1f} s (extrapolated {at_bound:.1f} s), Arrow opens "
        f"it in {arrow:.2f} s ({opened})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--probe-mb", type=float, default=2.0)
    parser.add_argument("--worst", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    from pipeline import config, parquet_footer  # from --root

    max_pages = config.MAX_PAGES
    max_bytes = config.DataChecksPolicy().max_file_bytes
    steps = max_pages * parquet_footer.FOOTER_BYTES_PER_PAGE

    def walk(path: Path) -> None:
        parquet_footer.refuse_large_footer(
            path, max_bytes=max_bytes, key="[data.checks].max_file_mb", max_pages=max_pages
        )

    print(
        f"pipeline from {args.root.resolve()}; bounds: max_pages {max_pages:,} (x "
        f"{parquet_footer.FOOTER_BYTES_PER_PAGE}: {steps:,} bytes stepped through), "
        f"max_file_mb {max_bytes / 2**20:,.0f} MiB; pyarrow {pa.__version__}; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for chunks in args.chunks:
            path = honest(folder / f"honest{chunks}.parquet", chunks)
            length = int.from_bytes(path.read_bytes()[-8:-4], "little")
            ours = best(args.repeat, lambda p=path: walk(p))  # type: ignore[misc]
            arrow = best(args.repeat, lambda p=path: pq.ParquetFile(p).metadata)  # type: ignore[misc]
            print(
                f"honest, {chunks:,} column chunks ({length:,}-byte footer): walk {ours:.3f} s "
                f"({ours / length * 1e6:.2f} us/byte), Arrow opens it in {arrow:.3f} s "
                f"(walk/Arrow {ours / arrow:.1f}x)",
                flush=True,
            )
        worst: tuple[float, str, int] = (0.0, "", 0)
        for name, (width, memory, _) in SHAPES.items():
            units = int(args.probe_mb * 1e6) // width
            path = write_footer(folder / "probe.parquet", shaped(name, units))
            started = time.perf_counter()
            try:
                walk(path)
            except parquet_footer.FooterLimit as err:  # a walker that cannot read it
                seconds = time.perf_counter() - started
                print(f"{name}: refused in {seconds:.2f} s ({str(err).split(': ', 1)[1]})")
                continue
            seconds = time.perf_counter() - started
            per_byte = seconds / (units * width)
            # the longest such footer both bounds pass: bytes stepped through (64 spared for the
            # fields around it), what Arrow would allocate
            fits = min((steps - 64) // width, max_bytes // memory if memory else steps) * width
            at_bound = per_byte * fits
            print(
                f"{name}: {per_byte * 1e6:.3f} us/byte ({units * width / 1e6:.1f} MB in "
                f"{seconds:.2f} s); within the bounds at most {fits / 1e6:,.1f} MB: "
                f"{at_bound:.1f} s (extrapolated)",
                flush=True,
            )
            worst = max(worst, (at_bound, name, fits // width))
        if args.worst:
            walk_worst(folder / "worst.parquet", worst, walk)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
