"""PASSED, FAILED and ERRORED for each gate of the spine: data, train, cv, artifacts, gate."""

from __future__ import annotations

import json

import pytest

from gates.base import Status
from tests.chain_support import SUPPLY_CHAIN


def _run_through(project, gate):
    """Run every gate up to and including ``gate``; return ``gate``'s result.

    The gates before it open the run (``Project.open_run``): lint, sast and audit replay their
    real outcome on this same code, the others run.
    """
    summary = project.run(gate)
    return summary.results[-1]


# --- data -------------------------------------------------------------------------------------


def test_data_passes_on_the_embedded_data(project):
    result = _run_through(project, "data")
    assert result.status is Status.PASSED
    assert result.metrics["rows"] == 569
    assert result.metrics["class_counts"] == {"benign": 357, "malignant": 212}


def test_data_fails_on_one_changed_byte_naming_the_lock(project):
    raw = bytearray(project.data_path.read_bytes())
    raw[200] = ord("9") if raw[200] != ord("9") else ord("8")
    project.data_path.write_bytes(bytes(raw))
    result = _run_through(project, "data")
    assert result.status is Status.FAILED
    assert {f.rule for f in result.errors} >= {"DATA001"}
    assert "approve the change with: python -m gates data approve" in result.errors[0].message


def test_data_fails_on_contract_violations_with_column_row_and_key(project):
    lines = project.data_path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[-1] = "unsure"
    lines[5] = ",".join(cells)
    project.data_path.write_text("\n".join(lines) + "\n")
    project.approve()  # even an approved file must meet the contract
    result = _run_through(project, "data")
    assert result.status is Status.FAILED
    (finding,) = result.errors
    assert finding.rule == "DATA020"
    assert finding.location.row == 4
    assert finding.location.column == "diagnosis"
    assert finding.policy_key == "[data].classes"


def test_data_fails_on_an_empty_file(project):
    project.data_path.write_bytes(b"")
    result = _run_through(project, "data")
    assert result.status is Status.FAILED
    assert any("empty" in f.message for f in result.errors)


def test_data_errors_when_the_check_crashes(project, monkeypatch):
    import pipeline.data as module  # the gate imports it when it runs

    def crash(*args, **kwargs):
        raise RuntimeError("disk vanished")

    monkeypatch.setattr(module, "check_contract", crash)
    result = _run_through(project, "data")
    assert result.status is Status.ERRORED


# --- train ------------------------------------------------------------------------------------


def test_train_saves_a_model_and_records_its_digest(project):
    result = _run_through(project, "train")
    assert result.status is Status.PASSED
    (digest,) = result.artifacts.values()
    from pipeline.fsio import sha256_file

    assert sha256_file(project.root / "artifacts" / "model.skops") == digest
    assert result.metrics["n_train"] + result.metrics["n_holdout"] == 569


def test_train_is_skipped_when_data_did_not_pass(project):
    project.data_path.write_text(project.data_path.read_text().replace("malignant", "benign", 1))
    result = _run_through(project, "train")
    assert result.status is Status.SKIPPED
    assert not (project.root / "artifacts" / "model.skops").exists()


def test_train_errors_on_an_invalid_model_parameter(project):
    project.edit_policy(**{"model.params": {"C": -2.0}})
    result = _run_through(project, "train")
    assert result.status is Status.ERRORED
    assert "[model.params].C" in result.summary


# --- cv ---------------------------------------------------------------------------------------


# The cv tests that change no input start from ``passed_project`` (data and train PASSED in
# its open run, no champion yet): cv runs again for real. A test that edits the policy opens
# its own run (in an open run the runner skips a gate whose inputs changed since lint).


def test_cv_passes_and_reports_every_metric(passed_project):
    result = _run_through(passed_project, "cv")
    assert result.status is Status.PASSED
    assert {"accuracy", "balanced_accuracy", "f1", "roc_auc"} <= set(result.metrics)
    assert len(result.metrics["accuracy"]["folds"]) == 5


def test_cv_fails_with_the_observed_value_and_the_policy_key(project):
    project.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.999})
    result = _run_through(project, "cv")
    assert result.status is Status.FAILED
    (finding,) = [f for f in result.errors if f.rule == "CV001"]
    assert finding.policy_key == "[cv.thresholds.accuracy].min_mean"
    assert finding.message.startswith("accuracy mean 0.9")
    assert finding.message.endswith("< 0.9990")


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        (
            {"cv.thresholds.accuracy.min_mean": 0.999, "cv.thresholds.accuracy.min_fold": 0.999},
            "CV002",
        ),
        ({"cv.thresholds.roc_auc.max_std": 0.0001}, "CV003"),
        ({"cv.thresholds.f1.min_holdout": 0.99}, "CV004"),
    ],
)
def test_cv_each_threshold_kind(project, changes, rule):
    project.edit_policy(**changes)
    result = _run_through(project, "cv")
    assert result.status is Status.FAILED
    assert rule in {f.rule for f in result.errors}


def test_cv_errors_when_folds_exceed_a_class(project):
    # Holding out 99% leaves 2 malignant rows to train on: 5 folds cannot be stratified.
    project.edit_policy(**{"data.holdout_fraction": 0.99})
    result = _run_through(project, "cv")
    assert result.status is Status.ERRORED
    assert "[cv].folds = 5 needs at least 5 rows of every class" in result.summary


def test_cv_refuses_a_model_swapped_after_training(passed_project):
    project = passed_project  # train saved its model in the open run
    from sklearn.dummy import DummyClassifier

    from pipeline.data import load_dataset
    from pipeline.persist import save_model

    dataset = load_dataset(project.load())
    dummy = DummyClassifier().fit(dataset.features, dataset.labels)
    from sklearn.pipeline import Pipeline

    save_model(
        Pipeline([("classifier", dummy)]),
        project.root / "artifacts" / "model.skops",
        estimator="logistic_regression",
    )
    result = project.run("cv").results[0]
    assert result.status is Status.FAILED
    assert "CV010" in {f.rule for f in result.errors}


# --- artifacts ----------------------------------------------------------------------------------


# The artifacts tests start from ``passed_project``: a copy of the session's chain, on which
# data, train, cv, risk and serve PASSED in the open run; artifacts runs again for real on it.


def test_artifacts_hashes_model_data_lock_and_policy(passed_project):
    result = passed_project.run("artifacts").results[0]
    assert result.status is Status.PASSED
    assert {
        "artifacts/model.skops",
        "artifacts/model.manifest.json",
        "policy.toml",
        "data/breast_cancer.csv",
        "data/breast_cancer.lock.json",
    } <= set(result.artifacts)
    assert "git_commit" in result.metrics


def test_artifacts_fails_when_the_model_changed_after_cv(passed_project):
    project = passed_project  # every gate before artifacts PASSED in its open run
    model = project.root / "artifacts" / "model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    result = project.run("artifacts").results[0]
    assert result.status is Status.FAILED
    assert "ART001" in {f.rule for f in result.errors}


def test_artifacts_errors_when_a_file_cannot_be_read(passed_project, monkeypatch):
    project = passed_project  # every gate before artifacts PASSED in its open run
    import gates.artifacts as module

    def io_error(path):
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(module, "sha256_file", io_error)
    result = project.run("artifacts").results[0]
    assert result.status is Status.ERRORED
    assert "Input/output error" in result.summary


# --- the verdict ----------------------------------------------------------------------------------


def _full(project):
    """A whole chain about the later gates: lint, sast and audit replayed, the others run."""
    summary = project.run(replay=SUPPLY_CHAIN)
    assert summary.exit_code == 0
    return summary


def _verdict(project):
    return project.run("gate").results[0]


# ``passed_project`` is a copy of a project on which the whole real chain passed this session.


def test_verdict_passes_when_every_gate_passed(passed_project):
    result = _verdict(passed_project)
    assert result.status is Status.PASSED
    assert set(result.metrics["gates"].values()) == {"PASSED"}


def test_verdict_fails_on_a_missing_report(passed_project):
    (passed_project.root / "reports" / "cv.json").unlink()
    result = _verdict(passed_project)
    assert result.status is Status.FAILED
    assert result.metrics["gates"]["cv"] == "MISSING"


@pytest.mark.parametrize("text", ["{ not json", "[" * 100_000 + "]" * 100_000])
def test_verdict_fails_on_an_unparsable_report(passed_project, text):
    # Nested past the JSON parser's recursion limit: a finding, not a traceback.
    (passed_project.root / "reports" / "train.json").write_text(text)
    assert "GATE011" in {f.rule for f in _verdict(passed_project).errors}


def test_verdict_fails_on_a_report_from_another_run(passed_project):
    path = passed_project.root / "reports" / "data.json"
    report = json.loads(path.read_text())
    report["run_id"] = "20200101T000000Z-000000"
    path.write_text(json.dumps(report))
    assert "GATE012" in {f.rule for f in _verdict(passed_project).errors}


def test_verdict_fails_when_an_input_changed_after_the_gates_ran(passed_project):
    passed_project.edit_policy(**{"cv.folds": 4})
    result = _verdict(passed_project)
    assert "GATE013" in {f.rule for f in result.errors}
    assert "policy.toml" in result.summary


def test_verdict_fails_when_a_hashed_artifact_changed(passed_project):
    model = passed_project.root / "artifacts" / "model.skops"
    model.write_bytes(model.read_bytes()[:-1])
    assert "GATE015" in {f.rule for f in _verdict(passed_project).errors}


def test_verdict_fails_on_a_failed_gate_and_names_it(passed_project):
    path = passed_project.root / "reports" / "cv.json"
    report = json.loads(path.read_text())
    report["status"] = "ERRORED"
    report["summary"] = "could not run: boom"
    path.write_text(json.dumps(report))
    result = _verdict(passed_project)
    assert result.status is Status.FAILED
    assert "cv ERRORED: could not run: boom" in result.summary


def test_verdict_errors_when_it_crashes(passed_project, monkeypatch):
    import gates.verdict as module

    def crash(policy):
        raise OSError("reports folder unreadable")

    monkeypatch.setattr(module, "input_digests", crash)
    assert _verdict(passed_project).status is Status.ERRORED


# --- the verdict and the base branch's policy ($GATES_BASE_POLICY, gates/policy_change.py) ---------


def _base_branch(project, tmp_path, *, edit=None, approvers=True):
    """The base branch's checkout: the project's policy, pyproject.toml and keys, ``edit`` applied to the
    policy's text, and (with ``approvers``) carol as approver; returns carol's private PEM."""
    import shutil

    from tests.keys_support import new_pem_pair

    base = tmp_path / "base"
    base.mkdir()
    shutil.copy2(project.policy_path, base / "policy.toml")
    # The rest of the base branch's rules: its ruff configuration (compared too).
    shutil.copy2(project.root / "pyproject.toml", base / "pyproject.toml")
    if (project.root / "keys").is_dir():
        shutil.copytree(project.root / "keys", base / "keys")
    secret = tmp_path / "secret"
    secret.mkdir()
    pem = new_pem_pair(base, secret, "carol", "ed25519")
    text = (base / "policy.toml").read_text(encoding="utf-8")
    if edit is not None:
        text = edit(text)
    if approvers:
        text += '\n[roles]\napprovers = {carol = "keys/carol.pub"}\n'
    (base / "policy.toml").write_text(text, encoding="utf-8")
    return base, pem


def _stricter(text):
    # The base branch holds min_holdout higher than the pull request (the project as it ran).
    import re

    found = re.search(r"\[cv\.thresholds\.accuracy\][^\[]*?min_holdout = ([0-9.]+)", text)
    assert found is not None
    return text[: found.start(1)] + "0.95" + text[found.end(1) :]


def test_verdict_fails_a_policy_change_no_approver_signed(passed_project, tmp_path, monkeypatch):
    base, _ = _base_branch(passed_project, tmp_path, edit=_stricter)
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    result = _verdict(passed_project)
    assert result.status is Status.FAILED
    assert "policy.approval.json: missing" in result.summary
    assert "cv.thresholds.accuracy.min_holdout" in result.summary
    assert set(result.metrics["gates"].values()) == {
        "PASSED"
    }  # every gate passed: the policy fails
    changes = result.metrics["policy"]["changes"]
    keys = {c["key"]: (c["base"], c["request"]) for c in changes}
    assert keys["cv.thresholds.accuracy.min_holdout"][0] == "0.95"
    assert "roles.approvers.carol" in keys  # the pull request lacks the base's [roles]
    rules = [f.rule for f in result.errors]
    assert rules[0] == "GATE016"
    assert "GATE017" in rules


def test_verdict_passes_an_approved_policy_change_listing_it(passed_project, tmp_path, monkeypatch):
    import io

    from gates.policy_change import approve

    base, pem = _base_branch(passed_project, tmp_path, edit=_stricter)
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    monkeypatch.setenv("GATES_APPROVER_KEY", pem)
    out = io.StringIO()
    assert approve(passed_project.load(), base=None, out=out) == 0, out.getvalue()
    result = _verdict(passed_project)
    assert result.status is Status.PASSED, result.summary
    assert "approved by carol: cv.thresholds.accuracy.min_holdout" in result.summary
    assert result.metrics["policy"]["approved_by"] == "carol"
    assert {f.rule for f in result.findings} == {"GATE017"}


def test_verdict_sees_no_change_in_a_reformatted_policy(passed_project, tmp_path, monkeypatch):
    base, _ = _base_branch(
        passed_project,
        tmp_path,
        edit=lambda text: "# the base branch's copy\n\n" + text.replace(" = ", "   =   "),
        approvers=False,
    )
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    result = _verdict(passed_project)
    assert result.status is Status.PASSED, result.summary
    assert result.summary.endswith("policy.toml: no change against the base branch's policy")
    assert result.metrics["policy"]["changes"] == []


def test_verdict_errors_on_an_unreadable_base_policy(passed_project, tmp_path, monkeypatch):
    monkeypatch.setenv("GATES_BASE_POLICY", str(tmp_path / "absent" / "policy.toml"))
    result = _verdict(passed_project)
    assert result.status is Status.ERRORED
    assert "$GATES_BASE_POLICY" in result.summary


def test_verdict_without_a_base_policy_compares_nothing_and_says_so(passed_project, monkeypatch):
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    result = _verdict(passed_project)
    assert result.status is Status.PASSED
    assert result.summary.endswith(
        "policy.toml not compared with a base branch ($GATES_BASE_POLICY unset)"
    )
    assert result.metrics["policy"]["compared_with"] is None


def test_the_attestation_records_the_history_head_of_the_previous_run(passed_project):
    from gates.feedback.history import head_hash
    from pipeline.signing import parse_envelope

    # The first run (the copied one): empty history when signed, then feedback appended.
    project = passed_project
    head_after_first = head_hash(project.root / "history" / "runs.jsonl")
    assert head_after_first != "0" * 64
    _full(project)
    envelope = parse_envelope(
        (project.root / "artifacts" / "attestation.intoto.json").read_bytes(), source="test"
    )
    statement = json.loads(envelope.payload)
    assert statement["predicate"]["history"]["head"] == head_after_first
