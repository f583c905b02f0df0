"""The ``artifacts`` gate: hash model, data, lock and policy, and sign an in-toto statement of the run.

Rules: ART001 the model on disk is not the one the train and cv gates judged; ART002 a file the
statement must cover is missing; ART003 a symlink or a non-regular file sits in the artifacts
folder; ART010 (warning) the statement is signed with a development key, not the release key.

The statement (in-toto Statement v1) names every file by SHA-256 and records the run: run id,
commit, policy and dependency-lock digests, tool versions, every earlier gate's verdict with
its key metrics and finding counts, and the vulnerability data the audit gate used. It is
signed into a DSSE envelope (Ed25519) at ``<artifacts_dir>/attestation.intoto.json``.
"""

from __future__ import annotations

import contextlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from gates.base import (
    Finding,
    Gate,
    GateError,
    GateResult,
    Location,
    Outcome,
    Reads,
    RunContext,
    Severity,
)
from gates.inputs import git_commit, input_digests
from gates.registry import checked_before
from gates.release import ATTESTING_GATE, signing_key
from pipeline.attestation import (
    ENVELOPE_FILE,
    SIGNER_DEVELOPMENT,
    SIGNER_RELEASE,
    STATEMENT_FILE,
    Subject,
    build_statement,
    sign_and_write,
)
from pipeline.fsio import sha256_file
from pipeline.persist import MODEL_FILE, manifest_path_for, read_manifest

DEPENDENCY_LOCK = "requirements.lock"
# Distributions whose versions shape the model or its checks; a missing one is recorded as such.
TOOLS = (
    "scikit-learn",
    "numpy",
    "scipy",
    "pandas",
    "skops",
    "cryptography",
    "pydantic",
    "ruff",
    "bandit",
    "pip-audit",
)


class ArtifactsGate(Gate):
    """Hash every artifact and input, tie them to the run's verdicts, and sign the record."""

    name: ClassVar[str] = ATTESTING_GATE
    description: ClassVar[str] = __doc__ or ""

    def reads(self, context: RunContext) -> Reads:
        """Not reusable: the manifest names the commit checked out now, which no key holds.

        Hashing is all this gate does anyway.
        """
        del context
        return Reads(reusable=False)

    def run(self, context: RunContext) -> Outcome:
        """Check the model is the judged one, build the statement, sign it, write the envelope."""
        root = context.root
        bundle = context.artifacts_dir
        if not bundle.resolve().is_relative_to(root.resolve()):
            msg = f"[run].artifacts_dir {bundle} must be inside the project folder {root}"
            raise GateError(msg)
        for stale in (bundle / ENVELOPE_FILE, bundle / STATEMENT_FILE):
            # An old envelope must never outlive the run that replaced its model.
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        model = bundle / MODEL_FILE
        findings: list[Finding] = []
        digests = self._bundle_digests(bundle, root, findings)
        model_rel, manifest_rel = _rel(model, root), _rel(manifest_path_for(model), root)
        for rel in (model_rel, manifest_rel):
            if rel not in digests:
                findings.append(Finding("ART002", f"{rel} is missing", location=Location(path=rel)))
        for rel, digest in context.read_report("train").artifacts.items():
            if digests.get(rel) != digest:
                findings.append(
                    Finding(
                        "ART001",
                        f"{rel} on disk ({(digests.get(rel) or 'absent')[:12]}...) is not the "
                        f"model the train gate saved ({digest[:12]}...)",
                        location=Location(path=rel),
                        observed=digests.get(rel),
                        threshold=digest,
                    )
                )
        inputs = input_digests(context.policy)
        lock_digest = inputs.pop(DEPENDENCY_LOCK, None)
        for rel, digest in inputs.items():
            if digest == "absent":
                findings.append(Finding("ART002", f"{rel} is missing", location=Location(path=rel)))
            else:
                digests[rel] = digest
        commit, dirty = git_commit(root)
        metrics: dict[str, Any] = {"git_commit": commit, "git_dirty": dirty, "files": len(digests)}
        if any(f.severity is Severity.ERROR for f in findings):
            return Outcome.judge(
                findings,
                passed="",
                failed="{n} artifact problem(s): {first}; nothing signed",
                metrics=metrics,
                artifacts=digests,
            )
        choice = signing_key(context.policy)
        predicate = {
            "run_id": context.run_id,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": {"commit": commit, "dirty": dirty},
            "policy": {"path": _rel(context.policy.path, root), "sha256": context.policy.sha256},
            "dependency_lock": {
                "path": DEPENDENCY_LOCK,
                "sha256": lock_digest if lock_digest not in (None, "absent") else None,
            },
            "tools": _tool_versions(),
            "gates": _verdicts(context),
            "vulnerability_data": _vulnerability_data(context),
            "history": _history_head(context),
            "model": {
                "file": model_rel,
                "manifest": manifest_rel,
                "sha256": digests[model_rel],
                "estimator": read_manifest(manifest_path_for(model)).estimator,
            },
            "bundle": _rel(bundle, root),
            "signer": {
                "kind": SIGNER_RELEASE if choice.release else SIGNER_DEVELOPMENT,
                "keyid": choice.key.public.keyid,
                # Signed, so verify can refuse a policy that stopped requiring one of them.
                "algorithms": [signer.public.algorithm for signer in choice.signers],
                "keys": [
                    {"algorithm": s.public.algorithm, "keyid": s.public.keyid, "source": s.source}
                    for s in choice.signers
                ],
            },
        }
        subjects = [Subject(name, digests[name]) for name in sorted(digests)]
        envelope_path, statement_path = sign_and_write(
            build_statement(subjects, predicate), key=choice.signers, bundle_dir=bundle
        )
        artifacts = dict(digests)
        for path in (envelope_path, statement_path):
            artifacts[_rel(path, root)] = sha256_file(path)
        if not choice.release:
            findings.append(
                Finding(
                    "ART010",
                    f"signed with a {choice.note}",
                    severity=Severity.WARNING,
                    observed=choice.key.public.keyid,
                    policy_key="[release].private_key_env",
                )
            )
        metrics.update(
            {
                "signer": predicate["signer"],
                "subjects": len(subjects),
                "envelope": _rel(envelope_path, root),
            }
        )
        kind = "release key" if choice.release else "DEVELOPMENT key (not deployable)"
        return Outcome.judge(
            findings,
            passed=(
                f"{len(subjects)} files attested at commit {commit[:12]}"
                f"{' (dirty)' if dirty else ''}; signed with the {kind}"
            ),
            failed="{n} artifact problem(s): {first}",
            metrics=metrics,
            artifacts=artifacts,
        )

    @staticmethod
    def _bundle_digests(bundle: Path, root: Path, findings: list[Finding]) -> dict[str, str]:
        # Every file in the artifacts folder is a subject: whatever a consumer finds beside the
        # model is either signed or, at verification, refused as an extra file.
        digests: dict[str, str] = {}
        if not bundle.is_dir():
            return digests
        for path in sorted(bundle.rglob("*")):
            rel = _rel(path, root)
            if path.name in (ENVELOPE_FILE, STATEMENT_FILE) and path.parent == bundle:
                continue
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                findings.append(
                    Finding(
                        "ART003",
                        f"{rel} is a symlink or not a regular file; only regular files are signed",
                        location=Location(path=rel),
                    )
                )
            elif path.is_file():
                digests[rel] = sha256_file(path)
        return digests


def _rel(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _tool_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _verdicts(context: RunContext) -> dict[str, Any]:
    verdicts: dict[str, Any] = {}
    for spec in checked_before(ATTESTING_GATE):
        # The runner already refused to run this gate unless each of these PASSED in this run;
        # read_report re-checks the run id so a stale report can never be signed.
        report = context.read_report(spec.name)
        verdicts[spec.name] = _verdict(report)
    return verdicts


def _verdict(report: GateResult) -> dict[str, Any]:
    counts = {severity.value: 0 for severity in Severity}
    for finding in report.findings:
        counts[finding.severity.value] += 1
    return {
        "status": report.status.value,
        "summary": report.summary,
        "findings": counts,
        "metrics": _key_metrics(report.metrics),
    }


def _key_metrics(metrics: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    # Scalars and small nested tables of scalars; per-fold lists and the like stay in the
    # gate's own report, which the statement does not need to repeat.
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | float | str) or value is None:
            kept[key] = value
        elif isinstance(value, dict) and depth < 2:
            kept[key] = _key_metrics(value, depth + 1)
    return kept


def _vulnerability_data(context: RunContext) -> dict[str, Any]:
    # The audit gate lives on another branch; read its report by name and never trust its shape.
    path = context.report_path("audit")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"recorded": False, "reason": "no audit report in this run"}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return {"recorded": False, "reason": f"audit report unreadable ({type(err).__name__})"}
    if not isinstance(document, dict) or document.get("run_id") != context.run_id:
        return {"recorded": False, "reason": "audit report belongs to another run"}
    raw = document.get("metrics")
    metrics: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "recorded": True,
        "audit_status": str(document.get("status")),
        "source": _scalar(metrics.get("source")),
        "snapshot_date": _scalar(metrics.get("snapshot_date")),
    }


def _scalar(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def _history_head(context: RunContext) -> dict[str, str]:
    """The run history's head hash before this run, so that a later rewrite is detectable."""
    from gates.feedback.history import HistoryError, head_hash, history_cipher  # noqa: PLC0415

    path = context.policy.resolve(context.policy.policy.feedback.history)
    try:
        head = head_hash(path, cipher=history_cipher(context.policy))
    except HistoryError as err:
        raise GateError(str(err)) from None
    return {"path": _rel(path, context.root), "head": head}
