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

An honest footer counts about 3-4 KB per column chunk (pyarrow: 117 bytes on disk). A footer
this walk cannot read as Thrift is refused too (Arrow could not read it either: it nests no
deeper than Thrift's limit, which this walk shares); leaving it to Arrow would let a footer
hide a bomb behind an unreadable field the walk stops at first.
"""

from __future__ import annotations

import mmap
import struct
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
    budget = thrift_compact.Budget(start + steps, memory, _ELEMENT, _MAP_ENTRY)
    try:
        end = thrift_compact.struct(data, start, _MAX_DEPTH, budget)
    except thrift_compact.Cut:
        raise
    except thrift_compact.Short:
        if budget.room < len(data):  # stopped at its room, not at the footer's end
            raise _OverSteps from None
        raise
    stepped = end - start - (budget.room - start - steps)
    if stepped > steps:  # the walk may step a varint (10 bytes) past its room before it checks
        raise _OverSteps
    return end, stepped


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
                walk_footer(data, start - base, steps, max_bytes)
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
                    f"counted as {STRUCT_ELEMENT} bytes); refused before it is parsed"
                )
                raise FooterLimit(msg) from None


def _unreadable(path: Path, length: int, at: int, why: str) -> NoReturn:
    msg = (
        f"{path}: expected a Parquet file, found a footer ({length:,} bytes) that cannot be "
        f"read as Thrift at byte {at:,} ({why}); refused before it is parsed"
    )
    raise FooterLimit(msg) from None
