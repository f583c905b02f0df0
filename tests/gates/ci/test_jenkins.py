"""The Jenkinsfile: a structural test of its stages, and npm-groovy-lint over it."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from gates.ci.interface import CiPlan, KeyService
from gates.ci.jenkins import JenkinsRenderer
from tests.conftest import REPO
from tests.gates.ci.conftest import zap_on

GATE_STEP = "sh '. .venv/bin/activate && python -m gates run {name}'"


def _render(specs=None) -> str:
    return JenkinsRenderer().render(CiPlan.from_specs(*([specs] if specs else [])))


def _block(text: str, opening: str) -> str:
    """The text of the brace block that starts at ``opening`` (which ends in ``{``)."""
    start = text.index(opening) + len(opening)
    depth = 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    msg = f"unbalanced block after {opening!r}"
    raise AssertionError(msg)


def test_stages_install_check_then_run_the_gates_in_registry_order_then_deploy(future_specs):
    text = _render(future_specs)
    plan = CiPlan.from_specs(future_specs)
    stages = re.findall(r"stage\('([^']+)'\)", text)
    checks = ["tests", "typecheck"]
    assert stages == [
        "gates",
        "install",
        "ci-config",
        *(s.name for s in plan.gates),
        *checks,
        "deploy",
    ]
    check = _block(text, "stage('ci-config') {")
    assert "sh '. .venv/bin/activate && python -m gates ci render --check'" in check
    assert "sh '. .venv/bin/activate && python -m gates ci deploy --check'" in check
    assert text.count("{") == text.count("}")
    for spec in plan.gates:
        block = _block(text, f"stage('{spec.name}') {{")
        if spec.base_branch:  # one sh block: the target branch's policy, then the gate
            assert "GATES_BASE_POLICY" in block
            gate = rf"^\s+\. \.venv/bin/activate && python -m gates run {spec.name}$"
            assert re.search(gate, block, re.MULTILINE)
        else:
            assert GATE_STEP.format(name=spec.name) in block
            assert "GATES_BASE_POLICY" not in block
    install = _block(text, "stage('install') {")
    assert "python -m pip install --require-hashes -r requirements.lock" in install
    assert 'GATES_RUN_ID = "jenkins-${env.BUILD_TAG}"' in text
    assert "GATES_ADVISORY_DB" in text


def test_post_always_runs_feedback_and_publishes_native_reports(future_specs):
    text = _render(future_specs)
    gates_stage = _block(text, "stage('gates') {")
    always = _block(gates_stage, "always {")
    assert GATE_STEP.format(name="feedback") in always
    assert "catchError(message: 'always-run stage feedback failed')" in always
    assert "junit allowEmptyResults: true, testResults: 'reports/junit.xml'" in always
    assert "archiveArtifacts allowEmptyArchive: true, artifacts: 'reports/**,artifacts/**'" in (
        always
    )
    assert "sarif(id: 'policy-gates', name: 'Policy gates', pattern: 'reports/merged.sarif')" in (
        always
    )
    assert "enabledForFailure: true" in always
    # The feedback stage runs before the reports are published, so they include its output.
    assert always.index("gates run feedback") < always.index("junit ")


def test_without_feedback_each_gates_sarif_is_recorded():
    from gates.registry import GATES

    always = _block(_render(tuple(s for s in GATES if not s.always)), "always {")
    assert "pattern: 'reports/*.sarif'" in always
    assert "gates run" not in always


def test_deploy_waits_for_approval_on_the_default_branch_and_alone_gets_the_key():
    text = _render()
    deploy = _block(text, "stage('deploy') {")
    when = _block(deploy, "when {")
    assert "branch 'main'" in when
    assert "beforeInput true" in when  # no approval prompt on other branches
    approval = _block(deploy, "input {")
    assert "submitter 'release-approvers'" in approval
    assert "beforeAgent true" in when  # and no agent is held while the approval waits
    assert "\n                    python -m gates deploy\n" in deploy
    # Re-signed with the release key (only this stage has it) before deploy verifies.
    assert deploy.index("python -m gates run artifacts gate") < deploy.index(
        "python -m gates deploy"
    )
    assert deploy.index("unstash VERDICT_STASH") < deploy.index("python -m gates deploy")
    assert "stash name: VERDICT_STASH" in _block(_block(text, "stage('gates') {"), "success {")
    assert "\n    agent none\n" in text
    assert "python -m pip install --require-hashes -r requirements.lock" in deploy
    assert "GATES_SIGNING_KEY = credentials('gates-signing-key')" in deploy
    # Beside it, only the registry's pinned head (test_registry_pin.py).
    assert "GATES_REGISTRY_HEAD = credentials('gates-registry-head')" in deploy
    assert text.count("credentials(") == 2


# -- npm-groovy-lint ----------------------------------------------------------------------------


@pytest.mark.slow
def test_npm_groovy_lint_finds_nothing_and_would_catch_a_broken_file(
    tool, run_tool, tmp_path, future_specs
):
    linter = tool("npm-groovy-lint")
    if shutil.which("java") is None:
        pytest.skip("java is not installed (npm-groovy-lint runs CodeNarc on it)")
    shutil.copy2(REPO / ".groovylintrc.json", tmp_path / ".groovylintrc.json")
    files = {
        "committed": (REPO / "Jenkinsfile").read_text(encoding="utf-8"),
        "future": _render(future_specs),
        # [keys].provider set: the deploy stage's credential bindings (test_key_service.py).
        "aws": JenkinsRenderer().render(
            CiPlan.from_specs(
                keys=KeyService("aws-kms", "eu-west-1", ("GATES_SIGNING_KEY_ML_DSA_65",))
            )
        ),
        "vault": JenkinsRenderer().render(CiPlan.from_specs(keys=KeyService("vault-transit"))),
        # [serve.dast].zap on: the deploy stage's ZAP API scan (test_zap.py).
        "zap": JenkinsRenderer().render(CiPlan.from_specs(zap=zap_on())),
        "broken": _render().rstrip().removesuffix("}"),
    }
    for name, text in files.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "Jenkinsfile").write_text(text, encoding="utf-8")
    # --noserver: no CodeNarc server is left running after the test.
    result = run_tool(
        [linter, "--noserver", "--output", "json", *(f"{n}/Jenkinsfile" for n in files)],
        cwd=tmp_path,
        timeout=600,
    )
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["summary"]["totalFilesLinted"] == 6, result.stdout + result.stderr
    found = {
        name: [
            (e["rule"], e["severity"])
            for path, entry in report["files"].items()
            if path.endswith(f"{name}/Jenkinsfile")
            for e in entry["errors"]
        ]
        for name in files
    }
    assert found["committed"] == []
    assert found["future"] == []
    assert found["aws"] == []
    assert found["vault"] == []
    assert found["zap"] == []
    assert ("NglParseError", "error") in found["broken"]
    assert result.returncode == 1  # because of the broken one
