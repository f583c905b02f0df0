"""The page walk's compact-protocol reader (``pipeline.parquet_pages._read_header``) reads
what Apache Thrift's Python reader reads: the same fields, length, cut-offs and refusals, on
every header pyarrow writes, each cut short, and on seeded mutations and crafted headers.

Thrift's reader here is the walk's former one (thrift.protocol.TCompactProtocol over the
window, its ``skip`` for every other field), kept as the reference."""

from __future__ import annotations

import io
import itertools
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from thrift.protocol import TCompactProtocol
from thrift.protocol.TProtocol import TProtocolException
from thrift.Thrift import TType
from thrift.transport import TTransport

from pipeline import thrift_compact
from pipeline.parquet_footer import _MAX_DEPTH as _FOOTER_DEPTH
from pipeline.parquet_footer import walk_footer
from pipeline.parquet_pages import _I16, _I32, _MAX_DEPTH, _SIZES, PageError, _read_header, _Short


class _Bytes(TTransport.TTransportBase):  # type: ignore[misc]  # thrift ships no types
    """A read-only transport over a byte window that says how much the protocol read."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, sz: int) -> bytes:
        return self.stream.read(sz)


class _Protocol(TCompactProtocol.TCompactProtocol):  # type: ignore[misc]  # thrift ships no types
    """The compact protocol, skipping strings as bytes: thrift's ``skip`` decodes them as UTF-8,
    and a header's statistics (min/max values) are binary."""

    def readString(self) -> bytes:
        return bytes(self.readBinary())


def _thrift_header(data: bytes) -> tuple[dict[int, int], int]:
    """A PageHeader's type and sizes (fields 1-3), every other field skipped; and its length.

    Apache Thrift's compact protocol reads it; ``_Short`` when the window ends inside it,
    PageError when it is not a header (a wrong type, a length past the window, nested past
    ``_MAX_DEPTH``, a field id or size beyond its width)."""
    transport = _Bytes(data)
    protocol = _Protocol(transport, string_length_limit=len(data), container_length_limit=len(data))
    fields: dict[int, int] = {}
    try:
        protocol.readStructBegin()
        while True:
            _, kind, field = protocol.readFieldBegin()
            if kind == TType.STOP:
                break
            # Arrow's reader (Thrift's C++) keeps a field id's low 16 bits and an i32's low 32;
            # Python's keeps every bit: beyond those widths the two read other fields, sizes
            # and page ends (no writer makes them).
            if not _I16[0] <= field <= _I16[1]:
                raise PageError(f"field id {field} beyond 16 bits")
            if field in _SIZES and kind == TType.I32:
                fields[field] = protocol.readI32()
                if not _I32[0] <= fields[field] <= _I32[1]:
                    raise PageError(f"field {field}'s i32 {fields[field]} beyond 32 bits")
            else:
                protocol.skip(kind, max_depth=_MAX_DEPTH)
            protocol.readFieldEnd()
        protocol.readStructEnd()
    except EOFError:  # thrift's transport ran out of bytes: the window ended inside it
        raise _Short from None
    except TTransport.TTransportException as err:
        # A string or container longer than the window (the limits are its length): read more.
        if err.type == TTransport.TTransportException.SIZE_LIMIT:
            raise _Short from None
        raise PageError(f"unreadable page header ({err})") from None
    except KeyError as err:  # a wire type thrift's compact protocol has no entry for (14, 15)
        raise PageError(f"unknown Thrift type {err.args[0]}") from None
    except (TProtocolException, ValueError, OverflowError, struct.error) as err:
        raise PageError(f"unreadable page header ({err})") from None
    return fields, transport.stream.tell()


def _outcome(read, data: bytes) -> object:
    try:
        return read(data)
    except _Short:
        return "short"
    except PageError as err:
        return f"refused: {err}"


def _headers(tmp_path: Path) -> list[bytes]:
    """Every page header pyarrow writes for a few files (codecs, page versions, statistics,
    dictionaries, nulls, text), each with the 256 bytes after it."""
    rng = np.random.default_rng(1)
    rows = 3_000
    table = pa.table(
        {
            "f": rng.normal(size=rows),
            "i": rng.integers(-(2**40), 2**40, rows),
            "s": pa.array([None if k % 7 == 0 else f"v{k % 300}" for k in range(rows)]),
            "b": rng.integers(0, 2, rows).astype(bool),
        }
    )
    found = []
    for n, (codec, version, stats) in enumerate(
        itertools.product(["none", "zstd"], ["1.0", "2.0"], [True, False])
    ):
        path = tmp_path / f"{n}.parquet"
        pq.write_table(
            table,
            path,
            compression=codec,
            data_page_version=version,
            write_statistics=stats,
            data_page_size=4_096,
            row_group_size=1_500,
        )
        data = path.read_bytes()
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                chunk = meta.row_group(g).column(c)
                offset = chunk.data_page_offset
                if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                    offset = min(offset, chunk.dictionary_page_offset)
                end = offset + chunk.total_compressed_size
                while offset < end:
                    window = data[offset : offset + 4_096]
                    fields, length = _thrift_header(window)
                    found.append(window[: length + 256])
                    offset += length + fields[3]
    return found


def test_every_header_pyarrow_writes_reads_the_same(tmp_path: Path) -> None:
    headers = _headers(tmp_path)
    assert len(headers) > 100
    for header in headers:
        assert _outcome(_read_header, header) == _outcome(_thrift_header, header)
        _, length = _thrift_header(header)
        for cut in range(length):  # every header cut short: read a larger window
            assert _outcome(_read_header, header[:cut]) == "short"


def test_mutated_headers_read_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    headers = _headers(tmp_path)
    disagreements = []
    for n in range(20_000):
        data = bytearray(headers[n % len(headers)][: int(rng.integers(8, 300))])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if rng.random() < 0.2:  # a random byte string after a header's first three fields
            data[8:] = rng.integers(0, 256, int(rng.integers(0, 120)), dtype=np.uint8).tobytes()
        ours, theirs = _outcome(_read_header, bytes(data)), _outcome(_thrift_header, bytes(data))
        if ours != theirs:
            disagreements.append((bytes(data).hex(), ours, theirs))
    assert disagreements == []


def _varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return out + bytes([low])
        out += bytes([low | 0x80])


_SIZES_ = b"\x15\x00\x15\x10\x15\x10"  # type 0, both sizes 8


def _nested(depth: int, inner: bytes) -> bytes:
    """``depth`` structs, each the field 9 of the one around it, ``inner`` in the last."""
    return b"\x9c" * depth + inner + b"\x00" * depth


CRAFTED = {
    "bool fields": _SIZES_ + b"\x6c" + b"\x11" * 200 + b"\x00\x00",
    "long-form bool fields": _SIZES_ + b"\x6c" + b"\x01\x02" * 200 + b"\x00\x00",
    "list of bytes": _SIZES_ + b"\x69\xf3" + _varint(500) + b"\x00" * 500 + b"\x00",
    "list of bools": _SIZES_ + b"\x69\xf1" + _varint(300) + b"\x01" * 300 + b"\x00",
    "list of doubles": _SIZES_ + b"\x69\xf7" + _varint(100) + b"\x00" * 800 + b"\x00",
    "list of uuids": _SIZES_ + b"\x69\x3d" + b"\x00" * 48 + b"\x00",
    "list of i64": _SIZES_ + b"\x69\xf6" + _varint(200) + b"\x81\x01" * 200 + b"\x00",
    "list of i64, one 11 bytes": _SIZES_
    + b"\x69\xf6"
    + _varint(200)
    + b"\x01" * 100
    + b"\x81" * 10
    + b"\x01" * 100
    + b"\x00",
    "list of i64, cut": _SIZES_ + b"\x69\xf6" + _varint(200) + b"\x01" * 150,
    "list of i64, cut in a long run": _SIZES_
    + b"\x69\xf6"
    + _varint(200)
    + b"\x01" * 150
    + b"\x81" * 12,
    "list of i64 after a binary, cut in a long run": _SIZES_
    + b"\x68"
    + _varint(100)
    + b"x" * 100
    + b"\x19\xf6"
    + _varint(200)
    + b"\x01" * 150
    + b"\x81" * 12,
    "list of i32, 10-byte varints": _SIZES_
    + b"\x69\xf5"
    + _varint(100)
    + (b"\x81" * 9 + b"\x01") * 100
    + b"\x00",
    "list of structs": _SIZES_ + b"\x69\xfc" + _varint(100) + b"\x15\x02\x00" * 100 + b"\x00",
    "list of binaries": _SIZES_ + b"\x69\xf8" + _varint(100) + b"\x02ab" * 100 + b"\x00",
    "list of stops": _SIZES_ + b"\x69\x10\x00",
    "empty list of stops": _SIZES_ + b"\x69\x00\x00",
    "list of type 14": _SIZES_ + b"\x69\x1e\x00",
    "list longer than the window": _SIZES_ + b"\x69\xf3" + _varint(10_000) + b"\x00" * 50,
    "map i32 to binary": _SIZES_ + b"\x6b" + _varint(50) + b"\x58" + b"\x02\x01a" * 50 + b"\x00",
    "map to stops": _SIZES_ + b"\x6b" + _varint(2) + b"\x50" + b"\x02" + b"\x00",
    "map of type 15 keys": _SIZES_ + b"\x6b" + _varint(2) + b"\xf5\x00",
    "empty map": _SIZES_ + b"\x6b\x00\x00",
    "set of i16": _SIZES_ + b"\x6a\x34\x02\x04\x06\x00",
    "binary past the window": _SIZES_ + b"\x68" + _varint(1_000) + b"x" * 10,
    "double, uuid, byte fields": _SIZES_
    + b"\x67"
    + b"\x00" * 8
    + b"\x1d"
    + b"\x00" * 16
    + b"\x13\x7f\x00",
    "varint of 11 bytes": _SIZES_ + b"\x66" + b"\x80" * 10 + b"\x01\x00",
    "field id of 17 bits": _SIZES_ + b"\x05" + _varint(2 * 65_538) + b"\x02\x00",
    "negative field id": _SIZES_ + b"\x05" + _varint(2 * 40_000 - 1) + b"\x02\x00",
    "field ids past 16 bits by deltas": _SIZES_
    + b"\x01"
    + _varint(2 * 32_760)
    + b"\xf1" * 3
    + b"\x00",
    "i32 size of 33 bits": b"\x15\x00\x15" + _varint(2**33) + b"\x15\x10\x00",
    "sizes as i64": b"\x16\x00\x16\x10\x16\x10\x00",
    "sizes as bools": b"\x11\x11\x11\x00",
    "type 14 field": _SIZES_ + b"\x1e\x00",
    "type 15 nested field": _SIZES_ + b"\x6c\x1f\x00\x00",
    "nested to the limit": _SIZES_ + _nested(_MAX_DEPTH - 1, b"\x15\x02") + b"\x00",
    "nested past the limit": _SIZES_ + _nested(_MAX_DEPTH, b"\x15\x02") + b"\x00",
    "bool at the limit": _SIZES_ + _nested(_MAX_DEPTH - 1, b"\x11") + b"\x00",
    "bool past the limit": _SIZES_ + _nested(_MAX_DEPTH, b"\x11") + b"\x00",
    "list of bytes at the limit": _SIZES_ + _nested(_MAX_DEPTH - 2, b"\x19\x23\x00\x00") + b"\x00",
    "list of bytes past the limit": _SIZES_
    + _nested(_MAX_DEPTH - 1, b"\x19\x23\x00\x00")
    + b"\x00",
    "empty list past the limit": _SIZES_ + _nested(_MAX_DEPTH - 1, b"\x19\x03") + b"\x00",
    "list of i64 past the limit": _SIZES_
    + _nested(_MAX_DEPTH - 1, b"\x19\xf6" + _varint(100) + b"\x02" * 100)
    + b"\x00",
    "stop with a delta": _SIZES_ + b"\xf0",
    # runs the walker passes in one step (pipeline.thrift_compact: more than 64 elements)
    "map of 200 bytes to bools": _SIZES_
    + b"\x6b"
    + _varint(200)
    + b"\x31"
    + b"\x00\x01" * 200
    + b"\x00",
    "map of 200 doubles to bytes, cut": _SIZES_ + b"\x6b" + _varint(200) + b"\x73" + b"\x00" * 900,
    "list of 200 empty structs": _SIZES_ + b"\x69\xfc" + _varint(200) + b"\x00" * 200 + b"\x00",
    "list of 200 structs, one not empty": _SIZES_
    + b"\x69\xfc"
    + _varint(200)
    + b"\x00" * 100
    + b"\x15\x02\x00"
    + b"\x00" * 99
    + b"\x00",
    "list of 200 empty maps, one of type 15": _SIZES_
    + b"\x69\xfb"
    + _varint(200)
    + b"\x00" * 150
    + b"\x02\xf5"
    + b"\x00" * 49
    + b"\x00",
    "list of 200 empty lists, one of type 14": _SIZES_
    + b"\x69\xf9"
    + _varint(200)
    + b"\x03\x0d\x00" * 60
    + b"\x0e"
    + b"\x03" * 19
    + b"\x00",
    "list of 200 empty lists, one not empty": _SIZES_
    + b"\x69\xf9"
    + _varint(200)
    + b"\x03" * 70
    + b"\x23\x01\x02"
    + b"\x03" * 129
    + b"\x00",
    "list of 200 empty binaries, then longer": _SIZES_
    + b"\x69\xf8"
    + _varint(200)
    + b"\x00" * 100
    + b"\x03abc" * 100
    + b"\x00",
    "list of 200 empty binaries, cut": _SIZES_ + b"\x69\xf8" + _varint(200) + b"\x00" * 150,
    "nested i64 fields of 1-10 bytes": _SIZES_
    + b"\x6c"
    + b"".join(b"\x16" + b"\x81" * k + b"\x01" for k in range(10))
    + b"\x00\x00",
    "nested empty fields": _SIZES_ + b"\x6c\x1c\x00\x1b\x00\x19\x03\x1a\x0d\x18\x00\x00\x00",
    "nested empty list field of type 14": _SIZES_ + b"\x6c\x19\x0e\x00\x00",
    "nested empty map field, then a map": _SIZES_ + b"\x6c\x1b\x00\x1b\x01\x33\x05\x06\x00\x00",
    "list of 100 maps of one entry": _SIZES_
    + b"\x69\xfb"
    + _varint(100)
    + b"\x01\x33\x00\x00" * 100
    + b"\x00",
    "list of 100 short lists": _SIZES_
    + b"\x69\xf9"
    + _varint(100)
    + (b"\x13\x00" + b"\x27" + b"\x00" * 16 + b"\x00\x31\x01" + b"\xf3\x10" + b"\x00" * 16) * 20
    + b"\x00",
    "list of short lists, one of type 14": _SIZES_ + b"\x69\x49\x13\x00\x21\x01\x00\x1e\x00",
    "list of short lists, one cut": _SIZES_ + b"\x69\x29\x13\x00\x37\x00\x00",
    "list of maps of one entry, one of i32 keys": _SIZES_
    + b"\x69\x5b\x01\x33\x00\x00\x00\x01\x31\x05\x01\x01\x53\x02\x07\x02\x7f\x01\x33\x00"
    + b"\x00",
    "list of maps, one cut": _SIZES_ + b"\x69\x2b\x01\x33\x00\x00\x03\x77" + b"\x00" * 20,
    "list of maps, one of type 15 values": _SIZES_ + b"\x69\x2b\x01\x3f\x00\x00\x00",
    "nested i64 field of 11 bytes": _SIZES_ + b"\x6c\x16" + b"\x81" * 10 + b"\x01\x00\x00",
    "nested short binaries": _SIZES_ + b"\x6c" + b"\x18\x03abc\x18\x7f" + b"z" * 127 + b"\x00\x00",
    "empty": b"",
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_headers_read_the_same(name: str) -> None:
    data = CRAFTED[name]
    ours = _outcome(_read_header, data)
    assert ours == _outcome(_thrift_header, data)
    for cut in range(0, len(data), max(1, len(data) // 40)):
        assert _outcome(_read_header, data[:cut]) == _outcome(_thrift_header, data[:cut])


# --- the footer: the same walker (pipeline.thrift_compact) over a whole FileMetaData ----------


def _footer_outcome(data: bytes) -> object:
    """``pipeline.parquet_footer.walk_footer`` over ``data`` with no bound: the footer's length,
    "short", or its refusal in Thrift's words."""
    try:
        return walk_footer(data, 0, 1 << 62, 1 << 62)[0]
    except thrift_compact.Short:
        return "short"
    except thrift_compact.UnknownType as err:
        return f"refused: {err}"
    except thrift_compact.Unreadable as err:
        return f"refused: unreadable ({err})"


def _thrift_footer(data: bytes) -> object:
    """Apache Thrift's Python reader skipping the same struct (``skip(STRUCT, 64)``: a
    ``FileMetaData`` nested as deep as Arrow's C++ reader allows)."""
    transport = _Bytes(data)
    protocol = _Protocol(transport, string_length_limit=len(data), container_length_limit=len(data))
    try:
        protocol.skip(TType.STRUCT, max_depth=_FOOTER_DEPTH)
    except EOFError:
        return "short"
    except TTransport.TTransportException as err:
        if err.type == TTransport.TTransportException.SIZE_LIMIT:
            return "short"
        return f"refused: unreadable ({err})"
    except KeyError as err:
        return f"refused: unknown Thrift type {err.args[0]}"
    except (TProtocolException, ValueError, OverflowError, struct.error) as err:
        return f"refused: unreadable ({err})"
    return transport.stream.tell()


def _footers(tmp_path: Path) -> list[bytes]:
    """The footers pyarrow writes for a few files: statistics or none, dictionaries, page
    indexes, key-value metadata, sorting columns, many row groups, nested columns."""
    rng = np.random.default_rng(2)
    rows = 2_000
    table = pa.table(
        {
            "f": rng.normal(size=rows),
            "i": rng.integers(-(2**40), 2**40, rows),
            "s": pa.array([None if k % 7 == 0 else f"v{k % 300}" for k in range(rows)]),
            "b": rng.integers(0, 2, rows).astype(bool),
            "l": pa.array([[k, k + 1] for k in range(rows)]),
            "m": pa.array([{"a": k, "b": str(k)} for k in range(rows)]),
        }
    ).replace_schema_metadata({b"key": b"value" * 50})
    shapes: list[dict[str, object]] = [
        {},
        {"write_statistics": False, "use_dictionary": False},
        {"write_page_index": True, "data_page_version": "2.0", "compression": "zstd"},
        {"sorting_columns": [pq.SortingColumn(0)], "row_group_size": 100},
        {"store_schema": False, "write_page_checksum": True, "row_group_size": 700},
    ]
    found = []
    for n, options in enumerate(shapes):
        path = tmp_path / f"footer{n}.parquet"
        pq.write_table(table, path, **options)
        data = path.read_bytes()
        (length,) = struct.unpack("<I", data[-8:-4])
        found.append(data[-8 - length : -8])
    return found


def test_every_footer_pyarrow_writes_walks_the_same(tmp_path: Path) -> None:
    footers = _footers(tmp_path)
    for footer in footers:
        assert _footer_outcome(footer) == _thrift_footer(footer) == len(footer)
        for cut in range(0, len(footer), max(1, len(footer) // 200)):
            assert _footer_outcome(footer[:cut]) == _thrift_footer(footer[:cut]) == "short"


def test_mutated_footers_walk_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    footers = _footers(tmp_path)
    disagreements = []
    outcomes = set()
    for n in range(3_000):
        data = bytearray(footers[n % len(footers)])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        ours, theirs = _footer_outcome(bytes(data)), _thrift_footer(bytes(data))
        outcomes.add(type(ours))
        if ours != theirs:
            disagreements.append((n, ours, theirs))
    assert disagreements == []
    assert outcomes == {int, str}  # some read whole, some refused or cut short


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_values_walk_the_same_in_a_footer(name: str) -> None:
    """The crafted headers' fields as a footer's (one struct, 64 levels deep at most)."""
    data = CRAFTED[name]
    assert _footer_outcome(data) == _thrift_footer(data)
    deep = b"\x1c" * 62 + data + b"\x00" * 62  # nested near the footer's limit
    assert _footer_outcome(deep) == _thrift_footer(deep)
