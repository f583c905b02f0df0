"""The rotate job: ``python -m gates registry rotate`` (docs/keys.md "Rotating the release key") in
the deploy stage of every generated file, started by hand on the default branch and approved like
a deployment, with the new key's secret and the old public key's PEM (``$GATES_ROTATE_FROM``)
from the protected environment, never from the tree, under the pinned registry head.

Before it, the rendered files had no rotation step at all: the operator added the command to the
deploy job by hand (docs/keys.md said so). Every test here was red on that renderer.
"""

from __future__ import annotations

import re

import pytest
import yaml

from gates.ci.github import GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import (
    CHECK_PIN,
    REGISTRY_HEAD_FILE,
    ROTATE,
    ROTATE_FROM_ENV,
    WRITE_HEAD,
    CiPlan,
    KeyService,
)
from gates.ci.jenkins import JenkinsRenderer
from tests.conftest import REPO

HYBRID = KeyService(
    "aws-kms",
    "eu-west-1",
    ("GATES_SIGNING_KEY_ML_DSA_65",),
    ("GATES_ROTATE_FROM_ECDSA_P256_SHA256", "GATES_ROTATE_FROM_ML_DSA_65"),
)
PLANS = {
    "local keys": CiPlan.from_specs,
    "aws-kms hybrid": lambda: CiPlan.from_specs(keys=HYBRID),
    "vault-transit": lambda: CiPlan.from_specs(keys=KeyService("vault-transit")),
}


def test_the_old_key_variable_is_the_one_rotate_reads():
    from gates.release import ROTATE_FROM_ENV as READ

    assert ROTATE_FROM_ENV == READ
    assert CiPlan.from_specs().rotate_from == ("GATES_ROTATE_FROM",)
    # A key service without the policy's algorithms: the service's own.
    assert CiPlan.from_specs(keys=KeyService("aws-kms")).rotate_from == (
        "GATES_ROTATE_FROM_ECDSA_P256_SHA256",
    )


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_github_rotate_is_dispatched_by_hand_on_the_default_branch_behind_the_environment(plan):
    rendered = PLANS[plan]()
    workflow = yaml.safe_load(GithubRenderer().render(rendered))
    # PyYAML reads the key "on" as True.
    inputs = workflow[True]["workflow_dispatch"]["inputs"]
    assert inputs["rotate_release_key"] == {
        "description": inputs["rotate_release_key"]["description"],
        "type": "boolean",
        "default": False,
    }
    rotate = workflow["jobs"]["rotate"]
    condition = rotate["if"]
    assert "github.event_name == 'workflow_dispatch'" in condition
    assert "inputs.rotate_release_key" in condition
    assert "github.event.repository.default_branch" in condition
    assert "needs" not in rotate  # no verdict: the cv gate cannot pass before the rotation
    assert rotate["environment"] == {"name": "production"}  # its required reviewers approve
    assert rotate["concurrency"] == workflow["jobs"]["deploy"]["concurrency"]
    assert rotate["env"]["GATES_REGISTRY_HEAD"] == "${{ secrets.GATES_REGISTRY_HEAD }}"
    assert rotate["env"]["GATES_NO_CACHE"] == "1"
    steps = rotate["steps"]
    runs = [step.get("run", "") for step in steps]
    # Nothing carried from the pull request's jobs, no cache restored.
    assert not any("download-artifact" in step.get("uses", "") for step in steps)
    assert not any("cache" in step.get("with", {}) for step in steps)
    pin, turn = runs.index(CHECK_PIN), runs.index(ROTATE)
    assert pin < turn
    head = steps[-1]["run"]
    assert head.startswith(f"mkdir -p reports\n{WRITE_HEAD}\n")
    assert '>> "$GITHUB_STEP_SUMMARY"' in head
    # The secrets reach the rotate step only, from secrets (never a value of the tree).
    env = steps[turn]["env"]
    expected = set(rendered.rotate_from)
    if rendered.keys is None:
        expected.add("GATES_SIGNING_KEY")
    else:
        expected.update(rendered.keys.local_keys)
    assert set(env) == expected
    assert all(value == f"${{{{ secrets.{name} }}}}" for name, value in env.items())
    others = [s for i, s in enumerate(steps) if i != turn]
    assert "GATES_ROTATE_FROM" not in str(others)
    assert "GATES_SIGNING_KEY" not in str(others)
    assert ("id-token" in rotate["permissions"]) is (rendered.keys is not None)
    for name, job in workflow["jobs"].items():
        if name != "rotate":
            assert "GATES_ROTATE_FROM" not in str(job), name


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_gitlab_rotate_is_manual_on_the_default_branch_in_the_protected_environment(plan):
    rendered = PLANS[plan]()
    text = GitlabRenderer().render(rendered)
    pipeline = yaml.safe_load(text)
    rotate = pipeline["rotate"]
    assert rotate["stage"] == "deploy"
    assert rotate["needs"] == []
    # Only in a pipeline run by hand with the variable set; then it holds that pipeline (no
    # allow_failure), and a failed rotation fails it.
    assert rotate["rules"] == [
        {
            "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && "
            '$CI_PIPELINE_SOURCE == "web" && $ROTATE_RELEASE_KEY == "true"',
            "when": "manual",
        }
    ]
    assert rotate["allow_failure"] is False
    assert pipeline["variables"]["ROTATE_RELEASE_KEY"]["value"] == "false"
    assert rotate["environment"]["name"] == "production"
    assert rotate["resource_group"] == pipeline["deploy"]["resource_group"]
    assert rotate["cache"] == []
    assert rotate["variables"]["GATES_NO_CACHE"] == "1"
    script = rotate["script"]
    assert script[0] == CHECK_PIN
    assert script[-4:] == [ROTATE, "mkdir -p reports", WRITE_HEAD, f"cat {REGISTRY_HEAD_FILE}"]
    assert rotate["artifacts"]["paths"] == [REGISTRY_HEAD_FILE]
    # Protected, environment-scoped CI/CD variables reach the job by themselves: no value of
    # the old key or the signing key in the file (a merge request controls it).
    for job in pipeline.values():
        if isinstance(job, dict):
            assert not {"GATES_ROTATE_FROM", "GATES_SIGNING_KEY"} & set(job.get("variables") or {})
    assert ("id_tokens" in rotate) is (rendered.keys is not None)


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_jenkins_rotate_stage_is_asked_for_approved_and_binds_credentials(plan):
    rendered = PLANS[plan]()
    text = JenkinsRenderer().render(rendered)
    assert "booleanParam(\n            name: 'ROTATE_RELEASE_KEY',\n" in text
    assert "defaultValue: false," in text
    start = text.index("stage('rotate') {")
    rotate = text[start : text.index("stage('gates') {")]
    assert "branch 'main'" in rotate
    assert "expression { params.ROTATE_RELEASE_KEY }" in rotate
    assert "beforeInput true" in rotate
    assert "beforeAgent true" in rotate
    assert "submitter 'release-approvers'" in rotate
    assert "GATES_REGISTRY_HEAD = credentials('gates-registry-head')" in rotate
    for name in rendered.rotate_from:
        credential = "gates-rotate-from" if name == "GATES_ROTATE_FROM" else name.lower()
        assert f"{name} = credentials('{credential.replace('_', '-')}')" in rotate
    signing = "GATES_SIGNING_KEY = credentials('gates-signing-key')"
    assert (signing in rotate) is (rendered.keys is None)
    lines = [line.strip() for line in rotate.splitlines()]
    assert lines.index("deleteDir()") < lines.index("checkout scm") < lines.index(CHECK_PIN)
    assert lines.index(CHECK_PIN) < lines.index(ROTATE) < lines.index(WRITE_HEAD)
    if rendered.keys is not None:
        assert rotate.index("withCredentials(") < rotate.index(ROTATE)
    # The old key is bound in the rotate stage only.
    assert "GATES_ROTATE_FROM" not in text[:start] + text[text.index("stage('gates') {") :]


def test_the_committed_files_have_the_rotate_job():
    workflow = (REPO / ".github/workflows/pipeline.yml").read_text(encoding="utf-8")
    gitlab = (REPO / ".gitlab-ci.yml").read_text(encoding="utf-8")
    jenkins = (REPO / "Jenkinsfile").read_text(encoding="utf-8")
    assert "run: python -m gates registry rotate\n" in workflow
    assert "\n    - python -m gates registry rotate\n" in gitlab
    assert re.search(r"^\s+python -m gates registry rotate$", jenkins, re.MULTILINE)


@pytest.mark.slow
def test_gitlab_ci_local_offers_rotate_on_the_default_branch_only_and_it_fails_closed(tmp_path):
    """The committed pipeline's rotate job, run by gitlab-ci-local on a copy of the project: not
    offered on another branch, nor on the default branch's push pipelines, nor by hand without
    the variable; by hand with it, manual and blocking; run without a pin it stops at its first
    command; under a pin without the new key's secret it reaches rotate, which refuses."""
    from tests.gates.ci.test_gitlab import _gitlab_ci_local, _local_repo

    web = ["--variable", "CI_PIPELINE_SOURCE=web"]
    asked = [*web, "--variable", "ROTATE_RELEASE_KEY=true"]
    feature = _local_repo(tmp_path / "feature")(branch="feature/ci")
    run = _gitlab_ci_local(tmp_path / "glcl")
    main = _local_repo(tmp_path / "main")(branch="main")
    offered = re.compile(r"^rotate\s+deploy\s+manual\s+false\s+\[\]", re.MULTILINE)
    for root, args, expected in (
        (feature, asked, False),
        (main, [], False),
        (main, web, False),
        (main, asked, True),
    ):
        listed = run(root, *args, "--list")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert bool(offered.search(listed.stdout)) is expected, (args, listed.stdout)
        assert bool(re.search(r"^rotate\s", listed.stdout, re.MULTILINE)) is expected
    unpinned = run(main, *asked, "rotate")
    output = unpinned.stdout + unpinned.stderr
    assert unpinned.returncode != 0, output
    assert "is unset or empty: the deploy job reads the registry only under the head" in output
    assert not re.search(rf"^rotate\s+\$ {re.escape(ROTATE)}$", output, re.MULTILINE), output
    pinned = run(main, *asked, "--variable", "GATES_REGISTRY_HEAD=0:" + "0" * 64, "rotate")
    output = pinned.stdout + pinned.stderr
    assert pinned.returncode != 0, output
    assert re.search(rf"^rotate\s+\$ {re.escape(ROTATE)}$", output, re.MULTILINE), output
    assert "rotate refused:" in output, output
