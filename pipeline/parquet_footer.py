"""What Arrow builds in memory from a Parquet footer, read off the footer before it does.

Arrow parses the whole footer (Thrift's ``FileMetaData``) when it opens a file, before any bound
on rows, pages or decoded bytes applies, and a struct in a list costs it hundreds of bytes
whatever it holds: a column chunk of 3 bytes on disk (its ``file_offset``, nothing else) is a
C++ ``ColumnChunk`` of about 690 bytes. 30 MB of such chunks (10 row groups x 1,000,000) peaked
at 6.9 GB and took 14 s in ``pq.ParquetFile(path).metadata`` (red team 10, 7 December), within
the 256 MiB of ``stream_above_mb`` and far within ``max_file_mb``.

So the footer is walked here first (Apache Thrift's compact protocol, skipped by
``pipeline.thrift_compact``, the walker the page headers are read with, over the footer's bytes
mapped from the file) and two figures are bounded before Arrow sees it:

- what it builds: every list element counts at least what Arrow allocates for it (a struct
  ``STRUCT_ELEMENT`` bytes, more than the largest Parquet struct, a string 32 bytes plus its
  length, a number 8), every string its length, against the caller's byte bound;
- the bytes the walk steps through (a string or a run of fixed-width values passed in one step
  counts 8), against ``max_pages x FOOTER_BYTES_PER_PAGE``, so the walk itself stays short.

One string is more than its length: the ``ARROW:schema`` value (``FileMetaData``'s key-value
metadata, the walk reads its keys) is a base64 Arrow IPC Schema message, a FlatBuffer Arrow
decodes when it opens the file, and a FlatBuffer refers to tables by offset: one ``Field`` can
be every child of a struct that is every field, and Arrow builds a field (and copies its name)
per reference. A 2 MB file became a million fields, 200-250 MB (red team 11). So the message is
read here (``_Flat``) and what Arrow builds from it counted against the same bound: a field per
reference ``FIELD_BYTES``, its name, metadata and type strings as their lengths. A length
charge (8 tables a message byte) would pass a small message whose fields share one long name
(12 KB: 397 MB built) and charge an honest 2,000-column schema 85 MiB where this counts 1.1 MiB.

An honest footer counts about 3-4 KB per column chunk (pyarrow: 117 bytes on disk). A footer
this walk cannot read as Thrift is refused too (Arrow could not read it either: it nests no
deeper than Thrift's limit, which this walk shares); leaving it to Arrow would let a footer
hide a bomb behind an unreadable field the walk stops at first.
"""

from __future__ import annotations

import binascii
import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from pipeline import thrift_compact
from pipeline.errors import DataError, PipelineError

# Footer bytes the walk steps through per page ``max_pages`` allows: a column chunk takes a page
# at least, and pyarrow writes 100-120 bytes of footer per chunk (strings counted 8); 512 leaves
# room for a writer's longer records. 128 MB at the default: 35 s at worst under load 16
# (one-byte bool fields, 0.28 us a byte; bench/parquet_footer.py; 107 s and, for a list of
# empty lists, 544 s before the walker was shared with the page walk).
FOOTER_BYTES_PER_PAGE = 512
STRUCT_ELEMENT = 1024  # bytes a struct in a list costs Arrow at most (ColumnChunk: about 690)
_STRING_ELEMENT = 32  # a std::string in a vector, before its characters
_SCALAR_ELEMENT = 8
_CONTAINER_ELEMENT = 24  # a vector or map in a vector, before its elements
_MAP_ENTRY = 64  # a map node, before its key and value
_MAX_DEPTH = 64  # Thrift's C++ recursion limit: whatever Arrow reads, this walk reads
# What an element of each compact type costs Arrow, before what it holds (a string's characters
# are counted as the walk passes them): 9 list, 10 set, 11 map, 12 struct; 8 binary.
_ELEMENT = tuple(
    {thrift_compact.STRUCT: STRUCT_ELEMENT, thrift_compact.BINARY: _STRING_ELEMENT}.get(
        kind, _CONTAINER_ELEMENT if kind in (9, 10, 11) else _SCALAR_ELEMENT
    )
    for kind in range(16)
)


_KEY_VALUE_METADATA = 5  # FileMetaData's field: list<KeyValue {1: key, 2: value}>
ARROW_SCHEMA = b"ARROW:schema"  # the key whose value Arrow decodes into its Schema
# What Arrow builds per field of a stored schema, before its name and metadata (measured: a
# null field in a struct, about 210 bytes: 4 million of them peaked at 844 MB, red team 11).
FIELD_BYTES = 512
_KEY_VALUE_BYTES = 64  # a metadata entry, before its key and value
_TYPE_BYTES = 64  # a type's table (Arrow's DataType object is counted in FIELD_BYTES)
_FLAT_DEPTH = 128  # the tables deep Arrow's FlatBuffers verifier allows (max_depth)


class FooterLimit(DataError):
    """A footer Arrow would build more of than allowed (refused before Arrow parses it)."""


class _OverSteps(PipelineError):  # a signal, caught in refuse_large_footer
    """More bytes to step through than the walk may."""


def walk_footer(data: thrift_compact.Data, start: int, steps: int, memory: int) -> tuple[int, int]:
    """Walk the ``FileMetaData`` at ``start`` in ``data`` (which ends where the footer ends):
    the offset after it and the bytes it stepped through (a string or a run of fixed-width
    values counts ``SKIP_COST``), within ``steps`` bytes (``_OverSteps`` past them) and
    ``memory`` bytes of Arrow's allocations (``thrift_compact.OverMemory`` past them);
    ``thrift_compact.Unreadable`` for what is not Thrift."""
    end, stepped, _, _ = _walk(data, start, steps, memory)
    return end, stepped


def _walk(
    data: thrift_compact.Data, start: int, steps: int, memory: int
) -> tuple[int, int, thrift_compact.Budget, _Metadata]:
    """``walk_footer``, and its budget after the walk and the file's key-value metadata."""
    budget = thrift_compact.Budget(start + steps, memory, _ELEMENT, _MAP_ENTRY)
    metadata = _Metadata()
    try:
        end = _file_metadata(data, start, budget, metadata)
    except thrift_compact.Cut:
        raise
    except thrift_compact.Short:
        if budget.room < len(data):  # stopped at its room, not at the footer's end
            raise _OverSteps from None
        raise
    stepped = end - start - (budget.room - start - steps)
    if stepped > steps:  # the walk may step a varint (10 bytes) past its room before it checks
        raise _OverSteps
    return end, stepped, budget, metadata


class _Metadata:
    """What the walk found of ``FileMetaData.key_value_metadata`` (field 5): the ``(offset,
    length)`` of every ``ARROW:schema`` value, and whether a list there was declared of
    another element type than ``KeyValue`` structs (no writer writes one; this walk skips its
    elements as declared and reads no key there, so such a list is refused rather than left
    to what Arrow makes of it)."""

    __slots__ = ("not_structs", "schemas")

    def __init__(self) -> None:
        self.schemas: list[tuple[int, int]] = []
        self.not_structs = False


def _field(data: thrift_compact.Data, i: int, depth: int, last: int) -> tuple[int, int, int]:
    """A struct field's header at ``i`` (``thrift_compact.struct``'s reading): its type (0:
    the struct's end), id (an i16, as Thrift reads it) and the offset after it."""
    byte = data[i]
    i += 1
    kind = byte & 0x0F
    if kind == 0:
        return 0, last, i
    if byte < 0x10:
        raw, i = thrift_compact.varint(data, i)
        last = (raw >> 1) ^ -(raw & 1)
    else:
        last += byte >> 4
    if kind > 13:  # types 14 and 15 do not exist
        raise thrift_compact.unknown(kind, i)
    if depth <= 1:
        raise thrift_compact.Unreadable("Maximum skip depth exceeded", i)
    return kind, (last + 0x8000) % 0x10000 - 0x8000, i


def _file_metadata(
    data: thrift_compact.Data, i: int, budget: thrift_compact.Budget, found: _Metadata
) -> int:
    """``thrift_compact.struct`` over the ``FileMetaData`` at ``i``, its fields told apart:
    ``key_value_metadata``'s ``KeyValue`` structs are read for their keys (into ``found``),
    every other field skipped as ``struct`` skips it."""
    size, last = len(data), 0
    while True:
        if i >= min(size, budget.room):
            raise thrift_compact.Short(i)
        kind, last, i = _field(data, i, _MAX_DEPTH, last)
        if kind == 0:
            return i
        if last == _KEY_VALUE_METADATA and kind == thrift_compact.LIST:
            i = _key_values(data, i, budget, found)
        else:
            i = thrift_compact.skip(data, i, kind, _MAX_DEPTH - 1, budget)


def _key_values(
    data: thrift_compact.Data, i: int, budget: thrift_compact.Budget, found: _Metadata
) -> int:
    """The offset after ``key_value_metadata``'s list at ``i``, the ``ARROW:schema`` values in
    ``found``; a list of another element type is skipped as declared (and marked)."""
    if i >= min(len(data), budget.room):
        raise thrift_compact.Short(i)
    if data[i] & 0x0F != thrift_compact.STRUCT:
        found.not_structs = found.not_structs or data[i] >> 4 != 0
        return thrift_compact.skip(data, i, thrift_compact.LIST, _MAX_DEPTH - 1, budget)
    count, j = data[i] >> 4, i + 1
    if count == 15:  # the size follows as a varint
        count, j = thrift_compact.varint(data, j)
    if count > len(data):  # Thrift's container length limit: the data's bytes
        raise thrift_compact.Cut(j)
    budget.memory -= count * STRUCT_ELEMENT
    if budget.memory < 0:
        raise thrift_compact.OverMemory
    for _ in range(count):
        j = _key_value(data, j, budget, found)
    return j


def _key_value(
    data: thrift_compact.Data, j: int, budget: thrift_compact.Budget, found: _Metadata
) -> int:
    """The offset after a ``KeyValue`` struct at ``j`` (at the depth ``thrift_compact``'s list
    walk reads an element at), its value's place in ``found`` when its key is ``ARROW:schema``
    (the last of each field read, as Thrift's reader keeps it)."""
    depth = _MAX_DEPTH - 2
    key: bytes | None = None
    value: tuple[int, int] | None = None
    last = 0
    while True:
        if j >= min(len(data), budget.room):
            raise thrift_compact.Short(j)
        kind, last, j = _field(data, j, depth, last)
        if kind == 0:
            break
        at = j
        j = thrift_compact.skip(data, j, kind, depth - 1, budget)
        if kind == thrift_compact.BINARY and last in (1, 2):
            width, text = thrift_compact.varint(data, at)
            if last == 1:
                key = bytes(data[text : text + width])
            else:
                value = (text, width)
    if key == ARROW_SCHEMA and value is not None:
        found.schemas.append(value)
    return j


def refuse_large_footer(path: Path, *, max_bytes: int, key: str, max_pages: int) -> None:
    """FooterLimit when the footer of Parquet file ``path`` would make Arrow build more than
    ``max_bytes`` (an upper bound per element, ``STRUCT_ELEMENT`` a struct in a list), or holds
    more than ``max_pages x FOOTER_BYTES_PER_PAGE`` bytes to step through; call it before any
    ``pyarrow.parquet`` call opens the file (``key``: the policy key that sets ``max_bytes``).
    A footer that is not Thrift is refused too; a file with no Parquet footer at all (shorter,
    another magic: encrypted, not Parquet) is Arrow's to refuse, which builds nothing then."""
    with path.open("rb") as stream:
        size = path.stat().st_size
        if size < 12:
            return
        stream.seek(size - 8)
        length, magic = struct.unpack("<I4s", stream.read(8))
        if magic != b"PAR1" or length > size - 12:
            return  # encrypted, cut or not Parquet: Arrow refuses it without building a footer
        start = size - 8 - length
        if length == 0:
            _unreadable(path, length, start, "it is empty")
        base = start - start % mmap.ALLOCATIONGRANULARITY
        steps = max_pages * FOOTER_BYTES_PER_PAGE
        with mmap.mmap(
            stream.fileno(), size - 8 - base, access=mmap.ACCESS_READ, offset=base
        ) as data:
            try:
                budget, metadata = _walk(data, start - base, steps, max_bytes)[2:]
                if metadata.not_structs:
                    _unreadable(
                        path,
                        length,
                        start,
                        "key_value_metadata is a list of another type than KeyValue structs",
                    )
                for at, width in metadata.schemas:
                    try:
                        budget.memory -= arrow_schema_bytes(data[at : at + width], budget.memory)
                    except _BadSchema as err:
                        msg = (
                            f"{path}: the Parquet footer's {ARROW_SCHEMA.decode()} value "
                            f"({width:,} bytes at byte {base + at:,}) is not an Arrow schema "
                            f"message ({err}); refused before it is parsed"
                        )
                        raise FooterLimit(msg) from None
            except thrift_compact.Cut as err:
                _unreadable(path, length, base + err.at, "a value runs past its end")
            except _OverSteps:
                msg = (
                    f"{path}: the Parquet footer ({length:,} bytes) holds more than "
                    f"{steps:,} bytes to step through ([data].max_pages ({max_pages:,}) x "
                    f"{FOOTER_BYTES_PER_PAGE}); refused before it is parsed"
                )
                raise FooterLimit(msg) from None
            except thrift_compact.Short as err:
                _unreadable(path, length, base + err.at, "it ends inside a value")
            except thrift_compact.Unreadable as err:
                _unreadable(path, length, base + err.at, str(err))
            except thrift_compact.OverMemory:
                msg = (
                    f"{path}: the Parquet footer ({length:,} bytes) would take Arrow more "
                    f"than {max_bytes / 2**20:.1f} MiB to hold ({key}; each struct in a list "
                    f"counted as {STRUCT_ELEMENT} bytes, each field of its stored Arrow schema "
                    f"{FIELD_BYTES}); refused before it is parsed"
                )
                raise FooterLimit(msg) from None


class _BadSchema(PipelineError):
    """An ``ARROW:schema`` value this reader cannot read as an Arrow IPC Schema message."""


class _Flat:
    """What Arrow builds from one Arrow IPC ``Schema`` message (a FlatBuffer), counted as it
    builds it: a field per reference (``FIELD_BYTES``, its name and metadata copied), so a
    ``Field`` table that is every child of a struct that is every field counts once per
    reference, as Arrow builds it; a table's cost is computed once (FlatBuffer offsets point
    forward: no table refers to itself), so the walk is as long as the message, and it stops
    (``thrift_compact.OverMemory``) as soon as the count passes ``limit``."""

    def __init__(self, buf: memoryview, limit: int) -> None:
        self.buf = buf
        self.limit = limit
        self.cost = 0
        self.fields: dict[int, int] = {}

    def charge(self, amount: int) -> None:
        self.cost += amount
        if self.cost > self.limit:
            raise thrift_compact.OverMemory

    def unpack(self, fmt: str, at: int) -> int:
        if at < 0 or at + struct.calcsize(fmt) > len(self.buf):
            raise _BadSchema(f"an offset ({at:,}) outside the message ({len(self.buf):,} bytes)")
        value: int = struct.unpack_from(fmt, self.buf, at)[0]
        return value

    def ref(self, at: int) -> int:
        return at + self.unpack("<I", at)

    def slot(self, table: int, slot: int) -> int:
        """The offset of the table's field ``slot`` (0: absent)."""
        vtable = table - self.unpack("<i", table)
        if 4 + 2 * slot + 2 > self.unpack("<H", vtable):
            return 0
        offset = self.unpack("<H", vtable + 4 + 2 * slot)
        return table + offset if offset else 0

    def child(self, table: int, slot: int) -> int:
        """The table, string or vector field ``slot`` refers to (0: absent)."""
        at = self.slot(table, slot)
        return self.ref(at) if at else 0

    def length(self, table: int, slot: int, width: int) -> int:
        """The length of the string or vector (of ``width``-byte elements) at ``slot``."""
        at = self.child(table, slot)
        if not at:
            return 0
        count = self.unpack("<I", at)
        if at + 4 + count * width > len(self.buf):
            raise _BadSchema(f"a vector at {at:,} runs past the message")
        return count

    def tables(self, table: int, slot: int, least: int) -> Iterator[int]:
        """The tables of the vector at ``slot``, each of which costs at least ``least``: a
        vector longer than the bound allows is refused before its first is walked."""
        at = self.child(table, slot)
        count = self.length(table, slot, 4)
        if self.cost + count * least > self.limit:
            raise thrift_compact.OverMemory
        for k in range(count):
            yield self.ref(at + 4 + 4 * k)

    def message(self) -> None:
        root = self.ref(0)
        if self.unpack("<B", self.slot(root, 1) or len(self.buf)) != 1:  # header_type Schema
            raise _BadSchema("the message is not a Schema")
        schema = self.child(root, 2)
        if not schema:
            raise _BadSchema("the message holds no Schema")
        self.key_values(root, 4)
        self.key_values(schema, 2)
        self.charge(8 * self.length(schema, 3, 8))  # features
        for field in self.tables(schema, 1, FIELD_BYTES):
            self.field(field, 3)

    def key_values(self, table: int, slot: int) -> None:
        for entry in self.tables(table, slot, _KEY_VALUE_BYTES):
            self.charge(_KEY_VALUE_BYTES + self.length(entry, 0, 1) + self.length(entry, 1, 1))

    def field(self, table: int, depth: int) -> None:
        known = self.fields.get(table)
        if known is not None:
            self.charge(known)
            return
        if depth > _FLAT_DEPTH:
            raise _BadSchema(f"fields nested more than {_FLAT_DEPTH} tables deep")
        before = self.cost
        self.charge(FIELD_BYTES + self.length(table, 0, 1))  # the field, its name
        kind = self.child(table, 3)
        if kind:
            self.charge(_TYPE_BYTES)
            type_type = self.unpack("<B", self.slot(table, 2) or len(self.buf))
            if type_type == 10:  # Timestamp {unit, timezone}
                self.charge(self.length(kind, 1, 1))
            elif type_type == 14:  # Union {mode, typeIds: [int]}
                self.charge(4 * self.length(kind, 1, 4))
        if self.child(table, 4):  # dictionary encoding: its index type
            self.charge(_TYPE_BYTES)
        self.key_values(table, 6)
        for child in self.tables(table, 5, FIELD_BYTES):
            self.field(child, depth + 1)
        self.fields[table] = self.cost - before


def arrow_schema_bytes(value: bytes, limit: int) -> int:
    """What Arrow builds from an ``ARROW:schema`` value (base64 of an IPC Schema message),
    counted by ``_Flat`` up to ``limit`` (``thrift_compact.OverMemory`` past it); ``_BadSchema``
    for a value that is not one (Arrow refuses such a file too)."""
    try:
        raw = memoryview(binascii.a2b_base64(value, strict_mode=True))
    except binascii.Error:
        raise _BadSchema("not base64") from None
    head = (
        8 if raw[:4].tobytes() == b"\xff\xff\xff\xff" else 4
    )  # the continuation marker, since 0.15
    if len(raw) < head + 4:
        raise _BadSchema("shorter than a message")
    length = struct.unpack_from("<i", raw, head - 4)[0]
    if length < 8 or head + length > len(raw):  # a root offset and a vtable
        raise _BadSchema(f"a message length ({length:,}) outside the value ({len(raw):,} bytes)")
    flat = _Flat(raw[head : head + length], limit)
    flat.message()
    return flat.cost


def _unreadable(path: Path, length: int, at: int, why: str) -> NoReturn:
    msg = (
        f"{path}: expected a Parquet file, found a footer ({length:,} bytes) that cannot be "
        f"read as Thrift at byte {at:,} ({why}); refused before it is parsed"
    )
    raise FooterLimit(msg) from None
