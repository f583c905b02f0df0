"""The GitHub workflow: its structure and hygiene, proven by check-jsonschema, zizmor and actionlint."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from gates.ci.github import PINNED, GithubRenderer
from gates.ci.interface import CiPlan, KeyService
from tests.conftest import REPO
from tests.gates.ci.conftest import zap_on

PATH = ".github/workflows/pipeline.yml"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
BLOCKING = {"Medium", "High"}


def _workflow(specs=None) -> dict:
    text = GithubRenderer().render(CiPlan.from_specs(*([specs] if specs else [])))
    return yaml.safe_load(text)


# [keys].provider set: the deploy job takes the platform's OIDC identity (test_key_service.py).
KEY_SERVICES = {
    "aws-kms": KeyService("aws-kms", "eu-west-1", ("GATES_SIGNING_KEY_ML_DSA_65",)),
    "vault-transit": KeyService("vault-transit"),
}


def _key_service_files(tmp_path) -> list[str]:
    """The workflow rendered with each key service, each in its own repository layout; and
    with [serve.dast].zap on (the deploy job's ZAP API scan, test_zap.py)."""
    plans = {name: CiPlan.from_specs(keys=service) for name, service in KEY_SERVICES.items()}
    plans["zap"] = CiPlan.from_specs(zap=zap_on())
    paths = []
    for name, plan in plans.items():
        path = tmp_path / name / PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GithubRenderer().render(plan), encoding="utf-8")
        paths.append(str(path))
    return paths


def _uses(job: dict) -> list[str]:
    return [step["uses"] for step in job["steps"] if "uses" in step]


@pytest.fixture
def workflow_file(tmp_path):
    """The rendered workflow (with a feedback stage) in a throw-away repository layout."""

    def write(text: str | None = None, *, specs=None) -> str:
        path = tmp_path / PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            text = GithubRenderer().render(CiPlan.from_specs(specs))
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def test_gate_jobs_chain_in_registry_order_on_pull_requests(future_specs):
    workflow = _workflow(future_specs)
    # YAML 1.1 reads `on` as True
    assert set(workflow[True]) == {"pull_request", "push", "workflow_dispatch"}
    assert workflow[True]["push"] == {"branches": ["main"]}
    plan = CiPlan.from_specs(future_specs)
    previous = None
    for spec in plan.gates:
        job = workflow["jobs"][spec.name]
        assert job.get("needs") == ([previous] if previous else None)
        assert job["steps"][-2]["run"] == f"python -m gates run {spec.name}"
        assert "if" not in job  # a gate runs only when the gates before it passed
        previous = spec.name


def test_every_job_installs_from_the_hash_pinned_lock_and_shares_one_run_id(future_specs):
    workflow = _workflow(future_specs)
    assert workflow["env"]["GATES_RUN_ID"] == "github-${{ github.run_id }}"
    assert "GATES_ADVISORY_DB" in GithubRenderer().render(CiPlan.from_specs(future_specs))
    for name, job in workflow["jobs"].items():
        if name == "report":
            continue
        runs = [step.get("run") for step in job["steps"]]
        assert "python -m pip install --require-hashes -r requirements.lock" in runs, name


def test_reports_and_artifacts_travel_from_job_to_job(future_specs):
    workflow = _workflow(future_specs)
    plan = CiPlan.from_specs(future_specs)
    for before, spec in zip(plan.gates, plan.gates[1:], strict=False):
        download = workflow["jobs"][spec.name]["steps"][2]
        assert download["with"] == {"name": f"pipeline-{before.name}"}
    for spec in (*plan.gates, *plan.always):
        upload = workflow["jobs"][spec.name]["steps"][-1]
        assert upload["if"] == "always()"
        assert upload["with"]["name"] == f"pipeline-{spec.name}"
        assert upload["with"]["path"].split() == ["reports/", "artifacts/"]


def test_feedback_runs_always_and_the_report_job_publishes_summary_and_sarif(future_specs):
    workflow = _workflow(future_specs)
    feedback = workflow["jobs"]["feedback"]
    assert feedback["if"] == "always()"
    assert feedback["needs"] == ["gate"]
    report = workflow["jobs"]["report"]
    assert report["if"] == "always()"
    assert report["needs"] == ["feedback"]
    runs = [step.get("run", "") for step in report["steps"]]
    assert 'cat reports/summary.md >> "$GITHUB_STEP_SUMMARY"' in runs
    sarif = next(s for s in report["steps"] if "upload-sarif" in s.get("uses", ""))
    assert sarif["with"]["sarif_file"] == "reports/merged.sarif"
    assert "head.repo.full_name == github.repository" in sarif["if"]


def test_without_feedback_the_report_job_follows_the_verdict():
    from gates.registry import GATES

    workflow = _workflow(tuple(spec for spec in GATES if not spec.always))
    assert workflow["jobs"]["report"]["needs"] == ["gate"]
    assert "feedback" not in workflow["jobs"]


def test_deploy_is_default_branch_only_behind_the_environment_and_alone_sees_the_key(
    future_specs,
):
    workflow = _workflow(future_specs)
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == ["gate"]
    assert deploy["environment"] == {"name": "production"}
    assert "github.event_name == 'push'" in deploy["if"]
    assert "github.event.repository.default_branch" in deploy["if"]
    sign, promote, _ = deploy["steps"][-3:]  # then the new registry head (test_registry_pin.py)
    # Only the signing step sees the key; it re-signs this run's attestation, then deploy verifies.
    assert sign["run"] == "python -m gates run artifacts gate"
    assert sign["env"] == {"GATES_SIGNING_KEY": "${{ secrets.GATES_SIGNING_KEY }}"}
    assert promote["run"] == "python -m gates deploy"
    assert "env" not in promote
    # Besides the signing key there, only the gate jobs that keep the cache read a secret: the
    # cache's HMAC key, in the one step that runs the gate; and the always stages the history's
    # HMAC key, on default-branch pushes only.
    plan = CiPlan.from_specs(future_specs)
    cached = {spec.name for spec in plan.cached}
    always = {spec.name for spec in future_specs if spec.always}
    for name, job in workflow["jobs"].items():
        if name in ("deploy", "rotate"):  # rotate: test_rotate_job.py
            continue
        read = re.findall(r"secrets\.(\w+)", json.dumps(job))
        expected = ["GATES_CACHE_HMAC_KEY"] if name in cached else []
        expected += ["GATES_HISTORY_HMAC_KEY"] if name in always else []
        assert read == expected, name
        for step in job["steps"]:
            if "GATES_HISTORY_HMAC_KEY" in step.get("env", {}):
                assert "github.event_name == 'push'" in step["env"]["GATES_HISTORY_HMAC_KEY"]
        if read:
            (step,) = [s for s in job["steps"] if "secrets." in json.dumps(s)]
            assert step["run"] == f"python -m gates run {name}"


def test_permissions_empty_by_default_and_write_only_where_needed(future_specs):
    workflow = _workflow(future_specs)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        granted = job["permissions"]
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes == ({"security-events"} if name == "report" else set()), name
        # The one job with a write grant runs no project code.
        if writes:
            assert not any("python" in step.get("run", "") for step in job["steps"])


def test_actions_are_pinned_to_commit_shas_and_never_persist_credentials(future_specs):
    text = GithubRenderer().render(CiPlan.from_specs(future_specs))
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any("pull_request_target" in line for line in code)
    uses_lines = [line.split("uses: ", 1)[1] for line in text.splitlines() if "uses: " in line]
    assert uses_lines
    for uses in uses_lines:
        assert SHA_PIN.match(uses), uses
    assert {u.split("@")[0] for u in uses_lines} == {a.repo for a in PINNED}
    for name, job in yaml.safe_load(text)["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


# -- real tools ---------------------------------------------------------------------------------


def test_check_jsonschema_accepts_the_workflow_and_rejects_a_broken_one(
    tool, run_tool, workflow_file, future_specs, tmp_path
):
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    committed = run_tool([*check, str(REPO / PATH)])
    assert committed.returncode == 0, committed.stdout + committed.stderr
    future = run_tool([*check, workflow_file(specs=future_specs)])
    assert future.returncode == 0, future.stdout + future.stderr
    services = run_tool([*check, *_key_service_files(tmp_path)])
    assert services.returncode == 0, services.stdout + services.stderr
    broken = GithubRenderer().render(CiPlan.from_specs()).replace("runs-on:", "runs_on:")
    rejected = run_tool([*check, workflow_file(broken)])
    assert rejected.returncode == 1
    assert "runs_on" in rejected.stdout + rejected.stderr


def _zizmor(tool, run_tool, path: str) -> list[dict]:
    result = run_tool([tool("zizmor"), "--offline", "--no-config", "--format", "json", path])
    assert result.returncode in {0, 10, 11, 12, 13, 14}, result.stderr
    return json.loads(result.stdout)


def test_zizmor_finds_nothing_at_medium_or_above(
    tool, run_tool, workflow_file, future_specs, tmp_path
):
    paths = (str(REPO / PATH), workflow_file(specs=future_specs), *_key_service_files(tmp_path))
    for path in paths:
        findings = _zizmor(tool, run_tool, path)
        blocking = [
            (f["ident"], f["determinations"]["severity"])
            for f in findings
            if f["determinations"]["severity"] in BLOCKING
        ]
        assert blocking == [], path


def test_zizmor_would_catch_the_mistakes_this_renderer_avoids(tool, run_tool, workflow_file):
    text = GithubRenderer().render(CiPlan.from_specs())
    bad = (
        text.replace("        with:\n          persist-credentials: false\n", "")
        .replace(
            "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
            "actions/checkout@v4",
        )
        .replace("  pull_request:\n", "  pull_request_target:\n")
    )
    idents = {f["ident"] for f in _zizmor(tool, run_tool, workflow_file(bad))}
    assert {"artipacked", "unpinned-uses", "dangerous-triggers"} <= idents


def test_actionlint_accepts_the_workflow_and_rejects_a_broken_one(
    actionlint, run_tool, workflow_file, future_specs, tmp_path
):
    paths = (str(REPO / PATH), workflow_file(specs=future_specs), *_key_service_files(tmp_path))
    for path in paths:
        result = run_tool([*actionlint, path])
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout) == []
    broken = GithubRenderer().render(CiPlan.from_specs()).replace("needs: [cv]", "needs: [cvv]")
    result = run_tool([*actionlint, workflow_file(broken)])
    assert result.returncode == 1
    assert any("cvv" in f["message"] for f in json.loads(result.stdout))


def test_every_pinned_action_is_used():
    text = GithubRenderer().render(CiPlan.from_specs())
    for action in PINNED:
        assert action.uses in text, action.repo


def test_a_check_job_fails_the_run_when_the_ci_files_drift_from_the_registry(future_specs):
    workflow = _workflow(future_specs)
    check = workflow["jobs"]["ci-config"]
    assert "needs" not in check  # beside the gates, a status check of its own
    assert check["permissions"] == {"contents": "read"}
    assert [step["run"] for step in check["steps"][-2:]] == [
        "python -m gates ci render --check",
        "python -m gates ci deploy --check",
    ]
