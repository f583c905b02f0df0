"""The append-only, hash-chained run history: one JSON record per line, each naming its predecessor.

Every record carries ``seq`` (its 0-based position), ``prev`` (the hash of the record before it,
64 zeros for the first) and ``hash`` (the SHA-256 of the record's canonical JSON without
``hash``). Editing a record breaks its own hash; re-hashing it breaks the next record's ``prev``;
deleting or reordering records breaks ``seq`` and ``prev``. Truncation of the tail is caught by
the sidecar ``<history>.head`` (count and head hash, rewritten atomically after every append)
and, against an attacker who rewrites both, by the head hash a signed attestation carries
(``head_hash``). Appends hold an exclusive ``fcntl`` lock on ``<history>.lock`` so that
concurrent runs never interleave or fork the chain.

**Crashes.** The log is the source of truth and its newline the commit point: a record is in the
history once its whole line, final newline included, is in the file (written with ``O_APPEND``
and fsynced before anything else changes). The ``.head`` sidecar follows it. A process killed
during an append leaves one of two states, and only these are recovered:

- a torn tail: bytes after the last newline, while ``.head`` names the last complete record. They
  are not a record (whatever they hold) and the next append truncates them;
- ``.head`` one record behind: the log holds exactly one more record, intact and chained onto the
  head ``.head`` names. The next append brings the sidecar forward.

Readers (``verify``, ``records``, ``head_hash``) see the same committed records before and after
that recovery, so ``history verify`` passes on either state and reports it as pending. Anything
else (``.head`` ahead of the log, more than one record beyond it, an extra record that is edited
or not chained, a torn tail after a log that disagrees with ``.head``) is not what a crash
leaves: verification fails and appends refuse, as for any tampering.

A pipeline run on every commit grows the history without end, and the feedback stage verifies
it on every run. ``verify(path, resume=True)`` (the stage's) may skip the records that the
checkpoint ``<history>.verified`` vouches for: the byte length, SHA-256, record count and head of
the prefix that last verified whole, sealed with HMAC-SHA256 under ``GATES_HISTORY_HMAC_KEY``. A
checkpoint is trusted only when that key is set and its seal checks; its prefix must still hash
the same. Without the key no checkpoint is written or read, and the stage verifies every record,
as ``python -m gates history verify`` always does. (The history's folder may be in the
contributor's hands: an unkeyed checkpoint could be rewritten to vouch for an edited record.)

**Encryption at rest** (``[encryption]`` with ``history = true``): each line is
``{"hash", "prev", "seal", "seq"}``, where ``seal`` is the record (its canonical line) encrypted
with ``pipeline.atrest`` (AES-256-GCM, a fresh data key per record) under the name
``<history>#seq=<seq>#prev=<prev>``: the associated data binds the file, the position and the
predecessor, so a record moved, copied to another line or spliced after another chain does not
decrypt. The chain (``seq``, ``prev``, ``hash``) is over the plaintext records, exactly as
before; the line is still the commit unit (one ``O_APPEND`` write ending in the newline), so
the crash rules above hold unchanged. ``.head`` and the checkpoint name only counts and hashes
and stay plain. A plaintext record in an encrypted history, or an encrypted one read without
``[encryption]``, is refused naming the line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.errors import GatesError
from pipeline.atrest import EncryptionError, decrypt_bytes, encrypt_bytes
from pipeline.config import LoadedPolicy
from pipeline.fsio import atomic_write_json, fsync_dir, strict_json, temp_files, write_all
from pipeline.keys import KeyProvider, provider_for

GENESIS = "0" * 64
HISTORY_SCHEMA_VERSION = 1
# The secret that seals the verification checkpoint (a CI secret where the history is written).
HMAC_KEY_ENV = "GATES_HISTORY_HMAC_KEY"
# The tail read that finds the last record; records are a few KiB, so this rarely grows.
_TAIL = 64 * 1024
_VERIFY_HINT = "run: python -m gates history verify"


class HistoryError(GatesError):
    """The history cannot be read or appended to (unreadable, locked out, malformed)."""


@dataclass(frozen=True)
class HistoryProblem:
    """One way the history fails verification: the line (1-based) and what is wrong there."""

    line: int
    message: str


@dataclass(frozen=True)
class Verification:
    """The result of ``verify``: records read, the head, every problem, and pending recovery.

    ``pending`` describes what an interrupted append left (a torn tail, a ``.head`` one record
    behind) and the next append repairs; it does not fail the verification.
    """

    path: Path
    records: int
    head: str
    problems: tuple[HistoryProblem, ...]
    pending: tuple[str, ...] = ()

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


def _hash_or_none(record: dict[str, Any]) -> str | None:
    """``record_hash``, or None for content no record can hold (NaN, infinities)."""
    try:
        return record_hash(record)
    except ValueError:
        return None


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
def locked(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold the history's exclusive lock for the duration of the block.

    ``wait=False`` raises BlockingIOError at once when another process holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never through a symlink (O_CREAT would make its target, wherever it points), never a FIFO
    # or a device: the folder may be the contributor's.
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(lock_path(path), flags, 0o644)
    except OSError as err:
        raise _sidecar_refused(lock_path(path), err, "cannot open the history lock") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        msg = f"{lock_path(path)}: refused: a symlink or not a regular file"
        raise HistoryError(msg)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Tail:
    """The end of the file: its size, where the committed records end, and the last of them."""

    size: int
    end: int  # the offset just after the last newline: bytes beyond it are a torn tail
    last: bytes | None  # the last complete line without its newline; None when there is none

    @property
    def torn(self) -> int:
        return self.size - self.end


def _read_tail(path: Path) -> _Tail:
    """The committed end of the file (absent or empty: no records)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return _Tail(0, 0, None)
    if not path.is_file():
        raise _unreadable(path, IsADirectoryError(21, "not a regular file"))
    if size == 0:
        return _Tail(0, 0, None)
    try:
        with path.open("rb") as handle:
            span = _TAIL
            while True:
                start = max(0, size - span)
                handle.seek(start)
                chunk = handle.read(size - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    end = start + cut + 1
                    before = chunk.rfind(b"\n", 0, cut)
                    if before >= 0 or start == 0:
                        return _Tail(size, end, chunk[before + 1 : cut])
                elif start == 0:
                    return _Tail(size, 0, None)
                span *= 4
    except OSError as err:
        raise _unreadable(path, err) from None


@dataclass(frozen=True)
class RecordCipher:
    """Seals each record of one history at rest: AES-256-GCM, bound to file, seq and prev."""

    name: str  # the history's project-relative name
    provider: KeyProvider

    def _bound(self, seq: object, prev: object) -> str:
        return f"{self.name}#seq={seq}#prev={prev}"

    def seal(self, record: dict[str, Any]) -> bytes:
        """The line that stores ``record`` (which carries its seq, prev and hash)."""
        try:
            blob = encrypt_bytes(
                encode(record),
                name=self._bound(record["seq"], record["prev"]),
                provider=self.provider,
            )
        except EncryptionError as err:
            raise HistoryError(f"cannot encrypt the run record: {err}") from None
        outer = {
            "hash": record["hash"],
            "prev": record["prev"],
            "seal": base64.b64encode(blob).decode("ascii"),
            "seq": record["seq"],
        }
        return json.dumps(outer, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"

    def open(self, outer: dict[str, Any], *, path: Path, number: int) -> dict[str, Any]:
        """The record a sealed line holds; HistoryError naming the line when it does not open."""
        where = f"{path}:{number}"
        seq, prev, seal = outer.get("seq"), outer.get("prev"), outer.get("seal")
        if set(outer) != {"hash", "prev", "seal", "seq"} or not isinstance(seal, str):
            msg = f"{where}: refused: an encrypted record line holds exactly hash, prev, seal, seq"
            raise HistoryError(msg)
        try:
            blob = base64.b64decode(seal, validate=True)
        except (binascii.Error, ValueError):
            raise HistoryError(f"{where}: refused: the record's seal is not base64") from None
        try:
            plaintext = decrypt_bytes(blob, name=self._bound(seq, prev), provider=self.provider)
        except EncryptionError as err:
            reason = str(err).removeprefix(self._bound(seq, prev)).removeprefix(": ")
            msg = f"{where}: record {seq} {reason}"
            raise HistoryError(msg) from None
        record = _parse(plaintext.rstrip(b"\n"), path=path, number=number)
        if any(record.get(k) != outer.get(k) for k in ("seq", "prev", "hash")):
            msg = f"{where}: refused: the sealed record's seq/prev/hash differ from its line's"
            raise HistoryError(msg)
        return record


def history_cipher(policy: LoadedPolicy) -> RecordCipher | None:
    """The cipher of the policy's history: None unless ``[encryption]`` sets ``history``."""
    encryption = policy.policy.encryption
    if encryption is None or not encryption.history:
        return None
    path = policy.resolve(policy.policy.feedback.history)
    try:
        name = path.resolve().relative_to(policy.base_dir.resolve()).as_posix()
    except ValueError:
        name = path.as_posix()
    return RecordCipher(name=name, provider=provider_for(policy))


def _parse(line: bytes, *, path: Path, number: int) -> dict[str, Any]:
    try:
        # Strict: a record's hash is taken over it as parsed, so a name twice would verify as
        # Python reads it (the last) while another reader of the history takes the first.
        record = strict_json(line.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # not UTF-8 or JSON, a name twice, NaN
        msg = f"{path}:{number}: not a JSON record ({err})"
        raise HistoryError(msg) from None
    if not isinstance(record, dict):
        msg = f"{path}:{number}: expected a JSON object, found {type(record).__name__}"
        raise HistoryError(msg)
    return record


def _record(line: bytes, *, path: Path, number: int, cipher: RecordCipher | None) -> dict[str, Any]:
    """The record a committed line stores: parsed, and opened when the history is encrypted."""
    record = _parse(line, path=path, number=number)
    if cipher is None:
        if "seal" in record:
            msg = (
                f"{path}:{number}: refused: the record is encrypted at rest, but [encryption] "
                "(history = true) is not set to read it"
            )
            raise HistoryError(msg)
        return record
    if "seal" not in record:
        msg = (
            f"{path}:{number}: refused: not encrypted ([encryption].history is set, so a "
            "plaintext record is refused)"
        )
        raise HistoryError(msg)
    return cipher.open(record, path=path, number=number)


def _unreadable(path: Path, err: OSError) -> HistoryError:
    return HistoryError(
        f"{path}: cannot read the run history ({err.strerror}); check [feedback].history"
    )


def head_hash(path: Path, *, cipher: RecordCipher | None = None) -> str:
    """The hash of the newest committed record (64 zeros for an empty or absent history).

    This is what a signed attestation records so that a later rewrite of the whole file, sidecar
    included, is still detected. A torn tail that an interrupted append left is not a record.
    """
    line = _read_tail(path).last
    if line is None:
        return GENESIS
    record = _record(line, path=path, number=0, cipher=cipher)
    value = record.get("hash")
    if not isinstance(value, str):
        msg = f"{path}: the last record has no hash"
        raise HistoryError(msg)
    return value


# .head and .verified hold a count and a few hashes: far below this.
_SIDECAR_LIMIT = 64 * 1024


def _read_small(path: Path) -> bytes | None:
    """A sidecar's bytes; None when absent. OSError (ELOOP, EINVAL) for a symlink, a FIFO, a
    device or a file past ``_SIDECAR_LIMIT``: never followed, never blocked on, never read whole."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > _SIDECAR_LIMIT:
            raise OSError(errno.EINVAL, "not a small regular file")
        return handle.read(_SIDECAR_LIMIT + 1)


def _sidecar_refused(path: Path, err: OSError, doing: str) -> HistoryError:
    if err.errno in (errno.ELOOP, errno.EINVAL):
        return HistoryError(f"{path}: refused: a symlink or not a regular file")
    return HistoryError(f"{path}: {doing}: {err.strerror}")


@dataclass(frozen=True)
class _Sidecar:
    count: int
    head: str


def _read_sidecar(path: Path) -> _Sidecar | None:
    """``<history>.head``: None when absent; HistoryError (its message) when unparsable."""
    sidecar = head_path(path)
    try:
        raw = _read_small(sidecar)
    except OSError as err:
        raise _sidecar_refused(Path(sidecar.name), err, "cannot read") from None
    if raw is None:
        return None
    try:
        document = json.loads(raw.decode("utf-8"))
        return _Sidecar(int(document["count"]), str(document["head"]))
    except (
        OSError,
        UnicodeDecodeError,
        KeyError,
        TypeError,
        ValueError,
        OverflowError,
        RecursionError,
    ) as err:  # JSONDecodeError is a ValueError
        msg = f"{sidecar.name} is unparsable ({type(err).__name__})"
        raise HistoryError(msg) from None


@dataclass(frozen=True)
class _Shape:
    """How the committed log stands against ``.head``: a problem, or what recovery would do."""

    problem: str | None
    truncate: bool = False  # a torn tail after a log that agrees with .head
    forward: bool = False  # .head is one intact, chained record behind

    def notes(self, path: Path, *, count: int, torn: int) -> tuple[str, ...]:
        notes = []
        if self.forward:
            notes.append(
                f"{head_path(path).name} is one record behind: an append was interrupted after "
                f"writing record {count}; the next append brings it forward"
            )
        if self.truncate:
            notes.append(
                f"{torn} byte(s) after record {count} without a final newline: an interrupted "
                "append's torn tail, not a record; the next append truncates them"
            )
        return tuple(notes)


def _shape(
    path: Path,
    *,
    count: int,
    head: str,
    last_prev: object,
    intact: bool,
    torn: int,
    sidecar: _Sidecar | None,
) -> _Shape:
    """Compare the committed records (``count``, ``head``, the last one's ``prev``) with ``.head``.

    The two states an interrupted append leaves are recoverable; everything else is a problem.
    ``intact``: the committed records verified (or, for an append, the last one hashes right).
    """
    expected = sidecar if sidecar is not None else _Sidecar(0, GENESIS)
    if count == expected.count and head == expected.head:
        return _Shape(None, truncate=torn > 0)
    if intact and not torn and count == expected.count + 1 and last_prev == expected.head:
        return _Shape(None, forward=True)
    return _Shape(
        _mismatch(head_path(path).name, count=count, head=head, torn=torn, sidecar=sidecar)
    )


def _mismatch(name: str, *, count: int, head: str, torn: int, sidecar: _Sidecar | None) -> str:
    """Why the log and ``.head`` disagree in a way no interrupted append explains."""
    if sidecar is None:
        return f"{name} is missing: cannot rule out truncation"
    if torn:
        what = "truncated or rewritten" if count <= sidecar.count else "appended without the lock"
        return (
            f"incomplete last record ({torn} byte(s) without a final newline after record "
            f"{count}, and {name} says {sidecar.count}): {what}"
        )
    if count < sidecar.count:
        return f"{count} records, {name} says {sidecar.count} (truncated)"
    if count > sidecar.count + 1:
        return f"{count} records, {name} says {sidecar.count} (records appended without the lock)"
    if count == sidecar.count + 1:
        return (
            f"{count} records, {name} says {sidecar.count}, and the last record is not an "
            f"intact record chained onto {name}'s head {sidecar.head[:12]}... (appended "
            "without the lock, edited or forged)"
        )
    return (
        f"head {head[:12]}... differs from {name}'s {sidecar.head[:12]}... "
        "(the last record was rewritten)"
    )


def _recover(path: Path, cipher: RecordCipher | None) -> tuple[int, str]:
    """Under the lock: repair what an interrupted append left; returns the next (seq, prev).

    Refuses (HistoryError) anything that is not one of the two states a crash leaves.
    """
    tail = _read_tail(path)
    try:
        sidecar = _read_sidecar(path)
    except HistoryError as err:
        msg = f"{path}: {err}; {_VERIFY_HINT}"
        raise HistoryError(msg) from None
    count, head, last_prev, intact = 0, GENESIS, None, True
    if tail.last is not None:
        last = _record(tail.last, path=path, number=0, cipher=cipher)
        seq, value = last.get("seq"), last.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(value, str):
            msg = f"{path}: the last record has no seq/hash; {_VERIFY_HINT}"
            raise HistoryError(msg)
        count, head, last_prev = seq + 1, value, last.get("prev")
        intact = _hash_or_none(last) == value
    shape = _shape(
        path,
        count=count,
        head=head,
        last_prev=last_prev,
        intact=intact,
        torn=tail.torn,
        sidecar=sidecar,
    )
    if shape.problem is not None:
        msg = f"{path}: {shape.problem}; {_VERIFY_HINT}"
        raise HistoryError(msg)
    if shape.truncate:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, tail.end)
            os.fsync(fd)
        finally:
            os.close(fd)
    if shape.forward:
        atomic_write_json(head_path(path), {"count": count, "head": head})
    # What a killed atomic write of either sidecar left; no writer is in flight under the lock.
    for leftover in temp_files(head_path(path)) + temp_files(checkpoint_path(path)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    return count, head


def append(
    path: Path, payload: dict[str, Any], *, cipher: RecordCipher | None = None
) -> dict[str, Any]:
    """Append one run record under the lock; returns the record as written (with seq/prev/hash).

    First repairs what an interrupted append left (see the module's doc), then writes the line
    with ``O_APPEND`` and fsyncs it (the commit), then rewrites ``.head`` atomically.
    """
    reserved = {"seq", "prev", "hash", "schema_version"} & payload.keys()
    if reserved:
        msg = f"run record must not set {sorted(reserved)}: the history assigns them"
        raise HistoryError(msg)
    with locked(path):
        seq, prev = _recover(path, cipher)
        record = {"schema_version": HISTORY_SCHEMA_VERSION, **payload, "seq": seq, "prev": prev}
        record["hash"] = record_hash(record)
        data = encode(record) if cipher is None else cipher.seal(record)
        created = not path.exists()
        # O_APPEND: the write lands at the end even if another writer ignored the lock.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                write_all(fd, data)
                os.fsync(fd)
            except OSError as err:
                # A short write (a full disk) must not stay as a torn tail: cut it off again.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                msg = f"{path}: cannot append to the run history ({err.strerror})"
                raise HistoryError(msg) from None
        finally:
            os.close(fd)
        if created:
            fsync_dir(path.parent)
        atomic_write_json(head_path(path), {"count": seq + 1, "head": record["hash"]})
    return record


def records(
    path: Path, *, last: int | None = None, cipher: RecordCipher | None = None
) -> list[dict[str, Any]]:
    """Every committed record (or the ``last`` n), oldest first; absent is empty.

    A malformed line is an error; a torn tail without a final newline is not a record.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise _unreadable(path, err) from None
    lines = raw[: raw.rfind(b"\n") + 1].split(b"\n")
    lines.pop()  # what follows the last newline: empty, or a torn tail
    first = 0 if last is None else max(0, len(lines) - last)
    return [
        _record(line, path=path, number=n, cipher=cipher)
        for n, line in enumerate(lines[first:], start=first + 1)
    ]


@dataclass(frozen=True)
class _Checkpoint:
    size: int
    records: int
    head: str
    prev: object  # the last verified record's prev


def _checkpoint_key() -> bytes | None:
    key = os.environ.get(HMAC_KEY_ENV, "")
    return key.encode("utf-8") if key else None


def _seal(key: bytes, document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "seal"}
    message = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _read_checkpoint(path: Path, body: bytes, key: bytes) -> _Checkpoint | None:
    """The verified prefix, if sealed under ``key`` and its bytes still start ``body``; else None."""
    try:
        # Absent (None): no checkpoint (None["seal"] is a TypeError below).
        document = strict_json((_read_small(checkpoint_path(path)) or b"null").decode("utf-8"))
        seal = document["seal"]
        if not isinstance(seal, str) or not hmac.compare_digest(seal, _seal(key, document)):
            return None
        size, digest = int(document["bytes"]), str(document["sha256"])
        found = (size, int(document["records"]), str(document["head"]))
        prefix = body[:size]
        if not 0 < size <= len(body) or prefix[-1:] != b"\n" or found[1] < 1:
            return None
        # The head it names must be the last verified record's own, at its place in the chain.
        last = strict_json(prefix[prefix.rfind(b"\n", 0, size - 1) + 1 : size - 1])
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError, OverflowError):
        return None  # JSONDecodeError is a ValueError; OverflowError: "bytes": Infinity
    except (RecursionError, AttributeError):
        return None  # a line nested too deeply to parse; a document that is not an object
    trusted = (
        isinstance(last, dict)
        and last.get("hash") == found[2]
        and last.get("seq") == found[1] - 1
        and prefix.count(b"\n") == found[1]
        and hashlib.sha256(prefix).hexdigest() == digest
    )
    if not trusted or not isinstance(last, dict):
        return None
    return _Checkpoint(size=found[0], records=found[1], head=found[2], prev=last.get("prev"))


def _write_checkpoint(path: Path, body: bytes, key: bytes, *, records: int, head: str) -> None:
    document: dict[str, Any] = {
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "records": records,
        "head": head,
    }
    document["seal"] = _seal(key, document)
    # Only speed is lost when it cannot be written (or an append holds the lock right now): the
    # next run verifies more. Under the lock, so that an append may sweep a killed write's temp.
    with contextlib.suppress(OSError, HistoryError), locked(path, wait=False):
        atomic_write_json(checkpoint_path(path), document)


def verify(
    path: Path,
    *,
    expect_head: str | None = None,
    resume: bool = False,
    cipher: RecordCipher | None = None,
) -> Verification:
    """Check the chain, the sidecar, and optionally an expected head hash.

    Read-only, except for the checkpoint: ``resume=True`` starts after the prefix that a
    ``<history>.verified`` sealed under ``GATES_HISTORY_HMAC_KEY`` vouches for (its bytes
    unchanged) and, when everything verifies, moves that checkpoint to the end. Without the key
    it checks every record.
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
    body = raw[: raw.rfind(b"\n") + 1]
    torn = len(raw) - len(body)
    key = _checkpoint_key() if resume else None
    checkpoint = _read_checkpoint(path, body, key) if key is not None else None
    chain = _check_chain(path, body, checkpoint, cipher)
    problems.extend(chain.problems)
    pending: tuple[str, ...] = ()
    try:
        sidecar = _read_sidecar(path)
    except HistoryError as err:
        problems.append(HistoryProblem(0, str(err)))
    else:
        shape = _shape(
            path,
            count=chain.count,
            head=chain.head,
            last_prev=chain.last_prev,
            intact=not problems,
            torn=torn,
            sidecar=sidecar,
        )
        if shape.problem is not None:
            where = chain.count + 1 if torn else chain.count if sidecar is not None else 0
            problems.append(HistoryProblem(where, shape.problem))
        elif not problems:
            pending = shape.notes(path, count=chain.count, torn=torn)
    if expect_head is not None and expect_head != chain.head:
        problems.append(
            HistoryProblem(
                chain.count,
                f"head {chain.head[:12]}... differs from the expected {expect_head[:12]}... "
                "(records were removed or rewritten after the attestation)",
            )
        )
    moved = checkpoint is None or checkpoint.size < len(body)
    if key is not None and not problems and chain.count and moved:
        _write_checkpoint(path, body, key, records=chain.count, head=chain.head)
    return Verification(
        path=path, records=chain.count, head=chain.head, problems=tuple(problems), pending=pending
    )


@dataclass(frozen=True)
class _Chain:
    count: int
    head: str
    last_prev: object  # the last record's prev: what .head names when it is one record behind
    problems: tuple[HistoryProblem, ...]


def _check_chain(
    path: Path, body: bytes, checkpoint: _Checkpoint | None, cipher: RecordCipher | None
) -> _Chain:
    """Every committed record after the checkpoint's prefix: seq, prev link and own hash."""
    problems: list[HistoryProblem] = []
    offset = checkpoint.size if checkpoint is not None else 0
    lines = body[offset:].split(b"\n")
    lines.pop()  # the empty string after the last newline
    prev, count = (checkpoint.head, checkpoint.records) if checkpoint else (GENESIS, 0)
    last_prev: object = checkpoint.prev if checkpoint else None
    for number, line in enumerate(lines, start=count + 1):
        count += 1
        try:
            record = _record(line, path=path, number=number, cipher=cipher)
        except HistoryError as err:
            problems.append(HistoryProblem(number, str(err)))
            prev, last_prev = "", None
            continue
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
        actual = _hash_or_none(record)
        if record.get("hash") != actual:
            problems.append(
                HistoryProblem(
                    number,
                    f"hash {str(record.get('hash'))[:12]}... does not match the record's content "
                    f"{str(actual)[:12]}... (edited)",
                )
            )
        prev, last_prev = str(record.get("hash", "")), record.get("prev")
    return _Chain(count, prev if count else GENESIS, last_prev, tuple(problems))
