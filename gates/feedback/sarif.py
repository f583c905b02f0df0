"""``reports/merged.sarif``: every ``reports/*.sarif`` other gates wrote, plus every gate finding.

SARIF 2.1.0 (OASIS). GitHub code scanning and GitLab read one file with several runs; each
tool keeps its own run, and the gate findings form one more run whose driver is this pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.base import Finding, Severity
from gates.feedback.bundle import ReportBundle

MERGED = "merged.sarif"
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def _location(finding: Finding, default_path: str) -> dict[str, Any]:
    region: dict[str, Any] = {}
    if finding.location.line is not None and finding.location.line >= 1:
        region["startLine"] = finding.location.line
    physical: dict[str, Any] = {"artifactLocation": {"uri": finding.location.path or default_path}}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def gate_run(bundle: ReportBundle) -> dict[str, Any]:
    """One SARIF run holding every finding of every gate (and of the feedback stage)."""
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    sources = [(r.gate, f) for r in bundle.results() for f in r.findings]
    sources += [("feedback", f) for f in bundle.findings]
    for gate, finding in sources:
        rules.setdefault(
            finding.rule,
            {
                "id": finding.rule,
                "shortDescription": {"text": f"{gate} gate rule {finding.rule}"},
                "properties": {"gate": gate},
            },
        )
        properties = {
            k: v
            for k, v in (
                ("gate", gate),
                ("observed", finding.observed),
                ("threshold", finding.threshold),
                ("policyKey", finding.policy_key),
                ("column", finding.location.column),
                ("row", finding.location.row),
            )
            if v is not None
        }
        results.append(
            {
                "ruleId": finding.rule,
                "level": _LEVELS[finding.severity],
                "message": {"text": finding.message},
                "locations": [_location(finding, bundle.policy_file)],
                "properties": properties,
            }
        )
    return {
        "tool": {
            "driver": {
                "name": "secure-ml-pipeline gates",
                "informationUri": "https://example.invalid/docs/feedback.md",
                "rules": list(rules.values()),
            }
        },
        "automationDetails": {"id": f"gates/{bundle.view.run_id}"},
        "results": results,
    }


def _tool_runs(reports_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in sorted(reports_dir.glob("*.sarif")):
        if path.name == MERGED:
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            found = document["runs"]
            if not isinstance(found, list):
                raise TypeError("runs is not a list")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            problems.append(f"{path.name}: not merged ({type(err).__name__}: {err})")
            continue
        runs.extend(run for run in found if isinstance(run, dict))
    return runs, problems


def render(bundle: ReportBundle) -> tuple[dict[str, Any], list[str]]:
    """The merged SARIF log, and the names of SARIF files that could not be merged."""
    runs, problems = _tool_runs(bundle.reports_dir)
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [*runs, gate_run(bundle)]}
    return log, problems
