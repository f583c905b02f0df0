"""Release keys and verification for the CLI: which key signs, which key is trusted, keygen, verify.

The trusted key is always the committed public key named in policy ([release].public_key)
unless the caller passes another one explicitly; nothing in an envelope chooses its own key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gates.base import GateError, GateResult, Status
from gates.errors import GatesError
from gates.registry import VERDICT, checked_before
from pipeline import verify
from pipeline.attestation import SIGNER_RELEASE, AttestationError, VerifiedAttestation
from pipeline.champion import Champion, ModelRegistry, RegistryError
from pipeline.config import LoadedPolicy
from pipeline.fsio import atomic_write_bytes, atomic_write_text
from pipeline.signing import (
    PublicKey,
    SigningError,
    SigningKey,
    generate_key_pair,
    private_key_from_pem,
    read_private_key,
)
from pipeline.verify import DEV_KEY_NAME, trusted_key

# The gate that writes the attestation; every gate registered before it must be recorded.
ATTESTING_GATE = "artifacts"


@dataclass(frozen=True)
class KeyChoice:
    """The key a run signs with, and a sentence saying why, for the report."""

    key: SigningKey
    note: str


def signing_key(policy: LoadedPolicy) -> KeyChoice:
    """The release key from the environment or the policy's key file, else a development key.

    A configured key that is not the committed release key is an error, not a quiet fallback:
    it would sign models nobody can deploy.
    """
    release = policy.policy.release
    pem = os.environ.get(release.private_key_env, "").strip()
    if "\\n" in pem and "\n" not in pem:
        # Some CI secret stores keep a PEM on one line with literal \n separators.
        pem = pem.replace("\\n", "\n")
    try:
        if pem:
            key = private_key_from_pem(
                pem.encode("utf-8"), source=f"${release.private_key_env}", release=True
            )
        elif release.private_key_file:
            key = read_private_key(policy.resolve(release.private_key_file), release=True)
        else:
            return _dev_key(policy)
        committed = trusted_key(policy)
    except SigningError as err:
        raise GateError(str(err)) from err
    if key.public.keyid != committed.keyid:
        msg = (
            f"{key.source}: the configured signing key (key id {key.public.keyid[:12]}...) is "
            f"not the release key {committed.source} ({committed.keyid[:12]}...); "
            "fix [release] in policy.toml or the secret"
        )
        raise GateError(msg)
    return KeyChoice(key, f"release key {committed.keyid[:12]}... from {key.source}")


def _dev_key(policy: LoadedPolicy) -> KeyChoice:
    release = policy.policy.release
    if not release.allow_dev_key:
        msg = (
            f"no release signing key: set ${release.private_key_env} or [release].private_key_file "
            "(policy.toml [release].allow_dev_key is false, so no development key is used)"
        )
        raise GateError(msg)
    folder = policy.resolve(release.dev_key_dir)
    private, public = folder / f"{DEV_KEY_NAME}.key", folder / f"{DEV_KEY_NAME}.pub"
    if not private.exists():
        generate_key_pair(private_path=private, public_path=public)
    if not (folder / ".gitignore").exists():
        # Keep the folder out of git even where .gitignore was not copied along.
        atomic_write_text(folder / ".gitignore", "*\n")
    key = read_private_key(private, release=False)
    if not public.exists():
        # A run killed between writing the two halves: the public one follows from the private.
        atomic_write_bytes(public, key.public.pem())
    return KeyChoice(
        key,
        f"DEVELOPMENT key {key.public.keyid[:12]}... from {private} (not the release key: "
        "verify and deploy refuse this model)",
    )


def keygen(*, private_path: Path, public_path: Path) -> PublicKey:
    """Create a release key pair (private key mode 0600); refuses to overwrite."""
    return generate_key_pair(private_path=private_path, public_path=public_path)


def verify_project(
    policy: LoadedPolicy, *, envelope: Path | None = None, key: Path | None = None
) -> VerifiedAttestation:
    """Verify the project's attestation and its model with the trusted key (``pipeline.verify``).

    Every gate registered before the attesting gate today must be recorded, and PASSED.
    """
    return verify.verify_project(
        policy, required_gates=required_gates(), envelope=envelope, key=key
    )


def required_gates() -> tuple[str, ...]:
    """The gates a statement must record: every gate registered before the attesting gate."""
    return tuple(spec.name for spec in checked_before(ATTESTING_GATE))


class DeployRefused(GatesError):
    """Deploy refused the model: not fully PASSED, not verified, or not signed by the release key."""


def registry_for(
    policy: LoadedPolicy, *, trusted: PublicKey, require_current_gates: bool = True
) -> ModelRegistry:
    """The policy's model registry, trusting ``trusted`` only.

    With ``require_current_gates`` every gate registered today must be recorded in a version's
    statement (deploy, verify). The champion comparison passes False: a champion promoted
    before a gate was added stays comparable, while every verdict it records must still be
    PASSED and its signature and bytes must still verify.
    """
    required = required_gates() if require_current_gates else ()
    return verify.registry_for(policy, trusted=trusted, required_gates=required)


def verify_champion(policy: LoadedPolicy, *, key: Path | None = None) -> VerifiedAttestation:
    """Verify the registry's current champion, requiring every gate registered today."""
    return verify.verify_champion(policy, required_gates=required_gates(), key=key)


def deploy(policy: LoadedPolicy, *, reports_dir: Path) -> Champion:
    """Verify this run's attestation with the committed key, require the verdict, promote.

    Refuses (DeployRefused) a run whose verdict is missing or not PASSED, an attestation that
    does not verify under the committed release key, and one the statement marks as signed by
    a development key. No ``--key`` here: only the committed key can promote.
    """
    try:
        attestation = verify_project(policy)
    except AttestationError as err:
        raise DeployRefused(f"refused: {err}") from err
    if attestation.predicate.get("git", {}).get("dirty") is not False:
        msg = (
            f"refused: {attestation.envelope_path} was built from a work tree with uncommitted "
            "changes (or records no git state); commit them and run the gates again"
        )
        raise DeployRefused(msg)
    if attestation.signer_kind != SIGNER_RELEASE:
        msg = (
            f"refused: {attestation.envelope_path} says it was signed by a "
            f"{attestation.signer_kind} key; only the release key can deploy"
        )
        raise DeployRefused(msg)
    verdict = reports_dir / f"{VERDICT.name}.json"
    try:
        result = GateResult.from_dict(json.loads(verdict.read_text(encoding="utf-8")))
    except FileNotFoundError:
        msg = f"refused: {verdict}: no verdict; run the whole chain ('python -m gates run') first"
        raise DeployRefused(msg) from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, ValueError, TypeError) as err:
        msg = f"refused: {verdict}: unparsable verdict ({type(err).__name__})"
        raise DeployRefused(msg) from err
    if result.status is not Status.PASSED:
        msg = f"refused: {verdict}: the verdict is {result.status.value}: {result.summary}"
        raise DeployRefused(msg)
    if result.run_id != attestation.run_id:
        msg = (
            f"refused: {verdict}: the verdict is of run {result.run_id}, the attestation of run "
            f"{attestation.run_id}"
        )
        raise DeployRefused(msg)
    try:
        return registry_for(policy, trusted=attestation.signer).promote(attestation)
    except RegistryError as err:
        raise DeployRefused(f"refused: {err}") from err
