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

Red before (a strict xfail until arrowschema, 7 December): ``read_table`` with a 64 MiB bound
read the file (Arrow built about 250 MB) instead of refusing it. Fixed: the footer walk reads
the ``ARROW:schema`` value's FlatBuffer and charges a field per reference (``FIELD_BYTES``, its
name and metadata copied) against the same byte bound; an honest wide file still passes.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import read_table
from pipeline.errors import DataError
from pipeline.parquet_footer import FIELD_BYTES, refuse_large_footer
from tests.parquet_support import arrow_growth, read_varint

BOUND = 64 << 20


def _schema_message(k: int, pad: int, name: int = 0) -> bytes:
    """An Arrow IPC Schema message: ``k`` struct fields, each the same table, whose ``k``
    children are one shared null field (``k + k * k`` fields for Arrow); ``pad`` bytes at the
    end raise the verifier's table allowance (8 a byte) without being read; with ``name``, the
    shared field is named by one shared string of that many bytes (Arrow copies it per field)."""
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
    named: list[tuple[int, str, object]] = [(0, "ref", "name")] if name else []
    table("leaf", [(1, "u8", 1), (2, "u8", 1), (3, "ref", "null"), *named])
    table("struct", [])
    table("null", [])
    if name:
        out.extend(b"\0" * (-len(out) % 4))
        at["name"] = len(out)
        out.extend(struct.pack("<I", name) + b"n" * name + b"\0")
    out.extend(bytes(pad + (-(len(out) + pad) % 8)))
    for position, label in fixes:
        out[position : position + 4] = struct.pack("<I", at[label] - position)
    return b"\xff\xff\xff\xff" + struct.pack("<i", len(out)) + bytes(out)


def _plant(path: Path, message: bytes) -> Path:
    """Two honest rows; the footer's ``ARROW:schema`` value replaced by ``message``."""
    table = pa.table({"a": [1.0, 2.0], "label": [0, 1]})
    pq.write_table(table.replace_schema_metadata({b"ARROW:schemX": message}), path)
    raw = path.read_bytes()
    assert raw.count(b"ARROW:schema") == raw.count(b"ARROW:schemX") == 1
    # Same lengths, so the footer stays valid: the writer's own schema under another key.
    path.write_bytes(
        raw.replace(b"ARROW:schema", b"ARROW:schemY").replace(b"ARROW:schemX", b"ARROW:schema")
    )
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The footer's ``ARROW:schema`` replaced by the shared-table message."""
    path = tmp_path_factory.mktemp("schema") / "data.parquet"
    return _plant(path, base64.b64encode(_schema_message(1000, 300_000)))


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 KB stored schema: 200 x 200 fields sharing one 10,000-byte name (400 MB of names
    for Arrow), which a charge by the value's length (8 fields a byte) would pass."""
    path = tmp_path_factory.mktemp("schema") / "data.parquet"
    return _plant(path, base64.b64encode(_schema_message(200, 0, name=10_000)))


def _grown(path: Path) -> int:
    """Arrow's peak memory growth opening ``path``, the largest of three measurements."""
    return arrow_growth(path, tries=3, enough=BOUND)


def test_arrow_builds_the_shared_fields_when_it_opens_the_file(planted: Path) -> None:
    """The premise, measured in a fresh interpreter: opening the 2 MB file makes Arrow build a
    million fields, more than ``BOUND`` of peak memory growth."""
    assert _grown(planted) > BOUND
    assert planted.stat().st_size < 4 << 20


def test_the_reader_refuses_it_before_arrow_opens_it(planted: Path) -> None:
    with pytest.raises(DataError, match=r"data\.parquet.*stored Arrow schema"):
        read_table(planted, fmt="parquet", max_bytes=BOUND)


def test_an_honest_wide_file_passes_far_within_the_bounds(tmp_path: Path) -> None:
    """2,000 columns written by pyarrow (a 2,000-field stored schema, each field distinct)
    pass the walk with a bound of 32 MiB, far below the defaults (``max_file_mb`` 2048,
    ``stream_chunk_mb`` 256), and read whole."""
    path = tmp_path / "wide.parquet"
    table = pa.table({f"feature_{k:04d}": [float(k), 1.0] for k in range(2000)})
    pq.write_table(table, path)
    refuse_large_footer(path, max_bytes=32 << 20, key="k", max_pages=10_000)
    assert 2000 * FIELD_BYTES < 32 << 20
    assert read_table(path, fmt="parquet", max_bytes=2048 << 20).shape == (2, 2000)


def test_a_shared_name_is_counted_per_field(named: Path) -> None:
    """Arrow copies a field's name into every field it builds: the premise measured (more than
    ``BOUND`` from a 12 KB message, where 8 fields a byte of it at ``FIELD_BYTES`` is 48 MiB),
    then the refusal (red before: read)."""
    assert _grown(named) > BOUND
    assert len(base64.b64encode(_schema_message(200, 0, name=10_000))) * 6 * FIELD_BYTES < BOUND
    with pytest.raises(DataError, match=r"data\.parquet.*stored Arrow schema"):
        read_table(named, fmt="parquet", max_bytes=BOUND)


def test_the_key_is_found_whatever_the_order_of_its_fields(planted: Path, tmp_path: Path) -> None:
    """The ``KeyValue`` written value first, its key's id in full (Thrift reads fields in any
    order): still the stored schema Arrow decodes, still refused."""
    raw = planted.read_bytes()
    at = raw.index(b"\x18\x0cARROW:schema\x18") + 14
    width, end = read_varint(raw, at + 1)  # the value's length
    value = raw[at + 1 : end + width]  # its length and bytes
    swapped = b"\x28" + value + b"\x08\x02\x0cARROW:schema"
    footer = struct.unpack("<I", raw[-8:-4])[0] + len(swapped) - (end + width - (at - 14))
    path = tmp_path / "data.parquet"
    path.write_bytes(
        raw[: at - 14] + swapped + raw[end + width : -8] + struct.pack("<I", footer) + b"PAR1"
    )
    assert _grown(path) > BOUND  # Arrow decodes it as before
    with pytest.raises(DataError, match=r"data\.parquet.*stored Arrow schema"):
        read_table(path, fmt="parquet", max_bytes=BOUND)


def test_a_key_value_list_of_another_type_is_refused(tmp_path: Path) -> None:
    """``key_value_metadata`` declared a list of bytes (valid Thrift, no writer's): the walk
    reads no key there, so it is refused rather than left to Arrow (red before: passed)."""
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0]}), path)
    raw = path.read_bytes()
    # field 5: a list of one KeyValue {ARROW:schema: its value}, replaced by one byte 7
    head = raw.index(b"\x19\x1c\x18\x0cARROW:schema\x18")
    width, end = read_varint(raw, head + 17)  # the value's length
    end += width + 1  # the value and the KeyValue's end
    assert raw[end - 1] == 0
    footer = struct.unpack("<I", raw[-8:-4])[0] - (end - head) + 3
    raw = raw[:head] + b"\x19\x13\x07" + raw[end:-8] + struct.pack("<I", footer) + b"PAR1"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=r"data\.parquet.*key_value_metadata"):
        refuse_large_footer(path, max_bytes=BOUND, key="k", max_pages=1000)
