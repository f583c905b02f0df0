"""HashiCorp Vault Transit: sign with an ed25519 Transit key; data keys from ``datakey``.

The key never leaves Vault. A Transit ed25519 signature is a plain Ed25519 signature over the
input, so the envelope's signature is verified with the committed Ed25519 public key, exactly as
a locally signed one: verification never calls Vault. The client is the real ``hvac`` client;
``VAULT_ADDR`` and ``VAULT_TOKEN`` come from the environment only.

Endpoints used: ``GET /v1/<mount>/keys/<name>`` (type and public key), ``POST
/v1/<mount>/sign/<name>``, ``POST /v1/<mount>/datakey/plaintext/<name>``, ``POST
/v1/<mount>/decrypt/<name>``.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import hvac
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hvac.exceptions import VaultError

from pipeline.config import LoadedPolicy
from pipeline.keys.provider import DataKey, KeyProvider, KeyProviderError
from pipeline.signing import Algorithm, PublicKey

_ERRORS = (VaultError, requests.RequestException)


def _failed(action: str, name: str, err: Exception) -> KeyProviderError:
    return KeyProviderError(
        f"vault-transit: {action} with key '{name}' failed: {type(err).__name__}: {err}"
    )


def _data(answer: Any, action: str, name: str) -> dict[str, Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        msg = f"vault-transit: {action} with key '{name}': unexpected answer (no 'data' object)"
        raise KeyProviderError(msg)
    return data


def _b64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProviderError(f"vault-transit: {what} is not valid base64") from None


@dataclass
class VaultSigner:
    """A Signer whose ed25519 private key stays in Vault."""

    client: hvac.Client
    mount: str
    key: str
    _public: PublicKey | None = field(default=None, repr=False)
    _version: int = 0
    release: bool = True

    @property
    def source(self) -> str:
        """The Transit key named."""
        return f"vault-transit:{self.mount}/{self.key}"

    @property
    def public(self) -> PublicKey:
        """The latest version's public key; KeyProviderError unless the key is of type ed25519."""
        if self._public is None:
            try:
                answer = self.client.secrets.transit.read_key(name=self.key, mount_point=self.mount)
            except _ERRORS as err:
                raise _failed("read key", self.key, err) from None
            data = _data(answer, "read key", self.key)
            if data.get("type") != "ed25519":
                msg = f"vault-transit: key '{self.key}' is of type {data.get('type')!r}; expected 'ed25519'"
                raise KeyProviderError(msg)
            version = int(data.get("latest_version", 0))
            entry = data.get("keys", {}).get(str(version), {})
            raw = _b64(entry.get("public_key") if isinstance(entry, dict) else None, "public_key")
            try:
                key = Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                raise KeyProviderError(
                    f"vault-transit: key '{self.key}': public_key is not 32 bytes"
                ) from None
            self._public, self._version = PublicKey.from_crypto(key, source=self.source), version
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Transit ``sign`` with the version whose public key was read."""
        public = self.public
        try:
            answer = self.client.secrets.transit.sign_data(
                name=self.key,
                hash_input=base64.b64encode(message).decode("ascii"),
                key_version=self._version,
                mount_point=self.mount,
            )
        except _ERRORS as err:
            raise _failed("sign", self.key, err) from None
        text = str(_data(answer, "sign", self.key).get("signature", ""))
        prefix = f"vault:v{self._version}:"
        if not text.startswith(prefix):
            msg = f"vault-transit: sign with key '{self.key}': signature does not start with {prefix!r}"
            raise KeyProviderError(msg)
        signature = _b64(text[len(prefix) :], "signature")
        if not public.verifies(signature, message):
            msg = f"vault-transit: sign with key '{self.key}' returned a signature that does not verify"
            raise KeyProviderError(msg)
        return signature


@dataclass
class VaultTransitProvider(KeyProvider):
    """Sign and make data keys with Vault Transit keys."""

    client: hvac.Client
    mount: str
    key: str
    data_key: str | None
    name: str = "vault-transit"
    algorithm: Algorithm = "ed25519"

    @classmethod
    def from_policy(cls, policy: LoadedPolicy) -> VaultTransitProvider:
        """An hvac client for $VAULT_ADDR with $VAULT_TOKEN."""
        keys = policy.policy.keys
        if not keys.vault_key_name:
            msg = "vault-transit: [keys].vault_key_name is not set"
            raise KeyProviderError(msg)
        url, token = os.environ.get("VAULT_ADDR", ""), os.environ.get("VAULT_TOKEN", "")
        if not url or not token:
            msg = "vault-transit: set VAULT_ADDR and VAULT_TOKEN (CI secrets) to sign with Vault"
            raise KeyProviderError(msg)
        client = hvac.Client(url=url, token=token, timeout=30)
        return cls(
            client=client,
            mount=keys.vault_mount,
            key=keys.vault_key_name,
            data_key=keys.vault_data_key_name,
        )

    def signer(self) -> VaultSigner:
        """The Transit signing key."""
        return VaultSigner(self.client, self.mount, self.key)

    def _data_key(self) -> str:
        if not self.data_key:
            msg = (
                "vault-transit: [keys].vault_data_key_name is not set (an aes256-gcm96 Transit key)"
            )
            raise KeyProviderError(msg)
        return self.data_key

    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        """Transit ``datakey/plaintext``: a 256-bit key and its Vault-wrapped copy.

        ``context`` is not sent (Transit takes one only for derived keys); the file's path is
        bound by the AES-GCM associated data of the file itself.
        """
        del context
        name = self._data_key()
        try:
            answer = self.client.secrets.transit.generate_data_key(
                name=name, key_type="plaintext", bits=256, mount_point=self.mount
            )
        except _ERRORS as err:
            raise _failed("datakey", name, err) from None
        data = _data(answer, "datakey", name)
        plaintext = _b64(data.get("plaintext"), "datakey plaintext")
        return DataKey(plaintext, str(data.get("ciphertext", "")).encode("ascii"), self.name)

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Transit ``decrypt`` of the wrapped key."""
        del context
        name = self._data_key()
        try:
            answer = self.client.secrets.transit.decrypt_data(
                name=name, ciphertext=wrapped.decode("ascii", "replace"), mount_point=self.mount
            )
        except _ERRORS as err:
            raise _failed("decrypt", name, err) from None
        return _b64(_data(answer, "decrypt", name).get("plaintext"), "decrypt plaintext")
