"""Key providers: where the release signing key and the data-encryption keys come from.

One interface (``KeyProvider``), one module per provider:

- ``local``: today's behaviour: the PEM release key in an environment variable or a file
  outside the tree, and (for encryption at rest) a 32-byte key-encryption key the same way.
- ``aws_kms``: AWS KMS. ``Sign`` with an asymmetric ECC_NIST_P256 key (KMS holds no Ed25519 key
  that boto3's stand-in serves; the envelope carries an ``ecdsa-p256-sha256`` signature) and
  ``GenerateDataKey`` / ``Decrypt`` with a symmetric key. The private key never leaves KMS.
- ``vault_transit``: HashiCorp Vault's Transit engine: ``sign`` with an ed25519 Transit key
  (the signature is a plain Ed25519 signature, verified with the committed public key), and
  ``datakey`` / ``decrypt``. The private key never leaves Vault.

Verification never calls a provider: every signature is checked against a public key committed
in the tree and named in policy.toml. A provider is needed only to sign and to unwrap data keys.
Endpoints and credentials come from the environment only (a pull request controls policy.toml,
not CI's environment): ``AWS_*`` as boto3 reads them (``AWS_ENDPOINT_URL_KMS`` for a
non-default endpoint), ``VAULT_ADDR`` and ``VAULT_TOKEN`` for Vault.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config import LoadedPolicy
from pipeline.errors import PipelineError
from pipeline.signing import Algorithm, Signer

DATA_KEY_BYTES = 32  # AES-256


class KeyProviderError(PipelineError):
    """A key service refused, could not be reached, or holds a key of the wrong kind."""


@dataclass(frozen=True)
class DataKey:
    """A fresh data key: the plaintext (memory only) and the provider-wrapped copy to store.

    ``repr`` never shows the plaintext.
    """

    plaintext: bytes
    wrapped: bytes
    provider: str

    def __repr__(self) -> str:
        return f"DataKey(provider={self.provider}, wrapped={len(self.wrapped)} bytes)"


class KeyProvider(ABC):
    """Signs with a release key it holds, and wraps and unwraps data keys."""

    name: str
    algorithm: Algorithm  # what ``signer()`` signs with

    @abstractmethod
    def signer(self) -> Signer | None:
        """The release signer, or None when this provider has no release key configured."""

    @abstractmethod
    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        """A new 256-bit data key bound to ``context`` (the file's path)."""

    @abstractmethod
    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Unwrap a data key; KeyProviderError when the key or context is not the one it was made with."""


def provider_for(policy: LoadedPolicy) -> KeyProvider:
    """The provider ``[keys].provider`` names (imported only when configured)."""
    keys = policy.policy.keys
    if keys.provider == "aws-kms":
        from pipeline.keys.aws_kms import AwsKmsProvider  # noqa: PLC0415

        return AwsKmsProvider.from_policy(policy)
    if keys.provider == "vault-transit":
        from pipeline.keys.vault_transit import VaultTransitProvider  # noqa: PLC0415

        return VaultTransitProvider.from_policy(policy)
    from pipeline.keys.local import LocalProvider  # noqa: PLC0415

    return LocalProvider.from_policy(policy)
