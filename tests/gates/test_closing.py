"""The closing lines: warnings on the console, then the verdict with report.html, always last."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from gates import console
from gates.closing import closing_lines
from gates.registry import NAMES, spec

RUN = "20261205T000000Z-abcdef"


def _report(reports: Path, gate: str, status: str, *, run: str = RUN, **extra: Any) -> None:
    document = {"gate": gate, "status": status, "run_id": run, "summary": f"{gate} said so"}
    (reports / f"{gate}.json").write_text(json.dumps({**document, **extra}), encoding="utf-8")


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"run_id": RUN}), encoding="utf-8")
    return folder


WARNING = {"rule": "AUD007", "message": "advisory snapshot is 783 days old", "severity": "warning"}


def test_warnings_come_before_the_verdict_and_it_names_report_html(reports: Path) -> None:
    for gate in NAMES:
        findings = [WARNING] if gate == "audit" else []
        _report(reports, gate, "PASSED", findings=findings)
    _report(reports, "lint", "PASSED", run="an-older-run", findings=[{**WARNING, "rule": "OLD"}])
    (reports / "report.html").write_text("<html></html>", encoding="utf-8")
    lines = closing_lines(reports)
    assert lines == [
        "warning: audit: AUD007 advisory snapshot is 783 days old",
        f"verdict: PASSED (run {RUN}; report: {reports / 'report.html'})",
    ]


def test_a_chain_stopped_early_names_the_gate_that_stopped_it(reports: Path) -> None:
    _report(reports, "lint", "PASSED")
    _report(reports, "sast", "PASSED")
    _report(reports, "audit", "FAILED")
    _report(reports, "feedback", "PASSED")
    last = closing_lines(reports)[-1]
    assert last.startswith("verdict: FAILED: audit FAILED: audit said so; the verdict did not run")
    assert last.endswith(f"reports in {reports})")  # no report.html yet: the folder


def test_a_failed_feedback_stage_is_said_above_the_verdict(reports: Path) -> None:
    for gate in NAMES:
        _report(reports, gate, "FAILED" if gate == "feedback" else "PASSED")
    lines = closing_lines(reports)
    assert lines[-2] == "  feedback FAILED: feedback said so"
    assert lines[-1].startswith("verdict: PASSED")


def test_no_recorded_run_prints_nothing(tmp_path: Path) -> None:
    assert closing_lines(tmp_path) == []


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_spinner_shows_the_place_in_the_chain_and_the_time_taken() -> None:
    out = _Tty()
    display = console.RichDisplay(out, total=1)  # one gate of the chain, as under nox
    display.start(spec("train"))
    time.sleep(0.4)
    display.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    place = f"[{NAMES.index('train') + 1}/{len(NAMES)}] train "
    assert re.search(re.escape(place) + r"(0\.[1-9]|[1-9][0-9]*\.[0-9]) s", text), text
