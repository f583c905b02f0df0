"""Red team 11: a stored Arrow schema whose fields share one table, built out by Arrow.

Row 63's footer walk counts what Arrow allocates for every Thrift element of the footer, and a
string as its length. One string is more than that: the ``ARROW:schema`` key's value is a
base64 Arrow IPC message (a FlatBuffer), which Arrow decodes into a ``Schema`` whenever it opens
the file (``pq.ParquetFile(path)``, before ``schema_arrow`` is asked for). A FlatBuffer refers to
tables by offset, so one ``Field`` table can be every child of a struct, and that struct every
field of the schema: Arrow builds a field object per reference. Its verifier allows 8 tables
per byte of message, so a message of 1.1 MB (1.5 MB of base64 in the footer, counted 1.5 MB by
the walk) became 4 million fields, 844 MB peak in ``pq.ParquetFile`` (3 s) here; the amount
grows with the message (about 700 bytes built per byte of footer), so a footer within
``[data].stream_chunk_mb`` or ``[data.checks].max_file_mb`` builds far past either.

Red before: ``read_table`` with a 64 MiB bound read the file (Arrow built about 250 MB) instead
of refusing it. ``pipeline/parquet_*.py`` is another helper's file right now: a strict xfail.
Proposed fix: the walk charges an ``ARROW:schema`` value what its decoded message can make
Arrow build (8 tables a byte, about 100 bytes each), or refuses a stored schema with more
tables than the footer's own schema has elements (a FlatBuffer walk).
"""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import read_table
from pipeline.errors import DataError

OWNER = "pipeline/parquet_footer.py is pqfooter's: the ARROW:schema value is counted as a string"
BOUND = 64 << 20


def _schema_message(k: int, pad: int) -> bytes:
    """An Arrow IPC Schema message: ``k`` struct fields, each the same table, whose ``k``
    children are one shared null field (``k + k * k`` fields for Arrow); ``pad`` bytes at the
    end raise the verifier's table allowance (8 a byte) without being read."""
    out = bytearray(4)  # the root offset, patched below
    fixes: list[tuple[int, str]] = [(0, "msg")]
    at: dict[str, int] = {}
    widths = {"i64": 8, "ref": 4, "i16": 2, "u8": 1}

    def table(label: str, fields: list[tuple[int, str, object]]) -> None:
        layout, size = [], 4
        for slot, kind, value in sorted(fields, key=lambda f: -widths[str(f[1])]):
            size += -size % widths[kind]
            layout.append((slot, kind, value, size))
            size += widths[kind]
        size += -size % 4
        slots = max((f[0] for f in fields), default=-1) + 1
        vtable = [4 + 2 * slots, size] + [0] * slots
        for slot, _, _, offset in layout:
            vtable[2 + slot] = offset
        packed = struct.pack(f"<{len(vtable)}H", *vtable)
        out.extend(b"\0" * (-(len(out) + len(packed)) % 8))
        where = len(out)
        out.extend(packed)
        at[label] = start = len(out)
        out.extend(struct.pack("<i", start - where) + bytes(size - 4))
        for _, kind, value, offset in layout:
            if kind == "ref":
                fixes.append((start + offset, str(value)))
            else:
                fmt = {"i64": "<q", "i16": "<h", "u8": "<B"}[kind]
                out[start + offset : start + offset + widths[kind]] = struct.pack(fmt, value)

    def vector(label: str, target: str) -> None:
        out.extend(b"\0" * (-len(out) % 4))
        at[label] = len(out)
        out.extend(struct.pack("<I", k))
        for _ in range(k):
            fixes.append((len(out), target))
            out.extend(bytes(4))

    # Message {version V5, header_type Schema, header, bodyLength}; Field {nullable, type_type,
    # type, children}; type 13 is Struct_, 1 is Null.
    table("msg", [(0, "i16", 4), (1, "u8", 1), (2, "ref", "schema"), (3, "i64", 0)])
    table("schema", [(0, "i16", 0), (1, "ref", "top")])
    vector("top", "parent")
    table("parent", [(1, "u8", 1), (2, "u8", 13), (3, "ref", "struct"), (5, "ref", "kids")])
    vector("kids", "leaf")
    table("leaf", [(1, "u8", 1), (2, "u8", 1), (3, "ref", "null")])
    table("struct", [])
    table("null", [])
    out.extend(bytes(pad + (-(len(out) + pad) % 8)))
    for position, label in fixes:
        out[position : position + 4] = struct.pack("<I", at[label] - position)
    return b"\xff\xff\xff\xff" + struct.pack("<i", len(out)) + bytes(out)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two honest rows; the footer's ``ARROW:schema`` replaced by the shared-table message."""
    path = tmp_path_factory.mktemp("schema") / "data.parquet"
    message = base64.b64encode(_schema_message(1000, 300_000))
    table = pa.table({"a": [1.0, 2.0], "label": [0, 1]})
    pq.write_table(table.replace_schema_metadata({b"ARROW:schemX": message}), path)
    raw = path.read_bytes()
    assert raw.count(b"ARROW:schema") == raw.count(b"ARROW:schemX") == 1
    # Same lengths, so the footer stays valid: the writer's own schema under another key.
    path.write_bytes(
        raw.replace(b"ARROW:schema", b"ARROW:schemY").replace(b"ARROW:schemX", b"ARROW:schema")
    )
    return path


def test_arrow_builds_the_shared_fields_when_it_opens_the_file(planted: Path) -> None:
    """The premise, measured in a fresh interpreter: opening the 2 MB file makes Arrow build a
    million fields, more than ``BOUND`` of peak memory growth."""
    child = (
        "import resource, sys, pyarrow.parquet as pq\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "pq.ParquetFile(sys.argv[1])\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n"
    )
    # The largest of three fresh interpreters: one run under a loaded CI machine once measured
    # no growth at all (q2, 7 December), which says nothing about what Arrow builds.
    grown = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-I", "-c", child, str(planted)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        grown.append(int(done.stdout))
        if grown[-1] > BOUND:
            break
    assert max(grown) > BOUND, grown
    assert planted.stat().st_size < 4 << 20


@pytest.mark.xfail(strict=True, reason=OWNER)
def test_the_reader_refuses_it_before_arrow_opens_it(planted: Path) -> None:
    with pytest.raises(DataError, match=r"data\.parquet"):
        read_table(planted, fmt="parquet", max_bytes=BOUND)
