"""The ``risk`` gate: PASSED on the committed policy, FAILED on each bar, ERRORED when unmeasurable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gates.base import Outcome, RunContext, Status
from gates.risk import RiskGate
from tests.chain_support import replaying
from tests.conftest import write_toml
from tests.release_support import copy_project, run_chain


def _context(project: Any) -> RunContext:
    run_id = project.report("train")["run_id"]
    return RunContext(policy=project.load(), run_id=run_id, reports_dir=project.root / "reports")


def _judge(project: Any) -> Outcome:
    return RiskGate().run(_context(project))


def test_committed_policy_passes_on_the_embedded_data(passed_chain: Path) -> None:
    report = json.loads((passed_chain / "reports/risk.json").read_text(encoding="utf-8"))
    assert report["status"] == "PASSED"
    assert [f["rule"] for f in report["findings"]] == ["RISK021"]  # first run: no champion
    figures = report["metrics"]["robustness"]
    # Logistic regression: every figure is the exact certificate, on all 114 holdout rows.
    assert {(r["norm"], r["method"], r["rows"]) for r in figures} == {
        ("linf", "certified", 114),
        ("l2", "certified", 114),
    }
    assert len(figures) == 6
    assert {a["attack"] for a in report["metrics"]["privacy"]} == {
        "loss_threshold",
        "art_black_box",
    }


def test_the_gate_takes_at_most_a_quarter_of_the_chain(recorded_chain: tuple[Path, Any]) -> None:
    _, summary = recorded_chain
    seconds = {r.gate: r.duration_seconds for r in summary.results}
    assert seconds["risk"] <= 0.25 * sum(seconds.values()), seconds


THRESHOLDS = [
    pytest.param(
        "risk.robustness.linf.min_accuracy",
        [1.0, 1.0, 1.0],
        "RISK001",
        "[risk.robustness.linf].min_accuracy",
        id="linf-min-accuracy",
    ),
    pytest.param(
        "risk.robustness.l2.min_accuracy",
        [0.99, 0.99, 0.99],
        "RISK001",
        "[risk.robustness.l2].min_accuracy",
        id="l2-min-accuracy",
    ),
    pytest.param("risk.privacy.max_auc", 0.5, "RISK010", "[risk.privacy].max_auc", id="max-auc"),
    pytest.param(
        "risk.privacy.max_tpr_at_0_1pct_fpr",
        0.0,
        "RISK011",
        "[risk.privacy].max_tpr_at_0_1pct_fpr",
        id="tpr-0.1pct",
    ),
    pytest.param(
        "risk.privacy.max_tpr_at_1pct_fpr",
        0.0,
        "RISK012",
        "[risk.privacy].max_tpr_at_1pct_fpr",
        id="tpr-1pct",
    ),
]


@pytest.mark.parametrize(("key", "impossible", "rule", "policy_key"), THRESHOLDS)
def test_an_impossible_bar_fails_and_restoring_it_passes(
    passed_project: Any, key: str, impossible: Any, rule: str, policy_key: str
) -> None:
    original = passed_project.policy_document()
    passed_project.edit_policy(**{key: impossible})
    failed = _judge(passed_project)
    assert failed.status is Status.FAILED
    missed = [f for f in failed.findings if f.rule == rule]
    assert missed, failed.findings
    assert {f.policy_key for f in missed} == {policy_key}
    assert all(f.location.path == "policy.toml" and f.observed for f in missed)
    write_toml(passed_project.policy_path, original)
    assert _judge(passed_project).status is Status.PASSED


def test_the_report_names_units_features_and_methods(passed_chain: Path) -> None:
    report = json.loads((passed_chain / "reports/risk.json").read_text(encoding="utf-8"))
    metrics = report["metrics"]
    assert metrics["units"].startswith("standardized")
    assert len(metrics["mutable_features"]) == 30
    assert metrics["estimator"] == "logistic_regression"
    for attack in metrics["privacy"]:
        assert set(attack) >= {"auc", "tpr_at_0.1pct_fpr", "tpr_at_1pct_fpr", "min_fpr_step"}


def test_a_model_file_that_is_not_the_trained_one_is_errored(passed_project: Any) -> None:
    model = passed_project.root / "artifacts/model.skops"
    payload = bytearray(model.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    model.write_bytes(bytes(payload))
    summary = passed_project.run("risk", open_run=False)
    (result,) = summary.results
    assert result.status is Status.ERRORED
    assert "model.skops" in result.summary
    assert summary.exit_code == 2


def test_a_validly_saved_model_that_train_did_not_save_fails(passed_project: Any) -> None:
    # Bytes that verify, but not the model the train gate saved in this run (RISK020).
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from pipeline.data import load_dataset
    from pipeline.persist import save_model

    dataset = load_dataset(passed_project.load())
    dummy = Pipeline([("classifier", DummyClassifier().fit(dataset.features, dataset.labels))])
    save_model(
        dummy, passed_project.root / "artifacts/model.skops", estimator="logistic_regression"
    )
    (result,) = passed_project.run("risk", open_run=False).results
    assert result.status is Status.FAILED
    assert "RISK020" in {f.rule for f in result.errors}


@pytest.mark.slow
def test_an_impossible_bar_turns_the_verdict_red_and_restoring_it_green(
    project: Any, passed_chain: Path
) -> None:
    original = project.policy_document()
    project.edit_policy(**{"risk.robustness.linf.min_accuracy": [0.99, 0.99, 0.99]})
    red = run_chain(project.root, pem=None, gates=replaying(passed_chain))
    verdicts = {r.gate: r.status for r in red.results}
    assert verdicts["risk"] is Status.FAILED
    assert verdicts["gate"] is Status.FAILED
    assert red.exit_code == 1
    write_toml(project.policy_path, original)
    green = run_chain(project.root, pem=None, gates=replaying(passed_chain))
    assert {r.gate: r.status for r in green.results}["gate"] is Status.PASSED
    assert green.exit_code == 0


@pytest.fixture(scope="module")
def deployed(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A signed project whose model was promoted to champion."""
    from gates.release import deploy
    from pipeline.config import load_policy

    root, pem = signed_chain
    root = copy_project(root, tmp_path_factory.mktemp("risk") / "deployed")
    deploy(load_policy(root / "policy.toml"), reports_dir=root / "reports")
    return root, pem


@pytest.mark.slow
def test_a_less_robust_candidate_fails_against_the_champion(
    deployed: tuple[Path, str], tmp_path: Path, passed_chain: Path
) -> None:
    root, pem = deployed
    copy = copy_project(root, tmp_path / "copy")
    text = (copy / "policy.toml").read_text(encoding="utf-8")
    # Weaker regularisation: as accurate as the champion (cv passes), far less robust. The
    # absolute bars are lowered so that only the comparison with the champion can fail.
    text = text.replace("C = 1.0", "C = 3.0")
    text = text.replace("min_accuracy = [0.9, 0.85, 0.6]", "min_accuracy = [0.5, 0.5, 0.5]")
    text = text.replace("min_accuracy = [0.9, 0.85, 0.65]", "min_accuracy = [0.5, 0.5, 0.5]")
    (copy / "policy.toml").write_text(text, encoding="utf-8")
    summary = run_chain(copy, pem=pem, gates=replaying(passed_chain))
    by_gate = {r.gate: r for r in summary.results}
    assert by_gate["cv"].status is Status.PASSED, by_gate["cv"].summary
    risk = by_gate["risk"]
    assert risk.status is Status.FAILED
    assert {f.rule for f in risk.errors} == {"RISK002"}
    assert {f.policy_key for f in risk.errors} == {"[risk.robustness].max_drop"}
    assert risk.metrics["champion"]["status"] == "compared"


def test_summary_and_html_report_show_the_figures(passed_chain: Path) -> None:
    summary = (passed_chain / "reports/summary.md").read_text(encoding="utf-8")
    assert "### Model risk" in summary
    assert "| linf | 0.25 |" in summary
    assert "threshold | 0.5" in summary  # the loss-threshold attack (underscores escaped)
    html = (passed_chain / "reports/report.html").read_text(encoding="utf-8")
    assert "Robust accuracy per norm" in html
