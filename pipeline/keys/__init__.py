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

from pipeline.config import LoadedPolicy
from pipeline.keys.provider import DATA_KEY_BYTES, DataKey, KeyProvider, KeyProviderError

__all__ = ["DATA_KEY_BYTES", "DataKey", "KeyProvider", "KeyProviderError", "provider_for"]


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
