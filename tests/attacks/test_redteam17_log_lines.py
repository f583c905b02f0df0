"""Red team 17: a column name that writes lines of its own into the CI log.

A quoted CSV header may hold a new line, a carriage return or an escape sequence, and the data
gate quotes an undeclared column's name in its finding (DATA011). The console printed the
finding as it was: the pull request's data wrote ``[ok  ] data       PASSED`` and GitHub
workflow commands (``::error title=verdict::PASSED``, ``::add-mask::FAIL``) as lines of the
CI log, in colour. The console now shows every control and format character as ``U+XXXX``:
one line per finding, whatever it quotes.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = "data/breast_cancer.csv"
EVIL = (
    "mean_radius\n::error title=verdict::PASSED\n::add-mask::FAIL\r"
    "\x1b[32m[ok  ] data       PASSED\x1b[0m\u2028x\x85y\x00"
)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The real data gate's result on a pull request whose CSV header names ``EVIL``."""
    from gates.base import GateResult, RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    root = tmp_path_factory.mktemp("rt17-log") / "pr"
    root.mkdir()
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    path = root / DATA
    quoted = '"' + EVIL.replace('"', '""') + '"'
    path.write_bytes(path.read_bytes().replace(b"id,mean_radius,", f"id,{quoted},".encode(), 1))
    context = RunContext(policy=load_policy(root / "policy.toml"), run_id="rt17", reports_dir=root)
    outcome = DataGate().run(context)
    assert any(EVIL in f.message for f in outcome.findings if f.rule == "DATA011")
    return GateResult(
        gate="data",
        status=outcome.status,
        summary=outcome.summary,
        run_id="rt17",
        inputs={},
        findings=outcome.findings,
    )


def _check(text: str, findings: int) -> None:
    for raw in ("\x1b", "\r", "\x00", "\u2028", "\x85"):
        assert raw not in text, (raw, text)
    lines = text.splitlines()
    # Before: '::error title=verdict::PASSED' and '::add-mask::FAIL' were lines of their own.
    assert not [line for line in lines if line.lstrip().startswith("::")], lines
    assert len(lines) == 1 + findings, lines
    assert "U+000A::error title=verdict::PASSEDU+000A" in text


def test_the_plain_log_shows_a_column_name_on_its_finding_line(result: object) -> None:
    from gates.base import GateResult
    from gates.console import print_result

    assert isinstance(result, GateResult)
    out = io.StringIO()
    print_result(result, out=out)
    _check(out.getvalue(), len(result.errors))


def test_the_terminal_shows_a_column_name_on_its_finding_line(result: object) -> None:
    from gates.base import GateResult
    from gates.console import RichDisplay

    assert isinstance(result, GateResult)
    out = io.StringIO()
    display = RichDisplay(out, total=1)
    display.finish(result)
    display.close()
    # rich wraps long lines at its width: join the wrapped ones before counting.
    text = out.getvalue()
    assert "\x1b" not in text, repr(text)
    assert "U+000A::error title=verdict::PASSEDU+000A" in text.replace("\n", "")


def test_ordinary_text_is_unchanged() -> None:
    """Control: letters beyond ASCII and a tab-free message stay as they are."""
    from gates.console import one_line

    assert one_line("colonne 'éte' — ok") == "colonne 'éte' — ok"
    assert one_line("a\u202eb") == "aU+202Eb"
