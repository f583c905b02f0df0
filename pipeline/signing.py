"""Signing keys and DSSE envelopes: sign a payload, and verify one against trusted public keys.

Ed25519 by default; ML-DSA-65 beside it for a hybrid (post-quantum) signature; ECDSA P-256 for
a key service that holds no Ed25519 key. An envelope verifies only when every trusted key has a
signature in it that verifies under that key's own algorithm.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as UnsupportedAlgorithmError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey

from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_bytes, fsync_dir, sha256_bytes, strict_json

# The payload type in-toto attestations use (in-toto/attestation spec/v1/envelope.md).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class SigningError(PipelineError):
    """A key is missing or unreadable, or an envelope is malformed or its signature is not trusted."""


# The signature algorithms an envelope may carry, by the name policy.toml uses
# ([release].signatures). Ed25519 is today's; ML-DSA-65 (FIPS 204) is the post-quantum half of a
# hybrid signature; ECDSA P-256 with SHA-256 is what a key service that cannot hold Ed25519 keys
# (AWS KMS) signs with. The algorithm of a signature is always the one of the *trusted* key it
# is checked against, never a field of the envelope: nothing an envelope says picks how it is
# verified.
Algorithm = Literal["ed25519", "ml-dsa-65", "ecdsa-p256-sha256"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
_SHOWN = {"ed25519": "Ed25519", "ml-dsa-65": "ML-DSA-65", "ecdsa-p256-sha256": "ECDSA P-256"}
TrustedKeyType = Ed25519PublicKey | MLDSA65PublicKey | ec.EllipticCurvePublicKey
PrivateKeyType = Ed25519PrivateKey | MLDSA65PrivateKey | ec.EllipticCurvePrivateKey


def algorithm_of(key: object, *, source: str) -> Algorithm:
    """The algorithm a public or private key signs with; SigningError for any other key type."""
    if isinstance(key, Ed25519PublicKey | Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, MLDSA65PublicKey | MLDSA65PrivateKey):
        return "ml-dsa-65"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ecdsa-p256-sha256"
        msg = f"{source}: expected an ECDSA key on P-256, found curve {key.curve.name}"
        raise SigningError(msg)
    msg = f"{source}: expected an Ed25519, ML-DSA-65 or ECDSA P-256 key, found {type(key).__name__}"
    raise SigningError(msg)


@dataclass(frozen=True)
class PublicKey:
    """A trusted public key and its key id (SHA-256 of its DER SubjectPublicKeyInfo)."""

    key: TrustedKeyType
    keyid: str
    source: str

    @classmethod
    def from_crypto(cls, key: TrustedKeyType, *, source: str) -> PublicKey:
        """Wrap a ``cryptography`` key, computing its key id."""
        algorithm_of(key, source=source)
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key=key, keyid=sha256_bytes(der), source=source)

    @property
    def algorithm(self) -> Algorithm:
        """The algorithm every signature checked against this key must be made with."""
        return algorithm_of(self.key, source=self.source)

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` over ``message`` verifies under this key with its algorithm."""
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            else:
                self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        """The PEM text of the key, as committed in ``keys/release.pub``."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class TrustedKeys:
    """Every key an envelope must carry a verifying signature of (a hybrid signature: all of them).

    ``keyid`` and ``source`` are the first (primary) key's, so code that names "the release
    key" keeps one name to show.
    """

    keys: tuple[PublicKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            msg = "no trusted key configured"
            raise SigningError(msg)

    @property
    def keyid(self) -> str:
        """The primary key's id."""
        return self.keys[0].keyid

    @property
    def source(self) -> str:
        """The primary key's source."""
        return self.keys[0].source

    @property
    def algorithms(self) -> tuple[Algorithm, ...]:
        """The algorithms required, in order."""
        return tuple(key.algorithm for key in self.keys)


Trusted = PublicKey | TrustedKeys


def required_keys(trusted: Trusted) -> tuple[PublicKey, ...]:
    """The keys ``trusted`` requires a signature of, each."""
    return trusted.keys if isinstance(trusted, TrustedKeys) else (trusted,)


class Signer(Protocol):
    """Anything that signs bytes with one key: a local key, or a key held by a key service."""

    @property
    def public(self) -> PublicKey:
        """The matching public key."""
        ...

    @property
    def source(self) -> str:
        """Where the key is (a file, an environment variable, a service key name); never its bytes."""
        ...

    @property
    def release(self) -> bool:
        """True for the release key, False for a development key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message`` with the key's algorithm."""
        ...


@dataclass(frozen=True)
class SigningKey:
    """A private key held in this process, where it came from, and whether it is the release key.

    ``repr`` shows the source and key id only; the key object is never formatted.
    """

    key: PrivateKeyType
    source: str
    release: bool

    @property
    def public(self) -> PublicKey:
        """The matching public key."""
        return PublicKey.from_crypto(self.key.public_key(), source=self.source)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (ECDSA: over its SHA-256, DER-encoded, as a key service returns it)."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        return self.key.sign(message)

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


def sign_envelope(payload: bytes, *, key: Signer | Sequence[Signer], payload_type: str) -> Envelope:
    """Sign ``payload`` into a DSSE envelope with one signature per key (hybrid: several)."""
    signers = [key] if not isinstance(key, Sequence) else list(key)
    message = pae(payload_type, payload)
    signatures = tuple((signer.public.keyid, signer.sign(message)) for signer in signers)
    return Envelope(payload, payload_type, signatures)


def parse_envelope(text: str | bytes, *, source: str) -> Envelope:
    """Parse an envelope's JSON strictly; anything malformed is a SigningError naming ``source``."""
    try:
        # Strict: a second 'payload' (or 'signatures') is another envelope to another reader.
        document = strict_json(text)
    except ValueError as err:  # not JSON or UTF-8, a 4,300-digit number, a name twice, NaN
        msg = f"{source}: not a DSSE envelope: not JSON ({err})"
        raise SigningError(msg) from None
    except RecursionError:
        msg = f"{source}: not a DSSE envelope: JSON nested too deeply to parse"
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
    envelope: Envelope, *, trusted: Trusted, payload_type: str, source: str
) -> None:
    """Pass only when, for every trusted key, a signature in the envelope verifies under it.

    A hybrid policy (Ed25519 and ML-DSA-65) passes only with both: stripping one signature, or
    putting a signature of one algorithm under the other key's id, is refused. Signatures are
    tried against each trusted key whatever their key id says (a key id is a hint, not a
    credential), and each key verifies with its own algorithm. The payload type must be the one
    expected.
    """
    if envelope.payload_type != payload_type:
        msg = f"{source}: refused: payloadType is '{envelope.payload_type}', expected '{payload_type}'"
        raise SigningError(msg)
    if not envelope.signatures:
        msg = f"{source}: refused: the envelope carries no signature"
        raise SigningError(msg)
    message = pae(envelope.payload_type, envelope.payload)
    missing = [
        key
        for key in required_keys(trusted)
        if not any(key.verifies(signature, message) for _, signature in envelope.signatures)
    ]
    if not missing:
        return
    named = ", ".join(f"{keyid[:12]}..." for keyid, _ in envelope.signatures)
    wanted = "; nor under the trusted key ".join(
        f"{k.keyid[:12]}... ({k.source}, {_SHOWN[k.algorithm]})" for k in missing
    )
    msg = (
        f"{source}: refused: no signature verifies under the trusted key {wanted}; the envelope "
        f"carries {len(envelope.signatures)} signature(s) naming key id(s) {named}: a required "
        "signature was stripped, the statement was changed after signing, or it was signed by "
        "another key"
    )
    raise SigningError(msg)


def load_public_key(path: Path, *, algorithm: Algorithm | None = "ed25519") -> PublicKey:
    """Read a PEM public key of ``algorithm`` (None: any supported one); SigningError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: public key not found (create a key pair with 'python -m gates keygen')"
        raise SigningError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read the public key: {err.strerror}"
        raise SigningError(msg) from None
    return public_key_from_pem(data, source=str(path), algorithm=algorithm)


def public_key_from_pem(
    data: bytes, *, source: str, algorithm: Algorithm | None = "ed25519"
) -> PublicKey:
    """Parse a PEM public key of ``algorithm`` (None: any supported one); a SigningError
    naming ``source`` otherwise."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithmError):
        msg = f"{source}: expected a PEM {_shown(algorithm)} public key, found something else"
        raise SigningError(msg) from None
    found = _safe_algorithm(key)
    if not isinstance(key, TrustedKeyType) or found is None or algorithm not in (None, found):
        msg = f"{source}: expected an {_shown(algorithm)} public key, found {type(key).__name__}"
        raise SigningError(msg)
    return PublicKey.from_crypto(key, source=source)


def _shown(algorithm: Algorithm | None) -> str:
    return _SHOWN[algorithm] if algorithm else "Ed25519, ML-DSA-65 or ECDSA P-256"


def _safe_algorithm(key: object) -> str | None:
    try:
        return algorithm_of(key, source="")
    except SigningError:
        return None


def private_key_from_pem(
    data: bytes, *, source: str, release: bool, algorithm: Algorithm | None = "ed25519"
) -> SigningKey:
    """Parse a PEM private key of ``algorithm``; the error names ``source``, never the bytes."""
    try:
        key: Any = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithmError):
        # ``from None``: the parser's own message could quote the input.
        msg = f"{source}: expected an unencrypted PEM {_shown(algorithm)} private key; it could not be parsed"
        if source.startswith("$") and b"-----BEGIN" not in data:
            # A variable holding the key file's path instead of its text: say so.
            msg += f'; it holds no PEM block: set it to the key\'s text, not its path ({source[1:]}="$(cat FILE)")'
        raise SigningError(msg) from None
    found = _safe_algorithm(key)
    if not isinstance(key, PrivateKeyType) or found is None or algorithm not in (None, found):
        msg = f"{source}: expected an {_shown(algorithm)} private key, found another key type"
        raise SigningError(msg)
    return SigningKey(key=key, source=source, release=release)


def read_private_key(path: Path, *, release: bool, algorithm: Algorithm = "ed25519") -> SigningKey:
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
    return private_key_from_pem(data, source=str(path), release=release, algorithm=algorithm)


def _private_pem(key: PrivateKeyType) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_private_key(algorithm: Algorithm) -> PrivateKeyType:
    """A fresh private key of ``algorithm``."""
    if algorithm == "ml-dsa-65":
        return MLDSA65PrivateKey.generate()
    if algorithm == "ecdsa-p256-sha256":
        return ec.generate_private_key(ec.SECP256R1())
    return Ed25519PrivateKey.generate()


def generate_key_pair(
    *, private_path: Path, public_path: Path, algorithm: Algorithm = "ed25519"
) -> PublicKey:
    """Create a key pair: private key mode 0600 (exclusive create), public key PEM beside it.

    Refuses to overwrite either file: replacing a release key silently would orphan every
    model signed with the old one.
    """
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            msg = f"{path}: already exists; refusing to overwrite a key (move it away first)"
            raise SigningError(msg)
    key = new_private_key(algorithm)
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
