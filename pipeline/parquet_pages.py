"""What Arrow decompresses from a Parquet file, read off its page headers before it does.

Arrow decompresses each page whole, into a buffer of the size the page's own header declares
(``uncompressed_page_size``), before any bound on rows or decoded bytes applies: one page of a
single 300 MiB text value compresses to 10 KB and peaked at 1 GiB of memory under a 64 MiB
limit. The footer's ``total_uncompressed_size`` says the same for an honest writer, but Arrow
never compares the two: a footer rewritten to say 1,000 bytes read the same 300 MiB page.
So the page headers themselves are read here (Thrift compact protocol, the fields every
header starts with), walking each column chunk over the byte range Arrow reads for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import DataError

# Thrift compact types (``TCompactProtocol``): the wire type of each field.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = range(9)
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12
_DICTIONARY_PAGE = 2  # PageHeader.type
_MAX_HEADER = 16 * 2**20  # Arrow's default limit on one page header's bytes
_MAX_DEPTH = 16
_PADDING = 100  # Arrow reads this much past a chunk written by old parquet-mr (PARQUET-816)


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


class _Reader:
    """A Thrift compact reader over a byte window (``_Short`` when it runs out)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise _Short
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise PageError("varint longer than 64 bits")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, count: int) -> None:
        if count < 0:
            raise PageError("negative length")
        if self.at + count > len(self.data):
            raise _Short
        self.at += count

    def value(self, kind: int, depth: int) -> int | None:
        """Read one value of a wire type; an integer's value, None for the others."""
        if depth > _MAX_DEPTH:
            raise PageError("nested too deeply")
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _BYTE:
            self.byte()
        elif kind == _DOUBLE:
            self.skip(8)
        elif kind == _BINARY:
            self.skip(self.varint())
        elif kind in (_LIST, _SET, _MAP):
            self.container(kind, depth)
        elif kind == _STRUCT:
            self.struct(depth + 1)
        elif kind not in (_TRUE, _FALSE):
            raise PageError(f"unknown Thrift type {kind}")
        return None

    def container(self, kind: int, depth: int) -> None:
        """A list, set or map: each element takes at least a byte (a bool in one is a byte of
        its own), so a declared size past the bytes at hand ends in ``_Short``."""
        if kind == _MAP:
            size = self.varint()
            types = self.byte() if size else 0
            kinds: tuple[int, ...] = (types >> 4, types & 0x0F)
        else:
            head = self.byte()
            size = head >> 4 if head >> 4 != 15 else self.varint()
            kinds = (head & 0x0F,)
        if size * len(kinds) > len(self.data) - self.at:
            raise _Short
        for index in range(size * len(kinds)):
            element = kinds[index % len(kinds)]
            if element in (_TRUE, _FALSE):
                self.byte()
            else:
                self.value(element, depth + 1)

    def struct(self, depth: int) -> dict[int, int | None]:
        """Read a struct; its fields by id (integers with their value)."""
        fields: dict[int, int | None] = {}
        last = 0
        while True:
            head = self.byte()
            if head == _STOP:
                return fields
            delta, kind = head >> 4, head & 0x0F
            field_id = last + delta if delta else self.zigzag()
            fields[field_id] = self.value(kind, depth)
            last = field_id


class _Short(PageError):
    """The window ended inside the header: read a larger one (caught before PageError)."""


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


def _header(window: _Window, offset: int, end: int) -> tuple[int, int, int, int]:
    """(page type, uncompressed size, compressed size, header bytes) of the page at offset."""
    size = 4096
    while True:
        reader = _Reader(window.bytes_at(offset, min(size, end - offset)))
        try:
            fields = reader.struct(0)
        except _Short:
            if size >= _MAX_HEADER or offset + size >= end:
                raise PageError("page header cut off") from None
            size *= 16
            continue
        kind, uncompressed, compressed = (fields.get(i) for i in (1, 2, 3))
        if kind is None or uncompressed is None or compressed is None:
            raise PageError("page header without its type or sizes")
        if uncompressed < 0 or compressed < 0:
            raise PageError("negative page size")
        return kind, uncompressed, compressed, reader.at


def chunk_pages(path: Path, meta: Any, wanted: list[str] | None = None) -> list[ChunkPages]:
    """Every (wanted) column chunk's pages, from their headers: the range Arrow reads for a
    chunk starts at its dictionary (or first data) page and runs ``total_compressed_size``
    bytes, 100 more for a file that says old parquet-mr wrote it; a page whose header starts
    in that range counts. PageError for a header that cannot be read there."""
    size = path.stat().st_size
    old_writer = str(meta.created_by or "").startswith("parquet-mr")
    found: list[ChunkPages] = []
    with path.open("rb") as stream:
        window = _Window(stream)
        for group in range(meta.num_row_groups):
            row_group = meta.row_group(group)
            for index in range(meta.num_columns):
                chunk = row_group.column(index)
                name = str(chunk.path_in_schema)
                if wanted is not None and name.split(".", maxsplit=1)[0] not in wanted:
                    continue
                start = chunk.data_page_offset
                dictionary = chunk.dictionary_page_offset
                if chunk.has_dictionary_page and dictionary and 0 < dictionary < start:
                    start = dictionary
                end = start + chunk.total_compressed_size
                limit = min(size, end + _PADDING) if old_writer else min(size, end)
                total = largest = dict_size = 0
                offset = start
                while offset < limit:
                    try:
                        kind, uncompressed, compressed, length = _header(window, offset, limit)
                    except PageError as err:
                        if offset >= end:
                            break  # past the chunk: the padding held no page
                        where = f"column '{name}' in row group {group}, byte {offset}"
                        raise PageError(f"{where}: {err}") from None
                    total += uncompressed
                    if kind == _DICTIONARY_PAGE:
                        dict_size += uncompressed
                    else:
                        largest = max(largest, uncompressed)
                    offset += length + compressed
                found.append(
                    ChunkPages(
                        group, name, total, dict_size, largest, chunk.total_uncompressed_size
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
