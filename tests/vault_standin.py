"""A loopback stand-in for the few HashiCorp Vault Transit endpoints the vault-transit provider uses.

No Vault server runs here (none is on PyPI, npm or Debian's archive; Vault's own releases are
a binary download), so this serves, over real HTTP on 127.0.0.1, exactly the endpoints
``pipeline.keys.vault_transit`` calls through the real ``hvac`` client, with Vault's documented
request and response shapes (developer.hashicorp.com/vault/api-docs/secret/transit):

- ``GET  /v1/<mount>/keys/<name>``: type, latest_version, keys[v].public_key (ed25519)
- ``POST /v1/<mount>/sign/<name>``: input (base64), key_version -> signature ``vault:v<N>:<b64>``
- ``POST /v1/<mount>/datakey/plaintext/<name>``: plaintext + ciphertext ``vault:v1:<b64>``
- ``POST /v1/<mount>/decrypt/<name>``: ciphertext -> plaintext; 400 when it does not decrypt

Every request needs ``X-Vault-Token``; a wrong one is a 403 ``permission denied``, as in Vault.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class TransitStandIn:
    """A Transit engine at ``mount`` with an ed25519 key and an aes256-gcm96 key."""

    def __init__(self, *, token: str, mount: str = "transit") -> None:
        self.token, self.mount = token, mount
        self.signing: dict[str, Ed25519PrivateKey] = {}
        self.aes: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                del args

            def do_GET(self) -> None:
                stand_in.handle(self, "GET")

            def do_POST(self) -> None:
                stand_in.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TransitStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_ed25519(self, name: str) -> bytes:
        """Create an ed25519 key; return its public key PEM (what the project commits)."""
        key = Ed25519PrivateKey.generate()
        self.signing[name] = key
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def add_aes(self, name: str) -> None:
        """Create an aes256-gcm96 key."""
        self.aes[name] = AESGCM.generate_key(bit_length=256)

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:  # noqa: PLR0911 - one return per route
        self.requests.append((method, request.path))
        if request.headers.get("X-Vault-Token") != self.token:
            return _reply(request, 403, {"errors": ["permission denied"]})
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}")
        parts = request.path.split("?")[0].strip("/").split("/")
        if parts[:2] != ["v1", self.mount] or len(parts) < 4:
            return _reply(request, 404, {"errors": [f"no handler for route '{request.path}'"]})
        action, name = "/".join(parts[2:-1]), parts[-1]
        if method == "GET" and action == "keys":
            return self._read_key(request, name)
        if method == "POST" and action == "sign" and name in self.signing:
            if body.get("key_version") not in (None, 1):
                return _reply(
                    request, 400, {"errors": ["requested version for signing does not exist"]}
                )
            signature = self.signing[name].sign(base64.b64decode(body["input"]))
            return _reply(request, 200, {"data": {"signature": "vault:v1:" + _b64(signature)}})
        if method == "POST" and action == "datakey/plaintext" and name in self.aes:
            plaintext = os.urandom(int(body.get("bits", 256)) // 8)
            nonce = os.urandom(12)
            wrapped = nonce + AESGCM(self.aes[name]).encrypt(nonce, plaintext, None)
            data = {"plaintext": _b64(plaintext), "ciphertext": "vault:v1:" + _b64(wrapped)}
            return _reply(request, 200, {"data": data})
        if method == "POST" and action == "decrypt" and name in self.aes:
            text = str(body.get("ciphertext", ""))
            try:
                raw = base64.b64decode(text.removeprefix("vault:v1:"), validate=True)
                plaintext = AESGCM(self.aes[name]).decrypt(raw[:12], raw[12:], None)
            except (InvalidTag, ValueError):
                return _reply(request, 400, {"errors": ["cipher: message authentication failed"]})
            return _reply(request, 200, {"data": {"plaintext": _b64(plaintext)}})
        return _reply(request, 400, {"errors": [f"encryption key not found ({name})"]})

    def _read_key(self, request: BaseHTTPRequestHandler, name: str) -> None:
        if name in self.signing:
            raw = (
                self.signing[name]
                .public_key()
                .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            )
            data = {
                "type": "ed25519",
                "latest_version": 1,
                "keys": {"1": {"public_key": _b64(raw)}},
            }
        elif name in self.aes:
            data = {"type": "aes256-gcm96", "latest_version": 1, "keys": {"1": 1700000000}}
        else:
            return _reply(request, 404, {"errors": []})
        return _reply(request, 200, {"data": data})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reply(request: BaseHTTPRequestHandler, code: int, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    request.send_response(code)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
