"""Envelope encryption at rest: AES-256-GCM under a per-file data key from the key provider.

A file encrypted here is::

    GATES-AES256GCM-v1\\n
    {"nonce": ..., "path": ..., "provider": ..., "sha256": ..., "wrapped": ...}\\n
    <ciphertext and 16-byte GCM tag>

``wrapped`` is the data key as the provider wrapped it (KMS ``GenerateDataKey``, Vault Transit
``datakey``, or AES-GCM under the local key-encryption key), bound there to the file's path.
The associated data of the file's own AES-GCM is the header with ``path`` set to where the file
is *read from* (relative to the project, POSIX) and ``sha256`` the plaintext's digest: a
ciphertext renamed or copied to another path, a header edited, a byte of the ciphertext flipped,
or another key, all fail authentication, and the refusal names the file. After decryption the
plaintext's SHA-256 must equal the header's. Plaintext lives only in memory: nothing here writes
it to disk.

When ``[encryption]`` is set, a file that should be encrypted and is not is refused too (a
plaintext file dropped in place of a ciphertext is a downgrade, not a migration).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_bytes, sha256_bytes, strict_json
from pipeline.keys.provider import KeyProvider, KeyProviderError

MAGIC = b"GATES-AES256GCM-v1\n"
NONCE_BYTES = 12
MAX_HEADER_BYTES = 64 * 1024


class EncryptionError(PipelineError):
    """A file at rest does not decrypt: wrong key, changed bytes, moved file, or not encrypted."""


def is_encrypted(data: bytes) -> bool:
    """True when ``data`` starts with this format's magic line."""
    return data.startswith(MAGIC)


def _aad(header: dict[str, str]) -> bytes:
    return MAGIC + json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        msg = f"{path}: refused: encrypted files must lie inside the project folder {root}"
        raise EncryptionError(msg) from None
    return PurePosixPath(*rel.parts).as_posix()


def encrypt_bytes(plaintext: bytes, *, name: str, provider: KeyProvider) -> bytes:
    """Encrypt ``plaintext`` for the file named ``name`` (its project-relative POSIX path)."""
    try:
        data_key = provider.generate_data_key({"path": name})
    except KeyProviderError as err:
        raise EncryptionError(f"{name}: cannot get a data key: {err}") from None
    nonce = os.urandom(NONCE_BYTES)
    header = {
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "path": name,
        "provider": provider.name,
        "sha256": sha256_bytes(plaintext),
        "wrapped": base64.b64encode(data_key.wrapped).decode("ascii"),
    }
    ciphertext = AESGCM(data_key.plaintext).encrypt(nonce, plaintext, _aad(header))
    line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return MAGIC + line + ciphertext


def decrypt_bytes(
    blob: bytes, *, name: str, provider: KeyProvider, expected_sha256: str | None = None
) -> bytes:
    """The plaintext of ``blob`` read from the file ``name``; EncryptionError naming it otherwise."""
    if not is_encrypted(blob):
        msg = f"{name}: refused: not encrypted ([encryption] is set, so a plaintext file here is refused)"
        raise EncryptionError(msg)
    end = blob.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER_BYTES)
    if end < 0:
        raise EncryptionError(f"{name}: refused: encrypted file header is missing or too long")
    try:
        # Strict: the AEAD binds the header as parsed, so a name twice would be bound as Python
        # reads it (the last) while another reader takes the first.
        header = strict_json(blob[len(MAGIC) : end])
        if not isinstance(header, dict) or not all(isinstance(v, str) for v in header.values()):
            raise ValueError
        nonce = base64.b64decode(header["nonce"], validate=True)
        wrapped = base64.b64decode(header["wrapped"], validate=True)
        claimed, digest = header["path"], header["sha256"]
    except (ValueError, KeyError, UnicodeDecodeError, binascii.Error, RecursionError):
        # RecursionError: JSON nested past the parser's limit within the header's 64 KiB.
        raise EncryptionError(f"{name}: refused: encrypted file header is not valid") from None
    if header.get("provider") != provider.name:
        msg = (
            f"{name}: refused: encrypted with key provider '{header.get('provider')}', "
            f"but [keys].provider is '{provider.name}'"
        )
        raise EncryptionError(msg)
    if expected_sha256 is not None and digest != expected_sha256:
        msg = f"{name}: refused: its plaintext digest {digest[:16]}... is not the recorded {expected_sha256[:16]}..."
        raise EncryptionError(msg)
    moved = "" if claimed == name else f" (it names itself '{claimed}': moved or renamed?)"
    try:
        key = provider.decrypt_data_key(wrapped, {"path": name})
    except KeyProviderError as err:
        msg = f"{name}: refused: its data key does not unwrap for this path with this key{moved}: {err}"
        raise EncryptionError(msg) from None
    aad = _aad({**header, "path": name})
    try:
        plaintext = AESGCM(key).decrypt(nonce, blob[end + 1 :], aad)
    except (InvalidTag, ValueError):
        msg = (
            f"{name}: refused: does not decrypt: the ciphertext or its header changed, it was "
            f"encrypted for another path, or under another key{moved}"
        )
        raise EncryptionError(msg) from None
    if sha256_bytes(plaintext) != digest:
        raise EncryptionError(f"{name}: refused: decrypted bytes do not match the header's SHA-256")
    return plaintext


def write_encrypted(path: Path, plaintext: bytes, *, root: Path, provider: KeyProvider) -> None:
    """Encrypt and write ``path`` atomically (the plaintext never touches the disk)."""
    blob = encrypt_bytes(plaintext, name=_rel(path, root), provider=provider)
    atomic_write_bytes(path, blob, mode=0o600)


def read_encrypted(
    path: Path, *, root: Path, provider: KeyProvider, expected_sha256: str | None = None
) -> bytes:
    """Read and decrypt ``path`` into memory."""
    name = _rel(path, root)
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise EncryptionError(f"{name}: cannot read: {err.strerror}") from None
    return decrypt_bytes(blob, name=name, provider=provider, expected_sha256=expected_sha256)
