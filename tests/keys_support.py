"""Helpers for the key-provider, hybrid-signature and encryption tests: a small project and a policy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def key_project(root: Path, *, release: str = "", extra: str = "") -> Any:
    """``root`` with the project's policy.toml and data/, ``release`` lines added to [release]
    and ``extra`` tables appended; returns the LoadedPolicy."""
    from pipeline.config import load_policy

    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "data", root / "data", dirs_exist_ok=True)
    (root / "keys").mkdir(exist_ok=True)
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    text = text.replace("[release]\n", "[release]\n" + release + "\n", 1) + "\n" + extra + "\n"
    (root / "policy.toml").write_text(text, encoding="utf-8")
    return load_policy(root / "policy.toml")


def write_pub(root: Path, name: str, pem: bytes) -> str:
    """Commit a public key PEM at ``keys/<name>``; return its policy path."""
    (root / "keys").mkdir(parents=True, exist_ok=True)
    (root / "keys" / name).write_bytes(pem)
    return f"keys/{name}"


def new_pem_pair(root: Path, secret: Path, name: str, algorithm: str) -> str:
    """A fresh key pair of ``algorithm``: the public half at keys/<name>.pub; return the private PEM."""
    from pipeline.signing import generate_key_pair

    generate_key_pair(
        private_path=secret / f"{name}.key",
        public_path=root / "keys" / f"{name}.pub",
        algorithm=algorithm,  # type: ignore[arg-type]
    )
    return (secret / f"{name}.key").read_text(encoding="ascii")
