"""The dotenv report: the verdict and model digest as KEY=value lines, nothing that is not safe."""

from __future__ import annotations

import json

import pytest

from gates.ci.dotenv import dotenv_lines
from gates.ci.interface import CiError

DIGEST = "9c630eb02c9e80034361249421b8908fd7062207a2859012219236abffa52b45"


def _report(folder, gate: str, **fields) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{gate}.json").write_text(json.dumps({"gate": gate, **fields}), encoding="utf-8")


def test_a_passed_run_exports_the_verdict_and_the_model_digest(tmp_path):
    _report(tmp_path, "gate", status="PASSED", run_id="gitlab-1000")
    _report(
        tmp_path,
        "artifacts",
        artifacts={"artifacts/model.skops": DIGEST, "policy.toml": "ab" * 32},
    )
    assert dotenv_lines(tmp_path) == [
        "GATES_VERDICT=PASSED",
        "GATES_VERDICT_RUN_ID=gitlab-1000",
        "GATES_MODEL_PATH=artifacts/model.skops",
        f"GATES_MODEL_SHA256={DIGEST}",
    ]


def test_a_failed_run_exports_the_verdict_without_a_digest(tmp_path):
    _report(tmp_path, "gate", status="FAILED", run_id="r1")
    assert dotenv_lines(tmp_path) == ["GATES_VERDICT=FAILED", "GATES_VERDICT_RUN_ID=r1"]


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_a_missing_or_unparsable_verdict_is_exported_as_missing(tmp_path, content):
    if content is not None:
        (tmp_path / "gate.json").write_text(content, encoding="utf-8")
    assert dotenv_lines(tmp_path) == ["GATES_VERDICT=MISSING"]


def test_a_value_that_could_inject_a_second_variable_is_refused(tmp_path):
    _report(tmp_path, "gate", status="PASSED\nGATES_VERDICT=PASSED", run_id="r1")
    with pytest.raises(CiError, match="refusing to export"):
        dotenv_lines(tmp_path)


def test_cli_writes_the_file_and_exits_0_or_2(tmp_path, gates_cli):
    reports = tmp_path / "reports"
    _report(reports, "gate", status="PASSED", run_id="r1")
    _report(reports, "artifacts", artifacts={"artifacts/model.skops": DIGEST})
    out = reports / "gates.env"
    result = gates_cli(tmp_path, "ci", "dotenv", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert f"GATES_MODEL_SHA256={DIGEST}\n" in out.read_text(encoding="utf-8")

    printed = gates_cli(tmp_path, "ci", "dotenv", "--reports", str(reports))
    assert printed.stdout == out.read_text(encoding="utf-8")

    _report(reports, "gate", status="PASSED", run_id="r1; rm -rf /")
    refused = gates_cli(tmp_path, "ci", "dotenv", "--reports", str(reports))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: refusing to export")
    assert "Traceback" not in refused.stderr


def test_cli_cannot_write_the_file_is_a_usage_error(tmp_path, gates_cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = gates_cli(tmp_path, "ci", "dotenv", "--output", str(blocker / "gates.env"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_missing_reports_folder_fails_closed_naming_it(tmp_path, gates_cli, kind):
    """Before: ``ci dotenv --reports /nonexistent`` printed GATES_VERDICT=MISSING and exited 0,
    so a mistyped folder looked like a run whose verdict went missing, and the job went on."""
    reports = tmp_path / "no-such-reports"
    if kind == "a file":
        reports.write_text("not a folder", encoding="utf-8")
    with pytest.raises(CiError, match="the reports folder"):
        dotenv_lines(reports)
    out = tmp_path / "gates.env"
    result = gates_cli(tmp_path, "ci", "dotenv", "--reports", str(reports), "--output", str(out))
    assert result.returncode == 2, result.stdout
    expected = "does not exist" if kind == "missing" else "is not a folder"
    assert result.stderr == (
        f"error: {reports}: the reports folder {expected}; expected the folder the gates wrote "
        "their reports to (--reports, default reports; [run].reports_dir)\n"
    )
    assert result.stdout == ""
    assert not out.exists()


def test_ci_deploy_refuses_a_missing_root_instead_of_creating_it(tmp_path, gates_cli):
    """Before: ``ci deploy --root DIR`` with DIR missing created it and wrote the deployment
    files there, exit 0 (``ci render`` refused it already)."""
    from tests.conftest import REPO

    root = tmp_path / "no-such-project"
    for extra in ([], ["--check"]):
        policy = str(REPO / "policy.toml")
        result = gates_cli(
            tmp_path, "ci", "deploy", "--root", str(root), "--policy", policy, *extra
        )
        assert result.returncode == 2, result.stdout
        assert result.stderr.startswith(f"error: {root}: not a folder; pass --root")
        assert not root.exists()
