"""Helpers for the attestation, champion and deploy tests: a release key and a signed project."""

from __future__ import annotations

import io
import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests import project_support

REPO = Path(__file__).resolve().parent.parent
ENV = "GATES_SIGNING_KEY"


def make_release_key(root: Path, keys: Path) -> str:
    """Create a release key pair: the public key at ``root/keys/release.pub``; return the PEM."""
    from pipeline.signing import generate_key_pair

    generate_key_pair(private_path=keys / "release.key", public_path=root / "keys" / "release.pub")
    return (keys / "release.key").read_text(encoding="ascii")


def run_chain(root: Path, *, pem: str | None, gates: Sequence[Any] | None = None) -> Any:
    """Run every gate in-process on ``root``, signing with ``pem`` (None: the development key).

    ``gates`` is the chain (default: the registry), e.g. ``chain_support.replaying(...)``.
    """
    from gates.registry import GATES
    from gates.runner import run_chain as chain
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        if pem is None:
            patch.delenv(ENV, raising=False)
        else:
            patch.setenv(ENV, pem)
        return chain(
            [],
            gates=GATES if gates is None else gates,
            policy=load_policy(root / "policy.toml"),
            reports_dir=root / "reports",
            out=io.StringIO(),
        )


def new_project(root: Path) -> Path:
    """A fresh copy of the project (policy.toml, data/, the code the gates read) at ``root``."""
    root.mkdir(parents=True)
    return project_support.copy_project(root, keys=False)


def signed_project(base: Path, *, gates: Sequence[Any] | None = None) -> tuple[Path, str]:
    """A project whose whole chain PASSED and was signed with its own release key.

    ``gates`` as for ``run_chain``: ``chain_support.replaying(recorded)`` replays lint, sast and
    audit from the session's recorded run (the same code; the release key it adds under
    ``keys/`` is nothing they read).
    """
    root = new_project(base / "signed")
    pem = make_release_key(root, base / "secret")
    summary = run_chain(root, pem=pem, gates=gates)
    assert summary.exit_code == 0, [r.summary for r in summary.results]
    return root, pem


def copy_project(source: Path, target: Path) -> Path:
    """A copy that keeps symlinks as symlinks and file modes as they are."""
    shutil.copytree(source, target, symlinks=True)
    return target


def policy_document(root: Path) -> dict[str, Any]:
    """The parsed policy.toml of ``root``."""
    return tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))
