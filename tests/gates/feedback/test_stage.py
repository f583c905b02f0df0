"""The feedback stage: runs after the verdict, passed or failed, records and compares the run."""

from __future__ import annotations

import json

import pytest

from gates.base import Status
from gates.feedback import history
from gates.registry import GATES, NAMES, VERDICT
from tests.chain_support import SUPPLY_CHAIN


def test_feedback_is_registered_last_and_always_runs():
    assert NAMES[-1] == "feedback"
    assert GATES[-1].always
    assert NAMES.index("feedback") > NAMES.index(VERDICT.name)


def test_a_passing_run_is_recorded_with_its_gates_metrics_and_artifacts(passed_run):
    report = json.loads((passed_run / "reports" / "feedback.json").read_text())
    assert report["status"] == "PASSED"
    records = history.records(passed_run / "history" / "runs.jsonl")
    assert len(records) == 1
    record = records[0]
    assert record["run_id"] == report["run_id"]
    assert record["verdict"] == "PASSED"
    assert set(record["gates"]) == set(NAMES[:-1])
    assert record["gates"]["cv"]["status"] == "PASSED"
    # Notes (e.g. a row the label screen flagged within its share) do not fail a gate.
    assert record["gates"]["data"]["findings"]["error"] == 0
    assert record["gates"]["data"]["findings"]["warning"] == 0
    assert 0.9 < record["metrics"]["cv.accuracy.mean"] <= 1.0
    assert record["metrics"]["data.rows"] == 569
    assert record["policy_sha256"]
    assert record["inputs"]
    assert any(path.endswith("model.skops") for path in record["artifacts"])
    assert report["metrics"]["history_head"] == history.head_hash(
        passed_run / "history" / "runs.jsonl"
    )


def test_a_failing_gate_still_gets_feedback_and_the_reports_name_the_reason(project):
    project.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.999})
    summary = project.run(replay=SUPPLY_CHAIN)  # lint, sast, audit: their real outcome replayed
    statuses = {r.gate: r.status for r in summary.results}
    assert statuses["cv"] is Status.FAILED
    assert statuses["artifacts"] is Status.SKIPPED
    assert statuses["feedback"] is Status.PASSED
    assert summary.exit_code == 1
    record = history.records(project.root / "history" / "runs.jsonl")[-1]
    assert record["verdict"] == "FAILED"
    # CV021 is the note that there is no champion yet; CV001 is the missed threshold.
    assert record["gates"]["cv"]["rules"] == ["CV001", "CV021"]
    summary_md = (project.root / "reports" / "summary.md").read_text()
    assert "CV001 accuracy mean" in summary_md
    assert "min\\_mean" in summary_md


def test_feedback_alone_after_a_stopped_chain_records_gates_that_never_ran(project):
    project.edit_policy(**{"data.min_rows": 1000})
    summary = project.run("data")
    assert summary.exit_code == 1
    summary = project.run("feedback")
    assert summary.results[0].status is Status.PASSED
    record = history.records(project.root / "history" / "runs.jsonl")[-1]
    assert record["verdict"] == "FAILED"
    assert record["gates"]["train"]["status"] == "NOT_RUN"


def test_running_feedback_twice_for_one_run_records_it_once(passed_run):
    from tests.gates.feedback.helpers import run_stage

    path = passed_run / "history" / "runs.jsonl"
    before = history.verify(path)
    result = run_stage(passed_run)
    assert result.status is Status.PASSED
    after = history.verify(path)
    assert after.records == before.records
    assert after.head == before.head


def test_a_tampered_history_fails_the_stage_and_is_not_extended(passed_project):
    project = passed_project  # the whole chain passed once: one record in the history
    path = project.root / "history" / "runs.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"verdict":"PASSED"', b'"verdict":"FAILED"'))
    summary = project.run(replay=SUPPLY_CHAIN)
    feedback = summary.results[-1]
    assert feedback.status is Status.FAILED
    assert feedback.findings[-1].rule == "FB001"
    assert summary.exit_code == 1
    assert history.verify(path).records == 1


def test_an_unreadable_history_errors_the_stage_with_one_clear_message(passed_run, tmp_path):
    import shutil

    from tests.gates.feedback.helpers import run_stage

    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    path = root / "history" / "runs.jsonl"
    path.unlink()
    path.mkdir()
    # A folder where the history file should be is refused when the policy is loaded, before
    # the stage runs: one message naming the file, the key and what was found.
    from pipeline.errors import PolicyError

    with pytest.raises(PolicyError) as info:
        run_stage(root)
    assert "policy.toml: feedback.history: expected a file" in str(info.value)
    assert "which is a directory" in str(info.value)


def test_the_cv_gate_writes_holdout_predictions_for_the_plots(passed_run):
    import csv

    with (passed_run / "reports" / "cv.holdout.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 114  # the 20 % holdout of 569 rows
    assert set(rows[0]) == {"y_true", "y_pred", "proba_benign", "proba_malignant"}
    assert all(abs(float(r["proba_benign"]) + float(r["proba_malignant"]) - 1) < 1e-5 for r in rows)


def test_the_feedback_policy_section_is_optional_and_strict(project):
    import pytest

    from pipeline.errors import PolicyError

    document = project.policy_document()
    del document["feedback"]
    from tests.conftest import write_toml

    write_toml(project.policy_path, document)
    assert project.load().policy.feedback.history == "history/runs.jsonl"
    project.edit_policy(**{"feedback.histroy": "x"})
    with pytest.raises(PolicyError, match=r"feedback\.histroy: unknown key"):
        project.load()


def test_a_history_committed_to_the_repository_is_not_trusted(passed_run, tmp_path):
    # Red team (6 December): CI restores the run history from its cache; on a miss (a new
    # repository, an evicted cache) the checkout's own history/ was read. A pull request that
    # force-adds a consistent, re-hashed history chooses the runs FB102/FB103 compare against.
    import shutil
    import subprocess

    from tests.gates.feedback.helpers import run_stage

    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-f", "history/runs.jsonl"], cwd=root, check=True)
    before = history.verify(root / "history" / "runs.jsonl")
    assert before
    result = run_stage(root)
    assert result.status is Status.FAILED
    fb001 = [f for f in result.findings if f.rule == "FB001"]
    assert len(fb001) == 1
    assert "history/runs.jsonl: committed to the repository" in fb001[0].message
    after = history.verify(root / "history" / "runs.jsonl")
    assert after.records == before.records
