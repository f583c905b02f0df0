"""A project whose registry holds three versions promoted in turn by a release manager (issue 20:
rollback). Built once per test module from the session's signed chain; copy it per test.

The second and third versions are the first run's attestation re-signed by the release key
under another run id (``<run>-b``, ``<run>-c``): three real, verifying versions for the price of
one chain run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.keys_support import new_pem_pair
from tests.release_support import copy_project

ENVELOPE = "artifacts/attestation.intoto.json"


@dataclass(frozen=True)
class Promoted:
    """The project (policy with or without [roles]), its versions in promotion order, the keys."""

    root: Path
    versions: tuple[str, ...]
    pems: dict[str, str]

    def copy(self, target: Path) -> Promoted:
        """A private copy of the whole project, registry included."""
        return Promoted(copy_project(self.root, target), self.versions, self.pems)

    def registry(self) -> Any:
        """The project's registry as the CLI builds it (policy roles, every gate required)."""
        from gates.release import registry_for
        from pipeline.config import load_policy
        from pipeline.verify import trusted_key

        policy = load_policy(self.root / "policy.toml")
        return registry_for(policy, trusted=trusted_key(policy))

    def manager(self, name: str = "alice") -> Any:
        from pipeline.signing import private_key_from_pem

        return private_key_from_pem(
            self.pems[name].encode(), source=name, release=True, algorithm=None
        )

    def pointer(self) -> dict[str, Any]:
        return json.loads((self.root / "registry/champion").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def log(self) -> list[dict[str, Any]]:
        lines = (self.root / "registry/promotions.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]


def resign(source: Path, target: Path, pem: str, **predicate: Any) -> Path:
    """A copy of the signed project at ``target`` whose statement (predicate fields replaced)
    is signed again by the release key ``pem``."""
    from pipeline.attestation import sign_and_write
    from pipeline.signing import parse_envelope, private_key_from_pem

    copy = copy_project(source, target)
    envelope = parse_envelope((copy / ENVELOPE).read_bytes(), source="test")
    statement = json.loads(envelope.payload)
    statement["predicate"].update(predicate)
    key = private_key_from_pem(pem.encode(), source="test", release=True, algorithm=None)
    sign_and_write(
        json.dumps(statement, sort_keys=True).encode(), key=[key], bundle_dir=copy / "artifacts"
    )
    return copy


def build(signed: tuple[Path, str], base: Path, *, roles: bool) -> Promoted:
    """Promote three versions of the signed chain into a project's registry, in order."""
    from gates.release import registry_for
    from pipeline.attestation import verify_bundle
    from pipeline.config import load_policy
    from pipeline.promotion import sign_promotion
    from pipeline.signing import load_public_key, parse_envelope
    from pipeline.verify import trusted_key

    source, pem = signed
    envelope = parse_envelope((source / ENVELOPE).read_bytes(), source="test")
    run_id = json.loads(envelope.payload)["predicate"]["run_id"]
    bundles = [
        source,
        resign(source, base / "b", pem, run_id=f"{run_id}-b"),
        resign(source, base / "c", pem, run_id=f"{run_id}-c"),
    ]
    root = copy_project(source, base / "project")
    shutil.rmtree(root / "registry", ignore_errors=True)
    secret = base / "secret"
    secret.mkdir()
    pems = {
        "alice": new_pem_pair(root, secret, "alice", "ed25519"),
        "bob": new_pem_pair(root, secret, "bob", "ml-dsa-65"),
        "mallory": new_pem_pair(base, secret, "mallory", "ed25519"),
    }
    if roles:
        with (root / "policy.toml").open("a", encoding="utf-8") as handle:
            handle.write(
                '\n[roles]\npromoters = {alice = "keys/alice.pub", bob = "keys/bob.pub"}\n'
            )
    policy = load_policy(root / "policy.toml")
    registry = registry_for(policy, trusted=trusted_key(policy))
    trusted = load_public_key(root / "keys/release.pub")
    promoted = Promoted(root, (), pems)
    versions = []
    for bundle in bundles:
        verified = verify_bundle(
            bundle / ENVELOPE,
            root=bundle,
            trusted=trusted,
            required_gates=registry.required_gates,
        )
        version = registry.version_name(verified)
        signature = None
        if roles:
            expected = registry.promotion_for(verified, version)
            signature = sign_promotion(expected, key=promoted.manager())
        registry.promote(verified, promotion=signature)
        versions.append(version)
    return Promoted(root, tuple(versions), pems)


def run_cli(project: Promoted, monkeypatch: Any, capsys: Any, *args: str) -> tuple[int, str]:
    """``python -m gates ARGS`` in ``project``'s root, in process: its exit code and output."""
    from gates._cli import main

    monkeypatch.chdir(project.root)
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err
