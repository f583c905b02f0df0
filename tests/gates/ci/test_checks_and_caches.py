"""Issue 17: the pip cache keyed on the lock, the tests and typecheck jobs, the native report
hooks (GitLab metrics and expose_as, Jenkins publishHTML and timestamps), a SARIF upload that
cannot turn the run red, workflow_dispatch, and the Dependabot file, in all three systems."""

from __future__ import annotations

import re

import pytest
import yaml

from gates.ci.dependabot import DependabotRenderer
from gates.ci.github import GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import CHECKS, CiPlan
from gates.ci.jenkins import JenkinsRenderer
from tests.conftest import REPO

PIP_CACHE = {
    "key": {"files": ["requirements.lock"], "prefix": "pip"},
    "paths": [".cache/pip/"],
    "policy": "pull-push",
}


def _github(specs) -> dict:
    return yaml.safe_load(GithubRenderer().render(CiPlan.from_specs(specs)))


def _gitlab(specs) -> dict:
    return yaml.safe_load(GitlabRenderer().render(CiPlan.from_specs(specs)))


def _setup_python(job: dict) -> dict:
    (step,) = [s for s in job["steps"] if "actions/setup-python@" in s.get("uses", "")]
    return step


# -- GitHub --------------------------------------------------------------------------------------


def test_github_every_installing_job_but_deploy_keeps_pips_cache_keyed_on_the_lock(future_specs):
    workflow = _github(future_specs)
    installing = {name: job for name, job in workflow["jobs"].items() if name != "report"}
    for name, job in installing.items():
        step = _setup_python(job)
        if name in ("deploy", "rotate"):
            # The jobs that hold the release key restore no cache of any kind.
            assert "cache" not in step["with"], name
            continue
        assert step["with"]["cache"] == "pip", name
        assert step["with"]["cache-dependency-path"].split() == ["requirements.lock"], name
        runs = [s.get("run", "") for s in job["steps"]]
        assert "python -m pip install --require-hashes -r requirements.lock" in runs, name


def test_github_runs_the_tests_and_the_typecheck_on_pull_requests(future_specs):
    workflow = _github(future_specs)
    assert "pull_request" in workflow[True]
    for name, command, _ in CHECKS:
        job = workflow["jobs"][name]
        assert "needs" not in job
        assert "if" not in job  # every pull request, beside the gates
        assert job["steps"][-1]["run"] == command
        assert job["env"] == {"GATES_TEST_EXTRAS": "1"}
        assert job["permissions"] == {"contents": "read"}
    assert [c[1] for c in CHECKS] == ["python -m nox -s tests slow", "python -m nox -s typecheck"]


def test_github_can_be_started_by_hand_and_still_deploys_only_pushes(future_specs):
    workflow = _github(future_specs)
    # One input: the rotate job's (test_rotate_job.py), which only asks for that job.
    assert list(workflow[True]["workflow_dispatch"]["inputs"]) == ["rotate_release_key"]
    assert workflow["jobs"]["deploy"]["if"].startswith("github.event_name == 'push' && ")


def test_github_sarif_upload_cannot_turn_the_run_red_where_code_scanning_is_off(future_specs):
    steps = _github(future_specs)["jobs"]["report"]["steps"]
    (upload,) = [s for s in steps if "upload-sarif@" in s.get("uses", "")]
    assert upload["continue-on-error"] is True
    # Only the upload: every other step of the report job still fails it.
    assert [s for s in steps if s.get("continue-on-error")] == [upload]


# -- GitLab --------------------------------------------------------------------------------------


def test_gitlab_every_installing_job_but_deploy_keeps_pips_cache_keyed_on_the_lock(future_specs):
    pipeline = _gitlab(future_specs)
    assert pipeline[".python"]["cache"] == [PIP_CACHE]
    assert pipeline["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/pip"
    jobs = {k: v for k, v in pipeline.items() if isinstance(v, dict) and "script" in v}
    assert "deploy" in jobs
    for name, job in jobs.items():
        assert job["extends"] == ".python", name
        if name in ("deploy", "rotate"):
            assert job["cache"] == [], name
        elif "cache" in job:  # a job's own list replaces the template's: it must repeat it
            assert job["cache"][-1] == PIP_CACHE, name


def test_gitlab_runs_the_tests_and_the_typecheck_beside_the_gates(future_specs):
    pipeline = _gitlab(future_specs)
    for name, command, _ in CHECKS:
        job = pipeline[name]
        assert job["stage"] == ".pre"
        assert job["needs"] == []
        assert job["script"] == [command]
        assert job["variables"] == {"GATES_TEST_EXTRAS": "1"}
        # Left out only by a local gitlab-ci-local run that asks (GATES_SKIP_CHECKS=1).
        assert job["rules"] == [
            {"if": '$GATES_SKIP_CHECKS == "1"', "when": "never"},
            {"when": "on_success"},
        ]
    assert pipeline["variables"]["GATES_SKIP_CHECKS"] == "0"
    # Every merge request pipeline reaches them: the workflow admits merge-request events.
    assert {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'} in pipeline["workflow"]["rules"]


def test_gitlab_exposes_the_html_report_and_reads_the_metrics(future_specs):
    from gates.registry import GATES

    feedback = _gitlab(future_specs)["feedback"]["artifacts"]
    assert feedback["expose_as"] == "pipeline report"
    assert feedback["paths"][0] == "reports/report.html"
    assert feedback["reports"]["metrics"] == "reports/metrics.prom"
    # Without a feedback stage, the verdict job carries them.
    verdict = _gitlab(tuple(s for s in GATES if not s.always))["gate"]["artifacts"]
    assert verdict["expose_as"] == "pipeline report"
    assert verdict["reports"]["metrics"] == "reports/metrics.prom"
    # Exactly one job exposes it (GitLab lists each exposing job in the merge request).
    pipeline = _gitlab(future_specs)
    exposing = [
        k
        for k, v in pipeline.items()
        if isinstance(v, dict) and "expose_as" in v.get("artifacts", {})
    ]
    assert exposing == ["feedback"]


# -- Jenkins -------------------------------------------------------------------------------------


def test_jenkins_timestamps_publishes_the_html_and_keys_pips_cache_on_the_lock(future_specs):
    text = JenkinsRenderer().render(CiPlan.from_specs(future_specs))
    options = text[text.index("    options {") : text.index("    environment {")]
    assert "timestamps()" in options
    publish = text[text.index("publishHTML(") :]
    publish = publish[: publish.index("])")]
    for setting in (
        "reportDir: 'reports'",
        "reportFiles: 'report.html'",
        "allowMissing: true",
        "keepAll: true",
    ):
        assert setting in publish
    verdict = text[text.index("stage('gate')") :]  # after the rotate stage's own post
    assert verdict.index("publishHTML(") < verdict.index("success {")  # in post { always { } }
    export = (
        'export PIP_CACHE_DIR="$PIP_CACHE_ROOT/$(cat requirements.lock | sha256sum | cut -c1-16)"'
    )
    assert "final String STAGE_FAILED = 'FAILURE'" in text
    assert 'PIP_CACHE_ROOT = "${env.WORKSPACE}@pip-cache"' in text
    assert "GATES_TEST_EXTRAS = 'on'" in text
    install = text[text.index("stage('install')") : text.index("stage('ci-config')")]
    assert export in install
    deploy = text[text.index("stage('deploy')") :]
    assert "PIP_CACHE" not in deploy
    rotate = text[text.index("stage('rotate')") : text.index("stage('gates')")]
    assert "PIP_CACHE" not in rotate
    for name, command, _ in CHECKS:
        stage = text[text.index(f"stage('{name}')") :]
        stage = stage[: stage.index("stage(", 1)]
        assert export in stage
        assert command in stage
        assert f"catchError(message: '{name} failed', stageResult: STAGE_FAILED)" in stage
    # The pull request's code runs after the gates of the gates' workspace, and the verdict in
    # a fresh one after it (tests/attacks/test_ci_pr_code.py, test_jenkins.py).
    assert text.index("stage('artifacts')") < text.index("stage('tests')")
    assert text.index("stage('tests')") < text.index("\n        stage('gate') {")


# -- Dependabot ----------------------------------------------------------------------------------


def test_dependabot_watches_the_pinned_actions_weekly_with_a_cooldown():
    config = yaml.safe_load(DependabotRenderer().render(CiPlan.from_specs()))
    (update,) = config["updates"]
    assert update["package-ecosystem"] == "github-actions"
    assert update["directory"] == "/"
    assert update["cooldown"]["default-days"] >= 7
    assert (REPO / ".github" / "dependabot.yml").read_text(encoding="utf-8") == (
        DependabotRenderer().render(CiPlan.from_specs())
    )


def test_dependabot_file_is_valid_and_zizmor_clean(tool, run_tool, tmp_path):
    path = REPO / ".github" / "dependabot.yml"
    result = run_tool(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(path)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    zizmor = [tool("zizmor"), "--offline", "--no-config", "--persona=pedantic"]
    result = run_tool([*zizmor, str(REPO / ".github")])
    assert result.returncode == 0, result.stdout + result.stderr
    # Planted: without the cooldown, zizmor flags it (so the check above can fail).
    bad = tmp_path / ".github" / "dependabot.yml"
    bad.parent.mkdir()
    bad.write_text(
        re.sub(r"    cooldown:\n      default-days: \d+\n", "", path.read_text(encoding="utf-8")),
        encoding="utf-8",
    )
    result = run_tool([*zizmor, str(bad)])
    assert result.returncode != 0
    assert "dependabot-cooldown" in result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(path.read_text(encoding="utf-8").replace("weekly", "fortnightly"), "utf-8")
    result = run_tool(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(broken)]
    )
    assert result.returncode == 1


@pytest.mark.parametrize(
    "path", [".github/workflows/pipeline.yml", ".gitlab-ci.yml", "Jenkinsfile"]
)
def test_no_gate_name_is_written_into_the_generators_for_the_new_jobs(path, future_specs):
    """The new jobs come from CHECKS and the plan: a registry with an extra gate still renders
    each of them once, and the gate among the others."""
    from gates.registry import GateSpec

    extra = GateSpec("fairness", "gates.risk:RiskGate", "A gate added later.")
    specs = (*future_specs[:-3], extra, *future_specs[-3:])
    text = {
        ".github/workflows/pipeline.yml": GithubRenderer,
        ".gitlab-ci.yml": GitlabRenderer,
        "Jenkinsfile": JenkinsRenderer,
    }[path]().render(CiPlan.from_specs(specs))
    assert "python -m gates run fairness" in text
    for _, command, _ in CHECKS:
        assert text.count(command) == 1
