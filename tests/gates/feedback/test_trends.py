"""Trends against the champion and recent runs become findings; policy decides their weight."""

from __future__ import annotations

import dataclasses
import json
import shutil

from gates.base import Severity, Status
from gates.feedback.trends import compare, read_champion, recent_mean
from pipeline.config import FeedbackPolicy
from tests.gates.feedback.helpers import run_stage


def _history(*values: float, rate: float = 0.0) -> list[dict]:
    return [{"metrics": {"cv.accuracy.mean": v, "data.flag_rate": rate}} for v in values]


def test_no_history_and_no_champion_means_no_findings():
    deltas, findings = compare(
        {"cv.accuracy.mean": 0.9},
        champion=None,
        history=[],
        policy=FeedbackPolicy(),
        policy_file="p",
    )
    assert findings == []
    assert deltas[0].vs_champion is None


def test_a_drop_against_recent_runs_is_a_warning_by_default_and_an_error_when_policy_says():
    current = {"cv.accuracy.mean": 0.90, "cv.accuracy.std": 0.5}
    _, findings = compare(
        current,
        champion=None,
        history=_history(0.97, 0.95),
        policy=FeedbackPolicy(),
        policy_file="p",
    )
    assert [(f.rule, f.severity) for f in findings] == [("FB102", Severity.WARNING)]
    assert findings[0].policy_key == "[feedback].max_metric_drop"
    strict = FeedbackPolicy(fail_on_regression=True)
    _, findings = compare(
        current, champion=None, history=_history(0.97), policy=strict, policy_file="p"
    )
    assert findings[0].severity is Severity.ERROR


def test_a_small_drop_within_the_allowance_is_not_a_finding():
    _, findings = compare(
        {"cv.accuracy.mean": 0.955},
        champion=None,
        history=_history(0.97),
        policy=FeedbackPolicy(),
        policy_file="p",
    )
    assert findings == []


def test_only_the_last_n_runs_count():
    assert recent_mean(_history(0.1, 0.9, 0.9), window=2) == {
        "cv.accuracy.mean": 0.9,
        "data.flag_rate": 0.0,
    }


def test_a_rising_flag_rate_is_flagged():
    _, findings = compare(
        {"data.flag_rate": 0.2},
        champion=None,
        history=_history(0.9, rate=0.01),
        policy=FeedbackPolicy(fail_on_flag_rise=True),
        policy_file="p",
    )
    assert [(f.rule, f.severity) for f in findings] == [("FB103", Severity.ERROR)]


def test_champion_shapes_are_read_defensively(tmp_path):
    path = tmp_path / "champion.json"
    assert read_champion(path, history=[]) == (None, [])
    path.write_text(json.dumps({"metrics": {"accuracy": {"mean": 0.99, "holdout": 0.98}}}))
    champion, _ = read_champion(path, history=[])
    assert champion.metrics == {"cv.accuracy.mean": 0.99, "cv.accuracy.holdout": 0.98}
    path.write_text(json.dumps({"metrics": {"cv.f1.mean": 0.9}}))
    assert read_champion(path, history=[])[0].metrics == {"cv.f1.mean": 0.9}
    path.write_text(json.dumps({"run_id": "r1"}))
    champion, _ = read_champion(path, history=[{"run_id": "r1", "metrics": {"cv.f1.mean": 0.8}}])
    assert champion.metrics == {"cv.f1.mean": 0.8}
    path.write_text("{oops")
    champion, findings = read_champion(path, history=[])
    assert champion is None
    assert findings[0].rule == "FB110"


def test_a_better_champion_makes_the_stage_warn_or_fail_per_policy(passed_run, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    # A champion record kept by hand, not the registry's pointer (which is verified like every
    # reader verifies it: tests/attacks/test_registry_head.py).
    policy = (root / "policy.toml").read_text()
    pointer = 'champion = "registry/champion"'
    assert pointer in policy
    (root / "policy.toml").write_text(policy.replace(pointer, 'champion = "champion.json"'))
    (root / "champion.json").write_text(
        json.dumps({"run_id": "old", "metrics": {"accuracy": {"mean": 0.999, "holdout": 0.999}}})
    )
    result = run_stage(root)
    assert result.status is Status.PASSED
    assert {f.rule for f in result.findings} == {"FB101"}
    summary = (root / "reports" / "summary.md").read_text()
    assert "| cv.accuracy.mean | 0.97" in summary
    assert "0.9990 | -0.02" in summary
    text = (root / "policy.toml").read_text() + "\n"
    (root / "policy.toml").write_text(
        text.replace("fail_on_regression = false", "fail_on_regression = true")
    )
    result = run_stage(root)
    assert result.status is Status.FAILED
    assert result.findings[0].policy_key == "[feedback].max_metric_drop"


def test_flagged_rows_of_a_failed_gate_count_towards_the_flag_rate():
    from gates.base import GateResult
    from gates.feedback.collect import GateView, RunView, key_metrics

    def result(gate, status, metrics):
        return GateResult(gate, status, "s", "r", {}, metrics=metrics)

    view = RunView(
        run_id="r",
        gates=(
            GateView(
                "data",
                "",
                result("data", Status.FAILED, {"rows": 200, "flagged_rows": {"outliers": 6}}),
            ),
            GateView("screen", "", result("screen", Status.PASSED, {"flagged_rows": 4})),
            GateView("gate", "", None, "no report"),
        ),
    )
    assert key_metrics(view)["data.flag_rate"] == 0.05


def test_the_data_gates_screening_checks_are_read_per_check_and_counted_once():
    from gates.base import GateResult
    from gates.feedback.collect import GateView, RunView, flagged_rows, key_metrics

    metrics = {
        "rows": 100,
        "flagged_rows": 3,  # distinct rows: one row was flagged by both checks
        "checks": {"outliers": {"flagged": 2, "share": 0.02}, "label_noise": {"flagged": 2}},
    }
    result = GateResult("data", Status.PASSED, "s", "r", {}, metrics=metrics)
    assert flagged_rows(result) == {"outliers": 2, "label_noise": 2}
    view = RunView(run_id="r", gates=(GateView("data", "", result), GateView("gate", "", None)))
    assert key_metrics(view)["data.flag_rate"] == 0.03


def test_the_champion_is_taken_from_the_cv_gates_comparison_when_there_is_one(tmp_path):
    from gates.feedback.trends import champion_from_cv

    assert champion_from_cv({"champion": {"status": "none"}}) is None
    assert champion_from_cv({}) is None
    champion = champion_from_cv(
        {
            "champion": {
                "status": "compared",
                "version": "20260101T000000Z-abcdef-0123456789ab",
                "run_id": "20260101T000000Z-abcdef",
                "deltas": {"accuracy": {"candidate": 0.95, "champion": 0.97, "delta": -0.02}},
            }
        }
    )
    assert champion.metrics == {"cv.accuracy.holdout": 0.97}
    assert champion.run_id == "20260101T000000Z-abcdef"
    pointer = tmp_path / "champion"
    pointer.write_text(json.dumps({"version": "20260101T000000Z-abcdef-0123456789ab"}))
    history = [{"run_id": "20260101T000000Z-abcdef", "metrics": {"cv.f1.mean": 0.91}}]
    assert read_champion(pointer, history=history)[0].metrics == {"cv.f1.mean": 0.91}


def _append_runs(root, *, table, count=3, score=1.0):
    """``count`` earlier runs recorded with every score at ``score``, on ``table``."""
    from gates.feedback import history

    path = root / "history" / "runs.jsonl"
    last = history.records(path)[-1]
    for i in range(count):
        record = {
            k: v for k, v in last.items() if k not in ("seq", "prev", "hash", "schema_version")
        }
        record["run_id"] = f"earlier-{i}"
        record["metrics"] = {
            k: score if k.startswith("cv.") and k.endswith((".mean", ".holdout")) else v
            for k, v in last["metrics"].items()
        }
        if table is None:
            record.pop("table", None)
        else:
            record["table"] = table
        history.append(path, record)


OTHER_TABLE = {"sha256": "0" * 64, "label": "quality", "classes": 3, "features": 13}


def test_runs_on_another_table_are_not_compared_and_the_restart_is_said_once(passed_run, tmp_path):
    """User trial, 7 December: after ``init --force`` switched the project to another table, the
    stage compared the new table's run with the old table's last runs (7 FB102 warnings)."""
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    _append_runs(root, table=OTHER_TABLE)
    result = run_stage(root)
    assert result.status is Status.PASSED
    assert [f.rule for f in result.findings] == ["FB104"]
    note = result.findings[0]
    assert note.severity is Severity.NOTE
    assert "label 'quality'" in note.message
    assert "restart" in note.message
    assert result.summary.endswith("0 trend/feedback warning(s), 1 note(s)")
    summary = (root / "reports" / "summary.md").read_text()
    assert "FB102" not in summary
    assert "- 📝 `FB104` the previous recorded run was made on another table" in summary


def test_runs_recorded_before_tables_were_recorded_are_not_compared(passed_run, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    _append_runs(root, table=None)
    result = run_stage(root)
    assert [f.rule for f in result.findings] == ["FB104"]
    assert "does not record its table" in result.findings[0].message


def test_runs_on_the_same_table_are_still_compared(passed_run, tmp_path):
    """The filter keeps a real regression: the same label, classes and features, other data
    (a feedback approval, a corrected cell) are the runs trends exist to compare."""
    from gates.feedback import history

    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    ours = history.records(root / "history" / "runs.jsonl")[-1]["table"]
    _append_runs(root, table=OTHER_TABLE, count=2)
    _append_runs(root, table=ours, count=1)
    result = run_stage(root)
    rules = [f.rule for f in result.findings]
    assert "FB104" not in rules  # the previous run was on this table: nothing restarts
    assert "FB102" in rules
    # The mean compared with is the same-table run's (1.0), not diluted by the other table's.
    drop = next(f for f in result.findings if f.rule == "FB102")
    assert "(1.0000)" in drop.message


def test_the_table_of_a_run_is_its_task_not_its_data_or_thresholds():
    from gates.feedback.collect import table_identity
    from pipeline.config import load_policy
    from tests.conftest import REPO

    data = load_policy(REPO / "policy.toml").policy.data
    ours = table_identity(data)
    assert ours["label"] == data.label
    assert ours["features"] == len(data.feature_columns)
    same = [
        data.model_copy(update={"path": "data/other.csv", "min_rows": 1}),
        data.model_copy(update={"columns": dict(reversed(data.columns.items()))}),
    ]
    for other in same:
        assert table_identity(other) == ours
    first = next(iter(data.feature_columns))
    different = [
        data.model_copy(update={"label": "other"}),
        data.model_copy(update={"classes": [*data.classes, "third"]}),
        data.model_copy(update={"positive_class": data.classes[0]}),
        data.model_copy(update={"columns": {k: v for k, v in data.columns.items() if k != first}}),
    ]
    for other in different:
        assert table_identity(other)["sha256"] != ours["sha256"]


def test_a_champion_trained_on_another_table_is_skipped_with_a_note(tmp_path):
    from gates.feedback.collect import table_identity
    from gates.feedback.stage import _trends
    from pipeline.config import load_policy
    from tests.conftest import REPO

    policy = load_policy(REPO / "policy.toml")
    ours = table_identity(policy.policy.data)
    record = {"run_id": "r1", "metrics": {"cv.accuracy.mean": 0.999}, "table": OTHER_TABLE}
    pointer = tmp_path / "champion.json"
    pointer.write_text(json.dumps({"run_id": "r1"}))
    champion, problems = read_champion(pointer, history=[record])
    assert problems == []
    assert champion is not None
    assert champion.table == OTHER_TABLE["sha256"]
    notes: list = []
    kept, _, findings = _trends(
        policy,
        {"cv.accuracy.mean": 0.9},
        champion=champion,
        previous=[{**record, "table": ours}],
        table=ours,
        notes=notes,
    )
    assert kept is None
    assert [f.rule for f in findings] == ["FB102"]  # the same-table run is still compared
    assert [n.rule for n in notes] == ["FB104"]
    assert "trends skip the champion" in notes[0].message
    same = dataclasses.replace(champion, table=ours["sha256"])
    notes = []
    kept, _, findings = _trends(
        policy, {"cv.accuracy.mean": 0.9}, champion=same, previous=[], table=ours, notes=notes
    )
    assert kept is same
    assert notes == []
    assert [f.rule for f in findings] == ["FB101"]
