"""The caches every CI file keeps between runs: the gate cache and the run history, never in deploy."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import yaml

from gates.cache import cache_dir
from gates.ci.github import (
    CACHE,
    CACHE_RESTORE,
    CACHE_SAVE,
    IS_DEFAULT_BRANCH_PUSH,
    GithubRenderer,
)
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import (
    CACHE_KEY_FILES,
    CHECKS,
    GATE_CACHE_DIR,
    HISTORY_DIR,
    CiPlan,
)
from gates.ci.jenkins import JenkinsRenderer
from pipeline.config import FeedbackPolicy
from tests.conftest import REPO

CACHE_ACTIONS = tuple(action.repo for action in (CACHE, CACHE_RESTORE, CACHE_SAVE))


def _cache_steps(job: dict) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] in CACHE_ACTIONS]


# -- one source of the cached paths ---------------------------------------------------------------


def test_the_cached_folders_are_the_ones_the_gates_and_the_policy_use(monkeypatch):
    monkeypatch.delenv("GATES_CACHE_DIR", raising=False)
    root = Path("/project")
    default = cache_dir(SimpleNamespace(root=root))  # type: ignore[arg-type]
    assert f"{default.relative_to(root).as_posix()}/" == GATE_CACHE_DIR
    policy = tomllib.loads((REPO / "policy.toml").read_text(encoding="utf-8"))
    for history in (FeedbackPolicy().history, policy["feedback"]["history"]):
        assert f"{PurePosixPath(history).parent}/" == HISTORY_DIR
    assert all((REPO / name).is_file() for name in CACHE_KEY_FILES)
    # Both are outputs, never committed.
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".cache/" in ignored
    assert f"/{HISTORY_DIR}" in ignored


def test_the_plan_caches_every_gate_before_the_verdict(future_specs):
    plan = CiPlan.from_specs(future_specs)
    assert plan.cached == plan.gates[:-1]
    assert plan.verdict not in plan.cached


# -- GitHub Actions -------------------------------------------------------------------------------


def _workflow(specs) -> dict:
    return yaml.safe_load(GithubRenderer().render(CiPlan.from_specs(specs)))


def test_github_gate_jobs_keep_the_gate_cache_keyed_by_os_ref_gate_and_inputs(future_specs):
    workflow = _workflow(future_specs)
    plan = CiPlan.from_specs(future_specs)
    digest = "${{ hashFiles('requirements.lock', 'policy.toml') }}"
    for spec in plan.cached:
        job = workflow["jobs"][spec.name]
        (step,) = _cache_steps(job)
        assert step["uses"].startswith(f"{CACHE.repo}@{CACHE.sha}")
        assert step["with"]["path"] == ".cache/gates/"
        own = f"gates-${{{{ runner.os }}}}-${{{{ github.ref }}}}-{spec.name}-"
        default = f"gates-${{{{ runner.os }}}}-refs/heads/${{{{ github.event.repository.default_branch }}}}-{spec.name}-"
        run = "${{ github.run_id }}-${{ github.run_attempt }}"
        assert step["with"]["key"] == f"{own}{digest}-{run}"
        # This branch first (same inputs, then any), then the default branch's.
        assert step["with"]["restore-keys"].splitlines() == [
            f"{own}{digest}-",
            own,
            f"{default}{digest}-",
            default,
        ]
        steps = job["steps"]
        gate = next(
            i for i, s in enumerate(steps) if s.get("run", "").startswith("python -m gates run")
        )
        assert steps.index(step) < gate
        # Only a push to the default branch restores or reads the cache, or sees its key: an
        # earlier commit of a pull request could write the entries its next commit would reuse.
        push = IS_DEFAULT_BRANCH_PUSH
        assert step["if"] == f"${{{{ {push} }}}}"
        assert steps[gate]["env"] == {
            "GATES_NO_CACHE": f"${{{{ ({push}) && '0' || '1' }}}}",
            "GATES_CACHE_HMAC_KEY": f"${{{{ ({push}) && secrets.GATES_CACHE_HMAC_KEY || '' }}}}",
        }
    for name in ("ci-config", plan.verdict.name, "report", "deploy"):
        assert _cache_steps(workflow["jobs"][name]) == [], name


def test_github_history_is_read_by_every_run_and_saved_only_by_default_branch_pushes(
    future_specs,
):
    workflow = _workflow(future_specs)
    feedback = workflow["jobs"]["feedback"]
    restore, save = _cache_steps(feedback)
    assert restore["uses"].split("@")[0] == "actions/cache/restore"  # never saves by itself
    assert save["uses"].split("@")[0] == "actions/cache/save"
    prefix = "history-${{ runner.os }}-refs/heads/${{ github.event.repository.default_branch }}-"
    assert restore["with"]["path"] == save["with"]["path"] == "history/"
    assert restore["with"]["restore-keys"].splitlines() == [prefix]
    assert restore["with"]["key"] == save["with"]["key"]
    assert save["with"]["key"].startswith(prefix)
    assert "github.event_name == 'push'" in save["if"]
    assert (
        "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
        in (save["if"])
    )
    assert "!cancelled()" in save["if"]  # a failed run's record is kept too
    steps = feedback["steps"]
    run = next(s for s in steps if s.get("run") == "python -m gates run feedback")
    assert steps.index(restore) < steps.index(run) < steps.index(save)
    # The gate cache and the history never share a key.
    assert not any(
        s["with"]["key"].startswith("history-")
        for name, job in workflow["jobs"].items()
        if name != "feedback"
        for s in _cache_steps(job)
    )


def test_github_deploy_restores_no_cache_and_forces_every_gate_to_run(future_specs):
    deploy = _workflow(future_specs)["jobs"]["deploy"]
    assert _cache_steps(deploy) == []
    assert deploy["env"]["GATES_NO_CACHE"] == "1"
    # Beside it only the registry's pinned head (test_registry_pin.py).
    assert set(deploy["env"]) == {"GATES_NO_CACHE", "GATES_REGISTRY_HEAD"}
    assert "GATES_CACHE_HMAC_KEY" not in json.dumps(deploy)


def _zizmor_jobs(tool, run_tool, path: Path, ident: str) -> set[str]:
    result = run_tool([tool("zizmor"), "--offline", "--no-config", "--format", "json", str(path)])
    assert result.returncode in {0, 10, 11, 12, 13, 14}, result.stderr
    jobs = set()
    for finding in json.loads(result.stdout):
        if finding["ident"] != ident:
            continue
        for location in finding["locations"]:
            route = [part.get("Key") for part in location["symbolic"]["route"]["route"]]
            if location["symbolic"]["kind"] == "Primary" and route[:1] == ["jobs"]:
                jobs.add(route[1])
    return jobs


def test_zizmor_cache_poisoning_passes_and_would_flag_only_the_gate_jobs(
    tool, run_tool, tmp_path, future_specs
):
    """zizmor's cache-poisoning audit looks at workflows with publishing triggers; with a
    release trigger planted it flags the gate jobs' cache, and never the deploy job."""
    workflow = tmp_path / ".github" / "workflows" / "pipeline.yml"
    workflow.parent.mkdir(parents=True)
    text = GithubRenderer().render(CiPlan.from_specs(future_specs))
    workflow.write_text(text, encoding="utf-8")
    assert _zizmor_jobs(tool, run_tool, workflow, "cache-poisoning") == set()
    assert (
        _zizmor_jobs(tool, run_tool, REPO / ".github/workflows/pipeline.yml", "cache-poisoning")
        == set()
    )
    released = text.replace(
        "  pull_request:\n", "  pull_request:\n  release:\n    types: [published]\n", 1
    )
    workflow.write_text(released, encoding="utf-8")
    flagged = _zizmor_jobs(tool, run_tool, workflow, "cache-poisoning")
    plan = CiPlan.from_specs(future_specs)
    # Every job that installs the lock restores pip's cache (setup-python's cache: pip); the
    # gate jobs also their gate cache. Never the deploy job, the one that holds the key.
    installing = {spec.name for spec in (*plan.gates, *plan.always)} | {"ci-config"}
    assert flagged == installing | {name for name, _, _ in CHECKS}
    assert "deploy" not in flagged


# -- GitLab CI ------------------------------------------------------------------------------------


def _pipeline(specs) -> dict:
    return yaml.safe_load(GitlabRenderer().render(CiPlan.from_specs(specs)))


def test_gitlab_gate_jobs_keep_the_gate_cache_per_ref_and_inputs(future_specs):
    pipeline = _pipeline(future_specs)
    plan = CiPlan.from_specs(future_specs)
    for spec in plan.cached:
        assert pipeline[spec.name]["cache"] == [
            {
                "key": {
                    "files": ["requirements.lock", "policy.toml"],
                    "prefix": "gates-$CI_COMMIT_REF_SLUG",
                },
                "paths": [".cache/gates/"],
                "policy": "pull-push",
                "when": "always",
            },
            # and pip's cache, keyed on the lock (every job that installs keeps it)
            {
                "key": {"files": ["requirements.lock"], "prefix": "pip"},
                "paths": [".cache/pip/"],
                "policy": "pull-push",
            },
        ], spec.name
    assert "cache" not in pipeline[plan.verdict.name]
    assert "cache" not in pipeline["ci-config"]


def test_gitlab_history_is_written_back_only_by_default_branch_pushes(future_specs):
    pipeline = _pipeline(future_specs)
    assert pipeline["variables"]["GATES_HISTORY_CACHE_POLICY"] == "pull"
    feedback = pipeline["feedback"]
    assert feedback["cache"] == [
        {
            "key": "history-$CI_DEFAULT_BRANCH",
            "paths": ["history/"],
            "policy": "$GATES_HISTORY_CACHE_POLICY",
            "when": "always",
        },
        {
            "key": {"files": ["requirements.lock"], "prefix": "pip"},
            "paths": [".cache/pip/"],
            "policy": "pull-push",
        },
    ]
    first, rest = feedback["rules"]
    assert first["if"] == '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"'
    assert first["variables"] == {"GATES_HISTORY_CACHE_POLICY": "pull-push"}
    assert rest == {"when": "always"}


def test_gitlab_deploy_uses_no_cache_and_forces_every_gate_to_run(future_specs):
    deploy = _pipeline(future_specs)["deploy"]
    assert deploy["cache"] == []
    assert deploy["variables"] == {"GATES_NO_CACHE": "1"}


# -- Jenkins --------------------------------------------------------------------------------------


def _stage(text: str, name: str) -> str:
    start = text.index(f"        stage('{name}') {{\n")
    end = text.find("\n        }\n", start)
    return text[start:end]


def test_jenkins_keeps_the_gate_cache_beside_the_workspace_and_deploy_uses_none(future_specs):
    text = JenkinsRenderer().render(CiPlan.from_specs(future_specs))
    gates, deploy = _stage(text, "gates"), _stage(text, "deploy")
    assert re.search(r'^ {16}GATES_CACHE_DIR = "\$\{env\.WORKSPACE\}@gates-cache"$', gates, re.M)
    assert "GATES_CACHE_DIR" not in deploy
    assert re.search(r"^ {16}GATES_NO_CACHE = 'yes'", deploy, re.M)
    # Read only by builds of the default branch (a pull request's job is named PR-<n>).
    no_cache = "GATES_NO_CACHE = \"${env.BRANCH_NAME == 'main' ? 'false' : 'true'}\""
    assert re.search(rf"^ {{16}}{re.escape(no_cache)}$", gates, re.M)
