"""The GitLab pipeline: its structure, check-jsonschema, and gitlab-ci-local really running it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates.ci.gitlab import READ_CACHE, GitlabRenderer
from gates.ci.interface import CiPlan, KeyService
from tests.conftest import REPO, run_module
from tests.gates.ci.conftest import ZAP_ON, _find_tool, _run, zap_on
from tests.project_support import clear_of_utc_midnight

PATH = ".gitlab-ci.yml"
GIT = shutil.which("git")

# An always-run stage for the local pipeline runs (the registry may not have feedback yet): it
# records the status of every report it finds, proving it ran after the gates and saw them.
PROBE_MODULE = '''\
"""Test probe: an always-run stage that records the reports it found."""

import json

from gates.base import Gate, Outcome, RunContext, Status


class ProbeGate(Gate):
    """Writes reports/probe.seen.json: gate name -> status."""

    name = "probe"
    description = "records the reports it saw"

    def run(self, context: RunContext) -> Outcome:
        seen = {}
        for path in sorted(context.reports_dir.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and "gate" in data and data["gate"] != "probe":
                seen[data["gate"]] = data["status"]
        (context.reports_dir / "probe.seen.json").write_text(json.dumps(seen), encoding="utf-8")
        return Outcome(status=Status.PASSED, summary=f"saw {sorted(seen)}")
'''
PROBE_SPEC = 'GateSpec("probe", "gates._ci_probe:ProbeGate", "Test probe.", always=True)'


def _pipeline(specs=None) -> dict:
    return yaml.safe_load(GitlabRenderer().render(CiPlan.from_specs(*([specs] if specs else []))))


def test_one_stage_per_gate_in_registry_order_then_always_stages_then_deploy(future_specs):
    pipeline = _pipeline(future_specs)
    names = [spec.name for spec in future_specs]
    assert pipeline["stages"] == [*names, "deploy"]
    rules = pipeline["workflow"]["rules"]
    assert rules[0] == {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}


def test_every_job_clones_anew_so_no_earlier_jobs_git_folder_is_reused(future_specs):
    """Red team 8: with GIT_STRATEGY fetch a runner reuses the build folder and its .git
    (config, hooks), which the merge request's training code in the train job could write; the
    verdict and deploy jobs would then run what it left."""
    pipeline = _pipeline(future_specs)
    assert pipeline["variables"]["GIT_STRATEGY"] == "clone"
    for name, job in pipeline.items():
        if isinstance(job, dict) and "script" in job:
            assert "GIT_STRATEGY" not in job.get("variables", {}), name
            assert "GIT_CLONE_PATH" not in job.get("variables", {}), name


def test_gate_jobs_chain_with_needs_install_from_the_lock_and_carry_reports(future_specs):
    pipeline = _pipeline(future_specs)
    # Only a push to the default branch reads the gate cache; every other pipeline computes.
    assert pipeline["variables"]["GATES_NO_CACHE"] == "1"
    assert pipeline["variables"]["GATES_RUN_ID"] == "gitlab-$CI_PIPELINE_ID"
    assert pipeline["variables"]["GATES_SKIP_INSTALL"] == "0"
    install = pipeline[".python"]["before_script"][0]
    assert "python -m pip install --require-hashes -r requirements.lock" in install
    plan = CiPlan.from_specs(future_specs)
    previous = None
    for spec in plan.gates:
        job = pipeline[spec.name]
        assert job["extends"] == ".python"
        assert job["stage"] == spec.name
        assert job["needs"] == ([previous] if previous else [])
        # After the first, a gate job runs even after a failure; the runner then refuses it.
        assert job.get("when") == ("always" if previous else None)
        # The gate's command last (the verdict's: then its dotenv and exit code); a cached gate
        # first turns the cache on in a default-branch push only, a base_branch gate then takes
        # the target branch's policy.
        script = job["script"]
        cached = spec in plan.cached
        gate = script[int(cached) + int(spec.base_branch)]
        assert gate.startswith(f"python -m gates run {spec.name}")
        assert (script[0] == READ_CACHE) is cached
        assert ("GATES_BASE_POLICY" in "".join(script)) is spec.base_branch
        assert job["artifacts"]["when"] == "always"
        assert job["artifacts"]["paths"] == ["reports/", "artifacts/"]
        previous = spec.name


def test_a_check_job_in_the_first_stage_catches_drift_from_the_registry(future_specs):
    check = _pipeline(future_specs)["ci-config"]
    assert check["stage"] == ".pre"
    assert check["needs"] == []
    assert check["script"] == [
        "python -m gates ci render --check",
        "python -m gates ci deploy --check",
    ]


def test_the_verdict_exports_a_dotenv_and_keeps_its_exit_code(future_specs):
    verdict = _pipeline(future_specs)["gate"]
    # After the base branch's policy (a merge request: the verdict compares the policy with it).
    assert "GATES_BASE_POLICY" in verdict["script"][0]
    assert verdict["script"][1:] == [
        "python -m gates run gate || verdict_exit=$?",
        "python -m gates ci dotenv --output reports/gates.env",
        'exit "${verdict_exit:-0}"',
    ]
    assert verdict["artifacts"]["reports"] == {"dotenv": "reports/gates.env"}


def test_feedback_runs_always_after_every_stage_with_native_reports(future_specs):
    feedback = _pipeline(future_specs)["feedback"]
    # Always, on every pipeline; the first rule only lets the default branch write its history.
    assert [rule["when"] for rule in feedback["rules"]] == ["always", "always"]
    assert "when" not in feedback
    assert "needs" not in feedback  # waits for all earlier stages, takes all their artifacts
    assert feedback["script"] == ["python -m gates run feedback"]
    assert feedback["artifacts"]["reports"] == {
        "junit": "reports/junit.xml",
        "codequality": "reports/gl-code-quality.json",
        "metrics": "reports/metrics.prom",
    }


def test_without_feedback_the_verdict_carries_the_native_reports():
    from gates.registry import GATES

    reports = _pipeline(tuple(s for s in GATES if not s.always))["gate"]["artifacts"]["reports"]
    assert set(reports) == {"dotenv", "junit", "codequality", "metrics"}


def test_deploy_is_manual_on_the_default_branch_in_a_protected_environment(future_specs):
    text = GitlabRenderer().render(CiPlan.from_specs(future_specs))
    deploy = yaml.safe_load(text)["deploy"]
    assert deploy["needs"] == [{"job": "gate", "artifacts": True}]
    assert deploy["rules"] == [
        {
            "if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"',
            "when": "manual",
        }
    ]
    assert deploy["allow_failure"] is False
    assert deploy["environment"]["name"] == "production"
    assert deploy["script"][1:3] == ["python -m gates run artifacts gate", "python -m gates deploy"]
    # The key is a CI/CD variable scoped to the environment, never written into the file.
    assert "GATES_SIGNING_KEY" not in text


def test_check_jsonschema_accepts_the_pipeline_and_rejects_a_broken_one(
    tool, run_tool, tmp_path, future_specs
):
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci"]
    future = tmp_path / "future.gitlab-ci.yml"
    future.write_text(GitlabRenderer().render(CiPlan.from_specs(future_specs)), encoding="utf-8")
    # [keys].provider set: the deploy job's id_tokens (test_key_service.py).
    services = []
    for service in (KeyService("aws-kms", "eu-west-1"), KeyService("vault-transit")):
        path = tmp_path / f"{service.provider}.gitlab-ci.yml"
        path.write_text(GitlabRenderer().render(CiPlan.from_specs(keys=service)), encoding="utf-8")
        services.append(path)
    # [serve.dast].zap on: the deploy job's ZAP API scan (test_zap.py).
    services.append(tmp_path / "zap.gitlab-ci.yml")
    services[-1].write_text(
        GitlabRenderer().render(CiPlan.from_specs(zap=zap_on())), encoding="utf-8"
    )
    for path in (REPO / PATH, future, *services):
        result = run_tool([*check, str(path)])
        assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.gitlab-ci.yml"
    broken.write_text(
        future.read_text(encoding="utf-8").replace("when: always", "when: sometimes", 1),
        encoding="utf-8",
    )
    result = run_tool([*check, str(broken)])
    assert result.returncode == 1
    assert "sometimes" in result.stdout + result.stderr


# -- gitlab-ci-local: the committed pipeline really runs ----------------------------------------


def _git(root, *args: str) -> None:
    subprocess.run(
        [GIT, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _local_repo(root):
    """A git copy of the project at ``root`` whose registry also has the probe stage, rendered
    by the CLI. Returns ``make(policy_edits)``: edits policy.toml, commits, returns the folder."""
    if GIT is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(
        [GIT, "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = REPO / relative
        if source.is_file():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / relative)
    (root / "gates" / "_ci_probe.py").write_text(PROBE_MODULE, encoding="utf-8")
    registry = root / "gates" / "registry.py"
    text = registry.read_text(encoding="utf-8")
    assert "\n_check(GATES)\n" in text
    registry.write_text(
        text.replace("\n_check(GATES)\n", f"\nGATES = (*GATES, {PROBE_SPEC})\n_check(GATES)\n", 1),
        encoding="utf-8",
    )
    rendered = run_module("gates", "ci", "render", cwd=root, env={"PYTHONPATH": str(root)})
    assert rendered.returncode == 0, rendered.stderr

    def make(*, replace: tuple[str, str] | None = None, branch: str = "feature/ci"):
        if replace is not None:
            policy = root / "policy.toml"
            before = policy.read_text(encoding="utf-8")
            assert replace[0] in before
            policy.write_text(before.replace(replace[0], replace[1], 1), encoding="utf-8")
        _git(root, "init", "-q", "-b", branch)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "copy")
        _git(root, "remote", "add", "origin", "https://gitlab.example.invalid/team/model.git")
        return root

    return make


@pytest.fixture
def local_repo(tmp_path):
    """``_local_repo`` in this test's folder."""
    return _local_repo(tmp_path / "repo")


def _advisory_db() -> str | None:
    # The audit gate (once registered) needs vulnerability data; this machine has no internet,
    # so use the environment's offline copy, or the workplace's ../shared/advisory-db.
    if os.environ.get("GATES_ADVISORY_DB"):
        return os.environ["GATES_ADVISORY_DB"]
    for parent in REPO.parents:
        if (parent / "shared" / "advisory-db").is_dir():
            return str(parent / "shared" / "advisory-db")
    return None


def _gitlab_ci_local(home):
    """Run gitlab-ci-local 4.60.0 in shell mode, isolated, with dependencies already installed
    (its home and a ``python`` for the jobs under ``home``)."""
    executable = _find_tool("gitlab-ci-local")
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (gitlab-ci-local copies the project with it)")
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    # Jobs call `python`: this interpreter. A wrapper, not a symlink: a symlinked venv python
    # finds no pyvenv.cfg beside the link, so it would run without the venv's packages.
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in {"GATES_RUN_ID", "PYTHONPATH"}}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    advisory_db = _advisory_db()
    extra = ["--variable", f"GATES_ADVISORY_DB={advisory_db}"] if advisory_db else []

    def run(root, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            executable,
            "--home",
            str(home / "home"),
            "--force-shell-executor",  # the image is for real runners; here the host runs jobs
            "--shell-isolation",  # each job in its own folder: files travel only as artifacts
            "--no-artifacts-to-source",
            "--variable",
            "GATES_SKIP_INSTALL=1",  # requirements.lock is installed in this interpreter
            "--variable",
            "GATES_SKIP_CHECKS=1",  # the gates alone: not the whole test suite and mypy again
            *extra,
            *args,
        ]
        return _run(command, cwd=root, env=env, timeout=900)

    return run


@pytest.fixture
def gitlab_ci_local(tmp_path):
    """``_gitlab_ci_local`` with its home in this test's folder."""
    return _gitlab_ci_local(tmp_path)


def _started(output: str) -> list[str]:
    return re.findall(r"^(\S+)\s+starting shell \(", output, re.MULTILINE)


def _artifact(root, job: str, relative: str):
    return root / ".gitlab-ci-local" / "artifacts" / job / relative


def _dotenv(root) -> dict[str, str]:
    text = _artifact(root, "gate", "reports/gates.env").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines())


@dataclass(frozen=True)
class FirstPipeline:
    """The first pipeline on the default branch of a fresh copy, as it was when it ended."""

    root: Path
    run: Any  # runs gitlab-ci-local again in ``root``
    returncode: int
    output: str
    seen: dict[str, str]  # reports/probe.seen.json of the probe stage
    dotenv: dict[str, str]  # the verdict's reports/gates.env
    model_sha256: str  # of the gate job's artifacts/model.skops
    reports_in_source: bool  # whether a reports/ folder appeared in the checkout


@pytest.fixture(scope="module")
def first_pipeline(tmp_path_factory):
    """One full pipeline, shared by the module: the test that it passes stage by stage and the
    test of what the next pipeline reuses (which runs that second pipeline in ``root``)."""
    # The audit's cache key holds today's UTC date: the second pipeline reuses this one's
    # outcomes only on the same date. Both pipelines and the module's tests between them take
    # well under 15 min, even on a loaded machine.
    clear_of_utc_midnight(900)
    base = tmp_path_factory.mktemp("gitlab")
    run = _gitlab_ci_local(base)
    root = _local_repo(base / "repo")(branch="main")
    result = run(root)
    seen = _artifact(root, "probe", "reports/probe.seen.json")
    model = _artifact(root, "gate", "artifacts/model.skops")
    return FirstPipeline(
        root=root,
        run=run,
        returncode=result.returncode,
        output=result.stdout + result.stderr,
        seen=json.loads(seen.read_text()) if seen.is_file() else {},
        dotenv=_dotenv(root) if _artifact(root, "gate", "reports/gates.env").is_file() else {},
        model_sha256=hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else "",
        reports_in_source=(root / "reports").exists(),
    )


@pytest.mark.slow
def test_gitlab_ci_local_runs_the_stages_in_order_and_they_pass(first_pipeline):
    output = first_pipeline.output
    assert first_pipeline.returncode == 0, output
    plan = CiPlan.from_specs()
    gates = [spec.name for spec in plan.gates]
    always = [spec.name for spec in plan.always]
    started = _started(output)
    assert [name for name in started if name != "ci-config"] == [*gates, *always, "probe"]
    assert "ci-config" in started  # the copy's files match its registry (rendered by the CLI)
    for name in ("ci-config", *gates, *always, "probe"):
        assert re.search(rf"^ PASS  {name}\b", output, re.MULTILINE), name
    seen = first_pipeline.seen
    assert {name: seen.get(name) for name in gates} == dict.fromkeys(gates, "PASSED")
    # The model digest reached the dotenv report, and it is the digest of the model built.
    assert first_pipeline.dotenv["GATES_VERDICT"] == "PASSED"
    assert first_pipeline.dotenv["GATES_MODEL_SHA256"] == first_pipeline.model_sha256
    assert not first_pipeline.reports_in_source  # reports moved between jobs only as artifacts


@pytest.mark.slow
def test_gitlab_ci_local_fails_on_a_planted_failing_gate_and_still_runs_feedback(
    local_repo, gitlab_ci_local
):
    root = local_repo(replace=("min_mean = 0.93", "min_mean = 0.999"))
    result = gitlab_ci_local(root)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert re.search(r"^ FAIL  cv\b", output, re.MULTILINE)
    assert re.search(r"^ FAIL  gate\b", output, re.MULTILINE)
    assert "CV001 accuracy mean" in output
    assert _started(output)[-1] == "probe"
    assert re.search(r"^ PASS  probe\b", output, re.MULTILINE)
    seen = json.loads(_artifact(root, "probe", "reports/probe.seen.json").read_text())
    assert seen["cv"] == "FAILED"
    assert seen["gate"] == "FAILED"
    assert all(status != "PASSED" for name, status in seen.items() if name in {"artifacts"})
    assert _dotenv(root)["GATES_VERDICT"] == "FAILED"
    assert "GATES_MODEL_SHA256" not in _dotenv(root)


def _listed(gitlab_ci_local, root) -> dict[str, dict]:
    result = gitlab_ci_local(root, "--list-json")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = json.loads(result.stdout[result.stdout.index("[") :])
    return {job["name"]: job for job in jobs}


def test_gitlab_ci_local_offers_deploy_only_on_the_default_branch_and_by_hand(
    local_repo, gitlab_ci_local
):
    root = local_repo(branch="main")
    on_main = _listed(gitlab_ci_local, root)
    assert on_main["deploy"]["when"] == "manual"
    assert [need["job"] for need in on_main["deploy"]["needs"]] == ["gate"]
    _git(root, "checkout", "-q", "-b", "feature/x")
    shutil.rmtree(root / ".gitlab-ci-local")  # it caches what it learnt about the repository
    off_main = _listed(gitlab_ci_local, root)
    # --list-json shows every job; one whose rules did not match is ``when: never``.
    assert off_main.get("deploy", {"when": "never"})["when"] == "never"
    assert off_main["gate"]["when"] == "always"


def test_gitlab_ci_local_accepts_the_pipeline_of_a_key_service_policy(local_repo, gitlab_ci_local):
    # The policy names AWS KMS: `ci render` gives the deploy job an ID token, and gitlab-ci-local
    # parses and plans the pipeline (deploy still manual, after the verdict).
    root = local_repo(branch="main")
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[keys]\nprovider = "aws-kms"\nkms_key_id = "alias/gates-release"\n')
    # KMS signs ECDSA P-256: the policy must require it and name its committed public key.
    policy = root / "policy.toml"
    policy.write_text(
        policy.read_text(encoding="utf-8").replace(
            "[release]\n",
            '[release]\nsignatures = ["ecdsa-p256-sha256"]\n'
            'public_keys = {"ecdsa-p256-sha256" = "keys/release.pub"}\n',
            1,
        ),
        encoding="utf-8",
    )
    rendered = run_module("gates", "ci", "render", cwd=root, env={"PYTHONPATH": str(root)})
    assert rendered.returncode == 0, rendered.stderr
    assert "id_tokens:" in (root / PATH).read_text(encoding="utf-8")
    _git(root, "commit", "-q", "-am", "key service")
    listed = _listed(gitlab_ci_local, root)
    assert listed["deploy"]["when"] == "manual"
    assert [need["job"] for need in listed["deploy"]["needs"]] == ["gate"]


def test_gitlab_ci_local_accepts_the_pipeline_with_the_zap_scan(local_repo, gitlab_ci_local):
    # [serve.dast].zap on: the deploy job carries the scan (test_zap.py), and gitlab-ci-local
    # parses and plans the pipeline (deploy still manual, after the verdict).
    root = local_repo(branch="main")
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write(ZAP_ON)
    rendered = run_module("gates", "ci", "render", cwd=root, env={"PYTHONPATH": str(root)})
    assert rendered.returncode == 0, rendered.stderr
    assert "zap-api-scan.py" in (root / PATH).read_text(encoding="utf-8")
    _git(root, "commit", "-q", "-am", "zap scan")
    listed = _listed(gitlab_ci_local, root)
    assert listed["deploy"]["when"] == "manual"
    assert [need["job"] for need in listed["deploy"]["needs"]] == ["gate"]


@pytest.mark.slow
def test_gitlab_ci_local_keeps_the_gate_cache_and_the_history_between_pipelines(
    first_pipeline,
):
    """Two pipelines on the default branch: the second reuses the first's cached gates, and
    refuses the kept run history once it has been tampered with (FB001, not extended)."""
    root = first_pipeline.root
    assert first_pipeline.returncode == 0, first_pipeline.output
    kept = root / ".gitlab-ci-local" / "cache"
    (gate_cache,) = kept.glob("0_gates-main-*")  # prefix-<digest of requirements.lock, policy>
    assert list((gate_cache / ".cache" / "gates").glob("*.json"))
    history = kept / "history-main" / "history" / "runs.jsonl"
    (line,) = history.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    record["verdict"] = "TAMPERED"
    tampered = json.dumps(record, sort_keys=True, separators=(",", ":"))
    history.write_text(tampered + "\n", encoding="utf-8")

    second = first_pipeline.run(root)
    output = second.stdout + second.stderr
    assert second.returncode != 0, output  # the tampered history fails the feedback stage
    assert re.search(r"^data\s+imported cache '0_gates-main-", output, re.MULTILINE)
    assert re.search(r"^feedback\s+imported cache 'history-main'", output, re.MULTILINE)
    reused = {}
    for name in ("data", "train", "cv"):  # the gates whose class is cacheable
        report = json.loads(_artifact(root, name, f"reports/{name}.json").read_text())
        reused[name] = report["summary"].startswith("reused from run gitlab-")
    assert reused == dict.fromkeys(reused, True), output
    assert re.search(r"^ PASS  gate\b", output, re.MULTILINE)
    assert re.search(r"^ FAIL  feedback\b", output, re.MULTILINE)
    assert "FB001" in output
    assert history.read_text(encoding="utf-8").splitlines() == [tampered]  # not extended


@pytest.mark.slow
def test_gitlab_ci_local_reads_no_gate_cache_outside_default_branch_pushes(
    local_repo, gitlab_ci_local
):
    """Two pipelines on another branch: the second imports the branch's cache (the first's
    entries) but reuses none of them: only a push to the default branch reads the gate cache
    (an earlier commit of a merge request could otherwise write its next commit's PASSED)."""
    clear_of_utc_midnight(600)
    root = local_repo(branch="feature/ci")
    first = gitlab_ci_local(root)
    assert first.returncode == 0, first.stdout + first.stderr
    second = gitlab_ci_local(root)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert re.search(r"^data\s+imported cache '0_gates-feature-ci-", output, re.MULTILINE), output
    for name in ("data", "train", "cv"):
        report = json.loads(_artifact(root, name, f"reports/{name}.json").read_text())
        assert not report["summary"].startswith("reused from run"), (name, report["summary"])
