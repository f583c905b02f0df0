"""The runner: run ids, prerequisites, crash handling, exit codes, reports written atomically."""

from __future__ import annotations

import json

import pytest

from gates import runner
from gates.base import Finding, GateError, GateResult, Outcome, Status
from gates.registry import NAMES, spec


def test_a_full_run_writes_one_report_per_gate_and_a_run_file(project):
    summary = project.run()
    assert summary.exit_code == 0
    for name in NAMES:
        report = project.report(name)
        assert report["run_id"] == summary.run_id
        assert report["status"] == "PASSED"
        GateResult.from_dict(report)
    run_file = json.loads((project.root / "reports" / "run.json").read_text())
    assert run_file["run_id"] == summary.run_id
    assert "policy.toml" in run_file["inputs"]


def test_a_later_gate_joins_the_recorded_run(project):
    first = project.run(NAMES[0])
    second = project.run(NAMES[1])
    assert first.run_id == second.run_id


def test_a_later_gate_without_a_run_is_a_usage_error(project):
    with pytest.raises(GateError, match="no run in progress"):
        project.run(NAMES[1], open_run=False)


def test_run_id_from_the_environment_wins(project, monkeypatch):
    monkeypatch.setenv("GATES_RUN_ID", "ci-4242")
    assert project.run(NAMES[0]).run_id == "ci-4242"
    assert project.run(NAMES[1]).run_id == "ci-4242"


def test_unknown_gate_is_refused(project):
    with pytest.raises(GateError, match="unknown gate 'nope'"):
        project.run("nope")


def test_a_gate_after_a_failed_one_is_skipped_not_run(project):
    project.data_path.write_text(project.data_path.read_text() + "\n")
    summary = project.run()
    statuses = {r.gate: r.status for r in summary.results}
    assert statuses["data"] is Status.FAILED
    assert statuses["train"] is Status.SKIPPED
    assert "prerequisite gate 'data' is FAILED" in project.report("train")["summary"]
    assert not (project.root / "artifacts" / "model.skops").exists()
    assert summary.exit_code == 1


def test_inputs_changed_mid_run_stop_the_chain(project):
    project.run(*NAMES[: NAMES.index("data") + 1])  # the chain up to and including data
    project.edit_policy(**{"cv.folds": 4})
    summary = project.run("train")
    assert summary.results[0].status is Status.SKIPPED
    assert (
        f"inputs changed since gate '{NAMES[0]}' passed (policy.toml)" in summary.results[0].summary
    )


def _first_gate_class():
    # The gate that opens a run (registry order); patched to misbehave in the tests below.
    return type(spec(NAMES[0]).load())


def test_a_crashing_gate_is_errored_and_exits_2(project, monkeypatch):
    def boom(self, context):
        raise MemoryError("out of memory while reading")

    monkeypatch.setattr(_first_gate_class(), "run", boom)
    summary = project.run(NAMES[0])
    assert summary.results[0].status is Status.ERRORED
    assert "crashed: MemoryError" in summary.results[0].summary
    assert summary.exit_code == 2


def test_passed_with_error_findings_is_not_trusted(project, monkeypatch):
    def liar(self, context):
        return Outcome(status=Status.PASSED, summary="fine", findings=(Finding("X1", "bad"),))

    monkeypatch.setattr(_first_gate_class(), "run", liar)
    assert project.run(NAMES[0]).results[0].status is Status.ERRORED


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([Status.PASSED], 0),
        ([Status.PASSED, Status.FAILED], 1),
        ([Status.SKIPPED], 1),
        ([Status.FAILED, Status.ERRORED], 2),
    ],
)
def test_exit_code_precedence(statuses, code):
    results = tuple(
        GateResult(gate=f"g{i}", status=s, summary="", run_id="r", inputs={})
        for i, s in enumerate(statuses)
    )
    assert runner.RunSummary(run_id="r", results=results).exit_code == code


def test_report_round_trip_rejects_other_schema_versions():
    result = GateResult(gate="g", status=Status.PASSED, summary="s", run_id="r", inputs={"a": "b"})
    data = result.to_dict()
    assert GateResult.from_dict(data).to_dict() == data
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version 99"):
        GateResult.from_dict(data)


def test_git_commit_outside_a_checkout(tmp_path):
    from gates.inputs import git_commit

    assert git_commit(tmp_path) == ("unknown", False)
