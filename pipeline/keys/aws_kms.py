"""AWS KMS: the release key is an asymmetric KMS key (ECC_NIST_P256); data keys from GenerateDataKey.

Signing sends the DSSE pre-authentication encoding itself when it fits KMS's 4 KiB limit for a
raw message, else its SHA-256 digest (``MessageType DIGEST``), and gets a DER ECDSA signature
back, which
``cryptography`` verifies against the committed public key with ``ECDSA(SHA256())`` exactly as
KMS's own Verify would. Every signature KMS returns is verified here before it is used, so a
service that signs something else (moto's server ignores ``DIGEST`` and hashes the digest
again) is refused, never written. Verification never calls KMS. Data keys are bound to the file's path by
KMS's EncryptionContext: a wrapped key moved to another file does not decrypt.

Credentials, region override and endpoint come from boto3's own environment variables
(``AWS_ACCESS_KEY_ID`` ... or a role; ``AWS_ENDPOINT_URL_KMS`` for a non-AWS endpoint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization

from pipeline.config import LoadedPolicy
from pipeline.keys.provider import DataKey, KeyProvider, KeyProviderError
from pipeline.signing import Algorithm, PublicKey, SigningError, TrustedKeyType

KEY_SPEC = "ECC_NIST_P256"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
RAW_MESSAGE_LIMIT = 4096


def _failed(action: str, key_id: str, err: Exception) -> KeyProviderError:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "error")
        text = err.response.get("Error", {}).get("Message", "")
        return KeyProviderError(f"aws-kms: {action} with key '{key_id}' refused: {code}: {text}")
    return KeyProviderError(f"aws-kms: {action} with key '{key_id}' failed: {err}")


@dataclass
class KmsSigner:
    """A Signer whose private key stays in KMS."""

    client: Any
    key_id: str
    _public: PublicKey | None = field(default=None, repr=False)
    release: bool = True

    @property
    def source(self) -> str:
        """The KMS key named."""
        return f"aws-kms:{self.key_id}"

    @property
    def public(self) -> PublicKey:
        """The key's public half, read once with GetPublicKey; KeyProviderError if not P-256 signing."""
        if self._public is None:
            try:
                answer = self.client.get_public_key(KeyId=self.key_id)
            except (ClientError, BotoCoreError) as err:
                raise _failed("GetPublicKey", self.key_id, err) from None
            spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
            if spec != KEY_SPEC or SIGNING_ALGORITHM not in answer.get("SigningAlgorithms", []):
                msg = (
                    f"aws-kms: key '{self.key_id}' is {spec} "
                    f"({answer.get('KeyUsage')}); expected a {KEY_SPEC} SIGN_VERIFY key"
                )
                raise KeyProviderError(msg)
            key: TrustedKeyType = serialization.load_der_public_key(answer["PublicKey"])  # type: ignore[assignment]
            try:
                self._public = PublicKey.from_crypto(key, source=self.source)
            except SigningError as err:
                raise KeyProviderError(str(err)) from None
        return self._public

    def sign(self, message: bytes) -> bytes:
        """ECDSA_SHA_256 over ``message`` (its digest is what is sent)."""
        # KMS takes a raw message up to 4 KiB; past that, its SHA-256 digest (MessageType
        # DIGEST): the same ECDSA_SHA_256 signature either way.
        raw = len(message) <= RAW_MESSAGE_LIMIT
        try:
            answer = self.client.sign(
                KeyId=self.key_id,
                Message=message if raw else hashlib.sha256(message).digest(),
                MessageType="RAW" if raw else "DIGEST",
                SigningAlgorithm=SIGNING_ALGORITHM,
            )
        except (ClientError, BotoCoreError) as err:
            raise _failed("Sign", self.key_id, err) from None
        signature: bytes = answer["Signature"]
        if not self.public.verifies(signature, message):
            msg = (
                f"aws-kms: Sign with key '{self.key_id}' returned a signature that does not verify"
            )
            raise KeyProviderError(msg)
        return signature


@dataclass
class AwsKmsProvider(KeyProvider):
    """Sign with an asymmetric KMS key; make and unwrap data keys with a symmetric one."""

    client: Any
    key_id: str
    data_key_id: str | None
    name: str = "aws-kms"
    algorithm: Algorithm = "ecdsa-p256-sha256"

    @classmethod
    def from_policy(cls, policy: LoadedPolicy) -> AwsKmsProvider:
        """A boto3 KMS client for [keys].kms_region (endpoint and credentials from the environment)."""
        keys = policy.policy.keys
        if not keys.kms_key_id:
            msg = "aws-kms: [keys].kms_key_id is not set"
            raise KeyProviderError(msg)
        try:
            client = boto3.client("kms", region_name=keys.kms_region)
        except BotoCoreError as err:
            raise KeyProviderError(f"aws-kms: cannot create a KMS client: {err}") from None
        return cls(client=client, key_id=keys.kms_key_id, data_key_id=keys.kms_data_key_id)

    def signer(self) -> KmsSigner:
        """The KMS signing key."""
        return KmsSigner(self.client, self.key_id)

    def _data_key_id(self) -> str:
        if not self.data_key_id:
            msg = (
                "aws-kms: [keys].kms_data_key_id is not set (a SYMMETRIC_DEFAULT key for data keys)"
            )
            raise KeyProviderError(msg)
        return self.data_key_id

    def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        """GenerateDataKey (AES_256) under the data key, with ``context`` as EncryptionContext."""
        key_id = self._data_key_id()
        try:
            answer = self.client.generate_data_key(
                KeyId=key_id, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        except (ClientError, BotoCoreError) as err:
            raise _failed("GenerateDataKey", key_id, err) from None
        return DataKey(answer["Plaintext"], answer["CiphertextBlob"], self.name)

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt the wrapped key; refused by KMS when the context (the file's path) differs."""
        key_id = self._data_key_id()
        try:
            answer = self.client.decrypt(
                CiphertextBlob=wrapped, EncryptionContext=dict(context), KeyId=key_id
            )
        except (ClientError, BotoCoreError) as err:
            raise _failed("Decrypt", key_id, err) from None
        plaintext: bytes = answer["Plaintext"]
        return plaintext
