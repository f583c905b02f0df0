"""What Arrow decompresses from a Parquet file, read off its page headers before it does.

Arrow decompresses each page whole, into a buffer of the size the page's own header declares
(``uncompressed_page_size``), before any bound on rows or decoded bytes applies: one page of a
single 300 MiB text value compresses to 10 KB and peaked at 1 GiB of memory under a 64 MiB
limit. The footer's ``total_uncompressed_size`` says the same for an honest writer, but Arrow
never compares the two: a footer rewritten to say 1,000 bytes read the same 300 MiB page.
So the page headers themselves are read here (Apache Thrift's compact protocol: the three
fields every header starts with, the others skipped), walking each column chunk over the byte
range Arrow reads for it.

Reading a header costs the same however small its page (tens of microseconds in Python's
Thrift reader, a few bytes on disk: 100,000 one-value pages are 7.5 MB, walked in 2.6 s where
Arrow reads them in 0.1 s), so the walk counts the pages and column chunks it reads and stops
at ``max_pages`` (``[data].max_pages``), naming the file, where it stopped and the count.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from thrift.protocol import TCompactProtocol
from thrift.protocol.TProtocol import TProtocolException
from thrift.Thrift import TType
from thrift.transport import TTransport

from pipeline.errors import DataError, PipelineError

_DICTIONARY_PAGE = 2  # PageHeader.type
_SIZES = (1, 2, 3)  # PageHeader's type, uncompressed_page_size, compressed_page_size (i32)
_MAX_HEADER = 16 * 2**20  # Arrow's default limit on one page header's bytes
_MAX_DEPTH = 16
_I16 = (-(2**15), 2**15 - 1)
_I32 = (-(2**31), 2**31 - 1)
_PADDING = 100  # Arrow reads this much past a chunk written by old parquet-mr (PARQUET-816)
# Header bytes the walk reads per page allowed by ``max_pages``, on average: a header's cost is
# its bytes (1-5 us each skipped, whatever they hold), and few pages can have huge headers
# (up to ``_MAX_HEADER``); pyarrow's are 20-70 bytes.
HEADER_BYTES_PER_PAGE = 128


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


class PageLimit(DataError):
    """More pages (or column chunks) than ``max_pages``: the walk stops there."""


class _OverBudget(PipelineError):  # a signal, caught in chunk_pages
    """The header does not end within the header bytes left to the walk."""


class _Short(PageError):
    """The window ended inside the header: read a larger one (caught before PageError)."""


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


def _read_header(data: bytes) -> tuple[dict[int, int], int]:
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


def _header(window: _Window, offset: int, end: int, budget: int) -> tuple[int, int, int, int]:
    """(page type, uncompressed size, compressed size, header bytes) of the page at offset;
    ``_OverBudget`` when the header does not end within ``budget`` bytes (none read past)."""
    size = 4096
    while True:
        count = min(size, end - offset)
        try:
            fields, length = _read_header(window.bytes_at(offset, min(count, budget)))
        except _Short:
            if budget < count:
                raise _OverBudget from None
            if size >= _MAX_HEADER or offset + size >= end:
                raise PageError("page header cut off") from None
            size *= 16
            continue
        kind, uncompressed, compressed = (fields.get(i) for i in (1, 2, 3))
        if kind is None or uncompressed is None or compressed is None:
            raise PageError("page header without its type or sizes")
        if uncompressed < 0 or compressed < 0:
            raise PageError("negative page size")
        return kind, uncompressed, compressed, length


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
    dictionary) or the first header byte past ``max_pages x HEADER_BYTES_PER_PAGE``."""
    refuse_many_chunks(path, meta, max_pages)
    size = path.stat().st_size
    columns = [
        i
        for i in range(meta.num_columns)
        if wanted is None or meta.schema.column(i).path.split(".", maxsplit=1)[0] in wanted
    ]
    count = 0
    budget = max_pages * HEADER_BYTES_PER_PAGE  # header bytes left to read
    # Arrow strips the spaces around the application name of ``created_by`` before it compares
    # it with parquet-mr: any ``created_by`` naming parquet-mr, in any spelling, pads (a
    # leading space hid a page in the padding from a ``startswith`` test).
    old_writer = "parquet-mr" in str(meta.created_by or "").lower()
    found: list[ChunkPages] = []
    with path.open("rb") as stream:
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
                total = largest = dict_size = pages = 0
                offset = start
                while offset < limit:
                    try:
                        kind, uncompressed, compressed, length = _header(
                            window, offset, limit, budget
                        )
                    except _OverBudget:
                        total_bytes = max_pages * HEADER_BYTES_PER_PAGE
                        msg = (
                            f"{path}: Parquet page headers past {total_bytes:,} bytes when the "
                            f"walk stopped (column '{name}' in row group {group}, byte {offset}, "
                            f"{count:,} pages read), more than [data].max_pages ({max_pages:,})"
                            f" x {HEADER_BYTES_PER_PAGE} bytes a file may hold; refused before "
                            "decompressing"
                        )
                        raise PageLimit(msg) from None
                    except PageError as err:
                        if offset >= end:
                            break  # past the chunk: the padding held no page
                        where = f"column '{name}' in row group {group}, byte {offset}"
                        raise PageError(f"{where}: {err}") from None
                    count += 1
                    budget -= length
                    if count > max_pages:
                        msg = (
                            f"{path}: {count:,} Parquet pages read when the walk stopped (column "
                            f"'{name}' in row group {group}, byte {offset}), more than the "
                            f"{max_pages:,} a file may hold ([data].max_pages); refused before "
                            "decompressing"
                        )
                        raise PageLimit(msg)
                    total += uncompressed
                    pages += 1
                    if kind == _DICTIONARY_PAGE:
                        dict_size += uncompressed
                    else:
                        largest = max(largest, uncompressed)
                    offset += length + compressed
                found.append(
                    ChunkPages(
                        group, name, total, dict_size, largest, chunk.total_uncompressed_size, pages
                    )
                )
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
