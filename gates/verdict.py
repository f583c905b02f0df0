"""The ``gate`` verdict: every gate of this run PASSED on the inputs and bytes on disk now.

Rules: GATE010 a report is missing; GATE011 a report is unparsable; GATE012 a report belongs to
another run; GATE013 an input changed after the gate ran; GATE014 a gate did not pass; GATE015 a
hashed artifact's bytes changed after the artifacts gate hashed them; GATE016 the policy
changes the base branch's (``$GATES_BASE_POLICY``) without an approver's signature; GATE017 one
changed key (an error when unsigned, a warning when the base policy names no approvers, a note
when approved). See ``gates.policy_change``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from gates.base import (
    UNPARSABLE_REPORT,
    Finding,
    Gate,
    GateResult,
    Location,
    Outcome,
    RunContext,
)
from gates.inputs import input_digests
from gates.policy_change import judge
from gates.registry import checked_before
from pipeline.fsio import sha256_file


class VerdictGate(Gate):
    """Read every earlier gate's report and pass only when each one is sound and PASSED."""

    name: ClassVar[str] = "gate"
    description: ClassVar[str] = __doc__ or ""

    def run(self, context: RunContext) -> Outcome:
        """Judge each report: present, parsable, this run, same inputs, PASSED; and the policy
        against the base branch's (a change needs an approver's signature)."""
        current = input_digests(context.policy)
        policy = judge(context.policy)
        findings: list[Finding] = list(policy.findings)
        statuses: dict[str, str] = {}
        for spec in checked_before(self.name):
            path = context.report_path(spec.name)
            shown = _shown(path, context.root)
            report, problem = _read(path)
            if report is None:
                rule = "GATE010" if problem == "missing" else "GATE011"
                statuses[spec.name] = "MISSING" if rule == "GATE010" else "UNPARSABLE"
                findings.append(
                    Finding(rule, f"{spec.name}: report {problem}", location=Location(path=shown))
                )
                continue
            statuses[spec.name] = report.status.value
            if report.gate != spec.name:
                findings.append(
                    Finding(
                        "GATE011",
                        f"{spec.name}: {shown} is the report of '{report.gate}'",
                        location=Location(path=shown),
                    )
                )
            if report.run_id != context.run_id:
                statuses[spec.name] = "STALE"
                findings.append(
                    Finding(
                        "GATE012",
                        f"{spec.name}: report is from run {report.run_id}, not this run "
                        f"{context.run_id}",
                        location=Location(path=shown),
                        observed=report.run_id,
                        threshold=context.run_id,
                    )
                )
                continue
            changed = sorted(
                k
                for k in current.keys() | report.inputs.keys()
                if current.get(k) != report.inputs.get(k)
            )
            if changed:
                statuses[spec.name] = "STALE"
                findings.append(
                    Finding(
                        "GATE013",
                        f"{spec.name}: inputs changed since it ran: {', '.join(changed)}",
                        location=Location(path=changed[0]),
                    )
                )
            if not report:
                findings.append(
                    Finding(
                        "GATE014",
                        f"{spec.name} {report.status.value}: {report.summary}",
                        location=Location(path=shown),
                    )
                )
            if spec.name == "artifacts":
                findings.extend(_rehash(report, context.root))
        passed = sum(1 for s in statuses.values() if s == "PASSED")
        return Outcome.judge(
            findings,
            passed=f"PASSED: all {len(statuses)} gates passed in run {context.run_id}; "
            + policy.note,
            failed=f"FAILED: {passed}/{len(statuses)} gates passed; " + "{first}",
            metrics={"gates": statuses, "policy": policy.metrics},
        )


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _read(path: Path) -> tuple[GateResult | None, str]:
    try:
        return GateResult.from_dict(json.loads(path.read_text(encoding="utf-8"))), ""
    except FileNotFoundError:
        return None, "missing"
    except UNPARSABLE_REPORT as err:
        return None, f"unparsable ({type(err).__name__}: {err})"


def _rehash(report: GateResult, root: Path) -> list[Finding]:
    found = []
    for rel, digest in report.artifacts.items():
        path = root / rel
        actual = sha256_file(path) if path.is_file() else "absent"
        if actual != digest:
            found.append(
                Finding(
                    "GATE015",
                    f"{rel} changed after it was hashed ({digest[:12]}... -> {actual[:12]}...)",
                    location=Location(path=rel),
                    observed=actual,
                    threshold=digest,
                )
            )
    return found
