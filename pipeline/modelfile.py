"""What a model file may be: exactly the zip archive skops writes, with no byte unaccounted for.

A file can be two formats at once. A pickle stream followed by a zip archive is a valid zip to
every reader that finds the archive from its end (``zipfile``, skops) and a pickle to every
reader that starts at byte 0 (``pickle``, ``joblib``, ``torch``); bytes after the end record,
an archive comment, gaps between entries, extra fields and entries skops never reads can carry a
payload just as well. This module accepts a file only when every byte belongs to the layout
skops writes, checked before skops opens it:

- the first local file header at offset 0; one end-of-central-directory (EOCD) record in the
  last 22 bytes, no archive comment, no zip64 records, one disk;
- local entries back to back from offset 0, then the central directory, then the EOCD: every
  entry's local header agrees with its central directory record (name, flags, method, CRC,
  sizes), stored (uncompressed), unencrypted, with no extra fields or entry comments;
- unique names: ``schema.json`` once, and arrays named ``<digits>.npy``, each referenced by the
  schema, each a plain numpy array (no Python objects, nothing after its data).

That is every entry the reviewed families write with the locked skops (0.16); skops also writes
``.bin`` (bytes) and ``.npz`` (sparse matrices) entries, which none of them needs: a family that
does must have that layout reviewed and added here. ``save_model`` checks its own output, so a
skops upgrade that changes the layout fails at training, naming what changed.

The standard library's ``zipfile`` parses the archive; the offsets are checked on top of it
with the public ``ZipInfo`` fields and the fixed-size records the zip format defines
(APPNOTE.TXT 4.3.7 local header, 4.3.12 central directory header, 4.3.16 EOCD).
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import ModelError

SCHEMA_ENTRY = "schema.json"
# skops names a saved numpy array after the id() of the object: decimal digits, ".npy".
_ARRAY_ENTRY = re.compile(r"[0-9]{1,20}\.npy")

_LOCAL_SIGNATURE = b"PK\x03\x04"
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_RECORD_SIGNATURE = b"PK\x06\x06"
# signature, disk, disk with the CD, entries on this disk, entries, CD size, CD offset, comment.
_EOCD = struct.Struct("<4sHHHHIIH")
# signature, version, flags, method, time, date, CRC-32, compressed, uncompressed, name, extra.
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL_FIXED = 46
_ZIP64_LOCATOR_SIZE = 20
# Bit 11 (names are UTF-8) is the only flag skops' zipfile may set; skops names are ASCII.
_ALLOWED_FLAGS = 0x0800

# Pickle protocol 2+ opens with PROTO (0x80); joblib's default zlib compression with 0x78.
_PICKLE_PROTO = b"\x80"
_ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


def check_model_file(payload: bytes, path: Path) -> None:
    """Refuse (ModelError naming ``path``) any bytes that are not exactly a skops archive."""
    _refuse = _Refusal(path)
    eocd_at = _check_ends(payload, _refuse)
    cd_offset = _check_eocd(payload, eocd_at, _refuse)
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except (zipfile.BadZipFile, ValueError, OverflowError, NotImplementedError) as err:
        raise _refuse(f"not a readable zip archive ({type(err).__name__}: {err})") from None
    with archive:
        infos = archive.infolist()
        _check_directory(payload, infos, eocd_at, cd_offset, _refuse)
        _check_names(infos, _refuse)
        _check_local_headers(payload, infos, cd_offset, _refuse)
        _check_contents(archive, infos, _refuse)


class _Refusal:
    """Builds the one message format: ``<file>: refused: <what was found>``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, found: str) -> ModelError:
        return ModelError(f"{self.path}: refused: {found}")


def _check_ends(payload: bytes, refuse: _Refusal) -> int:
    """The file starts with a local header and ends with a comment-less EOCD; its offset."""
    if not payload:
        raise refuse("the file is empty; expected a skops file (a zip archive)")
    first = payload.find(_LOCAL_SIGNATURE)
    if payload[:1] == _PICKLE_PROTO or payload[:2] in _ZLIB_HEADERS:
        # A pickle (or a compressed joblib dump) runs code when loaded: refuse it by its
        # first bytes, before anything could deserialize it.
        where = f" ({first} bytes before the first zip entry)" if first > 0 else ""
        raise refuse(f"a pickle/joblib stream{where}; this loader never unpickles")
    if first < 0:
        raise refuse("expected a skops file (a zip archive), found no zip entry")
    if first > 0:
        raise refuse(f"{first} bytes before the first zip entry (a zip must start at offset 0)")
    eocd_at = len(payload) - _EOCD.size
    if eocd_at < 0 or payload[eocd_at : eocd_at + 4] != _EOCD_SIGNATURE:
        last = payload.rfind(_EOCD_SIGNATURE)
        if last < 0 or last + _EOCD.size > len(payload):
            raise refuse("no end-of-central-directory record (not a whole zip archive: truncated?)")
        comment = _EOCD.unpack_from(payload, last)[7]
        trailing = len(payload) - last - _EOCD.size
        if comment and comment == trailing:
            raise refuse(
                f"an archive comment of {comment} bytes after the end-of-central-directory "
                "record (skops writes none)"
            )
        raise refuse(f"{trailing} bytes after the end-of-central-directory record")
    return eocd_at


def _check_eocd(payload: bytes, eocd_at: int, refuse: _Refusal) -> int:
    """One disk, no zip64, the central directory right before the EOCD; its offset."""
    _, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = _EOCD.unpack_from(
        payload, eocd_at
    )
    if comment:
        # Only reachable when the comment length field lies (the comment is not in the file).
        raise refuse(f"the end-of-central-directory record claims a {comment}-byte comment")
    locator_at = eocd_at - _ZIP64_LOCATOR_SIZE
    zip64_markers = 0xFFFF in (disk, cd_disk, on_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset)
    if zip64_markers or (
        locator_at >= 0 and payload[locator_at : locator_at + 4] == _ZIP64_LOCATOR_SIGNATURE
    ):
        raise refuse("zip64 end records (skops writes plain zip; they can hide prepended bytes)")
    if disk or cd_disk or on_disk != total:
        raise refuse(f"a multi-disk archive (disk {disk}, central directory on disk {cd_disk})")
    if cd_offset + cd_size != eocd_at:
        raise refuse(
            f"the central directory (offset {cd_offset}, {cd_size} bytes) does not end where "
            f"the end-of-central-directory record starts (offset {eocd_at}): "
            f"{eocd_at - cd_offset - cd_size} bytes unaccounted for"
        )
    if total == 0:
        raise refuse(f"an empty zip archive; expected {SCHEMA_ENTRY} and its arrays")
    return int(cd_offset)


def _check_directory(
    payload: bytes, infos: list[zipfile.ZipInfo], eocd_at: int, cd_offset: int, refuse: _Refusal
) -> None:
    """Every central directory record is accounted for, with nothing beside the entries."""
    total = _EOCD.unpack_from(payload, eocd_at)[4]
    if len(infos) != total:
        raise refuse(
            f"the end-of-central-directory record counts {total} entries, "
            f"the central directory holds {len(infos)}"
        )
    size = 0
    for info in infos:
        if info.extra or info.comment:
            raise refuse(
                f"entry {info.orig_filename!r} carries {len(info.extra)} bytes of extra fields "
                f"and a {len(info.comment)}-byte comment in the central directory (skops writes none)"
            )
        size += _CENTRAL_FIXED + len(_name_bytes(info))
    if cd_offset + size != eocd_at:
        raise refuse(
            f"the central directory holds {eocd_at - cd_offset - size} bytes beyond its "
            f"{len(infos)} records"
        )


def _check_names(infos: list[zipfile.ZipInfo], refuse: _Refusal) -> None:
    names = Counter(info.orig_filename for info in infos)
    for name, count in names.items():
        if count > 1:
            raise refuse(f"entry {name!r} appears {count} times")
        if name != SCHEMA_ENTRY and not _ARRAY_ENTRY.fullmatch(name):
            raise refuse(
                f"entry {name!r} is outside the skops layout ({SCHEMA_ENTRY} and <id>.npy arrays)"
            )
    if SCHEMA_ENTRY not in names:
        raise refuse(f"no {SCHEMA_ENTRY} entry")


def _check_local_headers(
    payload: bytes, infos: list[zipfile.ZipInfo], cd_offset: int, refuse: _Refusal
) -> None:
    """Local entries back to back from offset 0 to the central directory, matching it."""
    cursor = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        name = info.orig_filename
        if info.header_offset != cursor:
            gap = info.header_offset - cursor
            where = "the start of the file" if cursor == 0 else "the previous entry"
            raise refuse(
                f"{gap} bytes between {where} and the local header of entry {name!r} "
                f"(offset {info.header_offset})"
                if gap > 0
                else f"entry {name!r} overlaps {where} (offset {info.header_offset})"
            )
        if info.flag_bits & ~_ALLOWED_FLAGS:
            raise refuse(
                f"entry {name!r} has flags {info.flag_bits:#06x} (encrypted or with a data "
                "descriptor; skops writes neither)"
            )
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise refuse(
                f"entry {name!r} is compressed (method {info.compress_type}); skops writes "
                "stored entries"
            )
        if cursor + _LOCAL.size > cd_offset:
            raise refuse(f"the local header of entry {name!r} runs into the central directory")
        fields = _LOCAL.unpack_from(payload, cursor)
        signature, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = fields
        raw_name = payload[cursor + _LOCAL.size : cursor + _LOCAL.size + name_len]
        mismatch = [
            what
            for what, local, central in (
                ("signature", signature, _LOCAL_SIGNATURE),
                ("name", raw_name, _name_bytes(info)),
                ("flags", flags, info.flag_bits),
                ("method", method, info.compress_type),
                ("CRC-32", crc, info.CRC),
                ("compressed size", csize, info.compress_size),
                ("size", usize, info.file_size),
            )
            if local != central
        ]
        if mismatch:
            raise refuse(
                f"the local header at offset {cursor} does not match the central directory "
                f"record of entry {name!r}: {', '.join(mismatch)} differ"
            )
        if extra_len:
            raise refuse(
                f"entry {name!r} carries {extra_len} bytes of extra fields in its local header "
                "(skops writes none)"
            )
        cursor += _LOCAL.size + name_len + csize
    if cursor != cd_offset:
        raise refuse(
            f"{cd_offset - cursor} bytes between the last entry and the central directory "
            f"(offset {cd_offset})"
            if cursor < cd_offset
            else "the last entry runs into the central directory"
        )


def _check_contents(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], refuse: _Refusal
) -> None:
    """schema.json is a JSON object that references every array; each array is plain data."""
    try:
        schema = json.loads(archive.read(SCHEMA_ENTRY).decode("utf-8"))
    except (ValueError, RecursionError, zipfile.BadZipFile) as err:
        raise refuse(f"{SCHEMA_ENTRY} is not JSON ({type(err).__name__}: {err})") from None
    if not isinstance(schema, dict):
        raise refuse(f"{SCHEMA_ENTRY} is not a JSON object")
    referenced = set(_referenced_files(schema))
    for info in infos:
        name = info.orig_filename
        if name == SCHEMA_ENTRY:
            continue
        if name not in referenced:
            raise refuse(f"entry {name!r} is never referenced by {SCHEMA_ENTRY}")
        try:
            data = archive.read(info)
        except zipfile.BadZipFile as err:
            raise refuse(f"entry {name!r}: {err}") from None
        problem = _array_problem(data)
        if problem:
            raise refuse(f"entry {name!r} {problem}")
    missing = sorted(referenced - {info.orig_filename for info in infos})
    if missing:
        raise refuse(f"{SCHEMA_ENTRY} references entries the archive lacks: {missing}")


def _referenced_files(schema: dict[str, Any]) -> Iterator[str]:
    """Every ``"file"`` a schema node names, walked without recursion (no depth limit to hit)."""
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                yield node["file"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _array_problem(data: bytes) -> str | None:
    """Why ``data`` is not one plain ``.npy`` array with nothing after it; None when it is."""
    from numpy.lib import format as npy  # noqa: PLC0415 - numpy only once an archive got this far

    stream = io.BytesIO(data)
    try:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(stream)
        else:
            return f"is a .npy file of format version {version}, expected 1.0 or 2.0"
    except Exception as err:  # numpy's header parser raises several types; any is a refusal
        return f"is not a numpy array file ({type(err).__name__}: {err})"
    if dtype.hasobject:
        return f"holds Python objects (dtype {dtype}): a pickle, which this loader never reads"
    expected = stream.tell() + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        excess = len(data) - expected
        return (
            f"has {excess} bytes after its array data"
            if excess > 0
            else f"is truncated: {-excess} bytes of array data missing"
        )
    return None


def _name_bytes(info: zipfile.ZipInfo) -> bytes:
    encoding = "utf-8" if info.flag_bits & _ALLOWED_FLAGS else "cp437"
    return info.orig_filename.encode(encoding)
