"""What Arrow decompresses from a Parquet file, read off its page headers before it does.

Arrow decompresses each page whole, into a buffer of the size the page's own header declares
(``uncompressed_page_size``), before any bound on rows or decoded bytes applies: one page of a
single 300 MiB text value compresses to 10 KB and peaked at 1 GiB of memory under a 64 MiB
limit. The footer's ``total_uncompressed_size`` says the same for an honest writer, but Arrow
never compares the two: a footer rewritten to say 1,000 bytes read the same 300 MiB page.
So the page headers themselves are read here (Apache Thrift's compact protocol: the three
fields every header starts with, the others skipped), walking each column chunk over the byte
range Arrow reads for it. The reader is the project's own (``_read_header`` here, the skipping
in ``pipeline.thrift_compact``, which the footer's walk shares: Thrift's Python reader,
``TCompactProtocol`` and its ``skip``, made few calls per byte; its C decoder is no documented
entry point); tests/pipeline/test_parquet_reader.py holds it to Thrift's on every header
pyarrow writes, cut short, mutated and crafted.

Reading a header costs the same however small its page (a few microseconds, a few bytes on
disk: 100,000 one-value pages are 7.5 MB, walked in about 1.5 s where Arrow reads them in
0.1 s), so the walk counts the pages and column chunks it reads and stops at ``max_pages``
(``[data].max_pages``), naming the file, where it stopped and the count. Each file is walked
once per process (``chunk_pages``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pipeline import thrift_compact
from pipeline.errors import DataError, PipelineError

_DICTIONARY_PAGE = 2  # PageHeader.type
_SIZES = (1, 2, 3)  # PageHeader's type, uncompressed_page_size, compressed_page_size (i32)
_MAX_HEADER = 16 * 2**20  # Arrow's default limit on one page header's bytes
_MAX_DEPTH = 16
_I16 = (-(2**15), 2**15 - 1)
_I32 = (-(2**31), 2**31 - 1)
_PADDING = 100  # Arrow reads this much past a chunk written by old parquet-mr (PARQUET-816)
# Header bytes the walk steps through per page allowed by ``max_pages``, on average: a header's
# cost is the bytes its reader steps through one by one (up to 0.5 us each,
# bench/parquet_pages.py), and few pages can have huge headers (up to ``_MAX_HEADER``);
# pyarrow's are 20-70 bytes. A string (a binary) or a run of fixed-width values (bools, bytes,
# doubles, UUIDs in a list) is passed in one step whatever its length: it counts
# ``_SKIP_COST`` bytes, not its length (pyarrow's statistics of a 4,000-character text: 8 KB
# a header, 81 bytes stepped through, its first 35 twice: a 4 KB window ends in a string).
HEADER_BYTES_PER_PAGE = 128
_SKIP_COST = thrift_compact.SKIP_COST


# Walks kept for reuse in this process (``chunk_pages``): at most this many files' chunks.
_KEPT_FILES = 8


class PageError(DataError):
    """A page header this reader cannot read (Arrow would have read something else)."""


@dataclass(frozen=True)
class ChunkPages:
    """One column chunk's pages, as their headers declare them once decompressed."""

    row_group: int
    column: str
    total: int  # every page
    dictionary: int  # the dictionary page (0: none)
    largest: int  # the largest other page
    footer: int  # what the footer says (total_uncompressed_size)
    pages: int  # how many page headers the chunk holds
    header_bytes: int  # their bytes
    header_cost: int  # the bytes stepped through to read them (HEADER_BYTES_PER_PAGE)


class PageLimit(DataError):
    """More pages (or column chunks) than ``max_pages``: the walk stops there."""


class _OverBudget(PipelineError):  # a signal, caught in chunk_pages
    """The header does not end within the header bytes left to the walk to step through."""


class _Short(PageError):
    """The window ended inside the header: read a larger one (caught before PageError);
    ``stepped``: the bytes the reader stepped through before (``_read_within``)."""

    def __init__(self, stepped: int = 0) -> None:
        super().__init__("the window ended inside the header")
        self.stepped = stepped
        self.needed = 0  # the window a string or a run of fixed-width values needs


@dataclass(frozen=True)
class _Walked:
    """One column chunk's walk, kept for reuse while the file's signature holds: and the
    bytes it read, where (``regions``: offset, length, ...) and their digest."""

    pages: int
    header_bytes: int
    header_cost: int
    total: int
    dictionary: int
    largest: int
    regions: array[int]
    digest: bytes


Signature = tuple[int, int, int, int, int]
# Per file (its absolute path): the signature its bytes had while walked, and each chunk walked
# whole, by its byte range (start, chunk end, walk limit): what the walk of a chunk depends on.
_WALKS: OrderedDict[str, tuple[Signature, dict[tuple[int, int, int], _Walked]]] = OrderedDict()
_WALKS_LOCK = threading.Lock()


def signature(stat: os.stat_result) -> Signature:
    """Device, inode, size, modification and change times: a file rewritten in place changes
    its change time (``st_ctime_ns``, which ``os.utime`` cannot set back) even when its size
    and modification time are put back."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def forget() -> None:
    """Drop every walk kept in this process (a benchmark timing the walk itself)."""
    with _WALKS_LOCK:
        _WALKS.clear()


def _kept(key: str, now: Signature) -> dict[tuple[int, int, int], _Walked]:
    """The chunks walked in this process while the file had signature ``now`` (none after
    any change: a walk of other bytes never vouches for these)."""
    with _WALKS_LOCK:
        entry = _WALKS.get(key)
        if entry is None or entry[0] != now:
            return {}
        _WALKS.move_to_end(key)
        return dict(entry[1])


def _keep(
    key: str, before: Signature, after: Signature, walked: dict[tuple[int, int, int], _Walked]
) -> None:
    """Keep the chunks walked when the file held still from the walk's start to its end."""
    if before != after:
        return
    with _WALKS_LOCK:
        entry = _WALKS.get(key)
        chunks = dict(entry[1]) if entry is not None and entry[0] == before else {}
        chunks.update(walked)
        _WALKS[key] = (before, chunks)
        _WALKS.move_to_end(key)
        while len(_WALKS) > _KEPT_FILES:
            _WALKS.popitem(last=False)


def _read_header(data: bytes) -> tuple[dict[int, int], int]:
    """A PageHeader's type and sizes (fields 1-3), every other field skipped; and its length.

    ``_Short`` when the window ends inside it (or a string or container is longer than the
    window: read a larger one), PageError when it is not a header (a wrong type, nested past
    ``_MAX_DEPTH``, a field id or size beyond its width)."""
    fields, length, _ = _read_within(data, len(data) + 1)
    return fields, length


def _read_within(data: bytes, budget: int) -> tuple[dict[int, int], int, int]:
    """``_read_header``'s fields and length, and what the header costs the walk: its bytes but
    for strings and runs of fixed-width values passed in one step, each counted as
    ``_SKIP_COST`` bytes. ``_OverBudget`` as soon as that cost passes ``budget``; ``_Short``
    with the number of bytes stepped through when the window ends first (``needed``: the
    window a string or container longer than this one needs, when known)."""
    # how far the reader may step: the budget plus the bytes passed unread
    room = thrift_compact.Budget(budget)
    try:
        fields, length = _fields(data, room)
    except thrift_compact.Cut as cut:
        short = _Short(cut.at - (room.room - budget))
        short.needed = cut.needed
        raise short from None
    except thrift_compact.Short:
        if room.room < len(data):
            raise _OverBudget from None
        raise _Short(len(data) - (room.room - budget)) from None
    except thrift_compact.UnknownType as err:
        raise PageError(str(err)) from None
    except thrift_compact.Unreadable as err:
        raise PageError(f"unreadable page header ({err})") from None
    cost = length - (room.room - budget)
    if cost > budget:  # the reader may step a varint (10 bytes) past its room before it checks
        raise _OverBudget
    return fields, length, cost


def _fields(data: bytes, room: thrift_compact.Budget) -> tuple[dict[int, int], int]:
    """The header's fields 1-3 read, every other one skipped (``pipeline.thrift_compact``)."""
    fields: dict[int, int] = {}
    n = min(len(data), room.room)
    i = last = 0
    varint = thrift_compact.varint
    while True:
        if i >= n:
            raise thrift_compact.Short(i)
        byte = data[i]
        i += 1
        kind = byte & 0x0F
        if kind == 0:
            return fields, i
        if byte < 0x10:  # the id in full: a zigzag varint
            zigzag, i = varint(data, i)
            field = (zigzag >> 1) ^ -(zigzag & 1)
        else:
            field = last + (byte >> 4)
        last = field
        if kind > 13:
            raise thrift_compact.unknown(kind, i)
        # Arrow's reader (Thrift's C++) keeps a field id's low 16 bits and an i32's low 32;
        # Python's keeps every bit: beyond those widths the two read other fields, sizes
        # and page ends (no writer makes them).
        if not _I16[0] <= field <= _I16[1]:
            raise PageError(f"field id {field} beyond 16 bits")
        if field in _SIZES and kind == thrift_compact.I32:
            zigzag, i = varint(data, i)
            fields[field] = (zigzag >> 1) ^ -(zigzag & 1)
            if not _I32[0] <= fields[field] <= _I32[1]:
                raise PageError(f"field {field}'s i32 {fields[field]} beyond 32 bits")
        elif kind not in thrift_compact.BOOLS:
            i = thrift_compact.skip(data, i, kind, _MAX_DEPTH, room)
            n = min(len(data), room.room)


class _Window:
    """Buffered reads of the file: consecutive headers come out of one read."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.start = 0
        self.data = b""

    def bytes_at(self, offset: int, count: int) -> bytes:
        if not self.start <= offset or offset + count > self.start + len(self.data):
            self.stream.seek(offset)
            self.start, self.data = offset, self.stream.read(max(count, 2**20))
        return self.data[offset - self.start : offset - self.start + count]


def _header(window: _Window, offset: int, end: int, budget: int) -> tuple[int, int, int, int, int]:
    """(page type, uncompressed size, compressed size, header bytes, cost) of the page at
    offset: its cost (``_read_within``) counts the bytes stepped through by each read of a
    window too short for it; ``_OverBudget`` as soon as that passes ``budget``. The window
    grows 4 times, or to what a string needs (so the bytes copied into windows stay within a
    few times the header's)."""
    size = 4096
    spent = 0
    while True:
        count = min(size, end - offset)
        try:
            fields, length, cost = _read_within(window.bytes_at(offset, count), budget - spent)
        except _Short as short:
            spent += short.stepped
            if spent > budget:
                raise _OverBudget from None
            if size >= _MAX_HEADER or offset + size >= end or short.needed > _MAX_HEADER:
                raise PageError("page header cut off") from None
            size = min(max(size * 4, short.needed), _MAX_HEADER)
            continue
        kind, uncompressed, compressed = (fields.get(i) for i in (1, 2, 3))
        if kind is None or uncompressed is None or compressed is None:
            raise PageError("page header without its type or sizes")
        if uncompressed < 0 or compressed < 0:
            raise PageError("negative page size")
        return kind, uncompressed, compressed, length, spent + cost


def refuse_many_chunks(path: Path, meta: Any, max_pages: int) -> None:
    """PageLimit when the footer declares more column chunks (row groups x columns) than
    ``max_pages``: each is read as one page at least, by the walk and by Arrow, and the
    footer's own checks loop over them too (call it first)."""
    chunks = meta.num_row_groups * meta.num_columns
    if chunks > max_pages:
        msg = (
            f"{path}: the Parquet footer declares {chunks:,} column chunks ({meta.num_row_groups:,}"
            f" row groups x {meta.num_columns:,} columns), each read as one page at least: more "
            f"than the {max_pages:,} pages a file may hold ([data].max_pages); refused before "
            "reading"
        )
        raise PageLimit(msg)


@dataclass
class _Walk:
    """What a walk has read so far: pages and header bytes, against the file's bounds."""

    path: Path
    max_pages: int
    count: int = 0
    budget: int = 0  # header bytes left to step through

    def take(self, window: _Window, walked: _Walked) -> bool:
        """Count a chunk walked before when it fits in what is left of both bounds and the
        bytes its walk read are the same now (read again and digested: the walk's result
        follows from them alone)."""
        if self.count + walked.pages > self.max_pages or walked.header_cost > self.budget:
            return False
        digest = hashlib.blake2b(digest_size=32)
        regions = walked.regions
        for i in range(0, len(regions), 2):
            digest.update(window.bytes_at(regions[i], regions[i + 1]))
        if digest.digest() != walked.digest:
            return False
        self.count += walked.pages
        self.budget -= walked.header_cost
        return True

    def chunk(
        self, window: _Window, where: tuple[str, int], start: int, end: int, limit: int
    ) -> _Walked:
        """Walk one column chunk's headers from ``start`` while they start before ``limit``."""
        name, group = where
        total = largest = dictionary = pages = header_bytes = header_cost = 0
        regions = array("q")
        digest = hashlib.blake2b(digest_size=32)
        offset = start
        while offset < limit:
            try:
                kind, uncompressed, compressed, length, cost = _header(
                    window, offset, limit, self.budget
                )
            except _OverBudget:
                total_bytes = self.max_pages * HEADER_BYTES_PER_PAGE
                msg = (
                    f"{self.path}: Parquet page headers past {total_bytes:,} bytes stepped "
                    f"through when the walk stopped (column '{name}' in row group {group}, "
                    f"byte {offset}, {self.count:,} pages read), more than [data].max_pages "
                    f"({self.max_pages:,}) x {HEADER_BYTES_PER_PAGE} bytes a file may hold (a "
                    f"string or a run of fixed-width values counts {_SKIP_COST}); refused "
                    "before decompressing"
                )
                raise PageLimit(msg) from None
            except PageError as err:
                if offset >= end:  # past the chunk: the padding held no page
                    regions.extend((offset, limit - offset))
                    digest.update(window.bytes_at(offset, limit - offset))
                    break
                where_ = f"column '{name}' in row group {group}, byte {offset}"
                raise PageError(f"{where_}: {err}") from None
            self.count += 1
            self.budget -= cost
            if self.count > self.max_pages:
                msg = (
                    f"{self.path}: {self.count:,} Parquet pages read when the walk stopped "
                    f"(column '{name}' in row group {group}, byte {offset}), more than the "
                    f"{self.max_pages:,} a file may hold ([data].max_pages); refused before "
                    "decompressing"
                )
                raise PageLimit(msg)
            header_bytes += length
            header_cost += cost
            regions.extend((offset, length))
            digest.update(window.bytes_at(offset, length))
            total += uncompressed
            pages += 1
            if kind == _DICTIONARY_PAGE:
                dictionary += uncompressed
            else:
                largest = max(largest, uncompressed)
            offset += length + compressed
        return _Walked(
            pages, header_bytes, header_cost, total, dictionary, largest, regions, digest.digest()
        )


def chunk_pages(
    path: Path, meta: Any, wanted: list[str] | None = None, *, max_pages: int
) -> list[ChunkPages]:
    """Every (wanted) column chunk's pages, from their headers: the range Arrow reads for a
    chunk starts at its dictionary (or first data) page and runs ``total_compressed_size``
    bytes, 100 more for a file whose ``created_by`` names parquet-mr; a page whose header starts
    in that range counts. PageError for a header that cannot be read there.

    PageLimit, before the walk, when the footer declares more column chunks than
    ``max_pages`` (``refuse_many_chunks``), and during it at the first page past
    ``max_pages`` (every header is read, whatever its page holds: none, one value, a
    dictionary) or the first header byte stepped through past ``max_pages x
    HEADER_BYTES_PER_PAGE`` (a string or a run of fixed-width values passed in one step counts
    ``_SKIP_COST``).

    Each file is walked once per process: a chunk walked whole before, over the same byte
    range of the same file whose ``signature`` has not changed since (taken on the open file
    before and after that walk, and again now), is counted against both bounds as it was read,
    not read again; a chunk it would take past either bound is walked, to stop where the walk
    stops. Any change to the file (its signature) drops what was kept of it."""
    refuse_many_chunks(path, meta, max_pages)
    columns = [
        i
        for i in range(meta.num_columns)
        if wanted is None or meta.schema.column(i).path.split(".", maxsplit=1)[0] in wanted
    ]
    walk = _Walk(path, max_pages, budget=max_pages * HEADER_BYTES_PER_PAGE)
    # Arrow strips the spaces around the application name of ``created_by`` before it compares
    # it with parquet-mr: any ``created_by`` naming parquet-mr, in any spelling, pads (a
    # leading space hid a page in the padding from a ``startswith`` test).
    old_writer = "parquet-mr" in str(meta.created_by or "").lower()
    found: list[ChunkPages] = []
    key = os.fspath(path.absolute())
    walked: dict[tuple[int, int, int], _Walked] = {}
    with path.open("rb") as stream:
        opened = os.fstat(stream.fileno())
        before, size = signature(opened), opened.st_size
        kept = _kept(key, before)
        window = _Window(stream)
        for group in range(meta.num_row_groups):
            row_group = meta.row_group(group)
            for index in columns:
                chunk = row_group.column(index)
                name = str(chunk.path_in_schema)
                start = chunk.data_page_offset
                dictionary = chunk.dictionary_page_offset
                if chunk.has_dictionary_page and dictionary and 0 < dictionary < start:
                    start = dictionary
                end = start + chunk.total_compressed_size
                limit = min(size, end + _PADDING) if old_writer else min(size, end)
                done = kept.get((start, end, limit))
                if done is None or not walk.take(window, done):
                    done = walk.chunk(window, (name, group), start, end, limit)
                    walked[start, end, limit] = done
                found.append(
                    ChunkPages(
                        group,
                        name,
                        done.total,
                        done.dictionary,
                        done.largest,
                        chunk.total_uncompressed_size,
                        done.pages,
                        done.header_bytes,
                        done.header_cost,
                    )
                )
        _keep(key, before, signature(os.fstat(stream.fileno())), walked)
    return found


def held_at_once(pages: list[ChunkPages]) -> dict[int, tuple[int, ChunkPages]]:
    """Per row group: the bytes decompressed at once while it is streamed (each column's
    dictionary page and its largest other page) and the column holding the most."""
    groups: dict[int, tuple[int, ChunkPages]] = {}
    for chunk in pages:
        held, top = groups.get(chunk.row_group, (0, chunk))
        if chunk.dictionary + chunk.largest > top.dictionary + top.largest:
            top = chunk
        groups[chunk.row_group] = (held + chunk.dictionary + chunk.largest, top)
    return groups
