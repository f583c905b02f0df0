"""The runner: run ids, prerequisites, crash handling, exit codes, reports written atomically."""

from __future__ import annotations

import io
import json

import pytest

from gates import runner
from gates.base import Finding, Gate, GateError, GateResult, Outcome, Status
from gates.registry import NAMES
from tests.chain_support import SUPPLY_CHAIN


class Fake(Gate):
    """A stand-in gate for the runner's own tests: returns (or raises) what it is given."""

    description = "a fake gate"

    def __init__(self, name, outcome=None, *, raises=None):
        self.name = name
        self.outcome = outcome or Outcome(status=Status.PASSED, summary=f"{name} fine")
        self.raises = raises
        self.calls = 0

    def run(self, context):
        self.calls += 1
        if self.raises is not None:
            raise self.raises
        return self.outcome


def _fakes(*gates):
    return gates or (Fake("first"), Fake("second"), Fake("third"))


def _chain(project, names, gates):
    return runner.run_chain(
        names,
        gates=gates,
        policy=project.load(),
        reports_dir=project.root / "reports",
        out=io.StringIO(),
    )


def test_a_full_run_writes_one_report_per_gate_and_a_run_file(project):
    # Every registered gate; lint, sast and audit replay their real outcome on this code.
    summary = project.run(replay=SUPPLY_CHAIN)
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
    gates = _fakes()
    first = _chain(project, ["first"], gates)
    second = _chain(project, ["second"], gates)
    assert first.run_id == second.run_id
    assert second.results[0].status is Status.PASSED


def test_a_later_gate_without_a_run_is_a_usage_error(project):
    with pytest.raises(GateError, match="no run in progress"):
        project.run(NAMES[1], open_run=False)
    with pytest.raises(GateError, match="no run in progress"):
        _chain(project, ["second"], _fakes())


def test_run_id_from_the_environment_wins(project, monkeypatch):
    monkeypatch.setenv("GATES_RUN_ID", "ci-4242")
    gates = _fakes()
    assert _chain(project, ["first"], gates).run_id == "ci-4242"
    assert _chain(project, ["second"], gates).run_id == "ci-4242"


def test_unknown_gate_is_refused(project):
    with pytest.raises(GateError, match="unknown gate 'nope'"):
        project.run("nope")
    with pytest.raises(GateError, match="unknown gate 'lint'; expected one of: first, second"):
        _chain(project, ["lint"], _fakes()[:2])


def test_a_chain_names_each_gate_once(project):
    with pytest.raises(GateError, match="each name once"):
        _chain(project, [], (Fake("same"), Fake("same")))


def test_a_given_chain_runs_in_its_order_and_checks_its_own_prerequisites(project):
    failing = Fake("second", Outcome(status=Status.FAILED, summary="no"))
    third = Fake("third")
    summary = _chain(project, [], (Fake("first"), failing, third))
    assert [r.gate for r in summary.results] == ["first", "second", "third"]
    assert [r.status for r in summary.results] == [Status.PASSED, Status.FAILED, Status.SKIPPED]
    assert "prerequisite gate 'second' is FAILED" in summary.results[2].summary
    assert third.calls == 0
    assert project.report("third")["status"] == "SKIPPED"


def test_a_stand_in_takes_the_role_of_the_registered_gate_of_its_name():
    registered = runner.as_spec(Fake("gate"))
    assert registered.verdict
    assert not registered.always
    assert runner.as_spec(Fake("feedback")).always
    other = runner.as_spec(Fake("other"))
    assert not other.verdict
    assert not other.always
    assert other.target == f"{__name__}:Fake"


def test_a_gate_after_a_failed_one_is_skipped_not_run(project):
    project.data_path.write_text(project.data_path.read_text() + "\n")
    summary = project.run(replay=SUPPLY_CHAIN)
    statuses = {r.gate: r.status for r in summary.results}
    assert statuses["data"] is Status.FAILED
    assert statuses["train"] is Status.SKIPPED
    assert "prerequisite gate 'data' is FAILED" in project.report("train")["summary"]
    assert not (project.root / "artifacts" / "model.skops").exists()
    assert summary.exit_code == 1


def test_inputs_changed_mid_run_stop_the_chain(project):
    project.run("data")  # the chain up to and including data
    project.edit_policy(**{"cv.folds": 4})
    summary = project.run("train")
    assert summary.results[0].status is Status.SKIPPED
    assert (
        f"inputs changed since gate '{NAMES[0]}' passed (policy.toml)" in summary.results[0].summary
    )


def test_a_crashing_gate_is_errored_and_exits_2(project):
    crashing = Fake("first", raises=MemoryError("out of memory while reading"))
    summary = _chain(project, ["first"], (crashing, Fake("second")))
    assert summary.results[0].status is Status.ERRORED
    assert "crashed: MemoryError" in summary.results[0].summary
    assert summary.exit_code == 2


def test_passed_with_error_findings_is_not_trusted(project):
    liar = Fake(
        "first", Outcome(status=Status.PASSED, summary="fine", findings=(Finding("X1", "bad"),))
    )
    assert _chain(project, ["first"], (liar,)).results[0].status is Status.ERRORED


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
