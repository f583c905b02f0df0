"""The key-provider interface: what every provider module implements (see ``pipeline.keys``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

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
