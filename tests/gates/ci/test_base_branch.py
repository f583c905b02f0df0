"""On a pull request, the data gate's and the verdict's jobs take the target branch's policy
($GATES_BASE_POLICY): the data gate's approvers and approved lock, and the rules the verdict
compares the pull request's policy with, come from there.

The committed CI files' own shell is run here with sh and bash against real git repositories:
an origin whose default branch holds the reviewed policy, and a pull request's clone that
changed it. What cannot run here is replaced by the nearest real thing and said so: GitHub's
``actions/checkout`` by ``git clone`` of the base branch into the same folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gates.registry import GATES
from tests.conftest import REPO

GIT = shutil.which("git")
GATE = "python -m gates run {job}"
# The jobs that must get the base branch's policy: each gate registered with base_branch.
JOBS = ("data", "gate")
BASE_POLICY = "# the reviewed policy of the base branch\n"
PR_POLICY = "# the pull request's policy\n"
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    command = [GIT, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """(origin, the pull request's clone): origin's main holds BASE_POLICY; the clone, on its
    own branch, changed policy.toml to PR_POLICY."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q", "-b", "main")
    (upstream / "policy.toml").write_text(BASE_POLICY, encoding="utf-8")
    (upstream / "data").mkdir()
    (upstream / "data" / "x.lock.json").write_text("{}\n", encoding="utf-8")
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-q", "-m", "base")
    origin = tmp_path / "origin.git"
    _git(tmp_path, "clone", "-q", "--bare", str(upstream), str(origin))
    clone = tmp_path / "pr"
    _git(tmp_path, "clone", "-q", str(origin), str(clone))
    _git(clone, "checkout", "-q", "-b", "feature")
    (clone / "policy.toml").write_text(PR_POLICY, encoding="utf-8")
    _git(clone, "commit", "-q", "-am", "the pull request")
    return origin, clone


def _run(shell: str, script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], "HOME": str(cwd.parent), **env}
    return subprocess.run(
        [shell, "-e", "-c", script],
        check=False,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
    )


def _printed_policy(result: subprocess.CompletedProcess[str], clone: Path) -> str | None:
    """What the job's $GATES_BASE_POLICY holds (the gate's command was replaced by a print)."""
    assert result.returncode == 0, result.stdout + result.stderr
    named = result.stdout.strip().splitlines()[-1].removeprefix("policy=")
    if not named:
        return None
    assert not Path(named).resolve().is_relative_to(clone.resolve())  # outside the checkout
    return Path(named).read_text(encoding="utf-8")


PRINT = 'printf "policy=%s\\n" "${GATES_BASE_POLICY:-}"'


def _gitlab_script(job: str = "data") -> str:
    script = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text(encoding="utf-8"))[job]["script"]
    gate = next(i for i, line in enumerate(script) if line.startswith(GATE.format(job=job)))
    assert "GATES_BASE_POLICY" in script[gate - 1]  # the line right before the gate's own
    return "\n".join([*script[:gate], PRINT])


def _jenkins_script(job: str = "data") -> str:
    text = (REPO / "Jenkinsfile").read_text(encoding="utf-8")
    stage = text[text.index(f"stage('{job}') {{") :]
    # The sh step that runs the gate (the verdict's stage makes its venv in one before it).
    opening = stage.rindex("sh '''", 0, stage.index("CHANGE_TARGET"))
    script = stage[opening + len("sh '''") : stage.index("'''\n", opening + 6)]
    gate = f". .venv/bin/activate && {GATE.format(job=job)}"
    assert script.rstrip().endswith(gate)
    return script.rstrip().removesuffix(gate) + PRINT


def test_only_the_gates_registered_with_base_branch_take_it():
    assert tuple(spec.name for spec in GATES if spec.base_branch) == JOBS
    gitlab = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    workflow = yaml.safe_load((REPO / ".github/workflows/pipeline.yml").read_text(encoding="utf-8"))
    jenkins = (REPO / "Jenkinsfile").read_text(encoding="utf-8")
    for spec in GATES:
        if spec.always or spec.base_branch:
            continue
        assert "GATES_BASE_POLICY" not in str(gitlab[spec.name]["script"])
        assert "GATES_BASE_POLICY" not in str(workflow["jobs"][spec.name]["steps"])
    outside = jenkins
    for job in JOBS:
        start = outside.index(f"stage('{job}') {{")
        outside = outside[:start] + outside[outside.index("stage(", start + 1) :]
    assert "GATES_BASE_POLICY" not in outside


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("system", ["gitlab", "jenkins"])
def test_a_pull_request_is_judged_by_the_target_branchs_policy(system, job, repos):
    _, clone = repos
    script, env = (
        (_gitlab_script(job), {"CI_PIPELINE_SOURCE": "merge_request_event"})
        if system == "gitlab"
        else (_jenkins_script(job), {})
    )
    target = "CI_MERGE_REQUEST_TARGET_BRANCH_NAME" if system == "gitlab" else "CHANGE_TARGET"
    result = _run("sh", script, clone, **env, **{target: "main"})
    assert _printed_policy(result, clone) == BASE_POLICY
    assert (clone / "policy.toml").read_text(encoding="utf-8") == PR_POLICY  # untouched
    # A branch pipeline (the default branch itself) judges by its own policy: nothing fetched.
    branch_env = {"CI_PIPELINE_SOURCE": "push"} if system == "gitlab" else {}
    result = _run("sh", script, clone, **branch_env)
    assert _printed_policy(result, clone) is None
    assert "git fetch" not in result.stderr
    # A target branch that cannot be fetched fails the job (never "no base branch").
    result = _run("sh", script, clone, **env, **{target: "no-such-branch"})
    assert result.returncode != 0
    assert "no-such-branch" in result.stderr


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("system", ["gitlab", "jenkins"])
def test_a_base_branch_without_a_policy_leaves_it_unset_with_a_notice(system, job, repos, tmp_path):
    origin, clone = repos
    # The pull request that adopts the pipeline: its target branch has no policy.toml yet.
    bare = tmp_path / "adopting"
    _git(tmp_path, "clone", "-q", str(origin), str(bare))
    _git(bare, "checkout", "-q", "-b", "before")
    _git(bare, "rm", "-q", "policy.toml")
    _git(bare, "commit", "-q", "-m", "no pipeline yet")
    _git(bare, "push", "-q", "origin", "before")
    script = _gitlab_script(job) if system == "gitlab" else _jenkins_script(job)
    target = "CI_MERGE_REQUEST_TARGET_BRANCH_NAME" if system == "gitlab" else "CHANGE_TARGET"
    env = {"CI_PIPELINE_SOURCE": "merge_request_event"} if system == "gitlab" else {}
    result = _run("sh", script, clone, **env, **{target: "before"})
    assert _printed_policy(result, clone) is None
    assert "notice: no policy.toml on the base branch" in result.stdout


NAME_STEP = (
    "Its policy: approvers, approved data lock, the rules a change is compared with (pull requests)"
)


def _github_steps(job: str = "data") -> list[dict]:
    workflow = yaml.safe_load((REPO / ".github/workflows/pipeline.yml").read_text(encoding="utf-8"))
    return workflow["jobs"][job]["steps"]


@pytest.mark.parametrize("job", JOBS)
def test_github_checks_the_base_commit_out_apart_before_the_gate(job):
    steps = _github_steps(job)
    names = [step["name"] for step in steps]
    gate = next(i for i, step in enumerate(steps) if step.get("run") == GATE.format(job=job))
    clear, checkout, name = (
        names.index("Clear a folder of that name for the base branch (pull requests)"),
        names.index("Check out the base branch apart (pull requests)"),
        names.index(NAME_STEP),
    )
    assert names.index("Check out") < clear < checkout < name < gate
    for index in (clear, checkout, name):
        assert steps[index]["if"] == "github.event_name == 'pull_request'"
    assert steps[checkout]["uses"].startswith("actions/checkout@")
    assert steps[checkout]["with"] == {
        "ref": "${{ github.event.pull_request.base.sha }}",
        "path": ".gates-base",
        "persist-credentials": False,
    }


def test_github_steps_move_the_base_out_and_name_its_policy(repos, tmp_path):
    # A pull request that carries a .gates-base symlink into its own files: clearing removes
    # the link, not what it points at. actions/checkout cannot run here; `git clone` of the
    # base branch into the same folder stands in for it.
    origin, clone = repos
    victim = clone / "keep"
    victim.mkdir()
    (victim / "file").write_text("mine", encoding="utf-8")
    (clone / ".gates-base").symlink_to(victim)
    steps = {step["name"]: step for step in _github_steps()}
    clear = steps["Clear a folder of that name for the base branch (pull requests)"]["run"]
    result = _run("bash", clear, clone)
    assert result.returncode == 0, result.stderr
    assert not (clone / ".gates-base").exists()
    assert (victim / "file").read_text(encoding="utf-8") == "mine"
    _git(clone, "clone", "-q", "--branch", "main", str(origin), ".gates-base")
    temp = tmp_path / "runner-temp"
    # A folder of that name left in the temporary folder (a self-hosted runner): replaced,
    # never moved into, nor its stale policy named.
    (temp / ".gates-base").mkdir(parents=True)
    (temp / ".gates-base" / "policy.toml").write_text("# stale\n", encoding="utf-8")
    github_env = tmp_path / "github.env"
    name = steps[NAME_STEP]
    result = _run("bash", name["run"], clone, RUNNER_TEMP=str(temp), GITHUB_ENV=str(github_env))
    assert result.returncode == 0, result.stderr
    assert not (clone / ".gates-base").exists()  # moved out of the workspace
    (line,) = github_env.read_text(encoding="utf-8").splitlines()
    variable, _, value = line.partition("=")
    assert variable == "GATES_BASE_POLICY"
    assert Path(value) == temp / ".gates-base" / "policy.toml"
    assert Path(value).read_text(encoding="utf-8") == BASE_POLICY
    # Without a policy on the base branch: a notice, nothing named.
    (temp / ".gates-base" / "policy.toml").unlink()
    shutil.move(temp / ".gates-base", clone / ".gates-base")
    github_env.unlink()
    result = _run("bash", name["run"], clone, RUNNER_TEMP=str(temp), GITHUB_ENV=str(github_env))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^::notice::no policy\.toml on the base branch", result.stdout, re.M)
    assert not github_env.exists()
