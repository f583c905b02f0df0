"""``python -m gates``: a test per exit code, and bad input that never shows a traceback."""

from __future__ import annotations

import pytest

from gates import _cli
from gates.registry import NAMES


def test_list_prints_the_registry_in_order(project, gates_cli):
    result = gates_cli(project.root, "list")
    assert result.returncode == 0
    listed = [line.split()[1] for line in result.stdout.splitlines()]
    assert listed == list(NAMES)


def test_exit_0_when_every_gate_passes(passed_project, capsys):
    # The chain passed on this copy once: its unchanged gates are reused from the gate cache.
    project = passed_project
    code = _cli.main(["run", "--policy", str(project.policy_path)])
    assert code == 0
    assert "verdict: PASSED" in capsys.readouterr().out


def test_exit_1_when_a_gate_fails(project, monkeypatch, capsys):
    import functools

    import gates.runner
    from tests.chain_support import SUPPLY_CHAIN

    project.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.999})
    # The whole chain through the CLI; lint, sast and audit replay their real outcome on this
    # code (the edit is in [cv], which none of them reads): ruff, bandit and pip-audit ran once.
    chain = functools.partial(gates.runner.run_chain, gates=project.chain(SUPPLY_CHAIN))
    monkeypatch.setattr(gates.runner, "run_chain", chain)
    code = _cli.main(["run", "--policy", str(project.policy_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "CV001 accuracy mean" in out
    assert "([cv.thresholds.accuracy].min_mean)" in out
    assert "verdict: FAILED" in out
    assert project.report("sast")["summary"].startswith("replayed: ")


def test_exit_1_for_a_single_failing_gate_says_the_chain_stopped(project, capsys):
    project.open_run("data")  # opens the run that `data` joins
    assert project.report(NAMES[0])["status"] == "PASSED"
    project.data_path.write_text(project.data_path.read_text() + "1,2,3\n")
    code = _cli.main(["run", "data", "--policy", str(project.policy_path)])
    assert code == 1
    assert "stopped: data did not pass" in capsys.readouterr().out


def test_exit_2_when_a_gate_cannot_run(passed_project, monkeypatch, capsys):
    from gates.data_integrity import DataGate

    # The chain passed on this copy once: lint, sast and audit are reused, data runs again.
    project = passed_project
    monkeypatch.setattr(DataGate, "run", lambda self, context: 1 / 0)
    code = _cli.main(["run", "--rerun-from", "data", "--policy", str(project.policy_path)])
    assert code == 2
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_exit_130_when_interrupted(project, monkeypatch, capsys):
    import gates.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gates.runner, "run_chain", interrupted)
    assert _cli.main(["run", "--policy", str(project.policy_path)]) == 130
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        (None, ("run", "--policy", "nope.toml"), "nope.toml: policy file not found"),
        ("policy.toml", ("run",), "not valid TOML"),
        (None, ("run", "bogus"), "unknown gate 'bogus'"),
        (None, ("run", "cv"), "no run in progress"),
        (None, ("frobnicate",), "invalid choice"),
    ],
)
def test_exit_2_on_bad_input_without_traceback(project, gates_cli, setup, args, fragment):
    if setup:
        (project.root / setup).write_text("[broken\n")
    result = gates_cli(project.root, *args, open_run=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_check_and_schema_check(project, gates_cli):
    assert gates_cli(project.root, "policy", "check").returncode == 0
    from tests.conftest import REPO

    assert gates_cli(REPO, "policy", "schema", "--check", "policy.schema.json").returncode == 0
    stale = project.root / "stale.json"
    stale.write_text("{}\n")
    drift = gates_cli(project.root, "policy", "schema", "--check", str(stale))
    assert drift.returncode == 1
    assert "differs" in drift.stdout


def test_data_approve_refuses_broken_data_and_leaves_the_lock(project, gates_cli):
    lock = project.root / "data" / "breast_cancer.lock.json"
    before = lock.read_bytes()
    project.data_path.write_text(project.data_path.read_text().replace("benign", "unsure", 1))
    result = gates_cli(project.root, "data", "approve")
    assert result.returncode == 1
    assert "not approved" in result.stdout
    assert "DATA020" in result.stdout
    assert lock.read_bytes() == before


def test_data_approve_then_verify(project, gates_cli):
    lines = project.data_path.read_text().splitlines()
    project.data_path.write_text("\n".join(lines[:-1]) + "\n")
    assert gates_cli(project.root, "data", "verify").returncode == 1
    approved = gates_cli(project.root, "data", "approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "rows 569 -> 568 (-1)" in approved.stdout
    assert gates_cli(project.root, "data", "verify").returncode == 0


def test_reports_folder_can_be_chosen(project, capsys):
    elsewhere = project.root / "elsewhere"
    code = _cli.main(
        ["run", NAMES[0], "--policy", str(project.policy_path), "--reports", str(elsewhere)]
    )
    assert code == 0
    assert (elsewhere / f"{NAMES[0]}.json").is_file()
    assert not (project.root / "reports").exists()


def test_data_help_names_the_everyday_changes_and_the_variables(capsys):
    """`data --help` and `data approve --help` say what a change to the data takes, which
    variables approve reads, and where the walk-through is; that section exists."""
    from pathlib import Path

    for args in (["data", "--help"], ["data", "approve", "--help"]):
        with pytest.raises(SystemExit) as exited:
            _cli.main(args)
        assert exited.value.code == 0
        out = capsys.readouterr().out
        for text in (
            "GATES_APPROVER_KEY   an approver's private key, its PEM text",
            "GATES_BASE_POLICY",
            "GATES_APPROVED_LOCK",
            "[data.checks.batch].enabled = false",
            "[data.checks.batch].max_dropped",
            'docs/own-data.md, "Changing the data"',
        ):
            assert text in out, (args, text, out)
    docs = Path(__file__).resolve().parents[2] / "docs" / "own-data.md"
    assert "\n## Changing the data\n" in docs.read_text(encoding="utf-8")
