"""A gate that crashes leaves a trace (issue 14, item 7), and never a pass.

The console gets one line naming the exception, where in the project's code it was raised and
``reports/<gate>.log``; the log holds the whole traceback, written atomically and listed in the
report's artifacts with its SHA-256. A crash while writing the log, an exception that cannot be
printed, or a gate calling ``sys.exit(0)`` is still ERRORED.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from gates.base import RunContext, Status
from gates.lint import LintGate
from gates.runner import run_chain
from pipeline.config import load_policy
from pipeline.fsio import sha256_file
from tests.conftest import REPO, run_module
from tests.project_support import copy_project

GATE = "lint"  # the first gate: it runs without an open run and without upstream gates


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy2(REPO / "policy.toml", folder / "policy.toml")
    shutil.copytree(REPO / "data", folder / "data")
    return folder


def _deep(n: int) -> NoReturn:
    if n:
        _deep(n - 1)
    raise ZeroDivisionError("planted at the bottom")


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no string for you")


def _raise(error: BaseException) -> Callable[[LintGate, RunContext], Any]:
    def run(self: LintGate, context: RunContext) -> NoReturn:
        raise error

    return run


def _recursion(self: LintGate, context: RunContext) -> NoReturn:
    def again() -> NoReturn:
        again()

    again()


def _exit_zero(self: LintGate, context: RunContext) -> NoReturn:
    sys.exit(0)


def _deep_raise(self: LintGate, context: RunContext) -> NoReturn:
    _deep(30)


CRASHES: dict[str, tuple[Callable[[LintGate, RunContext], Any], str]] = {
    "value-error": (_raise(ValueError("planted crash")), "ValueError: planted crash"),
    "key-error": (_raise(KeyError("column")), "KeyError: 'column'"),
    "memory-error": (_raise(MemoryError()), "MemoryError"),
    "recursion-error": (_recursion, "RecursionError"),
    "deep-stack": (_deep_raise, "ZeroDivisionError: planted at the bottom"),
    "unprintable-exception": (_raise(_Unprintable()), "_Unprintable: <unprintable>"),
    "sys-exit-0": (_exit_zero, "SystemExit: 0"),
    "multi-line-message": (_raise(OSError("line one\nline two")), "OSError: line one line two"),
}


def _run(root: Path) -> tuple[Any, str]:
    out = io.StringIO()
    summary = run_chain(
        [GATE], policy=load_policy(root / "policy.toml"), reports_dir=root / "reports", out=out
    )
    return summary, out.getvalue()


@pytest.mark.parametrize("crash", sorted(CRASHES))
def test_a_crash_is_errored_with_its_traceback_in_the_log(
    root: Path, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    run, what = CRASHES[crash]
    monkeypatch.setattr(LintGate, "run", run)
    summary, console = _run(root)
    assert summary.exit_code == 2
    result = summary.results[0]
    assert result.status is Status.ERRORED
    (finding,) = result.findings
    assert finding.rule == "GATE000"
    assert what in finding.message
    assert f"traceback in reports/{GATE}.log" in finding.message
    # The console: one clean line (and the finding), no traceback.
    assert "Traceback" not in console
    assert f"reports/{GATE}.log" in console
    # The log: the whole traceback, listed in the report with its digest.
    log = root / "reports" / f"{GATE}.log"
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text
    assert what.split(":")[0] in text
    report = json.loads((root / "reports" / f"{GATE}.json").read_text(encoding="utf-8"))
    assert report["status"] == "ERRORED"
    assert report["artifacts"] == {f"reports/{GATE}.log": sha256_file(log)}
    assert not [p for p in log.parent.iterdir() if p.name.endswith(".tmp")]


def test_the_finding_points_at_the_line_that_raised(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LintGate, "run", _deep_raise)
    summary, _ = _run(root)
    (finding,) = summary.results[0].findings
    # The innermost frame (in this test module, outside the copied project): its file and line.
    assert finding.location.path == __file__
    assert finding.location.line is not None
    assert f"{__file__}:{finding.location.line}" in finding.message


def test_a_folder_in_the_logs_place_still_gives_errored(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Planted by the pull request (a committed reports/lint.log/ folder): the log cannot be
    # written, the gate is ERRORED all the same and says why the traceback is missing.
    (root / "reports" / f"{GATE}.log").mkdir(parents=True)
    (root / "reports" / f"{GATE}.log" / "keep").write_text("x", encoding="utf-8")
    monkeypatch.setattr(LintGate, "run", _raise(ValueError("planted crash")))
    summary, console = _run(root)
    result = summary.results[0]
    assert result.status is Status.ERRORED
    assert summary.exit_code == 2
    assert f"could not write the traceback to reports/{GATE}.log" in result.summary
    assert "ValueError: planted crash" in result.summary
    assert result.artifacts == {}
    assert "Traceback" not in console


def test_a_crash_inside_the_log_writer_still_gives_errored(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gates import crashlog

    def full_disk(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(crashlog, "atomic_write_bytes", full_disk)
    monkeypatch.setattr(LintGate, "run", _raise(ValueError("planted crash")))
    summary, _ = _run(root)
    result = summary.results[0]
    assert result.status is Status.ERRORED
    assert "No space left on device" in result.summary
    assert not (root / "reports" / f"{GATE}.log").exists()


def test_a_stale_log_does_not_outlive_a_clean_rerun(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LintGate, "run", _raise(ValueError("planted crash")))
    _run(root)
    assert (root / "reports" / f"{GATE}.log").exists()
    from gates.base import Outcome

    monkeypatch.setattr(LintGate, "run", lambda self, context: Outcome(Status.PASSED, "fine"))
    summary, _ = _run(root)
    assert summary.results[0].status is Status.PASSED
    assert not (root / "reports" / f"{GATE}.log").exists()


def test_a_crash_through_the_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # The real CLI in a copied project whose lint gate raises (python -m puts the project first
    # on sys.path, so the copy's gates/ is the one that runs).
    project = copy_project(tmp_path / "project")
    lint = project / "gates" / "lint.py"
    text = lint.read_text(encoding="utf-8")
    marker = "        root = context.root\n        paths = list(context.policy.policy.lint.paths)\n"
    assert marker in text
    lint.write_text(
        text.replace(marker, '        raise RuntimeError("planted in the copy")\n' + marker),
        encoding="utf-8",
    )
    done = run_module("gates", "run", GATE, cwd=project, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errored = [line for line in done.stdout.splitlines() if line.startswith("[ERR ]")]
    assert len(errored) == 1
    assert "RuntimeError: planted in the copy at gates/lint.py:" in errored[0]
    assert f"traceback in reports/{GATE}.log" in errored[0]
    log = (project / "reports" / f"{GATE}.log").read_text(encoding="utf-8")
    assert 'raise RuntimeError("planted in the copy")' in log
