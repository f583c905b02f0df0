"""Verify a signed model before anything uses it: this run's attestation, or the champion's.

The one place ``predict``, ``verify``, ``deploy`` and the champion comparison get a verified
attestation from. Which gates a statement must record is the caller's to say
(``required_gates``): the gates package passes the gates registered today; the pipeline knows
no gate names. Whatever the list, every gate the statement records must be PASSED, the
signature must verify under the trusted key, every subject must match the bytes on disk, and
the model file must be exactly a skops archive of reviewed types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.attestation import ENVELOPE_FILE, AttestationError, VerifiedAttestation, verify_bundle
from pipeline.champion import ModelRegistry, RegistryError
from pipeline.config import LoadedPolicy
from pipeline.errors import ModelError
from pipeline.persist import audit_attested
from pipeline.signing import Trusted, TrustedKeys, load_public_key


def trusted_key(policy: LoadedPolicy, *, override: Path | None = None) -> Trusted:
    """The committed release public keys, one per algorithm [release].signatures requires.

    ``override`` replaces the first (primary) one. SigningError when a key is unreadable or not
    of its algorithm. Nothing in an envelope chooses a key or an algorithm.
    """
    release = policy.policy.release
    keys = []
    for index, algorithm in enumerate(release.signatures):
        path = (
            override
            if override and index == 0
            else policy.resolve(release.public_key_for(algorithm))
        )
        keys.append(load_public_key(path, algorithm=algorithm))
    return keys[0] if len(keys) == 1 else TrustedKeys(tuple(keys))


def verify_project(
    policy: LoadedPolicy,
    *,
    required_gates: Sequence[str],
    envelope: Path | None = None,
    key: Path | None = None,
) -> VerifiedAttestation:
    """Verify the project's attestation and its signed model file, with the trusted key.

    The signature, every subject's bytes and verdicts first (``verify_bundle``), then the model
    itself (``audit_signed_model``).
    """
    trusted = trusted_key(policy, override=key)
    path = envelope or policy.resolve(policy.policy.run.artifacts_dir) / ENVELOPE_FILE
    verified = verify_bundle(
        path, root=policy.base_dir, trusted=trusted, required_gates=required_gates
    )
    audit_signed_model(verified)
    return verified


def audit_signed_model(verified: VerifiedAttestation) -> None:
    """Refuse (AttestationError) a signed model that is not exactly a skops archive of reviewed types.

    A valid signature is not enough: a signed pickle, or a pickle with a zip behind it, would
    be promoted as it is. The audit builds no object from the file.
    """
    try:
        audit_attested(verified)
    except ModelError as err:
        raise AttestationError(str(err)) from err


def registry_for(
    policy: LoadedPolicy, *, trusted: Trusted, required_gates: Sequence[str] = ()
) -> ModelRegistry:
    """The policy's model registry, trusting ``trusted`` only, requiring ``required_gates``."""
    roles = policy.policy.roles
    return ModelRegistry(
        policy.resolve(policy.policy.release.registry_dir),
        trusted=trusted,
        required_gates=required_gates,
        promoters={
            name: load_public_key(policy.resolve(path), algorithm=None)
            for name, path in roles.promoters.items()
        },
        stage=roles.stage,
    )


def verify_champion(
    policy: LoadedPolicy, *, required_gates: Sequence[str], key: Path | None = None
) -> VerifiedAttestation:
    """Verify the registry's current champion; AttestationError when there is none or it fails."""
    trusted = trusted_key(policy, override=key)
    try:
        champion = registry_for(policy, trusted=trusted, required_gates=required_gates).champion()
    except RegistryError as err:
        raise AttestationError(f"refused: {err}") from err
    if champion is None:
        registry = policy.policy.release.registry_dir
        msg = f"refused: no champion in {registry}/ (promote one with 'python -m gates deploy')"
        raise AttestationError(msg)
    return champion.attestation
