"""Rotating the release key of a project whose registry holds three promoted versions
(``tests.rollback_support``): a new key pair committed as ``keys/release.pub``, the old public
key kept aside for ``$GATES_ROTATE_FROM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.rollback_support import Promoted


@dataclass(frozen=True)
class Rotated:
    """The project after the new public key was committed, and the keys a rotation uses."""

    project: Promoted
    new_pem: str  # the new release private key ($GATES_SIGNING_KEY in the deploy job)
    old_public: str  # the old release public key's PEM ($GATES_ROTATE_FROM)
    old_pem: str  # the old release private key (an attacker who leaked it)
    head: str  # the audit log's head when the key was committed ($GATES_REGISTRY_HEAD)


def commit_new_key(project: Promoted, old_pem: str, secret: Path) -> Rotated:
    """Replace ``keys/release.pub`` by a new key's public half (what the reviewed commit does)."""
    from pipeline.promotion import head, read_events
    from pipeline.signing import generate_key_pair

    root = project.root
    old_public = (root / "keys/release.pub").read_text(encoding="ascii")
    (root / "keys/release.pub").unlink()
    secret.mkdir(parents=True, exist_ok=True)
    generate_key_pair(private_path=secret / "new.key", public_path=root / "keys/release.pub")
    new_pem = (secret / "new.key").read_text(encoding="ascii")
    return Rotated(project, new_pem, old_public, old_pem, head(read_events(root / "registry")))


def deploy_env(monkeypatch: Any, rotated: Rotated) -> None:
    """The deploy job's environment for a rotation: the new key's secret, the old public key and
    the registry's pinned head."""
    monkeypatch.setenv("GATES_SIGNING_KEY", rotated.new_pem)
    monkeypatch.setenv("GATES_ROTATE_FROM", rotated.old_public)
    monkeypatch.setenv("GATES_REGISTRY_HEAD", rotated.head)


def envelopes(project: Promoted) -> dict[str, bytes]:
    """Every version's envelope bytes, by version."""
    versions = project.root / "registry/versions"
    return {
        folder.name: (folder / "artifacts/attestation.intoto.json").read_bytes()
        for folder in sorted(versions.iterdir())
    }
