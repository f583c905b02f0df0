"""The signed record of a run: an in-toto Statement v1 in a DSSE envelope, and its verification.

The statement's subjects are files by SHA-256, named relative to a root (the project, or a
registry version that copies the same layout). Verification trusts nothing in the envelope
until the signature verifies under a key the caller supplies, then recomputes every subject
from the bytes on disk, refuses symlinks and files nobody signed, and requires every recorded
gate verdict to be PASSED. Every refusal names the file.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.errors import PipelineError
from pipeline.fsio import (
    Decoder,
    atomic_write_bytes,
    atomic_write_text,
    sha256_bytes,
    sha256_file,
    strict_json,
)
from pipeline.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    Signer,
    SigningError,
    Trusted,
    parse_envelope,
    required_keys,
    sign_envelope,
    verify_envelope,
)

# in-toto Statement v1 (github.com/in-toto/attestation, spec/v1/statement.md).
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# Our own predicate: one run of the gate chain. A type URI the project defines; the .example
# domain (RFC 2606) is reserved, so the URI can never collide with someone else's predicate.
PREDICATE_TYPE = "https://secure-ml-pipeline.example/attestation/gate-run/v1"
ENVELOPE_FILE = "attestation.intoto.json"
STATEMENT_FILE = "attestation.statement.json"
SIGNER_RELEASE = "release"
SIGNER_DEVELOPMENT = "development"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# The first line of a file encrypted at rest (pipeline.atrest.MAGIC; not imported, so the
# verifier of plain files needs nothing of the encryption module).
ENCRYPTED_MAGIC = b"GATES-AES256GCM-v1\n"
# The envelope and its statement copy are read whole: a statement names each signed file by
# path and digest (kilobytes); 16 MiB refuses a multi-GB file before a byte is read.
MAX_STATEMENT_BYTES = 16 << 20


class AttestationError(PipelineError):
    """Verification refused an attestation: bad signature, changed bytes, a file nobody signed."""


@dataclass(frozen=True)
class Subject:
    """One attested file: its name relative to the root, and its SHA-256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class VerifiedAttestation:
    """An attestation whose signature, subjects and verdicts all checked out."""

    root: Path
    envelope_path: Path
    statement: dict[str, Any]
    subjects: tuple[Subject, ...]
    signer: Trusted
    # How the files under ``root`` decode (None: stored plain); every reader goes through it.
    decoder: Decoder | None = None

    def read(self, path: Path, raw: bytes) -> bytes:
        """The contents of ``path`` from its stored bytes ``raw`` (decrypted when at rest)."""
        return raw if self.decoder is None else self.decoder(path, raw)

    @property
    def predicate(self) -> dict[str, Any]:
        """The gate-run predicate (signed)."""
        predicate: dict[str, Any] = self.statement["predicate"]
        return predicate

    @property
    def run_id(self) -> str:
        """The run that produced the attested model."""
        return str(self.predicate["run_id"])

    @property
    def signer_kind(self) -> str:
        """``release`` or ``development``, as the (signed) predicate states."""
        return str(self.predicate.get("signer", {}).get("kind", "unknown"))

    def digest(self, name: str) -> str:
        """The signed SHA-256 of subject ``name``; AttestationError when it is not a subject."""
        for subject in self.subjects:
            if subject.name == name:
                return subject.sha256
        msg = f"{self.envelope_path}: '{name}' is not a subject of the statement"
        raise AttestationError(msg)


def build_statement(subjects: Sequence[Subject], predicate: Mapping[str, Any]) -> bytes:
    """The statement's exact bytes: sorted-key JSON, so the signed payload is reproducible."""
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": s.name, "digest": {"sha256": s.sha256}} for s in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }
    return (json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def sign_and_write(
    payload: bytes, *, key: Signer | Sequence[Signer], bundle_dir: Path
) -> tuple[Path, Path]:
    """Sign the statement (one signature per key), write the envelope and a readable copy."""
    envelope = sign_envelope(payload, key=key, payload_type=IN_TOTO_PAYLOAD_TYPE)
    statement_path = bundle_dir / STATEMENT_FILE
    envelope_path = bundle_dir / ENVELOPE_FILE
    atomic_write_bytes(statement_path, payload)
    atomic_write_text(envelope_path, envelope.to_json())
    return envelope_path, statement_path


def verify_bundle(
    envelope_path: Path,
    *,
    root: Path,
    trusted: Trusted,
    required_gates: Sequence[str] = (),
    decoder: Decoder | None = None,
) -> VerifiedAttestation:
    """Verify an attestation against the bytes under ``root``; AttestationError lists every problem.

    Order matters: the signature is checked before any field of the statement is believed.
    With ``decoder`` (files encrypted at rest) every file is decrypted in memory and the
    signed digests are checked over the plaintext, so a signature made before encryption holds.
    """
    shown = _shown(envelope_path, root)
    decode = _Decode(decoder)
    envelope = _read_envelope(envelope_path, shown, decode)
    try:
        verify_envelope(envelope, trusted=trusted, payload_type=IN_TOTO_PAYLOAD_TYPE, source=shown)
    except SigningError as err:
        raise AttestationError(str(err)) from None
    statement, subjects = _parse_statement(envelope.payload, shown)
    _check_no_downgrade(statement["predicate"], trusted, shown)
    # The bundle folder is the one the signed statement names, not wherever the envelope is.
    bundle_dir = root / statement["predicate"]["bundle"]
    problems = _check_statement_copy(bundle_dir / STATEMENT_FILE, envelope, root, decode)
    for subject in subjects:
        problem = _check_subject(root, subject, decode)
        if problem:
            problems.append(problem)
    problems.extend(_extra_files(bundle_dir, root, subjects))
    problems.extend(_check_verdicts(statement["predicate"], required_gates, shown))
    if problems:
        msg = f"{shown}: refused ({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
        raise AttestationError(msg)
    return VerifiedAttestation(
        root=root,
        envelope_path=envelope_path,
        statement=statement,
        subjects=subjects,
        signer=trusted,
        decoder=decoder,
    )


def _starts_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(ENCRYPTED_MAGIC)) == ENCRYPTED_MAGIC


class _Decode:
    """Read a file's stored bytes and decode them; the problem (naming the file) or the bytes."""

    def __init__(self, decoder: Decoder | None) -> None:
        self.decoder = decoder

    def __call__(self, path: Path, shown: str) -> bytes | str:
        raw = path.read_bytes()
        if self.decoder is None:
            if raw.startswith(ENCRYPTED_MAGIC):
                return (
                    f"{shown}: refused: the file is encrypted at rest, but [encryption] is not "
                    "set to decrypt it"
                )
            return raw
        try:
            return self.decoder(path, raw)
        except PipelineError as err:
            return str(err)


def _check_no_downgrade(predicate: dict[str, Any], trusted: Trusted, shown: str) -> None:
    """Refuse a statement signed with an algorithm the verifier does not require.

    The signed predicate names every algorithm it was signed with. A verifier whose policy
    dropped one (an edited policy.toml asking for Ed25519 alone) would otherwise accept the
    envelope with that signature stripped: the statement itself says what it must carry.
    """
    signer = predicate.get("signer")
    claimed = signer.get("algorithms") if isinstance(signer, dict) else None
    if claimed is None:
        return  # statements signed before hybrid signatures name no algorithm
    required = {key.algorithm for key in required_keys(trusted)}
    if not isinstance(claimed, list) or not all(isinstance(a, str) for a in claimed):
        msg = f"{shown}: refused: predicate.signer.algorithms is not a list of names"
        raise AttestationError(msg)
    dropped = sorted(set(claimed) - required)
    if dropped:
        msg = (
            f"{shown}: refused: the signed statement was signed with {sorted(claimed)}, but "
            f"[release].signatures requires only {sorted(required)}: a signature algorithm "
            f"({', '.join(dropped)}) would go unchecked (an algorithm downgrade); require it again"
        )
        raise AttestationError(msg)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read_envelope(path: Path, shown: str, decode: _Decode) -> Envelope:
    try:
        info = path.lstat()
    except FileNotFoundError:
        msg = f"{shown}: refused: no attestation (the envelope file is missing); run the gates"
        raise AttestationError(msg) from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        msg = f"{shown}: refused: the envelope is a symlink or not a regular file"
        raise AttestationError(msg)
    if info.st_size > MAX_STATEMENT_BYTES:
        msg = f"{shown}: refused, not read: expected at most {MAX_STATEMENT_BYTES} bytes, found {info.st_size}"
        raise AttestationError(msg)
    raw = decode(path, shown)
    if isinstance(raw, str):
        raise AttestationError(raw)
    try:
        return parse_envelope(raw, source=shown)
    except SigningError as err:
        raise AttestationError(f"refused: {err}") from None


def _parse_statement(payload: bytes, shown: str) -> tuple[dict[str, Any], tuple[Subject, ...]]:
    def bad(why: str) -> AttestationError:
        return AttestationError(f"{shown}: refused: signed payload is not a valid statement: {why}")

    try:
        statement = strict_json(payload)
    except ValueError as err:  # not JSON or UTF-8, a name twice, NaN, a 4,300-digit number
        raise bad(f"not JSON ({err})") from None
    except RecursionError:
        raise bad("JSON nested too deeply to parse") from None
    if not isinstance(statement, dict):
        raise bad("expected a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise bad(f"_type is {statement.get('_type')!r}, expected '{STATEMENT_TYPE}'")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise bad(
            f"predicateType is {statement.get('predicateType')!r}, expected '{PREDICATE_TYPE}'"
        )
    if not isinstance(statement.get("predicate"), dict):
        raise bad("predicate missing or not an object")
    bundle = statement["predicate"].get("bundle")
    if not isinstance(bundle, str) or not _safe_name(bundle):
        raise bad(f"predicate.bundle {bundle!r} is not a relative folder inside the root")
    raw = statement.get("subject")
    if not isinstance(raw, list) or not raw:
        raise bad("subject list missing or empty")
    subjects: list[Subject] = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        digest = item.get("digest", {}).get("sha256") if isinstance(item, dict) else None
        if not isinstance(name, str) or not _safe_name(name):
            raise bad(f"subject[{index}] name {name!r} is not a relative path inside the root")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise bad(f"subject[{index}] ({name}) has no SHA-256 digest")
        subjects.append(Subject(name, digest))
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        raise bad("a subject is named twice")
    return statement, tuple(subjects)


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (
        bool(name)
        and "\\" not in name
        and not path.is_absolute()
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def _check_statement_copy(path: Path, envelope: Envelope, root: Path, decode: _Decode) -> list[str]:
    shown = _shown(path, root)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return [f"{shown}: missing (the readable copy of the signed statement)"]
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        return [f"{shown}: is a symlink or not a regular file"]
    if info.st_size > MAX_STATEMENT_BYTES:
        return [
            f"{shown}: refused, not read: expected at most {MAX_STATEMENT_BYTES} bytes, found {info.st_size}"
        ]
    raw = decode(path, shown)
    if isinstance(raw, str):
        return [raw]
    if raw != envelope.payload:
        return [f"{shown}: edited: it differs from the statement signed in the envelope"]
    return []


def _check_subject(root: Path, subject: Subject, decode: _Decode) -> str | None:
    path = root
    for part in subject.name.split("/"):
        path = path / part
        try:
            info = path.lstat()
        except FileNotFoundError:
            return f"{subject.name}: missing"
        if stat.S_ISLNK(info.st_mode):
            return (
                f"{subject.name}: refused: {_shown(path, root)} is a symlink, not the signed file"
            )
    if not stat.S_ISREG(info.st_mode):
        return f"{subject.name}: not a regular file"
    if decode.decoder is None and not _starts_encrypted(path):
        # Plain (the default): streamed, so a large data subject is never read whole.
        actual, size = sha256_file(path), info.st_size
    else:
        content = decode(path, subject.name)
        if isinstance(content, str):
            return content
        actual, size = sha256_bytes(content), len(content)
    if actual != subject.sha256:
        return (
            f"{subject.name}: SHA-256 {actual[:16]}... does not match the signed "
            f"{subject.sha256[:16]}... (size now {size} bytes): the bytes changed"
        )
    return None


def _extra_files(bundle_dir: Path, root: Path, subjects: Sequence[Subject]) -> list[str]:
    # Nothing may ride along in the bundle folder unsigned: a stray pickle beside a signed
    # model is exactly what a careless consumer would load next.
    allowed = {s.name for s in subjects} | {
        _shown(bundle_dir / ENVELOPE_FILE, root),
        _shown(bundle_dir / STATEMENT_FILE, root),
    }
    found = []
    for folder, dirs, files in os.walk(bundle_dir, followlinks=False):
        # os.walk lists a symlink to a folder under dirs without entering it: count it too.
        for name in sorted(files + [d for d in dirs if (Path(folder) / d).is_symlink()]):
            rel = _shown(Path(folder) / name, root)
            if rel not in allowed:
                found.append(
                    f"{rel}: extra file in {_shown(bundle_dir, root)}/ that the statement does not cover"
                )
    return found


def _check_verdicts(predicate: dict[str, Any], required: Sequence[str], shown: str) -> list[str]:
    gates = predicate.get("gates")
    if not isinstance(gates, dict) or not gates:
        return [f"{shown}: the statement records no gate verdicts"]
    problems = []
    for name in required:
        if name not in gates:
            problems.append(f"{shown}: gate '{name}' has no verdict in the statement")
    for name, record in gates.items():
        status = record.get("status") if isinstance(record, dict) else None
        if status != "PASSED":
            problems.append(
                f"{shown}: gate '{name}' is {status} in the signed statement, not PASSED"
            )
    return problems
