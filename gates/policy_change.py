"""A policy change in a pull request counts only when an approver signed it.

A pull request controls ``policy.toml``: left alone, the thresholds, waivers, exclusions and
limits it writes would judge it. In CI ``$GATES_BASE_POLICY`` names the base branch's policy
(checked out apart from the pull request). The verdict compares the two *by meaning*: both are
parsed as TOML and flattened to dotted keys (``cv.thresholds.accuracy.min_mean``), so spacing,
comments and order are no change, while every key whose value differs, appears or disappears
is one. Values are compared by their canonical JSON (``1`` is not ``1.0`` nor ``true``; an
empty table is not an absent one); keys are written TOML-style, a segment that is not a bare
key quoted and an array element as ``[i]``, so a quoted ``"a.b"`` key never reads as the
nested ``a.b``. Path values are compared as written (``./data/x.csv`` is not ``data/x.csv``)
and marked ``path`` in the list. The files that hold rules rather than inputs, named by
``[sast].baseline``, ``[release].public_key``, ``[release].public_keys``,
``[roles].promoters`` and ``[roles].approvers``, are compared by their bytes too (the same name
in the policy, another file behind it), each listed as ``<key> file``. The rules the gates read
from outside ``policy.toml`` are compared by meaning like it: the lint gate's ruff rule set
(``gates.lint.ruff_config``: a root ``.ruff.toml`` or ``ruff.toml``, else ``pyproject.toml``
``[tool.ruff]``, the one file ruff is given), each key under the file's name
(``"pyproject.toml".tool.ruff.lint.ignore``), so a rule ignored there, or a root ``.ruff.toml``
that replaces the whole set, is a change like a lowered threshold (kind ``setting``).

With a change and ``[roles].approvers`` in the *base* policy, the change passes only with
``policy.approval.json`` beside the policy: a DSSE envelope (payload type
``POLICY_APPROVAL_TYPE``) signed by one of the base policy's approvers over the policy's file
name, the SHA-256 of its exact bytes and the list of changes (key, base value, request value).
``python -m gates policy approve --base BASE/policy.toml`` writes it with the key in
``$[roles].approver_key_env``. The change list binds the base too: an approval of an earlier
change (the base branch has moved since) or of another file does not verify.

Without approvers in the base policy there is nobody to sign: the changes are listed as
warnings and the verdict passes (docs/trust-model.md says so as a limitation). Without
``$GATES_BASE_POLICY`` (a laptop, a push to the protected branch) nothing is compared, and the
report says so. An unreadable base policy is an error of the gate, never "no base".
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO

from gates.base import Finding, Location, Severity
from gates.errors import GateError, GatesError
from pipeline.approval import (
    BASE_POLICY_ENV,
    ApprovalError,
    Approvers,
    approver_of,
    approvers_in,
    base_policy,
    signed_document,
)
from pipeline.config import LoadedPolicy, load_policy
from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_text, read_regular, sha256_bytes, sha256_file
from pipeline.keys.local import read_env_pem
from pipeline.pathrule import PathRule
from pipeline.signing import (
    Envelope,
    Signer,
    SigningError,
    parse_envelope,
    private_key_from_pem,
    sign_envelope,
    verify_envelope,
)

POLICY_APPROVAL_TYPE = "application/vnd.secure-ml-pipeline.policy-approval+json"
ABSENT = "(absent)"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MAX_APPROVAL_BYTES = 1 << 20


@dataclass(frozen=True)
class Change:
    """One key whose value differs between the base policy and the request's.

    ``kind``: ``value``; ``path`` (a path, compared as written); ``file`` (the bytes of a file
    holding rules, named by a path key); ``setting`` (a key of a tool's configuration file the
    gates honour, outside the policy: its key starts with that file's quoted name).
    """

    key: str
    base: str
    request: str
    kind: str = "value"

    def describe(self) -> str:
        """``key: base -> request`` (a path marked so; a file's key ends in ``file``)."""
        kind = " (path)" if self.kind == "path" else ""
        return f"{self.key}{kind}: {self.base} -> {self.request}"

    def to_dict(self) -> dict[str, str]:
        """The change as the report lists it."""
        return {"key": self.key, "base": self.base, "request": self.request, "kind": self.kind}


@dataclass(frozen=True)
class Snapshot:
    """A policy as compared: its exact bytes, its flattened keys and its rule files' digests."""

    loaded: LoadedPolicy
    raw: bytes
    values: dict[str, str]
    files: dict[str, tuple[str, str]]
    paths: tuple[str, ...]
    # The rules read from other files (the lint gate's ruff settings), flattened like values.
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Judgement:
    """What the verdict adds for the policy: findings, the report's metrics, a summary note."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def approval_path(policy_path: Path) -> Path:
    """``policy.toml`` -> ``policy.approval.json`` beside it."""
    return policy_path.with_name(f"{policy_path.stem}.approval.json")


# --- comparing -----------------------------------------------------------------------------------


def _segment(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _canonical(value: Any) -> str:
    def other(item: Any) -> str:
        if isinstance(item, datetime | date | time):
            return f"{type(item).__name__} {item.isoformat()}"
        msg = f"unexpected TOML value of type {type(item).__name__}"
        raise TypeError(msg)

    return json.dumps(value, sort_keys=True, ensure_ascii=True, default=other)


def flatten(document: dict[str, Any]) -> dict[str, str]:
    """Every leaf of a parsed TOML document by dotted key, its value as canonical JSON.

    Tables are walked; an array holding a table is walked by index (``[0]``); any other array,
    and an empty table, is one value.
    """
    flat: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, dict) and node:
            for name, value in node.items():
                key = f"{prefix}.{_segment(name)}" if prefix else _segment(name)
                stack.append((key, value))
        elif isinstance(node, list) and any(isinstance(item, dict) for item in node):
            stack.extend((f"{prefix}[{i}]", item) for i, item in enumerate(node))
        else:
            flat[prefix] = _canonical(node)
    return flat


def _path_keys(model: Any, prefix: str = "") -> list[str]:
    """The dotted keys of every path-valued field (PathRule) in the policy model."""
    keys = []
    for name, info in type(model).model_fields.items():
        key = f"{prefix}{name}"
        if any(isinstance(m, PathRule) for m in info.metadata):
            keys.append(key)
            continue
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            keys.extend(_path_keys(value, f"{key}."))
    return keys


def _rule_files(loaded: LoadedPolicy) -> dict[str, tuple[str, str]]:
    """``<key> file`` -> (path as written, ``sha256:<hex>``, ``absent`` or ``unreadable``) for
    the files holding rules: the sast baseline, the release keys, the promoters' and approvers'
    keys."""
    policy = loaded.policy
    named: dict[str, str] = {"release.public_key": policy.release.public_key}
    if policy.sast.baseline is not None:
        named["sast.baseline"] = policy.sast.baseline
    named.update({f"release.public_keys.{a}": p for a, p in policy.release.public_keys.items()})
    named.update({f"roles.promoters.{n}": p for n, p in policy.roles.promoters.items()})
    named.update({f"roles.approvers.{n}": p for n, p in policy.roles.approvers.items()})
    files = {}
    for key, text in named.items():
        path = loaded.resolve(text)
        try:
            digest = f"sha256:{sha256_file(path)}"
        except FileNotFoundError:
            digest = "absent"
        except OSError as err:
            digest = f"unreadable ({err.strerror})"
        files[f"{key} file"] = (text, digest)
    return files


def tool_settings(root: Path) -> dict[str, str]:
    """The rules the gates take from outside the policy, flattened under their file's name: the
    ruff configuration the lint gate passes to ruff (``gates.lint.ruff_config``, by ruff's own
    precedence at ``root``). None there: nothing (ruff's defaults, ``--isolated``).

    GateError (from the lint gate's reader) when that file is not TOML.
    """
    from gates.lint import ruff_config  # noqa: PLC0415 - the lint gate's own choice of file

    config = ruff_config(root)
    if config.path is None:
        return {}
    table = (
        {"tool": {"ruff": config.settings}}
        if config.path.name == "pyproject.toml"
        else config.settings
    )
    prefix = _segment(config.path.name)
    return {f"{prefix}.{k}" if k else prefix: v for k, v in flatten(table).items()}


def snapshot(loaded: LoadedPolicy) -> Snapshot:
    """Read ``loaded``'s file again (it must still be the bytes that were validated) and flatten it.

    PolicyError-like PipelineError when the file changed since it was loaded.
    """
    import tomllib  # noqa: PLC0415

    raw = loaded.path.read_bytes()
    if sha256_bytes(raw) != loaded.sha256:
        msg = f"{loaded.path}: changed while it was being compared; run again"
        raise PipelineError(msg)
    values = flatten(tomllib.loads(raw.decode("utf-8")))
    return Snapshot(
        loaded,
        raw,
        values,
        _rule_files(loaded),
        tuple(_path_keys(loaded.policy)),
        tool_settings(loaded.base_dir),
    )


def _is_path(key: str, paths: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith((f"{p}.", f"{p}[")) for p in paths)


def changes(base: Snapshot, request: Snapshot) -> list[Change]:
    """Every key that differs between ``base`` and ``request``, sorted by key; the settings of
    other files (``tool_settings``) next, the rule files last."""
    found = []
    paths = base.paths + request.paths
    for key in sorted(base.values.keys() | request.values.keys()):
        old, new = base.values.get(key, ABSENT), request.values.get(key, ABSENT)
        if old != new:
            found.append(Change(key, old, new, "path" if _is_path(key, paths) else "value"))
    for key in sorted(base.settings.keys() | request.settings.keys()):
        old, new = base.settings.get(key, ABSENT), request.settings.get(key, ABSENT)
        if old != new:
            found.append(Change(key, old, new, "setting"))
    for key in sorted(base.files.keys() | request.files.keys()):
        before, after = base.files.get(key), request.files.get(key)
        if (before and before[1]) != (after and after[1]):
            shown = [f"{f[0]} {f[1]}" if f else ABSENT for f in (before, after)]
            found.append(Change(key, shown[0], shown[1], "file"))
    return found


# --- the approval --------------------------------------------------------------------------------


def approval_payload(request: Snapshot, found: list[Change]) -> bytes:
    """The exact bytes an approver signs: the policy's file name, the SHA-256 of its bytes and
    every change (key, base value, request value, kind)."""
    document = {
        "_type": POLICY_APPROVAL_TYPE,
        "policy": request.loaded.path.name,
        "policy_sha256": sha256_bytes(request.raw),
        "changes": [[c.key, c.base, c.request, c.kind] for c in found],
    }
    return json.dumps(document, sort_keys=True).encode()


def finding_key(change: Change) -> str:
    """The change's key in the ``[table].key`` form findings use (so reports find its line):
    ``cv.thresholds.accuracy.min_mean`` -> ``[cv.thresholds.accuracy].min_mean``,
    ``audit.waivers[0].id`` -> ``[[audit.waivers]].id``; a file's or another file's setting's
    key stays as it is."""
    array = re.fullmatch(r"([A-Za-z0-9_.-]+)\[\d+\]\.([A-Za-z0-9_-]+)", change.key)
    if change.kind in ("file", "setting"):
        return change.key
    if array:
        return f"[[{array[1]}]].{array[2]}"
    plain = re.fullmatch(r"([A-Za-z0-9_.-]+)\.([A-Za-z0-9_-]+)", change.key)
    if plain:
        return f"[{plain[1]}].{plain[2]}"
    return change.key


def _keys_text(found: list[Change]) -> str:
    return ", ".join(c.key for c in found)


def _keyids(envelope: Envelope) -> str:
    return ", ".join(f"{k[:12]}..." for k, _ in envelope.signatures) or "none"


def check_approval(request: Snapshot, found: list[Change], allowed: Approvers) -> str:
    """The approver who signed exactly this change; ApprovalError naming the approval file, the
    key id and the changed keys otherwise."""
    path = approval_path(request.loaded.path)
    shown, name = path.name, request.loaded.path.name
    changed = f"{len(found)} changed key(s): {_keys_text(found)}"
    who = f"[roles].approvers of the base branch's policy {allowed.source} ({', '.join(sorted(allowed.keys))})"
    try:
        raw = read_regular(path, limit=_MAX_APPROVAL_BYTES)
    except FileNotFoundError:
        msg = (
            f"{shown}: missing: {name} changes the base branch's policy ({changed}); a policy "
            f"change counts only when an approver in {who} signs it (python -m gates policy "
            "approve --base BASE/policy.toml with the approver's key)"
        )
        raise ApprovalError(msg) from None
    except OSError as err:
        msg = f"{shown}: cannot be read: {err.strerror or err} ({changed})"
        raise ApprovalError(msg) from None
    try:
        envelope = parse_envelope(raw, source=shown)
    except SigningError as err:
        raise ApprovalError(f"{err} ({changed})") from None
    signer = None
    for approver, key in allowed.keys.items():
        try:
            verify_envelope(envelope, trusted=key, payload_type=POLICY_APPROVAL_TYPE, source=shown)
        except SigningError:
            continue
        signer = approver
        break
    if signer is None:
        msg = (
            f"{shown}: refused: signed by key id(s) {_keyids(envelope)}, which verify as a "
            f"policy approval under no approver in {who}; {changed}"
        )
        raise ApprovalError(msg)
    if envelope.payload != approval_payload(request, found):
        # Strict: a name twice is two approvals to two verifiers (Python keeps the last).
        signed = signed_document(
            envelope.payload,
            signer=f"{signer} (key id {_keyids(envelope)})",
            shown=shown,
            kind="policy approval",
            again=f"{changed}; approve again",
        )
        try:
            what = (
                f"{signed.get('policy')!r} with SHA-256 {str(signed.get('policy_sha256'))[:12]}... "
                f"changing {', '.join(str(c[0]) for c in signed.get('changes', []))}"
            )
        except (TypeError, IndexError, KeyError):
            what = "bytes that are not a policy approval"
        what = what if signed else "bytes that are not a policy approval"
        msg = (
            f"{shown}: refused: {signer} (key id {_keyids(envelope)}) approved {what}, not "
            f"{name!r} as it is now (SHA-256 {sha256_bytes(request.raw)[:12]}..., {changed}): the "
            "policy or the base branch changed after the approval, or the approval is another "
            "file's; approve again"
        )
        raise ApprovalError(msg)
    return signer


# --- the verdict's part ---------------------------------------------------------------------------


def judge(policy: LoadedPolicy) -> Judgement:
    """Compare ``policy`` with ``$GATES_BASE_POLICY`` and judge the change (module docstring).

    GateError (the verdict is then ERRORED) when the base policy or its approvers' keys cannot
    be read, or the request's policy changed while it was compared.
    """
    try:
        base = base_policy()
    except ApprovalError as err:
        raise GateError(str(err)) from None
    name = policy.path.name
    if base is None:
        note = f"{name} not compared with a base branch (${BASE_POLICY_ENV} unset)"
        why = (
            f"{note}: a laptop, or a push to the protected branch; on a pull request CI sets it "
            "to the base branch's policy"
        )
        return Judgement(metrics={"compared_with": None, "changes": [], "note": why}, note=note)
    try:
        trusted = snapshot(base)
    except (PipelineError, OSError, UnicodeDecodeError) as err:
        msg = f"${BASE_POLICY_ENV} ({base.path}): the base branch's policy cannot be read: {err}"
        raise GateError(msg) from None
    try:
        request = snapshot(policy)
    except (OSError, UnicodeDecodeError) as err:
        raise GateError(f"{policy.path}: cannot be read: {err}") from None
    found = changes(trusted, request)
    metrics: dict[str, Any] = {
        "compared_with": str(base.path),
        "changes": [c.to_dict() for c in found],
        "approved_by": None,
    }
    if not found:
        note = f"{name}: no change against the base branch's policy"
        metrics["note"] = note
        return Judgement(metrics=metrics, note=note)
    try:
        allowed = approvers_in(base)
    except ApprovalError as err:
        raise GateError(str(err)) from None
    judgement = Judgement(metrics=metrics)
    if not allowed.keys:
        severity = Severity.WARNING
        judgement.note = (
            f"{name} changes {len(found)} key(s) of the base branch's policy, unsigned: the base "
            "policy names no [roles].approvers, so nobody can approve a policy change (set "
            "[roles].approvers on the base branch; docs/trust-model.md)"
        )
    else:
        try:
            signer = check_approval(request, found, allowed)
        except ApprovalError as err:
            severity = Severity.ERROR
            judgement.findings.append(
                Finding(
                    "GATE016",
                    str(err),
                    location=Location(path=approval_path(Path(name)).as_posix()),
                    policy_key="[roles].approvers",
                )
            )
            judgement.note = str(err)
        else:
            severity = Severity.NOTE
            metrics["approved_by"] = signer
            judgement.note = (
                f"{name} changes {len(found)} key(s) of the base branch's policy, approved by "
                f"{signer}: {_keys_text(found)}"
            )
    metrics["note"] = judgement.note
    judgement.findings.extend(
        Finding(
            "GATE017",
            f"{name}: {c.describe()} (base branch -> this request)",
            severity=severity,
            location=Location(path=_where(c, name)),
            observed=c.request,
            threshold=c.base,
            policy_key=finding_key(c),
        )
        for c in found
    )
    return judgement


def _where(change: Change, policy_name: str) -> str:
    """The file a change is in: another file's name for its ``setting``, else the policy's."""
    if change.kind == "setting":
        name, _ = json.JSONDecoder().raw_decode(change.key)
        return str(name)
    return policy_name


# --- python -m gates policy approve --------------------------------------------------------------


def approve(policy: LoadedPolicy, *, base: Path | None, out: TextIO) -> int:
    """List the changes of ``policy`` against the base branch's policy and sign them.

    ``base`` (default ``$GATES_BASE_POLICY``) is the base branch's ``policy.toml`` in a
    checkout of that branch (the rule files it names are compared too). 0 when signed or
    nothing changed, 1 when refused (no approvers, no key, a key no approver holds).
    """
    named = base or (Path(os.environ[BASE_POLICY_ENV]) if os.environ.get(BASE_POLICY_ENV) else None)
    if named is None:
        msg = (
            "policy approve: name the base branch's policy.toml with --base (in a checkout of "
            "that branch, e.g. git worktree add ../base origin/main; --base ../base/policy.toml)"
        )
        raise GatesError(msg)
    trusted = load_policy(named)
    found = changes(snapshot(trusted), snapshot(policy))
    if not found:
        out.write(f"{policy.path.name}: no change against {named}; nothing to approve\n")
        return 0
    out.write(f"{policy.path.name}: {len(found)} change(s) against {named}:\n")
    for change in found:
        out.write(f"  {change.describe()}\n")
    allowed = approvers_in(trusted)
    if not allowed.keys:
        out.write(
            f"not approved: {named} names no [roles].approvers; nobody can approve a policy "
            "change (the verdict lists it as a warning)\n"
        )
        return 1
    try:
        key, approver = _approver_key(trusted, allowed)
    except ApprovalError as err:
        out.write(f"not approved: {err}\n")
        return 1
    envelope = sign_envelope(
        approval_payload(snapshot(policy), found), key=key, payload_type=POLICY_APPROVAL_TYPE
    )
    path = approval_path(policy.path)
    atomic_write_text(path, envelope.to_json())
    out.write(f"signed by approver {approver} (key id {key.public.keyid[:12]}...) -> {path.name}\n")
    return 0


def _approver_key(trusted: LoadedPolicy, allowed: Approvers) -> tuple[Signer, str]:
    env = trusted.policy.roles.approver_key_env
    pem = read_env_pem(env)
    if not pem:
        msg = f"set ${env} to the private key of an approver ({', '.join(sorted(allowed.keys))})"
        raise ApprovalError(msg)
    try:
        key = private_key_from_pem(
            pem.encode("utf-8"), source=f"${env}", release=True, algorithm=None
        )
    except SigningError as err:
        raise ApprovalError(str(err)) from None
    return key, approver_of(key, allowed)
