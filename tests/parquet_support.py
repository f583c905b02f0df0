"""Hand-built Parquet footers, the project they are planted in, and what Arrow makes of them.

A footer is Thrift's compact protocol (``FileMetaData``): the encoders below write its pieces
byte by byte, so that a test can write what no Parquet writer writes. ``arrow_growth`` measures
the premise (Arrow's peak memory opening the file) in a fresh interpreter.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

from tests.project_support import REPO

# Thrift compact types
I32, I64, DOUBLE, BINARY, LIST, STRUCT = 5, 6, 7, 8, 9, 12
PARQUET = "data/breast_cancer.parquet"


def varint(n: int) -> bytes:
    """An unsigned LEB128 varint."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def zigzag(n: int) -> bytes:
    """A signed integer (i32, i64) as Thrift writes it."""
    return varint((n << 1) ^ (n >> 63))


def field(delta: int, kind: int) -> bytes:
    """A field header: ``delta`` from the previous field's id, of type ``kind``."""
    return bytes([(delta << 4) | kind])


def list_header(kind: int, size: int) -> bytes:
    """A list header: ``size`` elements of type ``kind``."""
    return bytes([(size << 4) | kind]) if size < 15 else bytes([0xF0 | kind]) + varint(size)


def sized(value: bytes) -> bytes:
    """A binary (or string): its length, then its bytes."""
    return varint(len(value)) + value


def row_group(chunk: bytes, count: int, *, kind: int = STRUCT) -> bytes:
    """A ``RowGroup``: its ``columns`` a list of ``count`` times ``chunk`` declared of type
    ``kind``, then 0 bytes and 0 rows."""
    columns = field(1, LIST) + list_header(kind, count) + chunk * count
    return columns + field(1, I64) + zigzag(0) + field(1, I64) + zigzag(0) + b"\x00"


def read_varint(raw: bytes, at: int) -> tuple[int, int]:
    """The varint at ``raw[at]`` (at most 5 bytes) and where it ends."""
    value, end = 0, at
    for shift in range(0, 35, 7):
        value |= (raw[end] & 0x7F) << shift
        end += 1
        if raw[end - 1] < 0x80:
            break
    return value, end


def write_footer(path: Path, footer: bytes) -> Path:
    """``footer`` as a Parquet file: the magic, the footer, its length, the magic."""
    path.write_bytes(b"PAR1" + footer + struct.pack("<I", len(footer)) + b"PAR1")
    return path


def parquet_project(root: Path, footer: bytes, *, streamed: bool = False) -> Path:
    """data/, keys/ and policy.toml of the repository in ``root``, the policy reading
    ``PARQUET`` (a file of ``footer``), every file streamed if ``streamed``."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    old = 'path = "data/breast_cancer.csv"'
    assert old in text
    text = text.replace(old, f'path = "{PARQUET}"', 1)
    if streamed:
        old = "stream_above_mb = 256.0"
        assert old in text
        text = text.replace(old, "stream_above_mb = 0.00001", 1)
    (root / "policy.toml").write_text(text, encoding="utf-8")
    write_footer(root / PARQUET, footer)
    return root


_GROWTH = (
    "import re, sys, pyarrow.parquet as pq\n"
    "def peak():\n"
    "    with open('/proc/self/status') as status:\n"
    "        return int(re.search(r'VmHWM:\\s+(\\d+)', status.read())[1]) * 1024\n"
    "before = peak()\n"
    "pq.ParquetFile(sys.argv[1])\n"
    "print(peak() - before)\n"
)


def arrow_growth(path: Path, *, tries: int = 1, enough: float = float("inf")) -> int:
    """The peak memory growth of ``pq.ParquetFile(path)`` in a fresh interpreter (its own
    ``VmHWM``: ``ru_maxrss`` carries the parent's peak across ``exec``, so a child of a large
    pytest process measured no growth at all, q2, 7 December): the largest of ``tries``
    measurements, stopping at the first above ``enough``."""
    grown: list[int] = []
    for _ in range(tries):
        done = subprocess.run(
            [sys.executable, "-I", "-c", _GROWTH, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        grown.append(int(done.stdout))
        if grown[-1] > enough:
            break
    return max(grown)
