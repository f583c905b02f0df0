"""Data approvers by role: with ``[roles].approvers`` set, the data lock counts as approved only
when an approver's key signed it (issue 20).

``python -m gates data approve`` writes the lock, then a DSSE envelope beside it
(``<lock stem>.approval.json``, payload type ``APPROVAL_TYPE``) over the lock's name and the
SHA-256 of its exact bytes, signed with the key in ``$[roles].approver_key_env``. The data gate
checks it: missing, signed by a key no approver holds, or signed over other bytes (the lock
edited after approval, an approval copied from another lock) is refused naming the file and
the key id.

Who the approvers are is part of the rules, and a pull request controls ``policy.toml`` and
``keys/``: in CI, ``$GATES_BASE_POLICY`` names the base branch's ``policy.toml`` (checked out
apart from the pull request); its ``[roles].approvers`` and the public keys it names, resolved
against its own folder, replace the pull request's. Unset (a laptop, the protected branch
itself), the project's own policy is used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import LoadedPolicy, load_policy
from pipeline.errors import DataError, PipelineError
from pipeline.fsio import atomic_write_text, read_regular, sha256_bytes, strict_json
from pipeline.lockserial import SERIAL_STEP, lock_serial
from pipeline.signing import (
    Envelope,
    PublicKey,
    Signer,
    SigningError,
    load_public_key,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)

APPROVAL_TYPE = "application/vnd.secure-ml-pipeline.data-approval+json"
BASE_POLICY_ENV = "GATES_BASE_POLICY"


class ApprovalError(PipelineError):
    """The data approval is missing, not an approver's, or not over this lock."""


@dataclass(frozen=True)
class Approvers:
    """The approvers (name -> committed public key) and the policy file they were read from."""

    keys: Mapping[str, PublicKey]
    source: str


# A DSSE envelope of a few signatures over a short payload: kilobytes.
MAX_APPROVAL_BYTES = 1 << 20


def approval_path(lock: Path) -> Path:
    """Where the approval of ``lock`` lies: ``data/x.lock.json`` -> ``data/x.lock.approval.json``."""
    return lock.with_suffix(".approval.json")


def read_approval(path: Path) -> bytes:
    """The approval's bytes: a regular file of at most ``MAX_APPROVAL_BYTES``, never read
    through a symlink, FIFO or device (its name comes from the lock's, so no path rule of the
    policy checked it: a committed symlink to ``/dev/zero`` or a FIFO hung the data gate).
    OSError (FileNotFoundError when absent) otherwise."""
    return read_regular(path, limit=MAX_APPROVAL_BYTES)


def base_policy() -> LoadedPolicy | None:
    """The base branch's policy named by ``$GATES_BASE_POLICY``; None when it is unset.

    ApprovalError when it cannot be read (fail closed: an unreadable base branch never means
    "no base branch").
    """
    base = os.environ.get(BASE_POLICY_ENV)
    if not base:
        return None
    try:
        return load_policy(Path(base))
    except PipelineError as err:
        msg = f"${BASE_POLICY_ENV} ({base}): the base branch's policy cannot be read: {err}"
        raise ApprovalError(msg) from None


def approvers(policy: LoadedPolicy) -> Approvers:
    """The approvers from ``$GATES_BASE_POLICY`` when set, else from ``policy``; none: empty.

    ApprovalError when the base policy or one of its keys cannot be read (fail closed: an
    unreadable base branch never means "no approvers").
    """
    return approvers_in(base_policy() or policy)


def approvers_in(trusted: LoadedPolicy) -> Approvers:
    """The approvers ``trusted`` names, their keys resolved against its folder; none: empty.

    ApprovalError when one of the keys cannot be read.
    """
    keys: dict[str, PublicKey] = {}
    for name, path in trusted.policy.roles.approvers.items():
        try:
            keys[name] = load_public_key(trusted.resolve(path), algorithm=None)
        except SigningError as err:
            msg = f"{trusted.path}: [roles].approvers.{name}: {err}"
            raise ApprovalError(msg) from None
    return Approvers(keys, str(trusted.path))


def approval_payload(lock_name: str, lock_bytes: bytes, base_sha256: str | None = None) -> bytes:
    """The exact bytes an approver signs: the lock's name and the SHA-256 of its bytes, and
    (``base_sha256``) the SHA-256 of the approved lock this approval replaces."""
    document = {"_type": APPROVAL_TYPE, "lock": lock_name, "lock_sha256": sha256_bytes(lock_bytes)}
    if base_sha256 is not None:
        document["base_lock_sha256"] = base_sha256
    return json.dumps(document, sort_keys=True).encode()


def lock_name(policy: LoadedPolicy) -> str:
    """The lock's path as the policy names it (what the approval binds)."""
    return Path(policy.policy.data.lock).as_posix()


def approver_of(key: Signer, allowed: Approvers) -> str:
    """The approver name ``key`` belongs to; ApprovalError naming its key id otherwise."""
    for name, public in allowed.keys.items():
        if public.keyid == key.public.keyid:
            return name
    msg = (
        f"the key in the approver key variable (key id {key.public.keyid[:12]}...) is not an "
        f"approver in [roles].approvers of {allowed.source} ({', '.join(sorted(allowed.keys))})"
    )
    raise ApprovalError(msg)


def sign_approval(policy: LoadedPolicy, key: Signer, *, base: bytes | None = None) -> Path:
    """Sign the lock as it is on disk now, over ``base`` (the approved lock it replaces: the
    base branch's, else the one on disk before ``data approve`` rewrote it; None: none);
    write the approval atomically beside it."""
    lock = policy.resolve(policy.policy.data.lock)
    based = sha256_bytes(base) if base is not None else None
    envelope = sign_envelope(
        approval_payload(lock_name(policy), lock.read_bytes(), based),
        key=key,
        payload_type=APPROVAL_TYPE,
    )
    path = approval_path(lock)
    atomic_write_text(path, envelope.to_json())
    return path


def check_approval(policy: LoadedPolicy, *, trusted: bytes | None = None) -> str | None:
    """The approver who signed the lock, or None when ``[roles].approvers`` is unset.

    ApprovalError (one message naming the approval file and the key id) when the approval is
    missing, unparsable, signed by no approver, or signed over another lock or other bytes.
    ``trusted`` is the approved lock a pull request cannot change (the base branch's): a lock
    other than it counts only when approved over it (red team 8: a snapshot the base branch
    approved once and then replaced came back with its genuine approval).
    """
    allowed = approvers(policy)
    if not allowed.keys:
        return None
    lock = policy.resolve(policy.policy.data.lock)
    path = approval_path(lock)
    shown = Path(policy.policy.data.lock).with_suffix(".approval.json").as_posix()
    try:
        raw = read_approval(path)
    except FileNotFoundError:
        msg = (
            f"{shown}: missing: [roles].approvers ({', '.join(sorted(allowed.keys))}) is set, so "
            "the data lock needs an approver's signature (python -m gates data approve with "
            f"an approver's private key, its PEM text, in ${policy.policy.roles.approver_key_env})"
        )
        raise ApprovalError(msg) from None
    except OSError as err:
        msg = f"{shown}: refused, not read: {err.strerror or err}"
        raise ApprovalError(msg) from None
    try:
        envelope = parse_envelope(raw, source=shown)
    except SigningError as err:
        raise ApprovalError(str(err)) from None
    signer = _signer(envelope, allowed, shown)
    again = "approve again (python -m gates data approve)"
    signed = signed_document(
        envelope.payload, signer=signer, shown=shown, kind="data approval", again=again
    )
    try:
        lock_bytes = lock.read_bytes()
    except OSError as err:
        raise ApprovalError(f"{lock}: cannot be read: {err.strerror}") from None
    bound = signed.get("base_lock_sha256")
    bound = bound if isinstance(bound, str) else None
    if trusted is not None and lock_bytes != trusted:
        _check_serial(policy, lock_bytes, trusted, signer=signer, shown=shown)
    if trusted is not None and lock_bytes != trusted and bound != sha256_bytes(trusted):
        msg = (
            f"{shown}: refused: {signer} approved {lock_name(policy)!r} over the approved "
            f"lock {_short(bound)}, not over the base branch's approved lock now "
            f"({sha256_bytes(trusted)[:12]}...): an approval given before the base branch "
            "moved on, or a snapshot it replaced brought back; approve again against the "
            f"base branch (${BASE_POLICY_ENV} naming its policy.toml)"
        )
        raise ApprovalError(msg)
    expected = approval_payload(lock_name(policy), lock_bytes, bound)
    if envelope.payload != expected:
        keyids = ", ".join(f"{k[:12]}..." for k, _ in envelope.signatures)
        what = (
            f"{signed.get('lock')!r} with SHA-256 {str(signed.get('lock_sha256'))[:12]}..."
            if signed
            else "bytes that are not an approval"
        )
        msg = (
            f"{shown}: refused: {signer} (key id {keyids}) approved {what}, not "
            f"{lock_name(policy)!r} as it is now (SHA-256 {sha256_bytes(lock.read_bytes())[:12]}...): "
            "the lock changed after the approval, or the approval is another lock's; approve again"
        )
        raise ApprovalError(msg)
    return signer


def _check_serial(
    policy: LoadedPolicy, lock_bytes: bytes, trusted: bytes, *, signer: str, shown: str
) -> None:
    """ApprovalError unless the changed lock's serial is above the base branch's approved lock's.

    ``data approve`` writes every lock one serial above the lock it replaces, so the base
    branch's serial grows with each approved change: a lock it held before (a snapshot it
    replaced, or a batch it reverted and approved the revert of) never counts again, even when
    the base branch holds an earlier lock's data once more. A lock without a serial was written
    before serials: nothing tells it from a reverted one, so it is approved again.
    """
    name = lock_name(policy)
    try:
        serial = lock_serial(lock_bytes, where=name)
        base = lock_serial(trusted, where="the base branch's approved lock")
    except DataError as err:
        raise ApprovalError(f"{shown}: refused: {err}") from None
    again = (
        "approve again against the base branch (python -m gates data approve with "
        f"${BASE_POLICY_ENV} naming its policy.toml, or on a checkout holding its lock)"
    )
    if serial == 0:
        msg = (
            f"{shown}: refused: {name!r} has no serial: approved by {signer} before data locks "
            f"carried one, so it cannot be told from a lock the base branch replaced; {again}"
        )
        raise ApprovalError(msg)
    if serial > base + SERIAL_STEP:
        msg = (
            f"{shown}: refused: {name!r} has serial {serial}, more than {SERIAL_STEP} above the "
            f"base branch's approved lock's serial {base}: data approve writes one above it, and "
            f"a serial raised further brings the base branch's toward the largest; {again}"
        )
        raise ApprovalError(msg)
    if serial <= base:
        msg = (
            f"{shown}: refused: {name!r} has serial {serial}, not above the base branch's "
            f"approved lock's serial {base}: a lock the base branch replaced (a superseded or "
            f"reverted batch brought back), or one approved before it moved on (another data "
            f"change merged first: merge the base branch into this one, taking its {name!r}, "
            f"approval and checksums file and keeping your data change); {again}"
        )
        raise ApprovalError(msg)


def signed_document(
    payload: bytes, *, signer: str, shown: str, kind: str, again: str
) -> dict[str, Any]:
    """The payload ``signer`` signed, read strictly (``pipeline.fsio.strict_json``); ``{}`` when
    it is JSON but not an object. ApprovalError naming ``shown`` when it is not JSON, or holds a
    name twice in one object, ``NaN``, ``Infinity`` or ``1e999``: signed bytes another verifier
    reads as another approval (it keeps the first of two names, Python the last)."""
    try:
        document = strict_json(payload)
    except ValueError as err:  # not UTF-8 or JSON, a name twice, a non-finite number
        reason = str(err)
    except RecursionError:
        reason = "JSON nested too deeply to read"
    else:
        return document if isinstance(document, dict) else {}
    msg = (
        f"{shown}: refused: the payload {signer} signed is not a {kind} every reader reads "
        f"alike: {reason}; {again}"
    )
    raise ApprovalError(msg)


def _short(digest: str | None) -> str:
    return f"{digest[:12]}..." if digest else "(none named)"


def _signer(envelope: Envelope, allowed: Approvers, shown: str) -> str:
    for name, key in allowed.keys.items():
        try:
            verify_envelope(envelope, trusted=key, payload_type=APPROVAL_TYPE, source=shown)
        except SigningError:
            continue
        return name
    keyids = ", ".join(f"{k[:12]}..." for k, _ in envelope.signatures) or "none"
    msg = (
        f"{shown}: refused: the approval is signed by key id(s) {keyids}, which verify under no "
        f"data approver in [roles].approvers of {allowed.source} "
        f"({', '.join(sorted(allowed.keys))})"
    )
    raise ApprovalError(msg)
