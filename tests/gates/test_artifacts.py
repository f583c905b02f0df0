"""The ``artifacts`` gate: the in-toto statement it signs, and its PASSED, FAILED, ERRORED paths."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gates.base import Status
from gates.registry import NAMES, checked_before
from tests.chain_support import SUPPLY_CHAIN
from tests.release_support import copy_project, run_chain

# The gates from data up to (not including) artifacts: data, train, cv, risk, ...
_UP_TO_ARTIFACTS = NAMES[NAMES.index("data") : NAMES.index("artifacts")]


@pytest.fixture(scope="module")
def signed(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """One project whose chain PASSED, signed with its own release key."""
    root, pem = signed_chain
    return copy_project(root, tmp_path_factory.mktemp("artifacts") / "signed"), pem


def _statement(root: Path) -> dict:
    return json.loads((root / "artifacts/attestation.statement.json").read_text(encoding="utf-8"))


def test_statement_names_every_file_by_the_sha256_of_its_bytes(signed):
    root, _ = signed
    statement = _statement(root)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert set(subjects) == {
        "artifacts/model.skops",
        "artifacts/model.manifest.json",
        "data/breast_cancer.csv",
        "data/breast_cancer.lock.json",
        "data/SHA256SUMS",
        "policy.toml",
        "requirements-extras.lock",  # audited ([audit].locks); requirements.lock is the predicate's
    }
    for name, digest in subjects.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest


def test_predicate_records_the_run_its_verdicts_and_its_signer(signed):
    root, _ = signed
    predicate = _statement(root)["predicate"]
    run_id = json.loads((root / "reports/run.json").read_text(encoding="utf-8"))["run_id"]
    assert predicate["run_id"] == run_id
    assert (
        predicate["policy"]["sha256"]
        == hashlib.sha256((root / "policy.toml").read_bytes()).hexdigest()
    )
    # Every gate registered before artifacts (lint, sast, audit, data, train, cv, risk, ...).
    assert set(predicate["gates"]) == {spec.name for spec in checked_before("artifacts")}
    assert {"lint", "sast", "audit", "data", "train", "cv", "risk"} <= set(predicate["gates"])
    cv = predicate["gates"]["cv"]
    assert cv["status"] == "PASSED"
    assert cv["findings"]["error"] == 0
    assert cv["metrics"]["accuracy"]["holdout"] > 0.9
    assert "folds" not in cv["metrics"]["accuracy"]  # key metrics only
    assert predicate["tools"]["scikit-learn"]
    assert predicate["signer"]["kind"] == "release"
    # The audit gate of this run read the tests' OSV fixture (newest record 2024-06-30).
    assert predicate["vulnerability_data"] == {
        "recorded": True,
        "audit_status": "PASSED",
        "source": "local",
        "snapshot_date": "2024-06-30",
    }
    report = json.loads((root / "reports/artifacts.json").read_text(encoding="utf-8"))
    assert report["status"] == "PASSED"
    assert "artifacts/attestation.intoto.json" in report["artifacts"]


def test_the_pipelines_envelope_verifies_with_securesystemslib(signed):
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    from pipeline.signing import load_public_key

    root, _ = signed
    public = load_public_key(root / "keys/release.pub")
    envelope = Envelope.from_dict(
        json.loads((root / "artifacts/attestation.intoto.json").read_text(encoding="utf-8"))
    )
    key = SSlibKey.from_crypto(public.key, keyid=public.keyid)
    assert list(envelope.verify([key], 1)) == [public.keyid]
    assert envelope.payload_type == "application/vnd.in-toto+json"
    assert envelope.payload == (root / "artifacts/attestation.statement.json").read_bytes()


def test_audit_report_of_this_run_records_the_vulnerability_data(signed, tmp_path):
    root, pem = signed
    copy = copy_project(root, tmp_path / "copy")
    from gates.base import RunContext
    from gates.runner import run_gate
    from pipeline.config import load_policy

    run_id = json.loads((copy / "reports/run.json").read_text(encoding="utf-8"))["run_id"]
    # The real audit report of this run, with its vulnerability-data metrics set to known values.
    audit = json.loads((copy / "reports/audit.json").read_text(encoding="utf-8"))
    assert audit["run_id"] == run_id
    audit["metrics"].update(source="osv-mirror", snapshot_date="2026-11-01")
    (copy / "reports/audit.json").write_text(json.dumps(audit), encoding="utf-8")
    policy = load_policy(copy / "policy.toml")
    context = RunContext(policy=policy, run_id=run_id, reports_dir=copy / "reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_SIGNING_KEY", pem)
        from gates.registry import spec
        from gates.runner import input_digests

        result = run_gate(spec("artifacts"), context, input_digests(policy))
    assert result.status is Status.PASSED, result.summary
    assert _statement(copy)["predicate"]["vulnerability_data"] == {
        "recorded": True,
        "audit_status": "PASSED",
        "source": "osv-mirror",
        "snapshot_date": "2026-11-01",
    }


def _run_open_before_artifacts(project) -> None:
    """``passed_project``: a copy of the session's chain, whose run passed every gate up to the
    artifacts gate (what running them here again would give); its signed bundle removed."""
    run = json.loads((project.root / "reports/run.json").read_text(encoding="utf-8"))
    for gate in _UP_TO_ARTIFACTS:
        assert project.report(gate)["status"] == "PASSED", gate
        assert project.report(gate)["run_id"] == run["run_id"], gate
    for path in (project.root / "artifacts").glob("attestation.*"):
        path.unlink()


def test_model_replaced_after_training_fails_and_nothing_is_signed(passed_project):
    project = passed_project
    _run_open_before_artifacts(project)
    model = project.root / "artifacts/model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    summary = project.run("artifacts")
    assert summary.results[0].status is Status.FAILED
    assert [f.rule for f in summary.results[0].errors] == ["ART001"]
    assert not (project.root / "artifacts/attestation.intoto.json").exists()


def test_a_symlink_in_the_artifacts_folder_fails(passed_project):
    project = passed_project
    _run_open_before_artifacts(project)
    (project.root / "artifacts/linked.csv").symlink_to(project.data_path)
    summary = project.run("artifacts")
    assert summary.results[0].status is Status.FAILED
    assert [f.rule for f in summary.results[0].errors] == ["ART003"]


def test_release_required_but_no_key_configured_is_errored(project, monkeypatch):
    monkeypatch.delenv("GATES_SIGNING_KEY", raising=False)
    project.edit_policy(**{"release.allow_dev_key": False})
    summary = project.run(replay=SUPPLY_CHAIN)  # lint, sast, audit: their real outcome replayed
    artifacts = next(r for r in summary.results if r.gate == "artifacts")
    assert artifacts.status is Status.ERRORED
    assert "no release signing key" in artifacts.summary
    assert summary.exit_code == 2


def test_fresh_project_passes_with_a_development_key(project, monkeypatch):
    monkeypatch.delenv("GATES_SIGNING_KEY", raising=False)
    summary = run_chain(project.root, pem=None, gates=project.chain(SUPPLY_CHAIN))
    assert summary.exit_code == 0
    assert _statement(project.root)["predicate"]["signer"]["kind"] == "development"
    assert (project.root / ".keys/.gitignore").read_text(encoding="utf-8") == "*\n"
