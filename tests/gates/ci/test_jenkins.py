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
        "rotate",  # by hand only (test_rotate_job.py)
        "gates",
        "install",
        "ci-config",
        *(s.name for s in plan.cached),
        *checks,
        plan.verdict.name,
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
    verdict_stage = _block(text, f"stage('{CiPlan.from_specs(future_specs).verdict.name}') {{")
    always = _block(verdict_stage, "always {")
    assert GATE_STEP.format(name="feedback") in always
    assert "catchError(message: 'always-run stage feedback failed')" in always
    assert "junit allowEmptyResults: true, testResults: 'reports/junit.xml'" in always
    assert "archiveArtifacts allowEmptyArchive: true, artifacts: CARRIED_FILES" in always
    assert "final String CARRIED_FILES = 'reports/**,artifacts/**'" in text
    assert "sarif(id: 'policy-gates', name: 'Policy gates', pattern: 'reports/merged.sarif')" in (
        always
    )
    assert "enabledForFailure: true" in always
    # The feedback stage runs before the reports are published, so they include its output,
    # between copying the run history in from beside the workspace and back out.
    assert always.index("gates run feedback") < always.index("junit ")
    kept = '"$GATES_HISTORY_KEPT"'
    assert always.index(f"cp -R {kept} history") < always.index("gates run feedback")
    assert always.index("gates run feedback") < always.index(f"cp -R history {kept}")
    assert 'GATES_HISTORY_KEPT = "${env.WORKSPACE}@gates-history"' in verdict_stage


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
    assert "stash name: VERDICT_STASH" in _block(_block(text, "stage('gate') {"), "success {")
    assert "\n    agent none\n" in text
    assert "python -m pip install --require-hashes -r requirements.lock" in deploy
    assert "GATES_SIGNING_KEY = credentials('gates-signing-key')" in deploy
    # Beside it, only the registry's pinned head (test_registry_pin.py).
    assert "GATES_REGISTRY_HEAD = credentials('gates-registry-head')" in deploy
    assert deploy.count("credentials(") == 2
    # The rotate stage (test_rotate_job.py) has the same two and the old public key; no other.
    assert text.count("credentials(") == 5


def _steps(stage: str) -> list[str]:
    lines = (line.strip() for line in _block(stage, "steps {").splitlines())
    return [line for line in lines if line and not line.startswith("//")]


def test_the_verdict_and_deploy_run_in_a_fresh_workspace_not_the_one_that_ran_train():
    """Red team 8: one workspace and one .venv for every stage let the pull request's training
    code (the train gate) plant a .pth file or rewrite gates/*.py or .git/config, and turn the
    verdict's FAILED into PASSED; the workspace (and .git) survived into the next build."""
    text = _render()
    plan = CiPlan.from_specs()
    gates_stage = _block(text, "stage('gates') {")
    # The stage that runs the pull request's code (train, its tests) does not run the verdict.
    assert "gates run train" in gates_stage
    assert f"gates run {plan.verdict.name}" not in gates_stage
    assert "skipDefaultCheckout()" in _block(gates_stage, "options {")
    install = _steps(_block(gates_stage, "stage('install') {"))
    assert install[:2] == ["deleteDir()", "checkout scm"]  # no leftovers of an earlier build
    # The gates' reports and artifacts are stashed before the tests run.
    stash = "stash name: GATES_STASH, includes: CARRIED_FILES, allowEmpty: true"
    assert gates_stage.index(stash) < gates_stage.index("stage('tests')")
    assert stash in _block(gates_stage, f"stage('{plan.cached[-1].name}') {{")
    for name, first in ((plan.verdict.name, True), ("deploy", False)):
        stage = _block(text, f"\n        stage('{name}') {{")
        assert "\n            agent any\n" in stage  # an agent (and workspace) of its own
        assert "skipDefaultCheckout()" in _block(stage, "options {")
        # pip's caches unused: the gates' workspace could write them.
        assert "--no-cache-dir" in stage or "export PIP_NO_CACHE_DIR=1" in stage
        steps = _steps(stage)
        assert steps[:2] == ["deleteDir()", "checkout scm"], steps
        unstash = steps.index(f"unstash {'GATES_STASH' if first else 'VERDICT_STASH'}")
        assert steps[unstash + 1] == "sh NO_LINKS"  # no link among the carried files
        venv = next(i for i, s in enumerate(steps) if "python3 -m venv --clear .venv" in s)
        assert venv <= next(i for i, s in enumerate(steps) if "--require-hashes" in s)
        if first:  # the venv is made before the carried files arrive, the base fetched after
            assert steps[2:5] == ["sh '''", "python3 -m venv --clear .venv", ". .venv/bin/activate"]
            assert steps.index(next(s for s in steps if "git fetch" in s)) > unstash
    assert "if find reports artifacts ! -type f ! -type d | grep .; then" in text
    assert text.count("deleteDir()") == 4  # the rotate stage's too (test_rotate_job.py)
    assert "python3 -m venv .venv" not in text


def test_the_trusted_agent_label_is_a_rendered_choice(monkeypatch):
    from gates.ci import jenkins

    # default: one agent for all (the rotate stage's too, test_rotate_job.py)
    assert _render().count("\n            agent any\n") == 4
    monkeypatch.setattr(jenkins, "TRUSTED_AGENT", jenkins.TRUSTED_LABEL)
    text = _render()
    labelled = "\n            agent { label 'gates-trusted' }\n"
    assert labelled in _block(text, "stage('gate') {")
    assert labelled in _block(text, "stage('deploy') {")
    assert labelled in _block(text, "stage('rotate') {")
    assert labelled not in _block(text, "stage('gates') {")  # pull requests' code runs there
    assert text.count("{") == text.count("}")


# -- npm-groovy-lint ----------------------------------------------------------------------------


@pytest.mark.slow
def test_npm_groovy_lint_finds_nothing_and_would_catch_a_broken_file(
    tool, run_tool, tmp_path, future_specs, monkeypatch
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
    # The verdict and deploy stages on labelled agents (test_the_trusted_agent_label_...).
    from gates.ci import jenkins

    monkeypatch.setattr(jenkins, "TRUSTED_AGENT", jenkins.TRUSTED_LABEL)
    files["trusted"] = _render()
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
    assert report["summary"]["totalFilesLinted"] == 7, result.stdout + result.stderr
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
    assert found["trusted"] == []
    assert ("NglParseError", "error") in found["broken"]
    assert result.returncode == 1  # because of the broken one


def test_deploy_is_offered_only_when_nothing_before_it_failed():
    """Every gate, test and typecheck stage runs under catchError (the verdict and feedback run
    after a failure): the build is FAILURE then, but the later stages still run, so the deploy
    stage's own condition must ask for a build that is still SUCCESS."""
    when = _block(_block(_render(), "\n        stage('deploy') {"), "when {")
    assert "branch 'main'" in when
    assert "expression { currentBuild.currentResult == 'SUCCESS' }" in when
    assert "anyOf" not in when  # the conditions of a `when` all hold (an implicit allOf)
