"""Ed25519 keys and DSSE envelopes: sign a payload, and verify one against trusted public keys.

DSSE is the Dead Simple Signing Envelope (github.com/secure-systems-lab/dsse, protocol.md):
the signature covers ``PAE(payloadType, payload)``, never the JSON around it, so no JSON
canonicalisation is needed. Private key material never appears in a message, log or report:
every error about a key names where it came from, never what it holds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as UnsupportedAlgorithmError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_bytes, fsync_dir, sha256_bytes

# The payload type in-toto attestations use (in-toto/attestation spec/v1/envelope.md).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class SigningError(PipelineError):
    """A key is missing or unreadable, or an envelope is malformed or its signature is not trusted."""


@dataclass(frozen=True)
class PublicKey:
    """A trusted Ed25519 public key and its key id (SHA-256 of its DER SubjectPublicKeyInfo)."""

    key: Ed25519PublicKey
    keyid: str
    source: str

    @classmethod
    def from_crypto(cls, key: Ed25519PublicKey, *, source: str) -> PublicKey:
        """Wrap a ``cryptography`` key, computing its key id."""
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key=key, keyid=sha256_bytes(der), source=source)

    def pem(self) -> bytes:
        """The PEM text of the key, as committed in ``keys/release.pub``."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key, where it came from, and whether it is the release key.

    ``repr`` shows the source and key id only; the key object is never formatted.
    """

    key: Ed25519PrivateKey
    source: str
    release: bool

    @property
    def public(self) -> PublicKey:
        """The matching public key."""
        return PublicKey.from_crypto(self.key.public_key(), source=self.source)

    def __repr__(self) -> str:
        kind = "release" if self.release else "development"
        return f"SigningKey({kind}, keyid={self.public.keyid[:12]}..., source={self.source})"


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope: the payload bytes, its type, and (keyid, signature) pairs."""

    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes], ...]

    def to_json(self) -> str:
        """The envelope file's text (standard base64, as the DSSE spec writes it)."""
        document = {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}
                for keyid, sig in self.signatures
            ],
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload: bytes, *, key: SigningKey, payload_type: str) -> Envelope:
    """Sign ``payload`` into a one-signature DSSE envelope."""
    signature = key.key.sign(pae(payload_type, payload))
    return Envelope(payload, payload_type, ((key.public.keyid, signature),))


def parse_envelope(text: str | bytes, *, source: str) -> Envelope:
    """Parse an envelope's JSON strictly; anything malformed is a SigningError naming ``source``."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"{source}: not a DSSE envelope: not JSON ({err})"
        raise SigningError(msg) from None
    if not isinstance(document, dict):
        msg = f"{source}: not a DSSE envelope: expected a JSON object"
        raise SigningError(msg)
    for key, kind in (("payload", str), ("payloadType", str), ("signatures", list)):
        if not isinstance(document.get(key), kind):
            msg = f"{source}: not a DSSE envelope: '{key}' missing or not a {kind.__name__}"
            raise SigningError(msg)
    signatures: list[tuple[str, bytes]] = []
    for index, item in enumerate(document["signatures"]):
        if not isinstance(item, dict) or not isinstance(item.get("sig"), str):
            msg = f"{source}: signatures[{index}]: expected an object with a 'sig' string"
            raise SigningError(msg)
        signatures.append((str(item.get("keyid", "")), _b64(item["sig"], f"{source}: sig")))
    return Envelope(
        payload=_b64(document["payload"], f"{source}: payload"),
        payload_type=document["payloadType"],
        signatures=tuple(signatures),
    )


def _b64(text: str, where: str) -> bytes:
    # DSSE accepts standard or URL-safe base64, padded or not (protocol.md, "Envelope").
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        msg = f"{where}: not valid base64"
        raise SigningError(msg) from None


def verify_envelope(
    envelope: Envelope, *, trusted: PublicKey, payload_type: str, source: str
) -> None:
    """Pass only when a signature in the envelope verifies under ``trusted``; else SigningError.

    Signatures are tried against the trusted key whatever their key id says (a key id is a
    hint, not a credential), and the payload type must be the one expected.
    """
    if envelope.payload_type != payload_type:
        msg = f"{source}: refused: payloadType is '{envelope.payload_type}', expected '{payload_type}'"
        raise SigningError(msg)
    if not envelope.signatures:
        msg = f"{source}: refused: the envelope carries no signature"
        raise SigningError(msg)
    message = pae(envelope.payload_type, envelope.payload)
    for _, signature in envelope.signatures:
        try:
            trusted.key.verify(signature, message)
        except InvalidSignature:
            continue
        return
    named = ", ".join(f"{keyid[:12]}..." for keyid, _ in envelope.signatures)
    msg = (
        f"{source}: refused: no signature verifies under the trusted key {trusted.keyid[:12]}... "
        f"({trusted.source}); the envelope's signatures name key id(s) {named}: the statement "
        "was changed after signing, or signed by another key"
    )
    raise SigningError(msg)


def load_public_key(path: Path) -> PublicKey:
    """Read a PEM Ed25519 public key; a missing or wrong file is a SigningError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: public key not found (create a key pair with 'python -m gates keygen')"
        raise SigningError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read the public key: {err.strerror}"
        raise SigningError(msg) from None
    return public_key_from_pem(data, source=str(path))


def public_key_from_pem(data: bytes, *, source: str) -> PublicKey:
    """Parse a PEM Ed25519 public key; anything else is a SigningError naming ``source``."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        msg = f"{source}: expected a PEM Ed25519 public key, found something else"
        raise SigningError(msg) from None
    if not isinstance(key, Ed25519PublicKey):
        msg = f"{source}: expected an Ed25519 public key, found {type(key).__name__}"
        raise SigningError(msg)
    return PublicKey.from_crypto(key, source=source)


def private_key_from_pem(data: bytes, *, source: str, release: bool) -> SigningKey:
    """Parse a PEM Ed25519 private key; the error names ``source``, never the bytes."""
    try:
        key: Any = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithmError):
        # ``from None``: the parser's own message could quote the input.
        msg = f"{source}: expected an unencrypted PEM Ed25519 private key; it could not be parsed"
        raise SigningError(msg) from None
    if not isinstance(key, Ed25519PrivateKey):
        msg = f"{source}: expected an Ed25519 private key, found another key type"
        raise SigningError(msg)
    return SigningKey(key=key, source=source, release=release)


def read_private_key(path: Path, *, release: bool) -> SigningKey:
    """Read a private key file; refuse one other users may read (as ssh does)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: private key file not found"
        raise SigningError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read the private key file: {err.strerror}"
        raise SigningError(msg) from None
    if mode & 0o077:
        msg = f"{path}: refused: private key file is readable by others (mode {mode & 0o777:o}); chmod 600 it"
        raise SigningError(msg)
    return private_key_from_pem(data, source=str(path), release=release)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_key_pair(*, private_path: Path, public_path: Path) -> PublicKey:
    """Create a key pair: private key mode 0600 (exclusive create), public key PEM beside it.

    Refuses to overwrite either file: replacing a release key silently would orphan every
    model signed with the old one.
    """
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            msg = f"{path}: already exists; refusing to overwrite a key (move it away first)"
            raise SigningError(msg)
    key = Ed25519PrivateKey.generate()
    folder = private_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    # Written whole and fsynced under a temp name (mkstemp: mode 0600), then linked into place:
    # a kill at any moment leaves no key or the whole key, never a truncated one, and the link,
    # like O_EXCL, fails rather than clobber a file created since the check above.
    fd, temp = tempfile.mkstemp(prefix=f".{private_path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_private_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, private_path)
    except FileExistsError:
        msg = f"{private_path}: already exists; refusing to overwrite a key (move it away first)"
        raise SigningError(msg) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    fsync_dir(folder)
    public = PublicKey.from_crypto(key.public_key(), source=str(public_path))
    atomic_write_bytes(public_path, public.pem())
    return public
