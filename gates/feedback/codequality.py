"""``reports/gl-code-quality.json``: GitLab's code-quality report (a subset of Code Climate's).

Each issue needs ``description``, ``check_name``, ``fingerprint``, ``severity`` (info, minor,
major, critical, blocker) and ``location.path`` with ``location.lines.begin``
(https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format).
"""

from __future__ import annotations

import hashlib
from typing import Any

from gates.base import Finding, Severity
from gates.feedback.bundle import ReportBundle

_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.NOTE: "info"}


def _issue(gate: str, finding: Finding, *, default_path: str) -> dict[str, Any]:
    path = finding.location.path or default_path
    line = finding.location.line if finding.location.line and finding.location.line >= 1 else 1
    where = f" ({finding.policy_key})" if finding.policy_key else ""
    # Stable across runs for the same problem, so GitLab can tell new issues from old ones.
    fingerprint = hashlib.sha256(
        "\x1f".join((gate, finding.rule, path, finding.message)).encode("utf-8")
    ).hexdigest()
    return {
        "type": "issue",
        "description": f"[{gate}] {finding.rule} {finding.message}{where}",
        "check_name": finding.rule,
        "categories": ["Bug Risk" if finding.severity is Severity.ERROR else "Clarity"],
        "fingerprint": fingerprint,
        "severity": _SEVERITY[finding.severity],
        "location": {"path": path, "lines": {"begin": line}},
    }


def render(bundle: ReportBundle) -> list[dict[str, Any]]:
    """Every gate's and the feedback stage's findings as code-quality issues (duplicates merged)."""
    issues: dict[str, dict[str, Any]] = {}
    sources = [(r.gate, f) for r in bundle.results() for f in r.findings]
    sources += [("feedback", f) for f in bundle.findings]
    for gate, finding in sources:
        issue = _issue(gate, finding, default_path=bundle.policy_file)
        issues.setdefault(issue["fingerprint"], issue)
    return list(issues.values())
