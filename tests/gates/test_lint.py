"""The lint gate: real ruff over planted files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gates.base import GateError, RunContext, Status
from gates.lint import LintGate
from gates.registry import NAMES

CLEAN = '"""A clean module."""\n\nVALUE = 1\n'


def _gate(project: Any, files: dict[str, str], *, paths: list[str] | None = None) -> Any:
    for name, text in files.items():
        path = project.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    project.edit_policy(**{"lint.paths": paths or ["src"]})
    context = RunContext(policy=project.load(), run_id="t", reports_dir=project.root / "reports")
    return LintGate().run(context)


def test_supply_chain_gates_come_first_in_registry_order() -> None:
    assert NAMES[:4] == ("lint", "sast", "audit", "data")


def test_clean_code_passes_and_keeps_ruff_output(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN})
    assert outcome.status is Status.PASSED, outcome.summary
    assert outcome.metrics["files"] == 1
    reports = project.root / "reports"
    assert json.loads((reports / "lint.ruff.json").read_text()) == []
    sarif = json.loads((reports / "lint.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"] == []


def test_a_ruff_diagnostic_fails_with_rule_file_and_line(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": '"""Doc."""\n\nimport os\n'})
    assert outcome.status is Status.FAILED
    finding = next(f for f in outcome.findings if f.rule == "F401")
    assert finding.location.path == "src/app.py"
    assert finding.location.line == 3
    assert finding.policy_key == "pyproject.toml [tool.ruff]"
    sarif = json.loads((project.root / "reports" / "lint.sarif").read_text())
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "F401"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    # ruff's own SARIF run (issue 17): its rule description and help link, a relative path.
    driver = sarif["runs"][0]["tool"]["driver"]
    assert driver["name"] == "ruff"
    (rule,) = driver["rules"]
    assert rule["id"] == "F401"
    assert "unused" in rule["fullDescription"]["text"].lower()
    assert rule["helpUri"].startswith("https://docs.astral.sh/ruff/rules/")
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/app.py"
    assert result["level"] == "error"


def test_unformatted_code_fails(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": '"""Doc."""\n\nVALUE   =  1\n'})
    assert outcome.status is Status.FAILED
    assert [f.rule for f in outcome.findings] == ["LINT003"]


def test_a_syntax_error_fails(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN, "src/broken.py": "def f(:\n"})
    assert outcome.status is Status.FAILED
    assert {f.rule for f in outcome.findings} == {"invalid-syntax"}
    assert all(f.location.path == "src/broken.py" for f in outcome.findings)


def test_blanket_noqa_fails_but_coded_noqa_passes(project: Any) -> None:
    files = {
        "src/a.py": '"""Doc."""\n\nimport os  # noqa\n',
        "src/b.py": '# ruff: noqa\n"""Doc."""\n\nimport os\n',
        "src/c.py": '"""Doc."""\n\nimport os  # noqa: F401\n\nTEXT = "# noqa"\n',
    }
    outcome = _gate(project, files)
    blanket = [(f.location.path, f.location.line) for f in outcome.findings if f.rule == "LINT004"]
    assert blanket == [("src/a.py", 3), ("src/b.py", 1)]
    assert outcome.status is Status.FAILED


def test_a_missing_path_fails(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN}, paths=["src", "nowhere"])
    assert outcome.status is Status.FAILED
    assert [f.rule for f in outcome.findings] == ["LINT002"]
    assert outcome.findings[0].policy_key == "[lint].paths"


def test_missing_ruff_is_an_error(
    project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    with pytest.raises(GateError, match="ruff is not installed"):
        _gate(project, {"src/app.py": CLEAN})


def test_ruff_failing_to_run_is_an_error(project: Any) -> None:
    (project.root / "ruff.toml").write_text("[lint]\nselect = 42\n", encoding="utf-8")
    with pytest.raises(GateError, match="ruff check"):
        _gate(project, {"src/app.py": CLEAN})


def test_cli_exit_codes(project: Any, gates_cli: Any) -> None:
    (project.root / "src").mkdir()
    (project.root / "src" / "app.py").write_text('"""Doc."""\n\nimport os\n', encoding="utf-8")
    project.edit_policy(**{"lint.paths": ["src"]})
    failed = gates_cli(project.root, "run", "lint")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "F401" in failed.stdout
    (project.root / "src" / "app.py").write_text(CLEAN, encoding="utf-8")
    assert gates_cli(project.root, "run", "lint").returncode == 0
    (project.root / "ruff.toml").write_text("[lint]\nselect = 42\n", encoding="utf-8")
    errored = gates_cli(project.root, "run", "lint")
    assert errored.returncode == 2
    assert "ERRORED" in errored.stdout


def test_a_file_ruff_config_excludes_does_not_pass(project: Any) -> None:
    (project.root / "ruff.toml").write_text('extend-exclude = ["src/gen"]\n', encoding="utf-8")
    outcome = _gate(project, {"src/app.py": CLEAN, "src/gen/made.py": "import os\n"})
    assert outcome.status is Status.FAILED
    assert [(f.rule, f.location.path) for f in outcome.findings] == [("LINT005", "src/gen/made.py")]
