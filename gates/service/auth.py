"""API keys, kept only as SHA-256 hashes in a file an environment variable names.

The file holds one ``name:sha256hex`` per line (``#`` comments and blank lines allowed). A
presented key is hashed and compared with every stored hash with ``hmac.compare_digest``
(constant time, no early exit); the key itself is never stored or logged, only its name.
A line is ``NAME:`` followed by the output of ``printf %s KEY | sha256sum`` (the hex digest).

The metrics token (``GET /metrics``, red team 13) is a key of its own, never a prediction API
key: a file of the same lines, named by ``$GATES_SERVE_METRICS_KEYS`` (``METRICS_ENV``), the
operator's setting as the trusted proxies are, never ``policy.toml``'s. Unset, ``/metrics``
answers loopback clients only (``gates.service.app``; docs/serving.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from gates.errors import GatesError

_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63}):(?P<digest>[0-9a-f]{64})$")
# An API key is printable ASCII without spaces, at most this long (a longer header is refused
# before hashing).
MAX_KEY_CHARS = 256
_KEY = re.compile(r"^[\x21-\x7e]{16,256}$")
MAX_FILE_BYTES = 1 << 20
METRICS_ENV = "GATES_SERVE_METRICS_KEYS"


class KeyFileError(GatesError):
    """The API-key file is missing, unreadable or malformed: the service does not start."""


@dataclass(frozen=True)
class KeyRing:
    """The stored (name, SHA-256) pairs."""

    entries: tuple[tuple[str, bytes], ...]
    source: str

    def identify(self, presented: str) -> str | None:
        """The name of the key ``presented`` hashes to, or None; constant time over the ring."""
        if not _KEY.fullmatch(presented):
            return None
        digest = hashlib.sha256(presented.encode("ascii")).digest()
        found: str | None = None
        for name, stored in self.entries:
            if hmac.compare_digest(digest, stored) and found is None:
                found = name
        return found


def load_metrics_keyring() -> KeyRing | None:
    """The metrics tokens in the file ``$GATES_SERVE_METRICS_KEYS`` names (same rules as the
    API-key file), or None when the variable is unset or empty."""
    if not os.environ.get(METRICS_ENV, "").strip():
        return None
    return load_keyring(METRICS_ENV, what="metrics-token file")


def load_keyring(env: str, *, what: str = "API-key file") -> KeyRing:
    """Read the key file named by ``$env``; KeyFileError naming the file and line when bad."""
    where = os.environ.get(env, "").strip()
    if not where:
        msg = f"[serve].require_api_key is true but ${env} is not set (expected the path of a file of name:sha256 lines)"
        raise KeyFileError(msg)
    path = Path(where)
    try:
        info = path.stat()
    except OSError as err:
        msg = f"{path} (${env}): cannot read the {what}: {err.strerror}"
        raise KeyFileError(msg) from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        msg = f"{path} (${env}): expected a regular file of at most {MAX_FILE_BYTES} bytes"
        raise KeyFileError(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{path} (${env}): cannot read the {what} as UTF-8: {err}"
        raise KeyFileError(msg) from None
    entries: list[tuple[str, bytes]] = []
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            msg = (
                f"{path}:{number}: expected name:sha256hex (64 lowercase hex digits), "
                f"found a line of {len(stripped)} characters"
            )
            raise KeyFileError(msg)
        if match["name"] in names:
            msg = f"{path}:{number}: the key name {match['name']!r} appears twice"
            raise KeyFileError(msg)
        names.add(match["name"])
        entries.append((match["name"], bytes.fromhex(match["digest"])))
    if not entries:
        msg = f"{path} (${env}): no keys; expected at least one name:sha256hex line"
        raise KeyFileError(msg)
    return KeyRing(tuple(entries), str(path))


def hash_line(name: str, key: str) -> str:
    """The line the key file holds for ``key`` under ``name``."""
    return f"{name}:{hashlib.sha256(key.encode('ascii')).hexdigest()}"
