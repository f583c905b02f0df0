"""The generated deploy jobs read the registry under the head pinned in the CI system's settings.

``$GATES_REGISTRY_HEAD`` (``N:SHA256``) makes every read of the registry refuse an audit log cut
behind it (pipeline/promotion.py, tests/attacks/test_registry_head.py), but only where it is
set. The deploy job of each generated file takes it from the CI system's protected settings
(GitHub: an environment secret; GitLab: a protected CI/CD variable, in the environment by
itself; Jenkins: a secret-text credential), never from the tree; its first command after the
install refuses to go on when it is unset or empty; after the promotion the job writes the new
head (``reports/registry-head.txt``; GitHub: the job summary) for the operator to pin next.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gates.ci.github import GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import (
    CHECK_PIN,
    DEPLOY,
    INSTALL,
    REGISTRY_HEAD_FILE,
    SIGN_RELEASE,
    WRITE_HEAD,
    CiPlan,
    KeyService,
)
from gates.ci.jenkins import JenkinsRenderer
from tests.conftest import REPO
from tests.gates.ci.conftest import zap_on
from tests.project_support import copy_project

HEAD_ENV = "GATES_REGISTRY_HEAD"
GENESIS_PIN = "0:" + "0" * 64
UNSET = "is unset or empty: the deploy job reads the registry only under the head pinned"

PLANS = {
    "local keys": CiPlan.from_specs,
    "aws-kms hybrid": lambda: CiPlan.from_specs(
        keys=KeyService("aws-kms", "eu-west-1", ("GATES_SIGNING_KEY_ML_DSA_65",))
    ),
    "vault-transit": lambda: CiPlan.from_specs(keys=KeyService("vault-transit")),
    "zap scan": lambda: CiPlan.from_specs(zap=zap_on()),
}


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_github_deploy_takes_the_pin_from_an_environment_secret_and_checks_it_first(plan):
    workflow = yaml.safe_load(GithubRenderer().render(PLANS[plan]()))
    deploy = workflow["jobs"]["deploy"]
    # Job-wide, so that every step that reads the registry (sign, the ZAP scan's service,
    # deploy, the new head) reads it under the pin; from the production environment's secrets.
    assert deploy["env"][HEAD_ENV] == "${{ secrets.GATES_REGISTRY_HEAD }}"
    runs = [step.get("run", "") for step in deploy["steps"]]
    uses = [step.get("uses", "") for step in deploy["steps"]]
    pin = runs.index(CHECK_PIN)
    assert runs[pin - 1] == INSTALL
    # After the checkout and setup, before any credential is taken (the key service's login
    # action), anything signed, served or scanned, or promoted.
    setup = ("actions/checkout@", "actions/setup-python@", "actions/download-artifact@")
    assert all(i < pin for i, use in enumerate(uses) if use.startswith(setup))
    assert all(i > pin for i, use in enumerate(uses) if use and not use.startswith(setup))
    assert pin < runs.index(SIGN_RELEASE) < runs.index(DEPLOY)
    head = deploy["steps"][-1]
    assert runs.index(DEPLOY) == len(runs) - 2
    assert head["run"].startswith(WRITE_HEAD + "\n")
    assert '>> "$GITHUB_STEP_SUMMARY"' in head["run"]
    assert "if" not in head  # after a successful promotion only
    # No other job sees the pin (nor needs it), and no value of it is in the file.
    # (The rotate job reads the registry under the same pin: test_rotate_job.py.)
    for name, job in workflow["jobs"].items():
        if name not in ("deploy", "rotate"):
            assert HEAD_ENV not in str(job), name


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_gitlab_deploy_checks_the_protected_variable_first_and_keeps_the_new_head(plan):
    pipeline = yaml.safe_load(GitlabRenderer().render(PLANS[plan]()))
    deploy = pipeline["deploy"]
    script = deploy["script"]
    assert script[0] == CHECK_PIN
    assert script.index(SIGN_RELEASE) < script.index(DEPLOY)
    assert script[script.index(DEPLOY) + 1 :] == [WRITE_HEAD, f"cat {REGISTRY_HEAD_FILE}"]
    assert deploy["artifacts"]["paths"] == [REGISTRY_HEAD_FILE]
    # A protected CI/CD variable reaches the job by itself: the file never sets it (a value
    # here would be the tree's, which a merge request controls).
    for name, job in pipeline.items():
        if isinstance(job, dict):
            assert HEAD_ENV not in (job.get("variables") or {}), name


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_jenkins_deploy_binds_the_pin_credential_and_checks_it_first(plan):
    text = JenkinsRenderer().render(PLANS[plan]())
    gates, deploy = text.split("stage('deploy') {")
    # (The rotate stage, first, reads the registry under the same pin: test_rotate_job.py.)
    assert HEAD_ENV not in gates[gates.index("stage('gates') {") :]
    assert f"{HEAD_ENV} = credentials('gates-registry-head')" in deploy
    lines = [line.strip() for line in deploy.splitlines()]
    pin = lines.index(CHECK_PIN)
    assert lines[pin - 1] == INSTALL
    assert pin < lines.index(SIGN_RELEASE) < lines.index(DEPLOY)
    assert lines[lines.index(DEPLOY) + 1 : lines.index(DEPLOY) + 3] == [
        WRITE_HEAD,
        f"cat {REGISTRY_HEAD_FILE}",
    ]
    assert f"archiveArtifacts artifacts: '{REGISTRY_HEAD_FILE}'" in deploy


@pytest.fixture
def pinned_project(tmp_path: Path) -> tuple[Path, str]:
    """A project whose registry's audit log has one (unsigned) line, and that line's head."""
    from pipeline.promotion import append_event, head, read_events

    root = copy_project(tmp_path / "project")
    registry = root / "registry"
    registry.mkdir()
    env = os.environ.pop(HEAD_ENV, None)
    try:
        append_event(registry, {"action": "note"}, None)
        pin = head(read_events(registry))
    finally:
        if env is not None:
            os.environ[HEAD_ENV] = env
    assert pin.startswith("1:")
    return root, pin


@pytest.mark.parametrize("value", [None, "", "  \n"], ids=["unset", "empty", "whitespace"])
def test_require_pin_refuses_unset_and_empty_alike(pinned_project, value):
    root, pin = pinned_project
    env = {k: v for k, v in os.environ.items() if k != HEAD_ENV}
    if value is not None:
        env[HEAD_ENV] = value
    result = _gates(root, env, "registry", "head", "--require-pin")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == f"registry refused: ${HEAD_ENV} {UNSET} in the CI system's " + (
        f"protected settings (docs/ci.md 'The registry head'); for a registry with no audit "
        f"log yet, pin {GENESIS_PIN}\n"
    )
    assert "Traceback" not in result.stderr
    # Without --require-pin an empty pin is no pin, as for every reader (never a malformed one).
    plain = _gates(root, env, "registry", "head")
    assert (plain.returncode, plain.stdout) == (0, f"{pin}\n"), plain.stdout + plain.stderr


def test_require_pin_reads_the_log_under_the_pin(pinned_project):
    root, pin = pinned_project
    env = {**os.environ, HEAD_ENV: pin}
    result = _gates(root, env, "registry", "head", "--require-pin")
    assert (result.returncode, result.stdout) == (0, f"{pin}\n"), result.stdout + result.stderr
    # A pin ahead of the log (the log cut): refused, naming the file.
    env[HEAD_ENV] = "2:" + pin.split(":")[1]
    result = _gates(root, env, "registry", "head", "--require-pin")
    assert result.returncode == 1
    assert "has 1 line(s) but $GATES_REGISTRY_HEAD pins line 2" in result.stdout


def test_the_committed_github_head_step_writes_the_job_summary(pinned_project, tmp_path):
    # The step's own shell, from the committed workflow, run by bash as the runner runs it
    # (bash -e): the new head lands in $GITHUB_STEP_SUMMARY and in reports/registry-head.txt.
    root, pin = pinned_project
    workflow = yaml.safe_load((REPO / ".github/workflows/pipeline.yml").read_text("utf-8"))
    script = workflow["jobs"]["deploy"]["steps"][-1]["run"]
    (root / "reports").mkdir()
    summary = tmp_path / "summary.md"
    shim = tmp_path / "bin" / "python"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root),
        "GITHUB_STEP_SUMMARY": str(summary),
        HEAD_ENV: GENESIS_PIN,  # the pin the job ran under; the log moved past it
    }
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed (the runner's shell)")
    result = subprocess.run(
        [bash, "-e", "-c", script], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / REGISTRY_HEAD_FILE).read_text(encoding="utf-8") == f"{pin}\n"
    assert summary.read_text(encoding="utf-8") == (
        "### Registry head\n\nSet the secret GATES_REGISTRY_HEAD of the environment "
        f"production to:\n\n    {pin}\n"
    )


@pytest.mark.slow
def test_gitlab_ci_local_runs_the_deploy_job_only_under_a_pin(tmp_path):
    """The committed pipeline's deploy job, run by gitlab-ci-local on a copy of the project on
    the default branch: unset or empty, it stops at its first command, before anything is
    signed; pinned, it goes on to sign (which fails here, without the verdict's artifacts)."""
    from tests.gates.ci.test_gitlab import _gitlab_ci_local, _local_repo

    root = _local_repo(tmp_path / "repo")(branch="main")
    run = _gitlab_ci_local(tmp_path / "glcl")
    for variables, started in (
        ([], False),
        (["--variable", f"{HEAD_ENV}="], False),
        (["--variable", f"{HEAD_ENV}={GENESIS_PIN}"], True),
    ):
        result = run(root, *variables, "deploy")
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert re.search(rf"^deploy\s+\$ {re.escape(CHECK_PIN)}$", output, re.MULTILINE), output
        signed = re.search(rf"^deploy\s+\$ {re.escape(SIGN_RELEASE)}$", output, re.MULTILINE)
        assert bool(signed) is started, output
        assert (UNSET in output) is not started, output


def _gates(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "gates", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
