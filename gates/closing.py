"""The closing lines of a run: its warnings, then the verdict with the path to report.html.

Read from the reports on disk (``run.json`` and each gate's ``<gate>.json`` of the current run),
so the same lines come out of ``python -m gates run`` and of nox, whose gate sessions are
separate commands: the noxfile prints them once more when nox exits, after the feedback stage
and nox's own summary, so the verdict is the last line there too, also when a gate stopped
the chain early (the verdict never ran: the first gate that did not pass is named).

Standard library only: the noxfile imports this module in nox's own interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.registry import GATES, VERDICT
from pipeline.fsio import read_regular

REPORT_HTML = "report.html"
# Warnings shown at the end; the reports keep all of them.
_SHOWN_WARNINGS = 10
# A gate's report or run.json is a few KB; one of more is refused unread (as are a symlink, a
# FIFO or a device in its place: the read would show another file or never end).
MAX_REPORT_BYTES = 16 << 20


def read_report_json(path: Path) -> Any:
    """The JSON of a report file; OSError (missing, not a regular file of at most
    ``MAX_REPORT_BYTES``) or ValueError naming what was found (not UTF-8 or JSON, a number past
    4,300 digits, nesting past the parser's limit, a RecursionError otherwise)."""
    raw = read_regular(path, limit=MAX_REPORT_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        msg = "expected JSON, found nesting too deep to parse"
        raise ValueError(msg) from None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        document = read_report_json(path)
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def this_run(reports_dir: Path) -> tuple[str, list[dict[str, Any]]] | None:
    """The current run's id and its gates' reports in registry order (None: no run recorded)."""
    run = _read(reports_dir / "run.json")
    if run is None or not isinstance(run.get("run_id"), str):
        return None
    run_id = run["run_id"]
    reports = []
    for spec in GATES:
        report = _read(reports_dir / f"{spec.name}.json")
        if report is not None and report.get("run_id") == run_id:
            reports.append(report)
    return run_id, reports


def warning_lines(reports: list[dict[str, Any]]) -> list[str]:
    """``warning: <gate>: <rule> <message>`` for each warning finding, once each."""
    lines: list[str] = []
    for report in reports:
        for finding in report.get("findings") or []:
            if not isinstance(finding, dict) or finding.get("severity") != "warning":
                continue
            line = f"warning: {report.get('gate')}: {finding.get('rule')} {finding.get('message')}"
            if line not in lines:
                lines.append(line)
    if len(lines) > _SHOWN_WARNINGS:
        more = len(lines) - _SHOWN_WARNINGS
        lines = [*lines[:_SHOWN_WARNINGS], f"warning: ... {more} more in the gates' reports"]
    return lines


def verdict_line(reports_dir: Path, run_id: str, reports: list[dict[str, Any]]) -> str:
    """The verdict of this run, or why there is none, with where to read the report."""
    html = reports_dir / REPORT_HTML
    where = f"report: {html}" if html.is_file() else f"reports in {reports_dir}"
    by_gate = {r.get("gate"): r for r in reports}
    verdict = by_gate.get(VERDICT.name)
    if verdict is not None:
        return f"verdict: {verdict.get('status')} (run {run_id}; {where})"
    ran = [r for r in reports if r.get("gate") != VERDICT.name]
    stopped = next((r for r in ran if r.get("status") != "PASSED"), None)
    if stopped is not None:
        return (
            f"verdict: FAILED: {stopped.get('gate')} {stopped.get('status')}: "
            f"{stopped.get('summary')}; the verdict did not run (run {run_id}; {where})"
        )
    return (
        f"verdict: not reached: {len(ran)} gate(s) PASSED in run {run_id}, the verdict did not "
        f"run ('nox -s train gate' or 'python -m gates run' runs it; {where})"
    )


def closing_lines(reports_dir: Path, *, warnings: bool = True) -> list[str]:
    """The warnings of the current run, then its verdict line (nothing when no run is recorded)."""
    found = this_run(reports_dir)
    if found is None:
        return []
    run_id, reports = found
    head = warning_lines(reports) if warnings else []
    always = {spec.name for spec in GATES if spec.always}
    for report in reports:
        if report.get("gate") in always and report.get("status") != "PASSED":
            # The verdict stands; say which stage after it did not pass (nox fails on it).
            head.append(f"  {report.get('gate')} {report.get('status')}: {report.get('summary')}")
    return [*head, verdict_line(reports_dir, run_id, reports)]
