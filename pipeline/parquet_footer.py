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

Two more things Arrow builds that the bytes do not show (red team 12). Arrow's generated Thrift
reader reads a list Parquet defines (``row_groups``, ``columns``, ``schema``, ...) as a list of
Parquet's structs whatever element type the list declares, where Thrift's skip (and a schema-less
walk) steps through the elements as declared: 8-byte "doubles" were column chunks of 690 bytes
to Arrow (a 32 MB file, 2.9 GB). So the walk reads the footer's structs as Parquet defines them
(``_FIELDS``, every struct that holds a list) and refuses a known list declared of another
element type (no writer writes one). And Arrow keeps every leaf column's dotted path (all its
ancestors' names): one group named by 1 MB over 1,000 leaves took 3 GB, so each leaf's path is
charged ``PATH_COPIES`` times.

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
# empty lists, 544 s before the walker was shared with the page walk). Bool fields directly in
# FileMetaData: 0.22 us a byte (28 s) under load 8, 0.56 before red team 12's walk by field id.
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
    """What the walk found besides its counts: the ``(offset, length)`` of every
    ``ARROW:schema`` value, and the first list of a field Parquet's reader knows that was
    declared of another element type than the one it reads (``mistyped``: ``struct.field``,
    declared and expected types). Arrow's generated Thrift reader reads a known list's elements
    as their Parquet type whatever type the list declares, while this walk (as Thrift's skip)
    steps through them as declared: such a list is where the two read different structures
    (red team 12: 8-byte "doubles" Arrow read as 690-byte column chunks). No writer writes one,
    so it is refused; the walk skips it as declared meanwhile, as Thrift's skip does."""

    __slots__ = ("mistyped", "schemas")

    def __init__(self) -> None:
        self.schemas: list[tuple[int, int]] = []
        self.mistyped: tuple[str, int, int] | None = None


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


_I32, _I64 = 5, 6
# The footer's structs as Parquet's Thrift definition (parquet.thrift, as Arrow 26 reads it)
# gives them, only the fields that are lists or lead to one: field id -> (the field's compact
# type, its elements' type or struct name (a struct field: its struct's name), its name). Every struct
# not named here holds no list (SchemaElement and its LogicalType, KeyValue, SortingColumn,
# PageEncodingStats, ColumnOrder, Statistics, EncryptionAlgorithm, BoundingBox): the generic
# skip reads it as Arrow does, since Arrow skips a field of another type than its own by the
# type it declares, as the skip does.
_SCHEMA_ELEMENT, _KEY_VALUE = "SchemaElement", "KeyValue"
_FIELDS: dict[str, dict[int, tuple[int, int | str, str]]] = {
    "FileMetaData": {
        2: (thrift_compact.LIST, _SCHEMA_ELEMENT, "schema"),
        4: (thrift_compact.LIST, "RowGroup", "row_groups"),
        5: (thrift_compact.LIST, _KEY_VALUE, "key_value_metadata"),
        7: (thrift_compact.LIST, "ColumnOrder", "column_orders"),
    },
    "RowGroup": {
        1: (thrift_compact.LIST, "ColumnChunk", "columns"),
        4: (thrift_compact.LIST, "SortingColumn", "sorting_columns"),
    },
    "ColumnChunk": {
        3: (thrift_compact.STRUCT, "ColumnMetaData", "meta_data"),
        8: (thrift_compact.STRUCT, "ColumnCryptoMetaData", "crypto_metadata"),
    },
    "ColumnCryptoMetaData": {
        2: (thrift_compact.STRUCT, "EncryptionWithColumnKey", "ENCRYPTION_WITH_COLUMN_KEY")
    },
    "EncryptionWithColumnKey": {1: (thrift_compact.LIST, thrift_compact.BINARY, "path_in_schema")},
    "ColumnMetaData": {
        2: (thrift_compact.LIST, _I32, "encodings"),
        3: (thrift_compact.LIST, thrift_compact.BINARY, "path_in_schema"),
        8: (thrift_compact.LIST, _KEY_VALUE, "key_value_metadata"),
        13: (thrift_compact.LIST, "PageEncodingStats", "encoding_stats"),
        16: (thrift_compact.STRUCT, "SizeStatistics", "size_statistics"),
        17: (thrift_compact.STRUCT, "GeospatialStatistics", "geospatial_statistics"),
    },
    "SizeStatistics": {
        2: (thrift_compact.LIST, _I64, "repetition_level_histogram"),
        3: (thrift_compact.LIST, _I64, "definition_level_histogram"),
    },
    "GeospatialStatistics": {2: (thrift_compact.LIST, _I32, "geospatial_types")},
}
# What Arrow keeps per leaf column of the footer's schema besides its element: its path, every
# ancestor's name joined by dots (``SchemaDescriptor``'s map from dotted path to column, and
# the copies made on the way). Measured: 1,000 leaves under one group named by 1 MB took 3 GB
# (3 bytes a path byte); charged 4.
PATH_COPIES = 4


def _file_metadata(
    data: thrift_compact.Data, i: int, budget: thrift_compact.Budget, found: _Metadata
) -> int:
    """``thrift_compact.struct`` over the ``FileMetaData`` at ``i``: the fields Parquet's reader
    reads as lists read by their Parquet types (``_FIELDS``), every other skipped as ``struct``
    skips it."""
    return _struct(data, i, _MAX_DEPTH, budget, found=found, name="FileMetaData")


def _struct(  # noqa: PLR0912 - inline paths
    data: thrift_compact.Data,
    i: int,
    depth: int,
    budget: thrift_compact.Budget,
    *,
    found: _Metadata,
    name: str,
) -> int:
    """The offset after the struct ``name`` at ``i``, at ``depth`` (``thrift_compact.struct``'s)."""
    fields = _FIELDS[name]
    size, last = len(data), 0
    while True:
        # ``thrift_compact.struct``'s loop (its inline paths), the field ids followed
        n = size if size < budget.room else budget.room
        if i >= n:
            raise thrift_compact.Short(i)
        byte = data[i]
        kind = byte & 0x0F
        if kind == 0:
            return i + 1
        if byte >= 0x10 and kind <= 13 and depth > 1:
            i += 1
            last = (last + (byte >> 4) + 0x8000) % 0x10000 - 0x8000  # an i16, as Thrift's
        else:
            kind, last, i = _field(data, i, depth, last)
        if kind in thrift_compact.VARINT:
            i = thrift_compact.varint(data, i)[1]
            continue
        if kind in thrift_compact.BOOLS:
            continue
        if kind == thrift_compact.BINARY and i < size and data[i] < 0x80:
            width = data[i]
            i += 1
            if i + width > size:
                raise thrift_compact.Cut(i, i + width)
            budget.memory -= width
            if budget.memory < 0:
                raise thrift_compact.OverMemory
            i += width
            if width > thrift_compact.SKIP_COST:
                budget.room += width - thrift_compact.SKIP_COST
            continue
        known = fields.get(last)
        if known is None or known[0] != kind:  # not Parquet's, or skipped by its type by Arrow
            i = thrift_compact.skip(data, i, kind, depth - 1, budget)
        elif kind == thrift_compact.STRUCT:
            i = _struct(data, i, depth - 1, budget, found=found, name=str(known[1]))
        else:
            i = _list(
                data,
                i,
                depth - 1,
                budget,
                found=found,
                where=f"{name}.{known[2]}",
                element=known[1],
            )


def _list(
    data: thrift_compact.Data,
    i: int,
    depth: int,
    budget: thrift_compact.Budget,
    *,
    found: _Metadata,
    where: str,
    element: int | str,
) -> int:
    """The offset after a list Parquet's reader reads as a list of ``element`` (a compact type,
    or a struct's name), at ``depth`` (``thrift_compact._elements``'s): a list declared of
    another type is marked in ``found`` and skipped as declared."""
    if i >= min(len(data), budget.room):
        raise thrift_compact.Short(i)
    declared, count = data[i] & 0x0F, data[i] >> 4
    expected = thrift_compact.STRUCT if isinstance(element, str) else element
    j = i + 1
    if count == 15:  # the size follows as a varint
        count, j = thrift_compact.varint(data, j)
    if declared != expected or not isinstance(element, str) or count == 0 or depth <= 1:
        if declared != expected and count and declared <= 13 and found.mistyped is None:
            found.mistyped = (where, declared, expected)
        return thrift_compact.skip(data, i, thrift_compact.LIST, depth, budget)
    if count > len(data):  # Thrift's container length limit: the data's bytes
        raise thrift_compact.Cut(j)
    budget.memory -= count * STRUCT_ELEMENT
    if budget.memory < 0:
        raise thrift_compact.OverMemory
    return _structs(data, j, count, depth - 1, budget, found=found, where=where, element=element)


def _structs(
    data: thrift_compact.Data,
    j: int,
    count: int,
    depth: int,
    budget: thrift_compact.Budget,
    *,
    found: _Metadata,
    where: str,
    element: str,
) -> int:
    """The offset after ``count`` structs ``element`` at ``j``, at ``depth``."""
    if element == _KEY_VALUE and where == "FileMetaData.key_value_metadata":  # Arrow's schema
        for _ in range(count):
            j = _key_value(data, j, depth, budget, found)
    elif element == _SCHEMA_ELEMENT:
        j = _schema(data, j, count, depth, budget)
    elif element in _FIELDS:
        for _ in range(count):
            j = _struct(data, j, depth, budget, found=found, name=element)
    else:  # a struct that holds no list: the generic walk
        for _ in range(count):
            j = thrift_compact.struct(data, j, depth, budget)
    return j


def _schema(
    data: thrift_compact.Data, j: int, count: int, depth: int, budget: thrift_compact.Budget
) -> int:
    """The offset after ``count`` ``SchemaElement`` structs at ``j``; each leaf's path (its
    ancestors' names and its own, a byte between each) charged ``PATH_COPIES`` times, the tree
    rebuilt as Arrow does: an element's ``num_children`` (field 5) next elements are its
    children."""
    open_groups: list[list[int]] = []  # [children still to come, the group's path length]
    paths = 0
    for _ in range(count):
        name, children, last = 0, 0, 0
        while True:
            if j >= min(len(data), budget.room):
                raise thrift_compact.Short(j)
            kind, last, j = _field(data, j, depth, last)
            if kind == 0:
                break
            at = j
            j = thrift_compact.skip(data, j, kind, depth - 1, budget)
            if last == 4 and kind == thrift_compact.BINARY:  # name (the last one read counts)
                name = thrift_compact.varint(data, at)[0]
            elif last == 5 and kind == _I32:  # num_children
                raw = thrift_compact.varint(data, at)[0] & 0xFFFFFFFF
                children = (raw >> 1) ^ -(raw & 1)
        path = (open_groups[-1][1] if open_groups else 0) + name + 1
        if open_groups:
            open_groups[-1][0] -= 1
            while open_groups and open_groups[-1][0] <= 0:
                open_groups.pop()
        if children > 0:
            open_groups.append([children, path])
        else:
            paths += path
    budget.memory -= paths * PATH_COPIES
    if budget.memory < 0:
        raise thrift_compact.OverMemory
    return j


def _key_value(
    data: thrift_compact.Data, j: int, depth: int, budget: thrift_compact.Budget, found: _Metadata
) -> int:
    """The offset after a ``KeyValue`` struct at ``j`` (at ``depth``), its value's place in
    ``found`` when its key is ``ARROW:schema`` (the last of each field read, as Thrift's reader
    keeps it)."""
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
                if metadata.mistyped is not None:
                    where, declared, expected = metadata.mistyped
                    msg = (
                        f"{path}: expected a Parquet file, found a footer ({length:,} bytes) "
                        f"whose {where} (a list Parquet's reader reads as Thrift type "
                        f"{expected}) is declared of type {declared}: Arrow would read its "
                        "bytes as another structure than the one they declare; refused before "
                        "it is parsed"
                    )
                    raise FooterLimit(msg)
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
                    f"{FIELD_BYTES}, each column's path in the schema {PATH_COPIES} times); "
                    "refused before it is parsed"
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
