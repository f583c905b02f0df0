"""Red team 14: format characters in the PR comment's code spans (row 89).

Row 85 made ``markdown.escape`` show Unicode format characters (bidi overrides and isolates,
zero-width ones) as ``U+202E`` instead of obeying them, but the summary also writes a warning's
rule and ``policy_key`` into code spans through ``markdown.code``, which passed them (red
before, the renderer fed such a key). Hardening: no warning was found whose key carries the
pull request's text as it is (GATE017 names a changed key, but a key segment that is not a
bare TOML key is JSON-quoted with ``\\u202e`` escapes, checked), so the comment showed no
reordered text in a real run; the code spans now hold to row 85's rule by themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.base import Finding, GateResult, Location, Severity, Status
from gates.feedback import html, markdown
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import GateView, RunView

FORMAT = {
    "rlo": "src/x\u202eyp.lmth",
    "rli": "ok \u2067evil\u2069 done",
    "zero-width-space": "approve\u200bd",
    "bom": "\ufeffx",
}


def _bundle(tmp_path: Path, finding: Finding) -> ReportBundle:
    result = GateResult(
        gate="data",
        status=Status.PASSED,
        summary="1 warning",
        run_id="r1",
        inputs={},
        findings=(finding,),
        duration_seconds=0.5,
        started="2026-12-07T00:00:00+00:00",
        artifacts={},
    )
    (tmp_path / "policy.toml").write_text("[data]\nlabel = 'y'\n", encoding="utf-8")
    return ReportBundle(
        view=RunView(
            run_id="r1",
            gates=(GateView("data", "", result), GateView("gate", "", None, "no report")),
        ),
        root=tmp_path,
        reports_dir=tmp_path,
        policy_file="policy.toml",
        commit="abc",
        deltas=(),
        findings=(),
        history=(),
        head="0" * 64,
    )


@pytest.mark.parametrize("case", sorted(FORMAT))
def test_a_policy_key_in_the_comment_shows_format_characters(tmp_path: Path, case: str) -> None:
    name = FORMAT[case]
    finding = Finding(
        rule="GATE017",
        message="policy.toml: a key added (base branch -> this request)",
        severity=Severity.WARNING,
        location=Location(path="policy.toml"),
        policy_key=f"data.columns.{name}.dtype",
    )
    text = markdown.render(_bundle(tmp_path, finding))
    assert "GATE017" in text
    for char in name:
        if not char.isascii() and not char.isprintable():
            assert char not in text, repr(char)
            assert f"U+{ord(char):04X}" in text


@pytest.mark.parametrize("case", sorted(FORMAT))
def test_report_html_shows_format_characters_instead_of_obeying_them(
    tmp_path: Path, case: str
) -> None:
    """``report.html`` (the page a reviewer opens from the run's artifacts) escaped HTML but
    obeyed format characters: a column name or message with U+202E read reversed there, though
    ``summary.md`` showed it (red before: the page held the raw character)."""
    name = FORMAT[case]
    finding = Finding(
        rule="DATA040",
        message=f"data/train.csv: column {name} is not in the contract",
        severity=Severity.WARNING,
        location=Location(path="data/train.csv"),
        policy_key=f"data.columns.{name}.dtype",
    )
    page = html.render(_bundle(tmp_path, finding), classes=["0", "1"], positive="1")
    assert "DATA040" in page
    for char in name:
        if not char.isascii() and not char.isprintable():
            assert char not in page, repr(char)
            assert f"U+{ord(char):04X}" in page


def test_code_spans_keep_ordinary_text(tmp_path: Path) -> None:
    """Control: plain text and non-ASCII letters are kept as they are (green before)."""
    assert markdown.code("[data.columns].größe") == "`[data.columns].größe`"
    assert markdown.code("a`b") == "`a'b`"
    assert html.escape("<größe> & ü") == "&lt;größe&gt; &amp; ü"
