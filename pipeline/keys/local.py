"""The local key provider: a PEM key in an environment variable (a CI secret) or a file.

Today's behaviour, unchanged: ``$[release].private_key_env`` or ``[release].private_key_file``
holds the Ed25519 release key. Other algorithms (ML-DSA-65 of a hybrid signature, ECDSA P-256)
read ``$<private_key_env>_<ALGORITHM>`` (e.g. ``GATES_SIGNING_KEY_ML_DSA_65``). Data keys are
wrapped with AES-256-GCM under a key-encryption key: 32 random bytes, base64, in
``$[encryption].key_env`` or ``[encryption].key_file`` (mode 0600, outside the tree).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.config import LoadedPolicy
from pipeline.keys.provider import DATA_KEY_BYTES, DataKey, KeyProvider, KeyProviderError
from pipeline.signing import (
    Algorithm,
    SigningError,
    SigningKey,
    private_key_from_pem,
    read_private_key,
)

NONCE_BYTES = 12


def env_name(base: str, algorithm: Algorithm) -> str:
    """The environment variable of ``algorithm``'s private key: ``base`` for Ed25519."""
    if algorithm == "ed25519":
        return base
    return f"{base}_{algorithm.upper().replace('-', '_')}"


def read_env_pem(name: str) -> str:
    """The PEM in ``$name`` (one-line ``\\n``-escaped PEMs, as some secret stores keep them, too)."""
    pem = os.environ.get(name, "").strip()
    if "\\n" in pem and "\n" not in pem:
        pem = pem.replace("\\n", "\n")
    return pem


@dataclass
class LocalProvider(KeyProvider):
    """Keys in this process: from the environment or a private file."""

    env: str
    key_file: Path | None
    kek_env: str
    kek_file: Path | None
    name: str = "local"
    algorithm: Algorithm = "ed25519"

    @classmethod
    def from_policy(cls, policy: LoadedPolicy) -> LocalProvider:
        """The provider [release] and [encryption] configure."""
        release, encryption = policy.policy.release, policy.policy.encryption
        return cls(
            env=release.private_key_env,
            key_file=policy.resolve(release.private_key_file) if release.private_key_file else None,
            kek_env=encryption.key_env if encryption else "GATES_DATA_KEY",
            kek_file=(
                policy.resolve(encryption.key_file) if encryption and encryption.key_file else None
            ),
        )

    def signer(self) -> SigningKey | None:
        """The Ed25519 release key, or None when neither the variable nor the file is set."""
        return self.signer_for("ed25519")

    def signer_for(self, algorithm: Algorithm) -> SigningKey | None:
        """The release key of ``algorithm``; SigningError when set but unreadable or of another type."""
        name = env_name(self.env, algorithm)
        pem = read_env_pem(name)
        if pem:
            return private_key_from_pem(
                pem.encode("utf-8"), source=f"${name}", release=True, algorithm=algorithm
            )
        if algorithm == "ed25519" and self.key_file is not None:
            return read_private_key(self.key_file, release=True, algorithm=algorithm)
        return None

    def _kek(self) -> bytes:
        raw = os.environ.get(self.kek_env, "").strip()
        source = f"${self.kek_env}"
        if not raw and self.kek_file is not None:
            source = str(self.kek_file)
            try:
                mode = self.kek_file.stat().st_mode
                raw = self.kek_file.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError) as err:
                msg = f"{source}: cannot read the data key-encryption key ({type(err).__name__})"
                raise KeyProviderError(msg) from None
            if mode & 0o077:
                msg = f"{source}: refused: key file is readable by others (mode {mode & 0o777:o}); chmod 600 it"
                raise KeyProviderError(msg)
        if not raw:
            msg = (
                f"no data key-encryption key: set ${self.kek_env} (32 random bytes, base64) or "
                "[encryption].key_file, or configure a key service in [keys]"
            )
            raise KeyProviderError(msg)
        try:
            kek = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            msg = f"{source}: expected 32 bytes in base64; it is not valid base64"
            raise KeyProviderError(msg) from None
        if len(kek) != DATA_KEY_BYTES:
            msg = f"{source}: expected 32 bytes in base64, found {len(kek)} bytes"
            raise KeyProviderError(msg)
        return kek

    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        """A random data key, wrapped with AES-256-GCM under the key-encryption key, bound to ``context``."""
        plaintext = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + AESGCM(self._kek()).encrypt(nonce, plaintext, _aad(context))
        return DataKey(plaintext=plaintext, wrapped=wrapped, provider=self.name)

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Unwrap; KeyProviderError on a wrong key-encryption key or another context."""
        try:
            return AESGCM(self._kek()).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(context)
            )
        except (InvalidTag, ValueError):
            msg = "the data key does not unwrap under this key-encryption key for this file (wrong key, or the file was moved)"
            raise KeyProviderError(msg) from None


def _aad(context: Mapping[str, str]) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


__all__ = ["LocalProvider", "SigningError", "env_name", "read_env_pem"]
