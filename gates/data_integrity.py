"""The ``data`` gate: the data file matches its approved lock and every rule of its contract.

Rules: DATA000 unreadable file; DATA001 lock digest; DATA002 checksums file; DATA010 missing
column; DATA011 undeclared column; DATA012 wrong dtype; DATA013 null; DATA014 infinite; DATA015
below min; DATA016 above max; DATA017 category not allowed; DATA018 duplicate in a unique column;
DATA020 label missing or outside the classes; DATA021 a declared class has no rows; DATA030
row count outside bounds.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gates.base import Finding, Gate, Location, Outcome, RunContext
from pipeline.data import Violation, check_contract, read_table, verify_lock
from pipeline.errors import DataError


def violation_finding(violation: Violation, *, path: str) -> Finding:
    """A contract violation as a finding that points at the file, column and first row."""
    return Finding(
        rule=violation.rule,
        message=violation.message,
        location=Location(
            path=path,
            column=violation.column,
            row=violation.rows[0] if violation.rows else None,
        ),
        observed=violation.observed,
        threshold=violation.expected,
        policy_key=violation.policy_key,
    )


class DataGate(Gate):
    """Lock digests match and the contract holds on every row and column."""

    name: ClassVar[str] = "data"
    description: ClassVar[str] = __doc__ or ""

    def run(self, context: RunContext) -> Outcome:
        """Verify the lock, read the file per its format, check the contract."""
        policy = context.policy
        data = policy.policy.data
        path = policy.resolve(data.path)
        shown = data.path
        findings: list[Finding] = []
        try:
            findings.extend(violation_finding(v, path=shown) for v in verify_lock(policy))
            frame = read_table(path, fmt=data.resolved_format)
        except DataError as err:
            findings.append(
                Finding(
                    rule="DATA000",
                    message=str(err),
                    location=Location(path=shown),
                    policy_key="[data].path",
                )
            )
            return Outcome.judge(findings, passed="", failed="{n} problem(s): {first}")
        clean, violations = check_contract(frame, data)
        findings.extend(violation_finding(v, path=shown) for v in violations)
        metrics: dict[str, Any] = {"rows": len(frame), "columns": len(frame.columns)}
        if data.label in clean:
            counts = clean[data.label].value_counts()
            metrics["class_counts"] = {str(k): int(v) for k, v in counts.items()}
        return Outcome.judge(
            findings,
            passed=f"{len(frame)} rows x {len(frame.columns)} columns match the lock and contract",
            failed="{n} contract/lock violation(s): {first}",
            metrics=metrics,
        )
