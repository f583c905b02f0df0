"""The append-only, hash-chained run history: one JSON record per line, each naming its predecessor.

Every record carries ``seq`` (its 0-based position), ``prev`` (the hash of the record before it,
64 zeros for the first) and ``hash`` (the SHA-256 of the record's canonical JSON without
``hash``). Editing a record breaks its own hash; re-hashing it breaks the next record's ``prev``;
deleting or reordering records breaks ``seq`` and ``prev``. Truncation of the tail is caught by
the sidecar ``<history>.head`` (count and head hash, rewritten atomically on every append) and,
against an attacker who rewrites both, by the head hash a signed attestation carries
(``head_hash``). Appends hold an exclusive ``fcntl`` lock on ``<history>.lock`` so that
concurrent runs never interleave or fork the chain.

A pipeline run on every commit grows the history without end, and the feedback stage verifies
it on every run. ``verify(path, resume=True)`` (the stage's) re-verifies only what was appended
since the last verification: the sidecar ``<history>.verified`` names the byte length, SHA-256,
record count and head of the prefix that last verified whole, and a prefix whose bytes still
hash the same is not parsed again. Any other change to those bytes (an edit, a bad merge, a
flipped bit) fails the digest and the whole chain is checked again. ``python -m gates history
verify`` always checks every record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_json

GENESIS = "0" * 64
HISTORY_SCHEMA_VERSION = 1
# The tail read that finds the last record; records are a few KiB, so this rarely grows.
_TAIL = 64 * 1024


class HistoryError(PipelineError):
    """The history cannot be read or appended to (unreadable, locked out, malformed)."""


@dataclass(frozen=True)
class HistoryProblem:
    """One way the history fails verification: the line (1-based) and what is wrong there."""

    line: int
    message: str


@dataclass(frozen=True)
class Verification:
    """The result of ``verify``: how many records were read, the head, and every problem."""

    path: Path
    records: int
    head: str
    problems: tuple[HistoryProblem, ...]

    def __bool__(self) -> bool:
        return not self.problems


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted, compact, ASCII-only JSON without ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def encode(record: dict[str, Any]) -> bytes:
    """A record's line in the file: its canonical form with ``hash`` last, and a newline."""
    return canonical(record)[:-1] + b',"hash":"' + str(record["hash"]).encode() + b'"}\n'


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical form."""
    return hashlib.sha256(canonical(record)).hexdigest()


def head_path(path: Path) -> Path:
    """The sidecar that holds the record count and head hash: ``<history>.head``."""
    return path.with_name(path.name + ".head")


def checkpoint_path(path: Path) -> Path:
    """The sidecar naming the prefix that last verified whole: ``<history>.verified``."""
    return path.with_name(path.name + ".verified")


def lock_path(path: Path) -> Path:
    """The file appends lock: ``<history>.lock`` (the history itself is only ever appended)."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the history's exclusive lock (blocking) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        msg = f"{lock_path(path)}: cannot open the history lock: {err.strerror}"
        raise HistoryError(msg) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _last_line(path: Path) -> bytes | None:
    """The last complete line of the file, or None when it is empty or absent."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if not path.is_file():
        raise _unreadable(path, IsADirectoryError(21, "not a regular file"))
    if size == 0:
        return None
    with path.open("rb") as handle:
        span = _TAIL
        while True:
            start = max(0, size - span)
            handle.seek(start)
            chunk = handle.read()
            if not chunk.endswith(b"\n"):
                msg = f"{path}: the last record is incomplete (no final newline); run: python -m gates history verify"
                raise HistoryError(msg)
            body = chunk[:-1]
            cut = body.rfind(b"\n")
            if cut >= 0 or start == 0:
                return body[cut + 1 :]
            span *= 4


def _parse(line: bytes, *, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        msg = f"{path}:{number}: not a JSON record ({err})"
        raise HistoryError(msg) from None
    if not isinstance(record, dict):
        msg = f"{path}:{number}: expected a JSON object, found {type(record).__name__}"
        raise HistoryError(msg)
    return record


def _unreadable(path: Path, err: OSError) -> HistoryError:
    return HistoryError(
        f"{path}: cannot read the run history ({err.strerror}); check [feedback].history"
    )


def head_hash(path: Path) -> str:
    """The hash of the newest record (64 zeros for an empty or absent history).

    This is what a signed attestation records so that a later rewrite of the whole file, sidecar
    included, is still detected.
    """
    line = _last_line(path)
    if line is None:
        return GENESIS
    record = _parse(line, path=path, number=0)
    value = record.get("hash")
    if not isinstance(value, str):
        msg = f"{path}: the last record has no hash"
        raise HistoryError(msg)
    return value


def append(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Append one run record under the lock; returns the record as written (with seq/prev/hash)."""
    reserved = {"seq", "prev", "hash", "schema_version"} & payload.keys()
    if reserved:
        msg = f"run record must not set {sorted(reserved)}: the history assigns them"
        raise HistoryError(msg)
    with locked(path):
        line = _last_line(path)
        if line is None:
            seq, prev = 0, GENESIS
        else:
            last = _parse(line, path=path, number=0)
            try:
                seq, prev = int(last["seq"]) + 1, str(last["hash"])
            except (KeyError, TypeError, ValueError):
                msg = (
                    f"{path}: the last record has no seq/hash; run: python -m gates history verify"
                )
                raise HistoryError(msg) from None
        record = {"schema_version": HISTORY_SCHEMA_VERSION, **payload, "seq": seq, "prev": prev}
        record["hash"] = record_hash(record)
        data = encode(record)
        # O_APPEND: the write lands at the end even if another writer ignored the lock.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        atomic_write_json(head_path(path), {"count": seq + 1, "head": record["hash"]})
    return record


def records(path: Path, *, last: int | None = None) -> list[dict[str, Any]]:
    """Every record (or the ``last`` n), oldest first; absent is empty; malformed lines are errors."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise _unreadable(path, err) from None
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    first = 0 if last is None else max(0, len(lines) - last)
    return [
        _parse(line, path=path, number=n) for n, line in enumerate(lines[first:], start=first + 1)
    ]


@dataclass(frozen=True)
class _Checkpoint:
    size: int
    records: int
    head: str


def _read_checkpoint(path: Path, raw: bytes) -> _Checkpoint | None:
    """The verified prefix, if its bytes are still the start of ``raw``; else None."""
    try:
        document = json.loads(checkpoint_path(path).read_text(encoding="utf-8"))
        size, digest = int(document["bytes"]), str(document["sha256"])
        found = _Checkpoint(size=size, records=int(document["records"]), head=str(document["head"]))
        prefix = raw[:size]
        if not 0 < size <= len(raw) or prefix[-1:] != b"\n" or found.records < 1:
            return None
        # The head it names must be the last verified record's own, at its place in the chain.
        last = json.loads(prefix[prefix.rfind(b"\n", 0, size - 1) + 1 : size - 1])
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError, OverflowError):
        return None  # JSONDecodeError is a ValueError; OverflowError: "bytes": Infinity
    except RecursionError:
        return None  # a last line nested too deeply to parse
    trusted = (
        isinstance(last, dict)
        and last.get("hash") == found.head
        and last.get("seq") == found.records - 1
        and prefix.count(b"\n") == found.records
        and hashlib.sha256(prefix).hexdigest() == digest
    )
    return found if trusted else None


def _write_checkpoint(path: Path, raw: bytes, *, records: int, head: str) -> None:
    document = {
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "records": records,
        "head": head,
    }
    with contextlib.suppress(OSError):  # only speed is lost: the next run verifies it all
        atomic_write_json(checkpoint_path(path), document)


def verify(path: Path, *, expect_head: str | None = None, resume: bool = False) -> Verification:
    """Check the chain, the sidecar, and optionally an expected head hash.

    ``resume=True`` starts after the prefix ``<history>.verified`` vouches for (its bytes
    unchanged) and, when everything verifies, moves that checkpoint to the end.
    """
    problems: list[HistoryProblem] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
        if head_path(path).exists():
            problems.append(
                HistoryProblem(0, "the history is missing but its .head sidecar exists")
            )
    except OSError as err:
        raise _unreadable(path, err) from None
    if raw and not raw.endswith(b"\n"):
        problems.append(HistoryProblem(raw.count(b"\n") + 1, "incomplete last record (truncated)"))
    checkpoint = _read_checkpoint(path, raw) if resume else None
    offset = checkpoint.size if checkpoint is not None else 0
    lines = raw[offset:].split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    prev, count = (checkpoint.head, checkpoint.records) if checkpoint else (GENESIS, 0)
    for number, line in enumerate(lines, start=count + 1):
        try:
            record = _parse(line, path=path, number=number)
        except HistoryError as err:
            problems.append(HistoryProblem(number, str(err)))
            prev = ""
            count += 1
            continue
        count += 1
        if record.get("seq") != number - 1:
            problems.append(
                HistoryProblem(
                    number,
                    f"seq {record.get('seq')!r}, expected {number - 1} (a record was deleted, "
                    "inserted or moved)",
                )
            )
        if prev and record.get("prev") != prev:
            problems.append(
                HistoryProblem(
                    number,
                    f"prev {str(record.get('prev'))[:12]}... does not match the previous record's "
                    f"hash {prev[:12]}... (edited, deleted or reordered)",
                )
            )
        actual = record_hash(record)
        if record.get("hash") != actual:
            problems.append(
                HistoryProblem(
                    number,
                    f"hash {str(record.get('hash'))[:12]}... does not match the record's content "
                    f"{actual[:12]}... (edited)",
                )
            )
        prev = str(record.get("hash", ""))
    head = prev if count else GENESIS
    problems.extend(_check_sidecar(path, count=count, head=head, empty=not count))
    if expect_head is not None and expect_head != head:
        problems.append(
            HistoryProblem(
                count,
                f"head {head[:12]}... differs from the expected {expect_head[:12]}... "
                "(records were removed or rewritten after the attestation)",
            )
        )
    if resume and not problems and count and (checkpoint is None or checkpoint.size < len(raw)):
        _write_checkpoint(path, raw, records=count, head=head)
    return Verification(path=path, records=count, head=head, problems=tuple(problems))


def _check_sidecar(path: Path, *, count: int, head: str, empty: bool) -> list[HistoryProblem]:
    sidecar = head_path(path)
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
        expected_count, expected_head = int(document["count"]), str(document["head"])
    except FileNotFoundError:
        if empty:
            return []
        return [HistoryProblem(0, f"{sidecar.name} is missing: cannot rule out truncation")]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        return [HistoryProblem(0, f"{sidecar.name} is unparsable ({type(err).__name__})")]
    found = []
    if expected_count != count:
        what = "truncated" if count < expected_count else "records appended without the lock"
        found.append(
            HistoryProblem(count, f"{count} records, {sidecar.name} says {expected_count} ({what})")
        )
    elif expected_head != head:
        found.append(
            HistoryProblem(
                count,
                f"head {head[:12]}... differs from {sidecar.name}'s {expected_head[:12]}... "
                "(the last record was rewritten)",
            )
        )
    return found
