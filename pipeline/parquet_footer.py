"""What Arrow builds in memory from a Parquet footer, read off the footer before it does.

Arrow parses the whole footer (Thrift's ``FileMetaData``) when it opens a file, before any bound
on rows, pages or decoded bytes applies, and a struct in a list costs it hundreds of bytes
whatever it holds: a column chunk of 3 bytes on disk (its ``file_offset``, nothing else) is a
C++ ``ColumnChunk`` of about 690 bytes. 30 MB of such chunks (10 row groups x 1,000,000) peaked
at 6.9 GB and took 14 s in ``pq.ParquetFile(path).metadata`` (red team 10, 7 December), within
the 256 MiB of ``stream_above_mb`` and far within ``max_file_mb``.

So the footer is walked here first (Apache Thrift's compact protocol, as
``pipeline.parquet_pages`` reads page headers) and two figures are bounded before Arrow sees it:

- what it builds: every list element counts at least what Arrow allocates for it (a struct
  ``STRUCT_ELEMENT`` bytes, more than the largest Parquet struct, a string 32 bytes plus its
  length, a number 8), every string its length, against the caller's byte bound;
- the bytes the walk steps through (a string or a run of fixed-width values passed in one step
  counts 8), against ``max_pages x FOOTER_BYTES_PER_PAGE``, so the walk itself stays short.

An honest footer counts about 3-4 KB per column chunk (pyarrow: 117 bytes on disk). A footer
this walk cannot read as Thrift is refused too (Arrow could not read it either: it nests no
deeper than Thrift's limit, which this walk shares); leaving it to Arrow would let a footer
hide a bomb behind an unreadable field the walk stops at first.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from pipeline.errors import DataError, PipelineError

# Footer bytes the walk steps through per page ``max_pages`` allows: a column chunk takes a page
# at least, and pyarrow writes 100-120 bytes of footer per chunk (strings counted 8); 512 leaves
# room for a writer's longer records. 128 MB at the default: about 55 s at worst (0.42 us a
# byte of one-byte fields stepped through, 10 million in 4.2 s).
FOOTER_BYTES_PER_PAGE = 512
STRUCT_ELEMENT = 1024  # bytes a struct in a list costs Arrow at most (ColumnChunk: about 690)
_STRING_ELEMENT = 32  # a std::string in a vector, before its characters
_SCALAR_ELEMENT = 8
_CONTAINER_ELEMENT = 24  # a vector or map in a vector, before its elements
_MAP_ENTRY = 64  # a map node, before its key and value
_SKIP_COST = 8
_MAX_DEPTH = 64  # Thrift's C++ recursion limit: whatever Arrow reads, this walk reads
_BOOLS = (1, 2)
_VARINT = (3, 4, 5, 6)  # byte (a single byte, not a varint, but one step), i16, i32, i64
_FIXED = {3: 1, 7: 8, 13: 16}  # byte, double, UUID
_BINARY = 8
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12


class FooterLimit(DataError):
    """A footer Arrow would build more of than allowed (refused before Arrow parses it)."""


class _Unreadable(PipelineError):  # a signal, caught in refuse_large_footer
    """Not Thrift this walk can read (nor Arrow)."""


class _Over(PipelineError):  # a signal, caught in refuse_large_footer
    """A bound passed: which one, in words."""


class _Walk:
    def __init__(self, data: mmap.mmap | bytes, start: int, end: int, steps: int, memory: int):
        self.data = data
        self.i = start
        self.end = end
        self.steps_left = steps
        self.memory_left = memory

    def _step(self, count: int) -> None:
        self.steps_left -= count
        if self.steps_left < 0:
            raise _Over("steps")

    def _hold(self, count: int) -> None:
        self.memory_left -= count
        if self.memory_left < 0:
            raise _Over("memory")

    def _byte(self) -> int:
        if self.i >= self.end:
            raise _Unreadable
        value = self.data[self.i]
        self.i += 1
        self._step(1)
        return value

    def _varint(self) -> int:
        result = shift = 0
        for _ in range(10):
            byte = self._byte()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
        raise _Unreadable

    def _pass(self, width: int) -> None:
        if width < 0 or self.i + width > self.end:
            raise _Unreadable
        self.i += width
        self._step(min(width, _SKIP_COST))

    def value(self, kind: int, depth: int, *, element: bool) -> None:
        if depth <= 0:
            raise _Unreadable
        if kind in _BOOLS:
            if element:
                self._pass(1)
            return
        if kind in (4, 5, 6):
            self._varint()
        elif kind in _FIXED:
            self._pass(_FIXED[kind])
        elif kind == _BINARY:
            width = self._varint()
            self._hold(width)
            self._pass(width)
        elif kind == _STRUCT:
            self.struct(depth)
        elif kind in (_LIST, _SET):
            header = self._byte()
            inner, size = header & 0x0F, header >> 4
            if size == 15:
                size = self._varint()
            self.elements(size, (inner,), depth)
        elif kind == _MAP:
            size = self._varint()
            kinds = (self._byte(),) if size else (0,)
            self.elements(size, (kinds[0] >> 4, kinds[0] & 0x0F), depth)
        else:
            raise _Unreadable

    def elements(self, size: int, kinds: tuple[int, ...], depth: int) -> None:
        if size > self.end - self.i:  # each element takes a byte at least (Thrift's limit too)
            raise _Unreadable
        for kind in kinds:
            if kind not in (*_BOOLS, *_VARINT, *_FIXED, _BINARY, _LIST, _SET, _MAP, _STRUCT):
                raise _Unreadable
        per = sum(self._element_cost(kind) for kind in kinds)
        if len(kinds) == 2:
            per += _MAP_ENTRY
        self._hold(size * per)
        if len(kinds) == 1 and kinds[0] in _FIXED:
            self._pass(size * _FIXED[kinds[0]])
            return
        for _ in range(size):
            for kind in kinds:
                self.value(kind, depth - 1, element=True)

    @staticmethod
    def _element_cost(kind: int) -> int:
        if kind == _STRUCT:
            return STRUCT_ELEMENT
        if kind == _BINARY:
            return _STRING_ELEMENT
        if kind in (_LIST, _SET, _MAP):
            return _CONTAINER_ELEMENT
        return _SCALAR_ELEMENT

    def struct(self, depth: int) -> None:
        while True:
            byte = self._byte()
            kind = byte & 0x0F
            if kind == 0:
                return
            if byte < 0x10:
                self._varint()
            self.value(kind, depth - 1, element=False)


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
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            walk = _Walk(data, start, size - 8, max_pages * FOOTER_BYTES_PER_PAGE, max_bytes)
            try:
                walk.struct(_MAX_DEPTH)
            except _Unreadable:
                msg = (
                    f"{path}: expected a Parquet file, found a footer ({length:,} bytes) that "
                    f"cannot be read as Thrift at byte {walk.i}; refused before it is parsed"
                )
                raise FooterLimit(msg) from None
            except _Over as over:
                if str(over) == "memory":
                    msg = (
                        f"{path}: the Parquet footer ({length:,} bytes) would take Arrow more "
                        f"than {max_bytes / 2**20:.1f} MiB to hold ({key}; each struct in a list "
                        f"counted as {STRUCT_ELEMENT} bytes); refused before it is parsed"
                    )
                else:
                    msg = (
                        f"{path}: the Parquet footer ({length:,} bytes) holds more than "
                        f"{max_pages * FOOTER_BYTES_PER_PAGE:,} bytes to step through ([data]."
                        f"max_pages ({max_pages:,}) x {FOOTER_BYTES_PER_PAGE}); refused before "
                        "it is parsed"
                    )
                raise FooterLimit(msg) from None
