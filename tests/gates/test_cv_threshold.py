"""The ``cv`` gate against the champion: first run stated, regression beyond tolerance FAILED."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.base import Status
from tests.chain_support import replaying
from tests.release_support import copy_project, run_chain


@pytest.fixture(scope="module")
def deployed(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A signed project whose model was promoted to champion."""
    from gates.release import deploy
    from pipeline.config import load_policy

    root, pem = signed_chain
    root = copy_project(root, tmp_path_factory.mktemp("cv") / "deployed")
    deploy(load_policy(root / "policy.toml"), reports_dir=root / "reports")
    return root, pem


def _rerun(root: Path, pem: str, recorded: Path):
    """The whole chain again, signed with ``pem``; lint, sast and audit replayed (same code)."""
    return run_chain(root, pem=pem, gates=replaying(recorded))


def _cv(root: Path) -> dict:
    return json.loads((root / "reports/cv.json").read_text(encoding="utf-8"))


def test_first_run_states_that_there_is_no_champion(project):
    assert project.run("data", "train", "cv").exit_code == 0
    report = project.report("cv")
    assert report["metrics"]["champion"]["status"] == "none"
    assert "first run: no champion" in report["summary"]
    assert [f["rule"] for f in report["findings"]] == ["CV021"]
    assert report["findings"][0]["severity"] == "note"


def test_same_model_again_is_within_tolerance(deployed, tmp_path, passed_chain):
    root, pem = deployed
    copy = copy_project(root, tmp_path / "copy")
    assert _rerun(copy, pem, passed_chain).exit_code == 0
    champion = _cv(copy)["metrics"]["champion"]
    assert champion["status"] == "compared"
    assert champion["deltas"]["accuracy"]["delta"] == 0.0
    assert "within tolerance" in _cv(copy)["summary"]


def test_regression_beyond_tolerance_fails_with_the_observed_delta(
    deployed, tmp_path, passed_chain
):
    root, pem = deployed
    copy = copy_project(root, tmp_path / "copy")
    text = (copy / "policy.toml").read_text(encoding="utf-8")
    # A heavily regularised model: still above every [cv.thresholds] bar, below the champion.
    (copy / "policy.toml").write_text(text.replace("C = 1.0", "C = 0.01"), encoding="utf-8")
    summary = _rerun(copy, pem, passed_chain)
    cv = next(r for r in summary.results if r.gate == "cv")
    assert cv.status is Status.FAILED
    assert {f.rule for f in cv.errors} == {"CV020"}
    accuracy = next(f for f in cv.errors if f.policy_key == "[release.tolerance.accuracy]")
    deltas = cv.metrics["champion"]["deltas"]["accuracy"]
    assert deltas["delta"] < -deltas["allowed_drop"]
    assert accuracy.observed == f"{deltas['delta']:+.6f}"
    assert f"delta {deltas['delta']:+.4f}" in accuracy.message
    assert summary.exit_code == 1


def test_wider_tolerance_accepts_the_same_regression(deployed, tmp_path, passed_chain):
    root, pem = deployed
    copy = copy_project(root, tmp_path / "copy")
    text = (copy / "policy.toml").read_text(encoding="utf-8").replace("C = 1.0", "C = 0.01")
    text = text.replace("absolute = 0.01", "absolute = 0.0").replace(
        "relative = 0.0", "relative = 0.05"
    )
    (copy / "policy.toml").write_text(text, encoding="utf-8")
    assert _rerun(copy, pem, passed_chain).exit_code == 0
    allowed = _cv(copy)["metrics"]["champion"]["deltas"]["accuracy"]["allowed_drop"]
    assert allowed == pytest.approx(
        0.05 * _cv(copy)["metrics"]["champion"]["deltas"]["accuracy"]["champion"], abs=1e-6
    )


def test_a_champion_that_does_not_verify_makes_the_gate_errored(deployed, tmp_path, passed_chain):
    root, pem = deployed
    copy = copy_project(root, tmp_path / "copy")
    pointer = json.loads((copy / "registry/champion").read_text(encoding="utf-8"))
    model = copy / "registry/versions" / pointer["version"] / "artifacts/model.skops"
    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF
    model.write_bytes(bytes(data))
    summary = _rerun(copy, pem, passed_chain)
    cv = next(r for r in summary.results if r.gate == "cv")
    assert cv.status is Status.ERRORED
    assert "champion cannot be trusted" in cv.summary
    assert "artifacts/model.skops" in cv.summary
    assert summary.exit_code == 2
