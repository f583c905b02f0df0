"""``reports/gl-code-quality.json``: GitLab's code-quality report (a subset of Code Climate's).

Each issue needs ``description``, ``check_name``, ``fingerprint``, ``severity`` (info, minor,
major, critical, blocker) and ``location.path`` with ``location.lines.begin``
(https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format).

GitLab compares fingerprints between the merge request and its target to tell new issues from
old ones, so a fingerprint must not change while the problem stays: it is made of the gate, the
rule, the path, the policy key and the message with every number (and hex digest) taken out, never
of line numbers, counts, ages or scores that change from day to day. Issues that share all of that
are told apart by their order (the first, the second, ...).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

from gates.base import Finding, Severity
from gates.feedback.bundle import ReportBundle
from gates.sarif_log import policy_line

_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.NOTE: "info"}
# Hex digests and ids first (they mix letters and digits), then every number left.
_VOLATILE = re.compile(r"\b[0-9a-f]{7,}\b|[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?", re.IGNORECASE)


def stable_text(message: str) -> str:
    """The message with its numbers and digests replaced by ``#``."""
    return _VOLATILE.sub("#", message)


def fingerprint(gate: str, finding: Finding, path: str, occurrence: int = 0) -> str:
    """The issue's fingerprint: the same for the same problem on any day."""
    parts = (
        gate,
        finding.rule,
        path,
        finding.policy_key or "",
        stable_text(finding.message),
        str(occurrence),
    )
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _issue(gate: str, finding: Finding, *, path: str, line: int, occurrence: int) -> dict[str, Any]:
    where = f" ({finding.policy_key})" if finding.policy_key else ""
    return {
        "type": "issue",
        "description": f"[{gate}] {finding.rule} {finding.message}{where}",
        "check_name": finding.rule,
        "categories": ["Bug Risk" if finding.severity is Severity.ERROR else "Clarity"],
        "fingerprint": fingerprint(gate, finding, path, occurrence),
        "severity": _SEVERITY[finding.severity],
        "location": {"path": path, "lines": {"begin": line}},
    }


def render(bundle: ReportBundle) -> list[dict[str, Any]]:
    """Every gate's and the feedback stage's findings as code-quality issues (duplicates merged).

    A finding without a file points at the line of its policy key in the policy file.
    """
    path = bundle.policy_path or bundle.root / bundle.policy_file
    try:
        policy_text: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        policy_text = None
    sources = [(r.gate, f) for r in bundle.results() for f in r.findings]
    sources += [("feedback", f) for f in bundle.findings]
    issues: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, int, str]] = set()
    occurrences: Counter[tuple[str, str, str, str, str]] = Counter()
    for gate, finding in sources:
        where = finding.location.path or bundle.policy_file
        line = finding.location.line
        about_policy = where == bundle.policy_file
        if line is None and about_policy and policy_text is not None:
            line = policy_line(policy_text, finding.policy_key)
        begin = line if line is not None and line >= 1 else 1
        exact = (gate, finding.rule, where, begin, finding.message)
        if exact in seen:
            continue  # the same problem reported twice
        seen.add(exact)
        stable = (gate, finding.rule, where, finding.policy_key or "", stable_text(finding.message))
        issues.append(_issue(gate, finding, path=where, line=begin, occurrence=occurrences[stable]))
        occurrences[stable] += 1
    return issues
