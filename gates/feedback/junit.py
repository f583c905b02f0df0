"""``reports/junit.xml``: one test case per gate; error findings become failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 # builds XML only; parses nothing

from gates.base import Finding, Severity
from gates.feedback.bundle import ReportBundle

# XML 1.0 forbids most control characters, U+FFFE, U+FFFF and surrogates (a lone one is what
# surrogateescape makes of a file name that is not UTF-8, and cannot be written as UTF-8): a
# finding quoting raw data or a file name must not break the file (red team 13).
_BAD_XML = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), *range(0xD800, 0xE000)], None)
_BAD_XML.update({0xFFFE: None, 0xFFFF: None})


def _clean(text: str) -> str:
    return text.translate(_BAD_XML)


def _describe(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        where = f" ({finding.policy_key})" if finding.policy_key else ""
        seen = f" observed={finding.observed}" if finding.observed is not None else ""
        bar = f" threshold={finding.threshold}" if finding.threshold is not None else ""
        lines.append(f"{finding.rule} {finding.message}{where}{seen}{bar}")
    return _clean("\n".join(lines))


def render(bundle: ReportBundle) -> str:
    """The JUnit XML text (the schema Jenkins, GitLab and GitHub test reporters read)."""
    suite = ET.Element("testsuite", name="gates", hostname="localhost")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total = 0.0
    for gate in bundle.view.gates:
        result = gate.result
        seconds = result.duration_seconds if result is not None else 0.0
        total += seconds
        case = ET.SubElement(
            suite, "testcase", classname="gates", name=gate.name, time=f"{seconds:.3f}"
        )
        counts["tests"] += 1
        if result is None:
            ET.SubElement(case, "skipped", message=_clean(f"not run in this run: {gate.problem}"))
            counts["skipped"] += 1
            continue
        status = result.status.value
        errors = [f for f in result.findings if f.severity is Severity.ERROR]
        if status == "FAILED":
            node = ET.SubElement(
                case, "failure", message=_clean(result.summary[:500]), type="FAILED"
            )
            node.text = _describe(errors)
            counts["failures"] += 1
        elif status == "ERRORED":
            node = ET.SubElement(
                case, "error", message=_clean(result.summary[:500]), type="ERRORED"
            )
            node.text = _describe(errors)
            counts["errors"] += 1
        elif status == "SKIPPED":
            ET.SubElement(case, "skipped", message=_clean(result.summary[:500]))
            counts["skipped"] += 1
        others = [f for f in result.findings if f.severity is not Severity.ERROR]
        if others:
            ET.SubElement(case, "system-out").text = _describe(others)
    case = ET.SubElement(suite, "testcase", classname="gates", name="feedback", time="0.000")
    counts["tests"] += 1
    errors = [f for f in bundle.findings if f.severity is Severity.ERROR]
    if errors:
        node = ET.SubElement(
            case, "failure", message=_clean(errors[0].message[:500]), type="FAILED"
        )
        node.text = _describe(errors)
        counts["failures"] += 1
    warnings = [f for f in bundle.findings if f.severity is not Severity.ERROR]
    if warnings:
        ET.SubElement(case, "system-out").text = _describe(warnings)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total:.3f}")
    started = [r.started for r in bundle.results() if r.started]
    if started:
        suite.set("timestamp", min(started)[:19])
    suites = ET.Element("testsuites", name=f"run {bundle.view.run_id}")
    suites.append(suite)
    for key, value in counts.items():
        if key != "skipped":
            suites.set(key, str(value))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
