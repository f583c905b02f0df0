"""Verify a signed model before anything uses it: this run's attestation, or the champion's.

The one place ``predict``, ``verify``, ``deploy`` and the champion comparison get a verified
attestation from. Which gates a statement must record is the caller's to say
(``required_gates``): the gates package passes the gates registered today; the pipeline knows
no gate names. Whatever the list, every gate the statement records must be PASSED, the
signature must verify under the trusted key, every subject must match the bytes on disk, and
the model file must be exactly a skops archive of reviewed types.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from pipeline.attestation import (
    ENVELOPE_FILE,
    AttestationError,
    VerifiedAttestation,
    verify_bundle,
)
from pipeline.champion import ModelRegistry, RegistryError
from pipeline.config import LoadedPolicy
from pipeline.errors import ModelError
from pipeline.keys import KeyProvider, provider_for
from pipeline.persist import audit_attested
from pipeline.promotion import PromotionError, refuse_committed
from pipeline.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    SigningError,
    Trusted,
    TrustedKeys,
    load_public_key,
    parse_envelope,
    private_key_from_pem,
    public_key_from_pem,
    verify_envelope,
)

# The local development key pair is <[release].dev_key_dir>/dev-signing.{key,pub}.
DEV_KEY_NAME = "dev-signing"
_MAX_KEY_BYTES = 64 * 1024
_MAX_ENVELOPE_BYTES = 64 * 1024 * 1024


def _small_regular_file(path: Path, *, limit: int, private: bool = False) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (no symlink) of at most ``limit`` bytes.

    ``private``: also only when this user owns it and nobody else may read it (mode 0600, as
    ``generate_key_pair`` writes it; git never checks a file out so).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        if private and (info.st_mode & 0o077 or info.st_uid != os.getuid()):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(limit + 1)[:limit]
    except OSError:
        return None
    finally:
        os.close(fd)


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
    try:
        verified = verify_bundle(
            path, root=policy.base_dir, trusted=trusted, required_gates=required_gates
        )
    except AttestationError as err:
        raise _dev_key_refusal(policy, path, trusted) or err from None
    audit_signed_model(verified)
    return verified


def dev_public_key_path(policy: LoadedPolicy) -> Path:
    """Where a local run keeps the development public key."""
    return policy.resolve(policy.policy.release.dev_key_dir) / f"{DEV_KEY_NAME}.pub"


def _dev_key_refusal(policy: LoadedPolicy, path: Path, trusted: Trusted) -> AttestationError | None:
    """The refusal to give when the envelope is signed, intact, by the local development key.

    Only the wording changes: the statement is still refused. A signature that verifies under
    neither key keeps the tamper message ("changed after signing, or it was signed by another key").
    """
    dev_path = dev_public_key_path(policy)
    # Both files only as small regular files, never through a symlink: a tree may plant
    # /dev/zero or a FIFO under either name, and this is only about the wording.
    key_bytes = _small_regular_file(dev_path, limit=_MAX_KEY_BYTES)
    envelope_bytes = _small_regular_file(path, limit=_MAX_ENVELOPE_BYTES)
    # The key is "the local development key" only when its private half was made here: a
    # tree can commit a public key (and a private one, which git checks out readable by others).
    private_bytes = _small_regular_file(
        dev_path.with_suffix(".key"), limit=_MAX_KEY_BYTES, private=True
    )
    if key_bytes is None or envelope_bytes is None or private_bytes is None:
        return None
    try:
        dev = public_key_from_pem(key_bytes, source=str(dev_path))
        if dev.keyid == trusted.keyid:
            return None
        made_here = private_key_from_pem(private_bytes, source=str(dev_path), release=False)
        if made_here.public.keyid != dev.keyid:
            return None
        envelope = parse_envelope(envelope_bytes, source=str(path))
        verify_envelope(envelope, trusted=dev, payload_type=IN_TOTO_PAYLOAD_TYPE, source=str(path))
    except SigningError:
        return None
    shown = (
        dev_path.relative_to(policy.base_dir)
        if dev_path.is_relative_to(policy.base_dir)
        else dev_path
    )
    msg = (
        f"{path}: refused: signed by the local development key {dev.keyid[:12]}... ({shown}), "
        f"not by the trusted key {trusted.keyid[:12]}... ({trusted.source}); the statement is "
        f"intact. For a model you trained on this machine, pass --key {shown} "
        "('python -m gates verify --key ...', 'python -m gates serve --key ...', "
        "'python -m pipeline predict --key ...'); deploy "
        f"accepts only the release key [release].public_key (sign with "
        f"${policy.policy.release.private_key_env} to make a deployable model)"
    )
    return AttestationError(msg)


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
    """The policy's model registry, trusting ``trusted`` only, requiring ``required_gates``.

    RegistryError when git tracks a file in the registry folder (``promotion.refuse_committed``):
    every reader through here (verify and serve ``--champion``, deploy, revoke, rollback, the
    cv and risk gates) refuses a registry the pull request brings."""
    roles = policy.policy.roles
    folder = policy.resolve(policy.policy.release.registry_dir)
    try:
        refuse_committed(folder, policy.base_dir)
    except PromotionError as err:
        raise RegistryError(str(err)) from None
    return ModelRegistry(
        policy.resolve(policy.policy.release.registry_dir),
        trusted=trusted,
        required_gates=required_gates,
        promoters={
            name: load_public_key(policy.resolve(path), algorithm=None)
            for name, path in roles.promoters.items()
        },
        stage=roles.stage,
        encryption=registry_encryption(policy),
    )


def registry_encryption(policy: LoadedPolicy) -> KeyProvider | None:
    """The key provider registry versions are encrypted with; None when they are stored plain."""
    encryption = policy.policy.encryption
    if encryption is None or not encryption.registry:
        return None
    return provider_for(policy)


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
