"""Skipping Apache Thrift compact-protocol values without decoding them: the one walker that
``pipeline.parquet_pages`` (page headers) and ``pipeline.parquet_footer`` (the footer's
``FileMetaData``) both read with, each with its own bounds.

The compact protocol, as Thrift's Python reader (``thrift.protocol.TCompactProtocol``) reads
it: a field header is one byte (type in the low nibble, 0 the struct's end; the id's delta from
the previous field in the high one, 0: a zigzag varint id follows); integers are zigzag varints
(at most 10 bytes), a double 8 bytes, a UUID 16, a binary a varint length and its bytes; a list
or set a byte (size in the high nibble, 15: a varint follows; element type in the low one), a
map a varint size and, when not empty, a byte of key and value types. A bool field holds its
value in its type; a bool element is a byte. Types 14 and 15 do not exist.
tests/pipeline/test_parquet_reader.py holds this walker to Thrift's reader on every page header
and footer pyarrow writes, cut short, mutated and crafted.

What a walk may spend is a ``Budget``, the caller's:

- ``room``: how far (an offset in ``data``) the walk may step, one byte at a time: the caller's
  byte budget plus the start. A string, or a run of fixed-width values (bools, bytes, doubles,
  UUIDs in a list), is passed in one step whatever its length and counts ``SKIP_COST`` bytes:
  the room grows by the rest. The walk raises ``Short`` where it would step past its room or
  past the data; the caller tells the two apart (``room < len(data)``: over its budget);
- ``memory``: what the values walked make a reader allocate, by the caller's estimate: every
  container element counts ``element[type]`` (a map entry ``entry`` more) before it is walked,
  every string its length. ``OverMemory`` when it passes 0. A caller that bounds no memory
  passes a large number and zero costs.

Speed comes from few Python calls per byte (bench/parquet_footer.py): integer fields, short
strings and empty containers are passed inline in the struct loop; runs of fixed-width elements
and of fixed-width map entries in one step, runs of varints and of empty elements with numpy;
strings, short lists and short maps in a list in one loop each, without the general dispatch.
Every shortcut reads what the general path reads, to the same error (test_parquet_reader holds both
to Thrift's reader). The costliest bytes left are one-byte bool fields, a loop turn each:
0.26-0.34 us a byte under load 16-18 (on 2 shared cores).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.errors import PipelineError

Data = bytes | mmap.mmap  # what is walked: a page header's window, a mapped footer
SKIP_COST = 8  # a string or a run of fixed-width values passed in one step counts this many
LIST, MAP, STRUCT = 9, 11, 12
BOOLS = (1, 2)
VARINT = (4, 5, 6)  # i16, i32, i64
I32 = 5
BINARY = 8
FIXED = {1: 1, 2: 1, 3: 1, 7: 8, 13: 16}  # an element's bytes: bool, byte, double, UUID
_LONG_VARINTS = 64  # a container of more varints than this is skipped with numpy
_LONG_RUN = 64  # a container of more elements than this has its runs of empty ones found so
# The byte an empty element of each type is at most: a binary of length 0, a struct's end, a map
# of size 0, a list or set of size 0 with its element type (0-13).
_EMPTY = {BINARY: 0, STRUCT: 0, 11: 0, LIST: 13, 10: 13}


class Unreadable(PipelineError):
    """Not Thrift's compact protocol (its words, as Thrift's Python reader says it); ``at``: the
    offset where the walk found it, when known."""

    def __init__(self, why: str, at: int = -1) -> None:
        super().__init__(why)
        self.at = at


class UnknownType(Unreadable):
    """A wire type that does not exist (14, 15)."""


class Short(Unreadable):
    """The walk reached the end of ``data``, or of its room (``Budget.room``), inside a value."""

    def __init__(self, at: int = -1) -> None:
        super().__init__("the data ended inside a value", at)


class Cut(Short):
    """A string or container longer than ``data`` (it starts at ``at``; ``needed``: the length
    of data it needs, when known)."""

    def __init__(self, at: int, needed: int = 0) -> None:
        super().__init__(at)
        self.needed = needed


class OverMemory(PipelineError):
    """The caller's memory estimate passed its bound (``Budget.memory``)."""


class Budget:
    """What a walk may spend: see the module's docstring."""

    __slots__ = ("element", "entry", "memory", "room")

    def __init__(
        self, room: int, memory: int = 1 << 62, element: Sequence[int] = (0,) * 16, entry: int = 0
    ) -> None:
        self.room = room
        self.memory = memory
        self.element = element
        self.entry = entry


def unknown(kind: int, at: int = -1) -> UnknownType:
    return UnknownType(f"unknown Thrift type {kind}", at)


def varint(data: Data, i: int) -> tuple[int, int]:
    """The varint at ``i`` and the offset after it."""
    result = shift = 0
    for _ in range(10):
        if i >= len(data):
            raise Short(i)
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
    raise Unreadable("Variable-length int over 10 bytes.", i)


def _varints(data: Data, i: int, count: int, n: int) -> int:
    """The offset after ``count`` varints from ``i``, stepping no further than ``n``."""
    if count > _LONG_VARINTS:
        if i >= n:
            raise Short(i)
        seen = min(n - i, 10 * count)
        # no view of ``data`` outlives the call (a mapped file closes only with none left)
        ends = np.flatnonzero(np.frombuffer(data, np.uint8, seen, i) < 0x80)[:count]
        starts = np.concatenate(([-1], ends[:-1]))
        if ends.size and int((ends - starts).max()) > 10:
            raise Unreadable("Variable-length int over 10 bytes.", i)
        if ends.size < count:
            tail = int(ends[-1]) + 1 if ends.size else 0
            if seen - tail >= 10:
                raise Unreadable("Variable-length int over 10 bytes.", i)
            raise Short(i + seen)
        return i + int(ends[-1]) + 1
    size = len(data)
    for _ in range(count):
        if i < size and data[i] < 0x80:  # a one-byte integer, the most common
            i += 1
        else:
            _, i = varint(data, i)
    return i


def skip(
    data: Data, i: int, kind: int, depth: int, budget: Budget, *, element: bool = False
) -> int:
    """The offset after a value of compact type ``kind`` at ``i`` (a struct's field, or with
    ``element`` a container's element: a bool is a byte there), nested at most ``depth`` deep
    (Thrift's ``skip(max_depth)``)."""
    if depth <= 0:
        raise Unreadable("Maximum skip depth exceeded", i)
    if kind in BOOLS and not element:
        return i
    if kind in VARINT:
        return varint(data, i)[1]
    nested = _NESTED.get(kind)
    if nested is not None:
        return nested(data, i, depth, budget)
    if kind == BINARY:
        width, i = varint(data, i)
        if i + width > len(data):  # a binary longer than the data is Thrift's limit too
            raise Cut(i, i + width)
        budget.memory -= width
        if budget.memory < 0:
            raise OverMemory
    elif kind == 0:
        raise Unreadable("invalid TType", i)
    else:
        width = FIXED[kind]
        if i + width > len(data):
            raise Cut(i, i + width)
    if width > SKIP_COST:  # passed in one step
        budget.room += width - SKIP_COST
    return i + width


def struct(data: Data, i: int, depth: int, budget: Budget) -> int:  # noqa: PLR0912 - inline paths
    """The offset after a struct's fields and its end (its fields one level deeper).

    The commonest fields are passed inline, without ``skip``'s calls: integers, strings of up
    to 127 bytes, empty structs, maps and lists; a struct or list one level deeper is walked
    without ``skip``'s dispatch."""
    size = len(data)
    n = size if size < budget.room else budget.room
    while True:
        if i >= n:
            raise Short(i)
        byte = data[i]
        i += 1
        kind = byte & 0x0F
        if kind == 0:
            return i
        if byte < 0x10:  # the id in full: a zigzag varint
            _, i = varint(data, i)
        if kind > 13:
            raise unknown(kind, i)
        if depth <= 1:  # the field's value is one level deeper (Thrift checks before a bool)
            raise Unreadable("Maximum skip depth exceeded", i)
        if kind in VARINT:
            # the room is checked at each field: a varint may run past it (as in ``varint``)
            last = i + 9  # its 10th byte at most
            while i < size and data[i] >= 0x80 and i < last:
                i += 1
            if i >= size:
                raise Short(i)
            if data[i] >= 0x80:
                raise Unreadable("Variable-length int over 10 bytes.", i + 1)
            i += 1
            continue
        if kind in BOOLS:
            continue
        if i < n and data[i] <= _EMPTY.get(kind, -1):  # an empty struct, map, list, string
            i += 1
            continue
        if kind == BINARY and i < size and data[i] < 0x80:
            width = data[i]
            i += 1
            if i + width > size:
                raise Cut(i, i + width)
            budget.memory -= width
            if budget.memory < 0:
                raise OverMemory
            i += width
            if width > SKIP_COST:
                budget.room += width - SKIP_COST
        elif kind == STRUCT:
            i = struct(data, i, depth - 1, budget)
        elif kind == LIST:
            i = _elements(data, i, depth - 1, budget)
        else:
            i = skip(data, i, kind, depth - 1, budget)
        n = size if size < budget.room else budget.room


def _elements(data: Data, i: int, depth: int, budget: Budget) -> int:
    """The offset after a list's or a set's header and elements."""
    if i >= len(data) or i >= budget.room:
        raise Short(i)
    byte = data[i]
    i += 1
    kind, size = byte & 0x0F, byte >> 4
    if kind > 13:
        raise unknown(kind, i)
    if size == 15:
        size, i = varint(data, i)
    elif size == 0:
        return i
    if depth <= 1 or size == 0:  # an element past the depth limit is refused there
        return _values(data, i, size, (kind,), depth, budget=budget)
    if size > len(data):  # Thrift's container length limit: the data's bytes
        raise Cut(i)
    budget.memory -= size * budget.element[kind]
    if budget.memory < 0:
        raise OverMemory
    return _same_values(data, i, size, kind, depth - 1, budget=budget)


def _map(data: Data, i: int, depth: int, budget: Budget) -> int:
    """The offset after a map's header and its keys and values."""
    if i >= budget.room:
        raise Short(i)
    if i < len(data) and data[i] < 0x80:
        size, i = data[i], i + 1
    else:
        size, i = varint(data, i)
    if size > len(data):
        raise Cut(i)
    kinds = 0
    if size > 0:
        if i >= len(data):
            raise Short(i)
        kinds = data[i]
        i += 1
    if kinds & 0x0F > 13:
        raise unknown(kinds & 0x0F, i)
    if kinds >> 4 > 13:
        raise unknown(kinds >> 4, i)
    return _values(data, i, size, (kinds >> 4, kinds & 0x0F), depth, budget=budget)


def _values(
    data: Data, i: int, size: int, kinds: tuple[int, ...], depth: int, *, budget: Budget
) -> int:
    """The offset after ``size`` elements (a map's: key and value) of those types."""
    if size > len(data):  # Thrift's container length limit: the data's bytes
        raise Cut(i)
    if size == 0:
        return i
    per = budget.entry if len(kinds) == 2 else 0
    for kind in kinds:
        per += budget.element[kind]
    budget.memory -= size * per
    if budget.memory < 0:
        raise OverMemory
    if depth > 1 and len(kinds) == 1:  # one type, elements' depth within the limit
        return _same_values(data, i, size, kinds[0], depth - 1, budget=budget)
    depth -= 1
    if depth > 0 and kinds[0] in FIXED and kinds[-1] in FIXED:
        # the entries that start within the room and end within the data, in one step (each
        # byte counted stepped through): the rest, one or two, one by one
        width = FIXED[kinds[0]] + FIXED[kinds[-1]]
        within = min(size, max(0, (min(len(data), budget.room) - i) // width))
        i += within * width
        size -= within
    for _ in range(size):
        if i >= budget.room:
            raise Short(i)
        for kind in kinds:
            i = skip(data, i, kind, depth, budget, element=True)
    return i


def _same_values(data: Data, i: int, size: int, kind: int, depth: int, *, budget: Budget) -> int:
    """The offset after ``size`` elements of type ``kind`` at ``depth`` (above 0): fixed widths
    in one step, varints with numpy, binaries and containers without ``skip``'s dispatch."""
    n = len(data)
    if kind in FIXED:
        end = i + size * FIXED[kind]
        if end > n:
            raise Cut(i, end)
        if end - i > SKIP_COST:
            budget.room += end - i - SKIP_COST
        return end
    if kind in VARINT:
        return _varints(data, i, size, min(n, budget.room))
    top = _EMPTY.get(kind, -1)
    if size > _LONG_RUN and top >= 0:
        # a run of one-byte elements (empty strings, structs, maps, lists) in one step, each
        # byte counted stepped through: the elements after it one by one
        within = _run(data, i, min(size, min(len(data), budget.room) - i), top)
        i += within
        size -= within
    if kind == BINARY:
        return _binaries(data, i, size, budget)
    if kind in (LIST, 10):
        return _short_lists(data, i, size, depth, budget)
    if kind == MAP:
        return _short_maps(data, i, size, depth, budget)
    nested = _NESTED.get(kind)
    if nested is None:  # 0: no value has this type
        raise Unreadable("invalid TType", i)
    for _ in range(size):
        i = nested(data, i, depth, budget)
    return i


def _run(data: Data, i: int, count: int, top: int) -> int:
    """How many of the ``count`` bytes from ``i`` are at most ``top``, before the first that
    is not (no view of ``data`` outlives the call: a mapped file closes only with none left)."""
    if count <= 0:
        return 0
    over = np.flatnonzero(np.frombuffer(data, np.uint8, count, i) > top)
    return int(over[0]) if over.size else count


def _short_lists(data: Data, i: int, size: int, depth: int, budget: Budget) -> int:
    """The offset after ``size`` lists or sets: those of fewer than 15 fixed-width elements read
    here, as ``_elements`` reads them, without its calls; any other by ``_elements``."""
    n = len(data)
    element = budget.element
    for _ in range(size):
        if i >= n or i >= budget.room:
            raise Short(i)
        byte = data[i]
        count, kind = byte >> 4, byte & 0x0F
        width = FIXED.get(kind, 0)
        if count == 15 or not width or depth <= 1 or count > n:
            i = _elements(data, i, depth, budget)
            continue
        i += 1
        if count:
            budget.memory -= count * element[kind]
            if budget.memory < 0:
                raise OverMemory
            end = i + count * width
            if end > n:
                raise Cut(i, end)
            if end - i > SKIP_COST:
                budget.room += end - i - SKIP_COST
            i = end
    return i


def _short_maps(data: Data, i: int, size: int, depth: int, budget: Budget) -> int:
    """The offset after ``size`` maps: those of fewer than 128 entries of fixed-width keys and
    values within the data and the room read here, as ``_map`` reads them, without its calls;
    any other by ``_map``."""
    n = len(data)
    element = budget.element
    for _ in range(size):
        if i + 1 < n and i < budget.room and data[i] < 0x80:
            count = data[i]
            if count == 0:
                i += 1
                continue
            key, value = data[i + 1] >> 4, data[i + 1] & 0x0F
            if key in FIXED and value in FIXED and depth > 1 and count <= n:
                end = i + 2 + count * (FIXED[key] + FIXED[value])
                if end <= n and end <= budget.room:  # each byte counted stepped through
                    budget.memory -= count * (element[key] + element[value] + budget.entry)
                    if budget.memory < 0:
                        raise OverMemory
                    i = end
                    continue
        i = _map(data, i, depth, budget)
    return i


def _binaries(data: Data, i: int, size: int, budget: Budget) -> int:
    """The offset after ``size`` binaries (each a varint length and its bytes)."""
    n = len(data)
    limit = budget.room
    strings = 0
    try:
        for _ in range(size):
            if i >= limit:
                raise Short(i)
            if i < n and data[i] < 0x80:
                width, i = data[i], i + 1
            else:
                width, i = varint(data, i)
            if i + width > n:
                raise Cut(i, i + width)
            i += width
            strings += width
            if width > SKIP_COST:
                limit += width - SKIP_COST
    finally:
        budget.room = limit
    budget.memory -= strings
    if budget.memory < 0:
        raise OverMemory
    return i


_NESTED: dict[int, Callable[[Data, int, int, Budget], int]] = {
    9: _elements,
    10: _elements,
    11: _map,
    STRUCT: struct,
}
