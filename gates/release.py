"""Release keys and verification for the CLI: which key signs, which key is trusted, keygen, verify.

The trusted key is always the committed public key named in policy ([release].public_key)
unless the caller passes another one explicitly; nothing in an envelope chooses its own key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gates.base import UNPARSABLE_REPORT, GateError, GateResult, Status
from gates.errors import GatesError
from gates.registry import VERDICT, checked_before
from pipeline import promotion, verify
from pipeline.attestation import (
    ENVELOPE_FILE,
    SIGNER_RELEASE,
    AttestationError,
    VerifiedAttestation,
)
from pipeline.champion import Champion, ModelRegistry, RegistryError, Rotation
from pipeline.config import LoadedPolicy
from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_bytes, atomic_write_text, strict_json
from pipeline.keys import KeyProviderError, provider_for
from pipeline.keys.local import LocalProvider, env_name, read_env_pem
from pipeline.promotion import PromotionError, sign_promotion
from pipeline.signing import (
    Algorithm,
    Envelope,
    PublicKey,
    Signer,
    SigningError,
    SigningKey,
    Trusted,
    TrustedKeys,
    generate_key_pair,
    parse_envelope,
    private_key_from_pem,
    public_key_from_pem,
    read_private_key,
    required_keys,
)
from pipeline.verify import DEV_KEY_NAME, trusted_key

# The gate that writes the attestation; every gate registered before it must be recorded.
ATTESTING_GATE = "artifacts"


@dataclass(frozen=True)
class KeyChoice:
    """The keys a run signs with (one per required algorithm), and a sentence saying why."""

    signers: tuple[Signer, ...]
    note: str

    @property
    def key(self) -> Signer:
        """The primary signer (the first algorithm [release].signatures names)."""
        return self.signers[0]

    @property
    def release(self) -> bool:
        """True when every signer is a release key."""
        return all(signer.release for signer in self.signers)


def signing_key(policy: LoadedPolicy) -> KeyChoice:
    """The release keys from the key service or the environment / key file, else development keys.

    One signer per algorithm in [release].signatures: the algorithm [keys].provider signs with
    comes from that service (its private key never leaves it), every other one from the local
    environment. A configured key that is not the committed release key of its algorithm is an
    error, not a quiet fallback: it would sign models nobody can deploy. So is a hybrid with
    only some of its keys configured.
    """
    release = policy.policy.release
    try:
        provider = provider_for(policy)
        local = (
            provider if isinstance(provider, LocalProvider) else LocalProvider.from_policy(policy)
        )
        if provider.name != "local" and provider.algorithm not in release.signatures:
            msg = (
                f"[keys].provider {provider.name} signs {provider.algorithm}, which "
                f"[release].signatures {list(release.signatures)} does not list"
            )
            raise GateError(msg)
        found: list[Signer | None] = [
            provider.signer() if provider.algorithm == algorithm else local.signer_for(algorithm)
            for algorithm in release.signatures
        ]
        configured = [s for s in found if s is not None]
        if not configured:
            return _dev_keys(policy)
        if len(configured) != len(found):
            absent = [a for a, s in zip(release.signatures, found, strict=True) if s is None]
            msg = (
                f"no release key for {absent} (set "
                f"{', '.join('$' + env_name(release.private_key_env, a) for a in absent)}): "
                f"[release].signatures requires {list(release.signatures)}, and a hybrid "
                "signature is all of them or none"
            )
            raise GateError(msg)
        committed = required_keys(trusted_key(policy))
        for signer, expected in zip(configured, committed, strict=True):
            if signer.public.keyid != expected.keyid:
                msg = (
                    f"{signer.source}: the configured {expected.algorithm} signing key (key id "
                    f"{signer.public.keyid[:12]}...) is not the release key {expected.source} "
                    f"({expected.keyid[:12]}...); fix [release] / [keys] in policy.toml or the secret"
                )
                raise GateError(msg)
    except (SigningError, KeyProviderError) as err:
        raise GateError(str(err)) from err
    names = ", ".join(
        f"{s.public.algorithm} {s.public.keyid[:12]}... from {s.source}" for s in configured
    )
    return KeyChoice(tuple(configured), f"release key(s) {names}")


def _dev_keys(policy: LoadedPolicy) -> KeyChoice:
    release = policy.policy.release
    if not release.allow_dev_key:
        msg = (
            f"no release signing key: set ${release.private_key_env} or [release].private_key_file "
            "or a key service in [keys] (policy.toml [release].allow_dev_key is false, so no "
            "development key is used)"
        )
        raise GateError(msg)
    keys = [_dev_key(policy, algorithm) for algorithm in release.signatures]
    names = ", ".join(
        f"{k.public.algorithm} {k.public.keyid[:12]}... from {k.source}" for k in keys
    )
    return KeyChoice(
        tuple(keys),
        f"DEVELOPMENT key(s) {names} (not the release key: verify and deploy refuse this model)",
    )


def _dev_key(policy: LoadedPolicy, algorithm: Algorithm) -> SigningKey:
    release = policy.policy.release
    folder = policy.resolve(release.dev_key_dir)
    stem = DEV_KEY_NAME if algorithm == "ed25519" else f"{DEV_KEY_NAME}-{algorithm}"
    private, public = folder / f"{stem}.key", folder / f"{stem}.pub"
    if not private.exists():
        generate_key_pair(private_path=private, public_path=public, algorithm=algorithm)
    if not (folder / ".gitignore").exists():
        # Keep the folder out of git even where .gitignore was not copied along.
        atomic_write_text(folder / ".gitignore", "*\n")
    key = read_private_key(private, release=False, algorithm=algorithm)
    if not public.exists():
        # A run killed between writing the two halves: the public one follows from the private.
        atomic_write_bytes(public, key.public.pem())
    return key


def keygen(*, private_path: Path, public_path: Path, algorithm: Algorithm = "ed25519") -> PublicKey:
    """Create a release key pair (private key mode 0600); refuses to overwrite."""
    if public_path.exists() or public_path.is_symlink():
        # Every clone of the project carries its trusted key: say what replacing it means.
        msg = (
            f"{public_path}: already exists; refusing to overwrite a trusted key. To adopt or "
            "rotate the release key, move it away in a reviewed commit first (git rm or git mv): "
            "models signed with the key it replaces, the champion among them, stop verifying "
            "(docs/keys.md 'Adopting: your release key' and 'Rotating the release key')"
        )
        raise SigningError(msg)
    return generate_key_pair(
        private_path=private_path, public_path=public_path, algorithm=algorithm
    )


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
    policy: LoadedPolicy, *, trusted: Trusted, require_current_gates: bool = True
) -> ModelRegistry:
    """The policy's model registry, trusting ``trusted`` only.

    With ``require_current_gates`` every gate registered today must be recorded in a version's
    statement (deploy, verify). The champion comparison passes False: a champion promoted
    before a gate was added stays comparable, while every verdict it records must still be
    PASSED and its signature and bytes must still verify.
    """
    required = required_gates() if require_current_gates else ()
    return verify.registry_for(policy, trusted=trusted, required_gates=required)


# What ``registry head --require-pin`` (the generated deploy jobs' first step) says without a pin.
UNPINNED = (
    f"${promotion.HEAD_ENV} is unset or empty: the deploy job reads the registry only under the "
    "head pinned in the CI system's protected settings (docs/ci.md 'The registry head'); "
    f"for a registry with no audit log yet, pin 0:{promotion.GENESIS}"
)


def registry_pin() -> str | None:
    """``$GATES_REGISTRY_HEAD``, None when unset or empty (``pipeline.promotion.pinned_head``)."""
    return promotion.pinned_head()


def verified_champion(policy: LoadedPolicy) -> Champion | None:
    """The registry's champion verified as every reader verifies it; None when none was promoted.

    A registry folder holding a file git tracks is refused first (``promotion.refuse_committed``).
    The audit log is read next, so one cut (or deleted with the pointer) behind
    ``$GATES_REGISTRY_HEAD`` is refused, never taken for a registry that never had a champion;
    with release managers the log names the champion even when the pointer is gone. Raises
    PipelineError (the pin, the chain, a signature, a digest, a revocation, an unreadable
    trusted key) or OSError (the registry unreadable): never "no champion" for those.
    """
    from pipeline.champion import POINTER_FILE  # noqa: PLC0415

    registry = policy.resolve(policy.policy.release.registry_dir)
    promotion.refuse_committed(registry, policy.base_dir)
    promotion.read_events(registry)
    if not any(
        p.exists() or p.is_symlink()
        for p in (registry / POINTER_FILE, registry / promotion.AUDIT_FILE)
    ):
        return None
    trusted = trusted_key(policy)
    return registry_for(policy, trusted=trusted, require_current_gates=False).champion()


def registry_head(policy: LoadedPolicy) -> str:
    """The registry audit log's head, ``N:SHA256``, its chain checked (DeployRefused if broken).

    Pin it outside the registry as ``$GATES_REGISTRY_HEAD`` (the deploy's environment): every
    read then refuses a log cut below it or replaced (``pipeline.promotion``).
    """
    registry = policy.resolve(policy.policy.release.registry_dir)
    try:
        # The deploy job's first step: a registry the checkout brings stops it before the
        # promotion and the image that copies the folder.
        promotion.refuse_committed(registry, policy.base_dir)
        return promotion.head(promotion.read_events(registry))
    except PromotionError as err:
        raise DeployRefused(f"refused: {err}") from None


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
        # What the pointer is before this deploy decides anything: if another deploy switches
        # it meanwhile, this one is refused rather than overwriting the other's champion.
        state = registry_for(policy, trusted=trusted_key(policy)).pointer_state()
        attestation = verify_project(policy)
    except (AttestationError, RegistryError) as err:
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
    except UNPARSABLE_REPORT as err:
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
        registry = registry_for(policy, trusted=attestation.signer)
        promotion = None
        if registry.promoters:
            promotion = _sign_promotion(policy, registry, attestation)
        return registry.promote(attestation, promotion=promotion, expect_state=state)
    except (RegistryError, SigningError) as err:
        raise DeployRefused(f"refused: {err}") from err


def _sign_promotion(
    policy: LoadedPolicy, registry: ModelRegistry, attestation: VerifiedAttestation
) -> Envelope:
    """The release manager's signature over this promotion, with the key in $promoter_key_env."""
    name = policy.policy.roles.promoter_key_env
    pem = read_env_pem(name)
    if not pem:
        msg = (
            f"refused: [roles].promoters is set: only a release manager may promote; set ${name} "
            "to a release manager's private key"
        )
        raise DeployRefused(msg)
    key = private_key_from_pem(pem.encode("utf-8"), source=f"${name}", release=True, algorithm=None)
    expected = registry.promotion_for(attestation, registry.version_name(attestation))
    return sign_promotion(expected, key=key)


def revoke(policy: LoadedPolicy, version: str) -> str | None:
    """Revoke a registry version (signed by the release manager in $promoter_key_env when
    [roles].promoters is set); DeployRefused when refused."""
    from pipeline.promotion import REVOKED_STAGE, Promotion  # noqa: PLC0415

    try:
        registry = registry_for(policy, trusted=trusted_key(policy))
        signature = None
        if registry.promoters:
            name = policy.policy.roles.promoter_key_env
            pem = read_env_pem(name)
            if not pem:
                msg = f"refused: [roles].promoters is set: only a release manager may revoke; set ${name}"
                raise DeployRefused(msg)
            key = private_key_from_pem(
                pem.encode("utf-8"), source=f"${name}", release=True, algorithm=None
            )
            root = registry.path / "versions" / version
            found = list(root.glob(f"*/{ENVELOPE_FILE}")) if root.is_dir() else []
            if len(found) != 1:
                msg = f"refused: {root}: no registry version {version!r} to revoke"
                raise DeployRefused(msg)
            payload = parse_envelope(found[0].read_bytes(), source=str(found[0])).payload
            try:  # strict, as every reader of a signed statement: nothing is signed from less
                statement = strict_json(payload)
                predicate = statement.get("predicate", {})
                model = predicate.get("model", {})
                run_id = predicate.get("run_id", "")
            except (ValueError, RecursionError, AttributeError) as err:
                msg = f"refused: {found[0]}: the signed statement is not a strict JSON statement: {err}"
                raise DeployRefused(msg) from None
            expected = Promotion(
                str(model.get("sha256", "")) if isinstance(model, dict) else "",
                str(run_id),
                REVOKED_STAGE,
                version,
            )
            signature = sign_promotion(expected, key=key)
        return registry.revoke(version, signature=signature)
    except (RegistryError, SigningError, AttestationError) as err:
        raise DeployRefused(f"refused: {err}") from err


def rollback(policy: LoadedPolicy, version: str | None = None) -> tuple[str, str, str | None]:
    """Make the previous promoted, non-revoked version (or ``version``) the champion again.

    Signed by the release manager in $promoter_key_env when [roles].promoters is set, exactly
    as a promotion: over the version's model, run, stage and version, and the champion it
    rolls back from. Returns (version, rolled back from, manager); DeployRefused when refused.
    """
    try:
        registry = registry_for(policy, trusted=trusted_key(policy))
        plan = registry.rollback_plan(version)
        signature = None
        if registry.promoters:
            name = policy.policy.roles.promoter_key_env
            pem = read_env_pem(name)
            if not pem:
                msg = (
                    "refused: [roles].promoters is set: only a release manager may roll back; "
                    f"set ${name} to a release manager's private key"
                )
                raise DeployRefused(msg)
            key = private_key_from_pem(
                pem.encode("utf-8"), source=f"${name}", release=True, algorithm=None
            )
            signature = sign_promotion(plan.expected, key=key)
        signer = registry.rollback(plan, signature=signature)
    except (RegistryError, SigningError, AttestationError) as err:
        raise DeployRefused(f"refused: {err}") from err
    return plan.version, plan.rolled_back_from, signer


# Where ``registry rotate`` reads the old release public key (PEM) of each algorithm: the deploy
# job's environment (a protected CI variable), never the tree a pull request can edit.
ROTATE_FROM_ENV = "GATES_ROTATE_FROM"


def rotate_registry(policy: LoadedPolicy) -> Rotation:
    """Re-sign every registry version signed by the old release key with the new one.

    The new key is the committed ``[release].public_key`` (and ``public_keys``) with its private
    half configured as for signing (``signing_key``: the secret or the key service; a
    development key is refused). The old key of each algorithm is the public PEM in
    ``$GATES_ROTATE_FROM`` (``$GATES_ROTATE_FROM_ML_DSA_65``, ...), an algorithm without one
    keeping its committed key. Nothing in the tree or the registry names the old key: a pull
    request that commits a key as "old" or "retired" changes nothing. DeployRefused when
    refused; nothing is re-signed unless every version verifies under one of the two keys.
    """
    release_policy = policy.policy.release
    try:
        choice = signing_key(policy)
    except GateError as err:
        raise DeployRefused(f"refused: {err}") from None
    if not choice.release:
        msg = (
            f"refused: no release signing key for the new key {release_policy.public_key} (set "
            f"${release_policy.private_key_env} or a key service in [keys]): re-signing the "
            "registry needs the new release key's private half; a development key is never used"
        )
        raise DeployRefused(msg)
    try:
        new = trusted_key(policy)
        old_keys = []
        named = []
        for key in required_keys(new):
            name = env_name(ROTATE_FROM_ENV, key.algorithm)
            pem = read_env_pem(name)
            if pem:
                named.append(name)
                old_keys.append(
                    public_key_from_pem(
                        pem.encode("utf-8"), source=f"${name}", algorithm=key.algorithm
                    )
                )
            else:
                old_keys.append(key)
    except SigningError as err:
        raise DeployRefused(f"refused: {err}") from None
    if not named:
        msg = (
            f"refused: ${ROTATE_FROM_ENV} is unset or empty: set it (in the deploy job's "
            "protected environment, never from the tree) to the old release public key's PEM, "
            "the key the registry's versions were signed with"
        )
        raise DeployRefused(msg)
    if registry_pin() is None:
        # Without a pin every audit-log line counts, and whoever writes the registry's storage
        # and holds the leaked old key (the usual reason to rotate) could append a promotion of
        # a version of their own and have it re-signed under the new key (red team 16).
        msg = (
            "refused: $GATES_REGISTRY_HEAD is unset or empty: a rotation re-signs only the "
            "versions the audit log recorded up to the pinned head; set it (in the deploy job's "
            "protected environment) to the head `python -m gates registry head` printed when "
            "the registry was last trusted"
        )
        raise DeployRefused(msg)
    old: Trusted = old_keys[0] if len(old_keys) == 1 else TrustedKeys(tuple(old_keys))
    try:
        registry = registry_for(policy, trusted=new, require_current_gates=False)
        return registry.rotate(old=old, signers=choice.signers)
    except (RegistryError, SigningError, PipelineError) as err:
        raise DeployRefused(f"refused: {err}") from err
