"""A file-based model registry: verified versions, and a ``champion`` pointer switched atomically.

Layout::

    registry/
      champion                       {"version": ..., "envelope_sha256": ...}, replaced atomically
      versions/<run id>-<model digest>/
        artifacts/attestation.intoto.json   the DSSE envelope, as signed
        artifacts/...                       model, manifest, statement copy
        data/..., policy.toml               every other subject, at its attested path

With ``[encryption]`` (``registry = true``) every file of a version is stored encrypted
(``pipeline.atrest``, AES-256-GCM), bound to its name ``registry:versions/<version>/<path>``:
verification decrypts in memory and checks the signed digests over the plaintext. The pointer
(which records the plaintext envelope's digest) and the audit log stay plain: they hold names,
digests and signatures, not the model or the data.

A version holds every subject of its statement at the same relative path as in the project,
so the one verifier checks a version exactly as it checks a fresh run. Promotion copies into a
staging folder, verifies the copy, renames it into place, and only then replaces the pointer;
a crash at any step leaves the previous champion's pointer and folder untouched. Promotions
hold an exclusive ``fcntl`` lock on ``registry/.lock``, so two never share a staging sweep,
and the next promotion removes what a killed one left (staging folders, the pointer's temp
file); a version folder that was renamed into place before the crash is verified and reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.atrest import EncryptionError, decrypt_bytes, encrypt_bytes
from pipeline.attestation import (
    ENVELOPE_FILE,
    STATEMENT_FILE,
    AttestationError,
    VerifiedAttestation,
    verify_bundle,
)
from pipeline.errors import ModelError, PipelineError
from pipeline.fsio import (
    Decoder,
    atomic_write_bytes,
    atomic_write_json,
    fsync_dir,
    read_regular,
    sha256_bytes,
    strict_json,
    temp_files,
    write_all,
)
from pipeline.keys.provider import KeyProvider
from pipeline.persist import audit_attested
from pipeline.promotion import (
    AUDIT_FILE,
    REVOKED_STAGE,
    ROTATE,
    Move,
    Promotion,
    PromotionError,
    append_event,
    envelope_digests,
    moves,
    read_events,
    revocation,
    verify_move,
    verify_promotion,
)
from pipeline.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    PublicKey,
    Signer,
    Trusted,
    parse_envelope,
    sign_envelope,
)

POINTER_FILE = "champion"
# A pointer is one small JSON object (version, bundle, digest).
MAX_POINTER_BYTES = 64 << 10
VERSIONS_DIR = "versions"
LOCK_FILE = ".lock"
_STAGING_PREFIX = ".staging-"
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RegistryError(PipelineError):
    """The registry is unreadable, or a version in it does not verify."""


@dataclass(frozen=True)
class Champion:
    """The current champion: its version name and its verified attestation."""

    version: str
    attestation: VerifiedAttestation


@dataclass(frozen=True)
class RollbackPlan:
    """A rollback to ``version`` from the champion ``rolled_back_from``, and what is signed."""

    version: str
    rolled_back_from: str
    bundle: str
    expected: Promotion
    verified: VerifiedAttestation


@dataclass(frozen=True)
class Rotation:
    """What ``rotate`` did: versions re-signed now, versions already under the new key, the
    audit log line it appended (None: the log already recorded every envelope)."""

    resigned: tuple[str, ...]
    already: tuple[str, ...]
    # Signed by the old key but never recorded by the audit log: left as they are.
    skipped: tuple[str, ...]
    logged: bool


class ModelRegistry:
    """Promote verified bundles and read the champion, verifying it on every read."""

    def __init__(
        self,
        path: Path,
        *,
        trusted: Trusted,
        required_gates: Sequence[str] = (),
        promoters: Mapping[str, PublicKey] | None = None,
        stage: str = "production",
        encryption: KeyProvider | None = None,
    ) -> None:
        self.path = path
        self.trusted = trusted
        self.required_gates = tuple(required_gates)
        # Release managers (name -> key): when set, promotion needs one's signature.
        self.promoters = dict(promoters or {})
        self.stage = stage
        # [encryption] registry = true: versions are written and read encrypted with its keys.
        self.encryption = encryption

    def promotion_for(self, verified: VerifiedAttestation, version: str) -> Promotion:
        """What a release manager signs to promote ``verified`` as ``version``."""
        model = verified.predicate.get("model", {})
        return Promotion(str(model.get("sha256", "")), verified.run_id, self.stage, version)

    @property
    def pointer(self) -> Path:
        """The file naming the current champion."""
        return self.path / POINTER_FILE

    def _pointer_bytes(self) -> bytes:
        """The pointer's bytes: a small regular file, never read through a symlink, FIFO or
        device (a registry the checkout brings held a symlink to a FIFO that hung the cv gate).
        OSError (FileNotFoundError when absent) otherwise."""
        return read_regular(self.pointer, limit=MAX_POINTER_BYTES)

    def has_champion(self) -> bool:
        """Whether a champion was promoted (without verifying it): a pointer exists, or, with
        release managers, the audit log records a promote or rollback (the log names the
        champion; a deleted pointer does not make the registry championless). A broken log, or
        one behind the head ``$GATES_REGISTRY_HEAD`` pins, counts as a champion that
        ``champion`` then refuses, naming the line: never as an empty registry."""
        try:
            history = moves(self.path)
        except PromotionError:
            return True
        if self.pointer.exists() or self.pointer.is_symlink():
            return True
        return bool(self.promoters and history)

    def champion(self) -> Champion | None:
        """The verified champion, ``None`` when none was promoted; RegistryError when it fails.

        With release managers configured the audit log is the commit point: the champion is
        the version its last promote or rollback names (verified, and signed by a listed
        manager), and the pointer only caches it. A pointer that disagrees (a crash between the
        log line and the pointer, or a pointer moved back by hand) does not choose the model.
        """
        if not self.has_champion():
            return None
        try:
            read_events(self.path)
        except PromotionError as err:
            raise RegistryError(str(err)) from None
        envelope_sha256: str | None
        if self.promoters and not (self.pointer.exists() or self.pointer.is_symlink()):
            # No pointer to cache it: the log's last move names the champion (below).
            version, bundle, envelope_sha256 = "(pointer deleted)", "", None
        else:
            try:
                document = strict_json(self._pointer_bytes().decode("utf-8"))
                version = str(document["version"])
                envelope_sha256 = str(document["envelope_sha256"])
                bundle = str(document["bundle"])
            except (OSError, ValueError, RecursionError, KeyError, TypeError) as err:
                msg = f"{self.pointer}: champion pointer unreadable ({type(err).__name__}: {err})"
                raise RegistryError(msg) from None
        last = None
        if self.promoters:
            last = self._last_move(version)
            if last.version != version:
                version = last.version
                bundle, envelope_sha256 = self._recorded_bundle(last)
        verified = self._verify_version(version, bundle, envelope_sha256)
        try:
            revoked = revocation(self.path, version)
        except PromotionError as err:
            raise RegistryError(f"champion {version}: {err}") from None
        if revoked:
            msg = (
                f"champion {version} was revoked ({revoked}): it is not served or used; "
                "deploy another model or roll back ('python -m gates rollback')"
            )
            raise RegistryError(msg)
        if last is not None:
            try:
                verify_move(
                    last,
                    expected=self.promotion_for(verified, version),
                    promoters=self.promoters,
                )
            except PromotionError as err:
                raise RegistryError(f"champion {version}: {err}") from None
        return Champion(version, verified)

    def _last_move(self, version: str) -> Move:
        """The audit log's last promote or rollback (RegistryError when there is none)."""
        try:
            history = moves(self.path)
        except PromotionError as err:
            raise RegistryError(f"champion {version}: {err}") from None
        if not history:
            msg = (
                f"champion {version}: {self.path / AUDIT_FILE}: refused: no signed promotion of "
                f"version {version} in the audit log"
            )
            raise RegistryError(msg)
        return history[-1]

    def _recorded_bundle(self, move: Move) -> tuple[str, str | None]:
        """The bundle folder and envelope digest a move recorded (found on disk if it did not)."""
        bundle = move.event.get("bundle")
        digest = move.event.get("envelope_sha256")
        try:
            # A rotation since the move re-signed the version: its envelope is the one it recorded.
            digest = envelope_digests(self.path).get(move.version, digest)
        except PromotionError as err:
            raise RegistryError(str(err)) from None
        if isinstance(bundle, str) and bundle:
            return bundle, digest if isinstance(digest, str) else None
        root = self.path / VERSIONS_DIR / move.version
        found = sorted(root.glob(f"*/{ENVELOPE_FILE}")) if _VERSION.fullmatch(move.version) else []
        if len(found) != 1:
            msg = f"{move.source}: names version {move.version!r}, which is not in {root.parent}"
            raise RegistryError(msg)
        return found[0].parent.name, None

    def _verify_version(
        self, version: str, bundle: str, envelope_sha256: str | None
    ) -> VerifiedAttestation:
        if not _VERSION.fullmatch(version):
            msg = f"{self.pointer}: version name {version!r} is not a plain folder name"
            raise RegistryError(msg)
        root = self.path / VERSIONS_DIR / version
        envelope = root / bundle / ENVELOPE_FILE
        try:
            verified = self._verify(envelope, root, version)
        except (AttestationError, ModelError) as err:
            msg = f"registry version {version} does not verify: {err}"
            raise RegistryError(msg) from None
        if envelope_sha256 is not None and self._envelope_sha256(verified) != envelope_sha256:
            msg = f"{envelope}: not the envelope the champion pointer names"
            raise RegistryError(msg)
        return verified

    def version_name(self, source: VerifiedAttestation) -> str:
        """The registry version ``source`` is promoted as."""
        model_sha = str(source.predicate.get("model", {}).get("sha256", ""))[:12]
        return f"{source.run_id}-{model_sha}"

    def pointer_state(self) -> str:
        """A digest of the champion pointer as it is now ("absent" when there is none).

        A deploy reads it before it starts and passes it to ``promote``: if another promotion
        switched the pointer in between, this one is refused instead of silently overwriting it.
        """
        try:
            return sha256_bytes(self._pointer_bytes())
        except FileNotFoundError:
            return "absent"
        except OSError as err:
            msg = f"{self.pointer}: cannot read the champion pointer: {err.strerror or err}"
            raise RegistryError(msg) from None

    def promote(
        self,
        source: VerifiedAttestation,
        *,
        promotion: Envelope | None = None,
        expect_state: str | None = None,
    ) -> Champion:
        """Copy a verified bundle in, verify the copy, then switch the pointer atomically.

        With promoters configured, ``promotion`` must be a release manager's signature over this
        model, run, stage and version; it is checked before anything is copied, and recorded in
        the hash-chained audit log before the pointer moves.
        """
        model_sha = str(source.predicate.get("model", {}).get("sha256", ""))[:12]
        version = f"{source.run_id}-{model_sha}"
        bundle = str(source.predicate.get("bundle", ""))
        if not _VERSION.fullmatch(version) or not bundle:
            msg = (
                f"{source.envelope_path}: cannot name a registry version from run {source.run_id!r}"
            )
            raise RegistryError(msg)
        promoter = None
        if self.promoters:
            if promotion is None:
                msg = (
                    f"{self.path}: refused: [roles].promoters is set, so a promotion needs a "
                    "release manager's signature (none given)"
                )
                raise RegistryError(msg)
            try:
                promoter = verify_promotion(
                    promotion,
                    expected=self.promotion_for(source, version),
                    promoters=self.promoters,
                    source=f"promotion of {version}",
                )
            except PromotionError as err:
                raise RegistryError(str(err)) from None
        versions = self.path / VERSIONS_DIR
        versions.mkdir(parents=True, exist_ok=True)
        with _locked(self.path / LOCK_FILE):
            if expect_state is not None and self.pointer_state() != expect_state:
                msg = (
                    f"{self.pointer}: refused: another promotion landed while this one ran (the "
                    "champion pointer changed since this deploy started); nothing promoted: "
                    "check the new champion, then deploy again if this model should replace it"
                )
                raise RegistryError(msg)
            self._sweep(versions)
            final = versions / version
            if not final.exists():
                staging = versions / f"{_STAGING_PREFIX}{version}-{secrets.token_hex(4)}"
                try:
                    self._copy(source, staging, bundle)
                    # Verify the bytes that will stay, not the ones we copied from.
                    self._verify_staging(staging, bundle, version)
                    _fsync_tree(staging)
                    os.rename(staging, final)
                    fsync_dir(versions)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
            verified = self._verify_version(version, bundle, None)
            event = {
                "action": "promote",
                "version": version,
                "run_id": source.run_id,
                "model_sha256": str(source.predicate.get("model", {}).get("sha256", "")),
                "stage": self.stage,
                "promoter": promoter,
                "bundle": bundle,
                "envelope_sha256": self._envelope_sha256(verified),
            }
            try:
                append_event(self.path, event, promotion)
            except (PromotionError, OSError) as err:
                raise RegistryError(f"{self.path}: cannot append to the audit log: {err}") from None
            atomic_write_json(
                self.pointer,
                {
                    "version": version,
                    "bundle": bundle,
                    "envelope_sha256": self._envelope_sha256(verified),
                    "run_id": source.run_id,
                    "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
                    "keyid": self.trusted.keyid,
                },
            )
        return Champion(version, verified)

    def revoke(self, version: str, *, signature: Envelope | None = None) -> str | None:
        """Withdraw ``version``: append a revocation to the audit log; return the signer's name.

        With promoters configured, ``signature`` must be a release manager's over the version's
        model, run and version with stage ``revoked``. The version's files stay (the audit
        needs them); every read of it as champion is refused from now on.
        """
        if not _VERSION.fullmatch(version) or not (self.path / VERSIONS_DIR / version).is_dir():
            msg = f"{self.path / VERSIONS_DIR}: no registry version {version!r} to revoke"
            raise RegistryError(msg)
        signer = None
        if self.promoters:
            envelope = self.path / VERSIONS_DIR / version
            found = list(envelope.glob(f"*/{ENVELOPE_FILE}"))
            if signature is None or len(found) != 1:
                msg = f"{self.path}: refused: [roles].promoters is set, so a revocation needs a release manager's signature"
                raise RegistryError(msg)
            verified = self._verify(found[0], self.path / VERSIONS_DIR / version, version)
            model = verified.predicate.get("model", {})
            expected = Promotion(
                str(model.get("sha256", "")), verified.run_id, REVOKED_STAGE, version
            )
            try:
                signer = verify_promotion(
                    signature,
                    expected=expected,
                    promoters=self.promoters,
                    source=f"revocation of {version}",
                )
            except PromotionError as err:
                raise RegistryError(str(err)) from None
        with _locked(self.path / LOCK_FILE):
            event = {"action": "revoke", "version": version, "promoter": signer}
            try:
                append_event(self.path, event, signature)
            except (PromotionError, OSError) as err:
                raise RegistryError(f"{self.path}: cannot append to the audit log: {err}") from None
        return signer

    def current_version(self) -> str | None:
        """The champion's version without verifying it (None: nothing promoted yet).

        With release managers, the audit log's last promote or rollback; else the pointer. A
        revoked or broken champion still has a version: rollback moves away from it.
        """
        if self.promoters:
            try:
                history = moves(self.path)
            except PromotionError as err:
                raise RegistryError(str(err)) from None
            return history[-1].version if history else None
        if not self.has_champion():
            return None
        try:
            return str(strict_json(self._pointer_bytes().decode("utf-8"))["version"])
        except (OSError, ValueError, RecursionError, KeyError, TypeError) as err:
            msg = f"{self.pointer}: champion pointer unreadable ({type(err).__name__}: {err})"
            raise RegistryError(msg) from None

    def rollback_plan(self, version: str | None = None) -> RollbackPlan:
        """What ``rollback`` would do: the version it makes champion again, verified now.

        ``version`` None: the version promoted last before the current champion's promotion
        that is not revoked. Refused (RegistryError, one message): nothing promoted, nothing to
        roll back to, a version that does not exist, was never promoted, is the champion
        already, was revoked, or does not verify (signature, digests, every verdict PASSED).
        """
        log = self.path / AUDIT_FILE
        current = self.current_version()
        if current is None:
            msg = f"{self.path}: refused: nothing to roll back: no version was ever promoted"
            raise RegistryError(msg)
        try:
            history = moves(self.path)
        except PromotionError as err:
            raise RegistryError(str(err)) from None
        promoted: dict[str, int] = {}
        for index, move in enumerate(history):
            if move.action == "promote":
                promoted[move.version] = index
        if version is None:
            before = promoted.get(current, len(history))
            candidates = [
                v
                for v, index in sorted(promoted.items(), key=lambda item: item[1])
                if index < before and v != current and not self._revoked(v)
            ]
            if not candidates:
                msg = (
                    f"{log}: refused: nothing to roll back to: no version promoted before the "
                    f"champion {current} is left that was not revoked"
                )
                raise RegistryError(msg)
            version = candidates[-1]
        root = self.path / VERSIONS_DIR / version
        if not _VERSION.fullmatch(version) or not root.is_dir():
            msg = f"{self.path / VERSIONS_DIR}: refused: no registry version {version!r} to roll back to"
            raise RegistryError(msg)
        if version == current:
            msg = (
                f"{self.pointer}: refused: {version} is the champion already; nothing to roll back"
            )
            raise RegistryError(msg)
        if version not in promoted:
            msg = f"{log}: refused: version {version} was never promoted, so it cannot be rolled back to"
            raise RegistryError(msg)
        revoked = self._revoked(version)
        if revoked:
            msg = f"refused: version {version} was revoked ({revoked}); a revoked version is never served again"
            raise RegistryError(msg)
        found = sorted(root.glob(f"*/{ENVELOPE_FILE}"))
        if len(found) != 1:
            msg = f"{root}: refused: expected one attestation envelope in the version, found {len(found)}"
            raise RegistryError(msg)
        try:
            verified = self._verify(found[0], root, version)
        except (AttestationError, ModelError) as err:
            msg = f"refused: registry version {version} does not verify, so it cannot be rolled back to: {err}"
            raise RegistryError(msg) from None
        base = self.promotion_for(verified, version)
        expected = Promotion(
            base.model_sha256, base.run_id, base.stage, version, rolled_back_from=current
        )
        return RollbackPlan(version, current, found[0].parent.name, expected, verified)

    def rollback(self, plan: RollbackPlan, *, signature: Envelope | None = None) -> str | None:
        """Make ``plan.version`` the champion again; return the release manager's name.

        With promoters configured, ``signature`` must be a release manager's over
        ``plan.expected`` (this model, run, stage and version, rolled back from this champion).
        Under the registry lock the plan is made again: if the champion changed meanwhile,
        nothing is rolled back. The rollback is appended to the audit log (with promoters, the
        commit point), then the pointer is replaced atomically.
        """
        signer = None
        if self.promoters:
            if signature is None:
                msg = (
                    f"{self.path}: refused: [roles].promoters is set, so a rollback needs a "
                    "release manager's signature (none given)"
                )
                raise RegistryError(msg)
            try:
                signer = verify_promotion(
                    signature,
                    expected=plan.expected,
                    promoters=self.promoters,
                    source=f"rollback to {plan.version}",
                )
            except PromotionError as err:
                raise RegistryError(str(err)) from None
        (self.path / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)
        with _locked(self.path / LOCK_FILE):
            again = self.rollback_plan(plan.version)
            if again.rolled_back_from != plan.rolled_back_from:
                msg = (
                    f"{self.pointer}: refused: the champion changed while this rollback ran (now "
                    f"{again.rolled_back_from}, was {plan.rolled_back_from}); nothing rolled back"
                )
                raise RegistryError(msg)
            self._sweep(self.path / VERSIONS_DIR)
            verified = again.verified
            digest = self._envelope_sha256(verified)
            event = {
                "action": "rollback",
                "version": plan.version,
                "from": plan.rolled_back_from,
                "run_id": verified.run_id,
                "model_sha256": plan.expected.model_sha256,
                "stage": self.stage,
                "promoter": signer,
                "bundle": plan.bundle,
                "envelope_sha256": digest,
            }
            try:
                append_event(self.path, event, signature)
            except (PromotionError, OSError) as err:
                raise RegistryError(f"{self.path}: cannot append to the audit log: {err}") from None
            atomic_write_json(
                self.pointer,
                {
                    "version": plan.version,
                    "bundle": plan.bundle,
                    "envelope_sha256": digest,
                    "run_id": verified.run_id,
                    "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
                    "keyid": self.trusted.keyid,
                    "rolled_back_from": plan.rolled_back_from,
                },
            )
        return signer

    def rotate(self, *, old: Trusted, signers: Sequence[Signer]) -> Rotation:
        """Re-sign every version signed by ``old`` with ``signers`` (the trusted key's private
        halves), so the registry verifies under the new release key ``self.trusted``.

        Under the registry lock, in three steps, each recoverable by running it again:

        1. every version is verified whole (signature, every subject's bytes, every verdict
           PASSED, the model's audit) under the new key, else under ``old``; an envelope that
           verifies under ``old`` must be the one the audit log recorded for the version (one
           the log never recorded is left as it is, never re-signed: a leaked old key is the
           usual reason to rotate, and re-signing its planted version would launder it). One
           version that verifies under neither refuses the rotation before anything is written;
        2. each old envelope is replaced, atomically, by one over the same signed statement
           (byte for byte) signed by ``signers``, and the version verified again under the new
           key;
        3. one ``rotate`` event recording every version's new envelope digest is appended to
           the audit log (the commit point), then the champion pointer is rewritten.

        A kill between steps leaves versions signed by either key (a reader refuses any the
        log does not yet record), never a version signed by a third key; a temp file a kill
        left beside an envelope is removed first. ``old`` and the signers come from the
        caller (the deploy job's environment), never from the registry or the tree.
        """
        if not signers:
            raise RegistryError(f"{self.path}: refused: no release key to re-sign with")
        versions = self.path / VERSIONS_DIR
        versions.mkdir(parents=True, exist_ok=True)
        with _locked(self.path / LOCK_FILE):
            try:
                # Only what the pinned head vouches for: a line appended behind it by whoever
                # writes the storage (and holds a leaked old key) names nothing to re-sign.
                recorded = envelope_digests(self.path, pinned_only=True)
            except PromotionError as err:
                raise RegistryError(str(err)) from None
            self._sweep(versions)
            current, pending, already, skipped = self._rotation_plan(old, recorded)
            for version, envelope, verified in pending:
                payload = parse_envelope(
                    verified.read(envelope, envelope.read_bytes()), source=str(envelope)
                ).payload
                text = (
                    sign_envelope(payload, key=list(signers), payload_type=IN_TOTO_PAYLOAD_TYPE)
                    .to_json()
                    .encode("utf-8")
                )
                folder = versions / version
                if self.encryption is None:
                    atomic_write_bytes(envelope, text)
                else:
                    blob = encrypt_bytes(
                        text, name=_stored_name(folder, version, envelope), provider=self.encryption
                    )
                    atomic_write_bytes(envelope, blob, mode=0o600)
                try:
                    resigned = self._verify(envelope, folder, version)
                except (AttestationError, ModelError) as err:
                    msg = f"registry version {version} does not verify after re-signing: {err}"
                    raise RegistryError(msg) from None
                current[version] = self._envelope_sha256(resigned)
            # Only versions the log records: a digest of one it never recorded names nothing.
            changed = {v: d for v, d in current.items() if v in recorded and recorded[v] != d}
            if changed:
                event = {
                    "action": ROTATE,
                    "from_keyid": old.keyid,
                    "to_keyid": self.trusted.keyid,
                    "envelopes": changed,
                }
                try:
                    append_event(self.path, event, None)
                except (PromotionError, OSError) as err:
                    raise RegistryError(
                        f"{self.path}: cannot append to the audit log: {err}"
                    ) from None
            self._repoint(current)
        return Rotation(
            tuple(v for v, _, _ in pending), tuple(already), tuple(skipped), logged=bool(changed)
        )

    def _rotation_plan(
        self, old: Trusted, recorded: Mapping[str, str]
    ) -> tuple[dict[str, str], list[tuple[str, Path, VerifiedAttestation]], list[str], list[str]]:
        """Step 1 of ``rotate``: every version verified under the new key, else under ``old``
        and then the envelope the log recorded for it (a version the log never recorded is
        skipped, left signed by the old key only); RegistryError before anything is written."""
        versions = self.path / VERSIONS_DIR
        current: dict[str, str] = {}
        pending: list[tuple[str, Path, VerifiedAttestation]] = []
        already: list[str] = []
        skipped: list[str] = []
        for folder in sorted(versions.iterdir()):
            version = folder.name
            if not _VERSION.fullmatch(version) or not folder.is_dir() or folder.is_symlink():
                msg = f"{folder}: refused: not a registry version folder; nothing re-signed"
                raise RegistryError(msg)
            found = sorted(folder.glob(f"*/{ENVELOPE_FILE}"))
            if len(found) != 1:
                msg = (
                    f"{folder}: refused: expected one attestation envelope, found "
                    f"{len(found)}; nothing re-signed"
                )
                raise RegistryError(msg)
            envelope = found[0]
            for temp in temp_files(envelope):  # a killed rotation's half-written envelope
                temp.unlink()
            try:
                verified = self._verify(envelope, folder, version)
            except (AttestationError, ModelError):
                pass
            else:
                current[version] = self._envelope_sha256(verified)
                already.append(version)
                continue
            try:
                verified = self._verify_under(old, envelope, folder, version)
            except (AttestationError, ModelError) as err:
                msg = (
                    f"refused: registry version {version} verifies under neither the trusted "
                    f"key {self.trusted.keyid[:12]}... nor the old key {old.keyid[:12]}... "
                    f"({old.source}); nothing re-signed: {err}"
                )
                raise RegistryError(msg) from None
            digest = self._envelope_sha256(verified)
            if version not in recorded:
                # Never promoted (a promotion killed before its log line, or a folder planted
                # with a leaked old key): re-signing it would launder it under the new key.
                skipped.append(version)
                continue
            if recorded[version] != digest:
                msg = (
                    f"{envelope}: refused: signed by the old key, but not the envelope the "
                    f"audit log {self.path / AUDIT_FILE} recorded for {version} "
                    f"({recorded[version][:12]}..., found {digest[:12]}...); nothing re-signed"
                )
                raise RegistryError(msg)
            pending.append((version, envelope, verified))
        return current, pending, already, skipped

    def _repoint(self, current: Mapping[str, str]) -> None:
        """Rewrite the champion pointer to its version's re-signed envelope (under the lock)."""
        try:
            document = strict_json(self._pointer_bytes().decode("utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError, RecursionError) as err:
            msg = f"{self.pointer}: champion pointer unreadable ({type(err).__name__}: {err})"
            raise RegistryError(msg) from None
        if not isinstance(document, dict):
            raise RegistryError(f"{self.pointer}: champion pointer is not a JSON object")
        digest = current.get(str(document.get("version")))
        if digest is None or document.get("envelope_sha256") == digest:
            return
        document["envelope_sha256"] = digest
        document["keyid"] = self.trusted.keyid
        atomic_write_json(self.pointer, document)

    def _verify_under(
        self, trusted: Trusted, envelope: Path, root: Path, version: str
    ) -> VerifiedAttestation:
        """``_verify`` with another trusted key (the old one, during a rotation)."""
        verified = verify_bundle(
            envelope,
            root=root,
            trusted=trusted,
            required_gates=self.required_gates,
            decoder=self._decoder(root, version),
        )
        audit_attested(verified)
        return verified

    def _revoked(self, version: str) -> str | None:
        try:
            return revocation(self.path, version)
        except PromotionError as err:
            raise RegistryError(str(err)) from None

    def _verify_staging(self, staging: Path, bundle: str, version: str) -> None:
        try:
            self._verify(staging / bundle / ENVELOPE_FILE, staging, version)
        except (AttestationError, ModelError) as err:
            msg = f"the copy of {version} does not verify; nothing promoted: {err}"
            raise RegistryError(msg) from None

    def _verify(self, envelope: Path, root: Path, version: str) -> VerifiedAttestation:
        # The signature and the bytes, then the model itself: exactly a skops archive with
        # reviewed types, audited without building an object (a signed pickle never enters).
        verified = verify_bundle(
            envelope,
            root=root,
            trusted=self.trusted,
            required_gates=self.required_gates,
            decoder=self._decoder(root, version),
        )
        audit_attested(verified)
        return verified

    def _envelope_sha256(self, verified: VerifiedAttestation) -> str:
        """The digest of the envelope's plaintext (a ciphertext differs on every write)."""
        try:
            raw = verified.read(verified.envelope_path, verified.envelope_path.read_bytes())
        except (OSError, PipelineError) as err:
            raise RegistryError(f"{verified.envelope_path}: cannot be read: {err}") from None
        return sha256_bytes(raw)

    def _decoder(self, root: Path, version: str) -> Decoder | None:
        """Decrypt a file of ``version`` read from ``root`` (its staging folder or its own)."""
        provider = self.encryption
        if provider is None:
            return None

        def decode(path: Path, raw: bytes) -> bytes:
            name = _stored_name(root, version, path)
            try:
                return decrypt_bytes(raw, name=name, provider=provider)
            except EncryptionError as err:
                # Named by where it lies on disk (the bound name is the registry-relative one).
                text = str(err)
                raise EncryptionError(f"{path}{text.removeprefix(name)}") from None

        return decode

    def _copy(self, source: VerifiedAttestation, staging: Path, bundle: str) -> None:
        names = [s.name for s in source.subjects] + [
            f"{bundle}/{ENVELOPE_FILE}",
            f"{bundle}/{STATEMENT_FILE}",
        ]
        version = self.version_name(source)
        for name in names:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.encryption is None:
                shutil.copyfile(source.root / name, target, follow_symlinks=False)
                continue
            # Encrypted for the name it will have once renamed into place; the plaintext is
            # read into memory and never written.
            path = source.root / name
            plaintext = source.read(path, path.read_bytes())
            blob = encrypt_bytes(
                plaintext, name=_stored_name(staging, version, target), provider=self.encryption
            )
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                write_all(fd, blob)
            finally:
                os.close(fd)

    def _sweep(self, versions: Path) -> None:
        # Under the lock, staging folders and pointer temp files are left only by a crash; they
        # were never pointed to.
        for leftover in versions.glob(f"{_STAGING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for temp in temp_files(self.pointer):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _stored_name(root: Path, version: str, path: Path) -> str:
    """The name a version's file is encrypted under: where it lies once the version is in place."""
    relative = path.relative_to(root).as_posix()
    return f"registry:{VERSIONS_DIR}/{version}/{relative}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent) for the duration of the block."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        msg = f"{path}: cannot open the registry lock: {err.strerror}"
        raise RegistryError(msg) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(folder)
