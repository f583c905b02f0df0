"""Issue 18: the Dockerfile and Kubernetes manifests rendered from the policy.

Proven here: the manifests validate against the vendored Kubernetes v1.34 standalone-strict
JSON schemas (check-jsonschema, no network), the committed files are what the policy renders
(``ci deploy --check``), and a file edited to run as root, privileged, with capabilities, with
an unpinned base image or an entrypoint that does not verify is named by the check. No
container runtime runs here: no image is built.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates._cli import main
from gates.ci import deploy
from pipeline.config import load_policy
from tests.conftest import REPO, write_toml

SCHEMAS = REPO / "tests" / "assets" / "k8s" / "v1.34.0-standalone-strict"
SCHEMA_OF = {
    "deployment.yaml": "deployment-apps-v1.json",
    "service.yaml": "service-v1.json",
    "networkpolicy.yaml": "networkpolicy-networking-v1.json",
    "poddisruptionbudget.yaml": "poddisruptionbudget-policy-v1.json",
    "horizontalpodautoscaler.yaml": "horizontalpodautoscaler-autoscaling-v2.json",
}
DEPLOYMENT = "deploy/k8s/deployment.yaml"
DOCKERFILE = "deploy/Dockerfile"
PIN = "GATES_REGISTRY_HEAD"


def _check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return deploy.render_deploy(load_policy(REPO / "policy.toml"))


@pytest.fixture
def tree(tmp_path: Path, rendered: dict[str, str]) -> Path:
    """A project root holding the policy and the files it renders."""
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    for relative, text in rendered.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    return tmp_path


def test_every_manifest_validates_against_the_vendored_kubernetes_schema(
    tmp_path: Path, rendered: dict[str, str]
) -> None:
    assert {Path(p).name for p in rendered if p.startswith("deploy/k8s/")} == set(SCHEMA_OF)
    for name, schema in SCHEMA_OF.items():
        path = tmp_path / name
        path.write_text(rendered[f"deploy/k8s/{name}"], encoding="utf-8")
        result = _check_jsonschema(SCHEMAS / schema, path)
        assert result.returncode == 0, (name, result.stdout, result.stderr)
        assert "validation done" in result.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["spec"].__setitem__("replicas", "two"), "replicas"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].__setitem__(
                "runAsNonroot", True
            ),
            "runAsNonroot",
        ),
        (lambda d: d["spec"].pop("selector"), "selector"),
    ],
    ids=["replicas-a-string", "misspelled-runAsNonroot", "no-selector"],
)
def test_the_vendored_schema_is_strict(
    tmp_path: Path, rendered: dict[str, str], edit: Callable[[Any], Any], expected: str
) -> None:
    """The schema is not a rubber stamp: a wrong type, an unknown key, a missing field fail."""
    document = yaml.safe_load(rendered[DEPLOYMENT])
    edit(document)
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = _check_jsonschema(SCHEMAS / SCHEMA_OF["deployment.yaml"], path)
    assert result.returncode == 1, result.stdout
    assert expected in result.stdout


def test_the_committed_files_are_what_the_policy_renders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ci", "deploy", "--check", "--root", str(REPO)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_policy_change_is_drift_until_rendered(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tree / "policy.toml"
    policy.write_text(
        policy.read_text(encoding="utf-8").replace("port = 8080", "port = 9090", 1),
        encoding="utf-8",
    )
    assert main(["ci", "deploy", "--check", "--root", str(tree)]) == 1
    out = capsys.readouterr().out
    assert "deploy/Dockerfile: differs from policy.toml" in out
    assert "+EXPOSE 9090" in out
    assert main(["ci", "deploy", "--root", str(tree)]) == 0
    assert main(["ci", "deploy", "--check", "--root", str(tree)]) == 0
    assert "containerPort: 9090" in (tree / DEPLOYMENT).read_text(encoding="utf-8")


def test_the_policy_refuses_a_base_image_not_pinned_by_digest(tmp_path: Path) -> None:
    from pipeline.errors import PolicyError

    write_toml(
        tmp_path / "policy.toml",
        {"schema_version": 1, "serve": {"deploy": {"base_image": "python:3.11-slim"}}},
    )
    with pytest.raises(PolicyError, match=r"serve\.deploy\.base_image"):
        load_policy(tmp_path / "policy.toml")


def _container(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]["containers"][0]


def _pin(document: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in _container(document)["env"] if e["name"] == PIN)


def _context(document: dict[str, Any]) -> dict[str, Any]:
    return _container(document)["securityContext"]


def _pod(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]


# (id, edit of the Deployment, the key the finding must name)
MANIFEST_ATTACKS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("run-as-root", lambda d: _context(d).update(runAsNonRoot=False, runAsUser=0), "runAsNonRoot"),
    ("run-as-uid-0-only", lambda d: _context(d).update(runAsUser=0), "runAsUser"),
    ("pod-runs-as-uid-0", lambda d: _pod(d)["securityContext"].update(runAsUser=0), "runAsUser"),
    (
        "non-root-key-removed",
        lambda d: (_context(d).pop("runAsNonRoot"), _pod(d)["securityContext"].pop("runAsNonRoot")),
        "runAsNonRoot",
    ),
    ("privileged", lambda d: _context(d).update(privileged=True), "privileged"),
    (
        "privilege-escalation",
        lambda d: _context(d).update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    (
        "writable-root",
        lambda d: _context(d).update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
    ),
    ("drops-no-caps", lambda d: _context(d).pop("capabilities"), "capabilities.drop"),
    (
        "drops-some-caps",
        lambda d: _context(d).update(capabilities={"drop": ["NET_RAW"]}),
        "capabilities.drop",
    ),
    (
        "adds-a-cap",
        lambda d: _context(d)["capabilities"].update(add=["SYS_ADMIN"]),
        "capabilities.add",
    ),
    (
        "seccomp-unconfined",
        lambda d: (
            _context(d).update(seccompProfile={"type": "Unconfined"}),
            _pod(d)["securityContext"].pop("seccompProfile"),
        ),
        "seccompProfile",
    ),
    ("host-network", lambda d: _pod(d).update(hostNetwork=True), "hostNetwork"),
    ("host-pid", lambda d: _pod(d).update(hostPID=True), "hostPID"),
    ("no-limits", lambda d: _container(d)["resources"].pop("limits"), "resources.limits"),
    ("no-liveness-probe", lambda d: _container(d).pop("livenessProbe"), "livenessProbe"),
    (
        "readiness-on-healthz",
        lambda d: _container(d)["readinessProbe"]["httpGet"].update(path="/healthz"),
        "readinessProbe",
    ),
    (
        "root-sidecar",
        lambda d: _pod(d)["containers"].append({"name": "debug", "image": "busybox"}),
        "container 'debug'",
    ),
    (
        "privileged-init-container",
        lambda d: _pod(d).update(
            initContainers=[
                {
                    **copy.deepcopy(_container(d)),
                    "name": "init",
                    "securityContext": {"privileged": True},
                }
            ]
        ),
        "container 'init'",
    ),
    # The pod's registry head: from a Secret it cannot start without, never a literal.
    (
        "no-registry-pin",
        lambda d: _container(d).update(env=[e for e in _container(d)["env"] if e["name"] != PIN]),
        f"env {PIN}: expected one",
    ),
    (
        "registry-pin-optional",
        lambda d: _pin(d)["valueFrom"]["secretKeyRef"].update(optional=True),
        "secretKeyRef.optional",
    ),
    (
        "registry-pin-a-literal",
        lambda d: _pin(d).update(value=f"0:{'0' * 64}") or _pin(d).pop("valueFrom"),
        f"env {PIN}: expected valueFrom.secretKeyRef",
    ),
    (
        "registry-pin-from-a-configmap",
        lambda d: _pin(d).update(valueFrom={"configMapKeyRef": {"name": "x", "key": "head"}}),
        f"env {PIN}: expected valueFrom.secretKeyRef",
    ),
]


@pytest.mark.parametrize(
    ("edit", "named"),
    [case[1:] for case in MANIFEST_ATTACKS],
    ids=[case[0] for case in MANIFEST_ATTACKS],
)
def test_a_deployment_edited_to_weaken_it_is_caught(
    tree: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, Any]], Any],
    named: str,
) -> None:
    path = tree / DEPLOYMENT
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(document)
    text = yaml.safe_dump(document, sort_keys=False)
    findings = deploy.security_findings(DEPLOYMENT, text)
    assert any(named in finding and finding.startswith(DEPLOYMENT) for finding in findings), (
        findings
    )
    path.write_text(text, encoding="utf-8")
    assert main(["ci", "deploy", "--check", "--root", str(tree)]) == 1
    out = capsys.readouterr().out
    assert f"{DEPLOYMENT}: differs from policy.toml" in out
    assert named in out


DOCKERFILE_ATTACKS: list[tuple[str, Callable[[str], str], str]] = [
    (
        "base-by-tag",
        lambda t: t.replace(t.split("FROM ", 1)[1].split("\n", 1)[0], "python:3.11-slim"),
        "pinned by digest",
    ),
    (
        "second-stage-by-tag",
        lambda t: t.replace("FROM ", "FROM python:3.11 AS build\nFROM ", 1),
        "FROM python:3.11",
    ),
    ("user-root", lambda t: t.replace("USER 10001:10001", "USER root"), "USER root"),
    ("user-uid-0", lambda t: t.replace("USER 10001:10001", "USER 0:0"), "USER 0:0"),
    ("no-user", lambda t: t.replace("USER 10001:10001\n", ""), "USER"),
    ("back-to-root-at-the-end", lambda t: t + "USER root\n", "USER root"),
    (
        "no-healthcheck",
        lambda t: t.split("HEALTHCHECK", 1)[0] + "ENTRYPOINT" + t.split("ENTRYPOINT", 1)[1],
        "HEALTHCHECK",
    ),
    (
        "serves-without-verifying",
        lambda t: t.replace(
            'ENTRYPOINT ["python", "-m", "gates", "serve", "--champion",',
            'ENTRYPOINT ["python", "-m", "uvicorn", "app:app",',
        ),
        "ENTRYPOINT",
    ),
    (
        "shell-form-entrypoint",
        lambda t: t.replace(
            'ENTRYPOINT ["python", "-m", "gates", "serve", "--champion", "--require-pin", '
            '"--host", "0.0.0.0", "--port", "8080"]',
            "ENTRYPOINT python -m gates serve --champion --require-pin",
        ),
        "ENTRYPOINT",
    ),
    ("cmd-overrides", lambda t: t + 'CMD ["--key", "keys/dev.pub"]\n', "CMD"),
    (
        "no-entrypoint",
        lambda t: t.rsplit("ENTRYPOINT", 1)[0],
        'ENTRYPOINT: expected \'ENTRYPOINT ["python", "-m", "gates", "serve", '
        '"--champion", "--require-pin", "--host", "0.0.0.0", "--port", "8080"]\' '
        "next, found the end of the file",
    ),
    # The image's registry read with no pin: a copy cut before a revocation would be served.
    ("serves-unpinned", lambda t: t.replace('"--require-pin", ', ""), "--require-pin"),
    (
        "pin-baked-into-the-image",
        lambda t: t.replace("WORKDIR", f"ENV GATES_REGISTRY_HEAD=0:{'0' * 64}\nWORKDIR", 1),
        "GATES_REGISTRY_HEAD",
    ),
]


@pytest.mark.parametrize(
    ("edit", "named"),
    [case[1:] for case in DOCKERFILE_ATTACKS],
    ids=[case[0] for case in DOCKERFILE_ATTACKS],
)
def test_a_dockerfile_edited_to_weaken_it_is_caught(
    tree: Path, capsys: pytest.CaptureFixture[str], edit: Callable[[str], str], named: str
) -> None:
    path = tree / DOCKERFILE
    original = path.read_text(encoding="utf-8")
    text = edit(original)
    assert text != original
    findings = deploy.security_findings(DOCKERFILE, text, load_policy(REPO / "policy.toml"))
    assert len(findings) == 1, findings
    assert named in findings[0], findings
    assert findings[0].startswith(f"{DOCKERFILE}:"), findings
    path.write_text(text, encoding="utf-8")
    assert main(["ci", "deploy", "--check", "--root", str(tree)]) == 1
    assert named in capsys.readouterr().out


def test_the_rendered_files_have_no_finding(rendered: dict[str, str]) -> None:
    loaded = load_policy(REPO / "policy.toml")
    for relative, text in rendered.items():
        assert deploy.security_findings(relative, text, loaded) == [], relative


def test_the_generated_pod_is_locked_down(rendered: dict[str, str]) -> None:
    """The settings the issue names, read from the rendered Deployment itself."""
    document = yaml.safe_load(rendered[DEPLOYMENT])
    context = _context(document)
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert _pod(document)["automountServiceAccountToken"] is False
    assert set(_container(document)["resources"]) == {"requests", "limits"}
    network = yaml.safe_load(rendered["deploy/k8s/networkpolicy.yaml"])
    assert network["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert network["spec"]["egress"] == []
    dockerfile = rendered[DOCKERFILE]
    assert "@sha256:" in dockerfile.split("FROM ", 1)[1].split("\n", 1)[0]
    assert "COPY registry/ registry/" in dockerfile


def test_the_pod_reads_the_registry_under_a_pin_from_a_secret(rendered: dict[str, str]) -> None:
    """The image has no .git: the registry copied into it is read under the head the operator
    writes into a Secret; the pod does not start without the Secret (optional: false) and the
    entrypoint refuses to serve without the variable (tests/attacks/test_registry_head.py)."""
    document = yaml.safe_load(rendered[DEPLOYMENT])
    assert _pin(document) == {
        "name": PIN,
        "valueFrom": {
            "secretKeyRef": {
                "name": "gates-serve-model-registry-head",
                "key": "head",
                "optional": False,
            }
        },
    }
    entry = next(line for line in rendered[DOCKERFILE].splitlines() if line.startswith("ENTRY"))
    assert '"serve", "--champion", "--require-pin"' in entry


def test_auth_and_spool_variants_validate_and_stay_locked_down(tmp_path: Path) -> None:
    """With API keys (a Secret volume) and the spool (a writable volume) on, still valid."""
    import dataclasses

    loaded = load_policy(REPO / "policy.toml")
    serve = loaded.policy.serve
    serve = serve.model_copy(
        update={
            "require_api_key": True,
            "spool": serve.spool.model_copy(update={"enabled": True}),
        }
    )
    variant = dataclasses.replace(loaded, policy=loaded.policy.model_copy(update={"serve": serve}))
    files = deploy.render_deploy(variant)
    path = tmp_path / "deployment.yaml"
    path.write_text(files[DEPLOYMENT], encoding="utf-8")
    result = _check_jsonschema(SCHEMAS / SCHEMA_OF["deployment.yaml"], path)
    assert result.returncode == 0, result.stdout
    assert deploy.security_findings(DEPLOYMENT, files[DEPLOYMENT], variant) == []
    mounts = {m["name"]: m for m in _container(yaml.safe_load(files[DEPLOYMENT]))["volumeMounts"]}
    assert mounts["api-keys"]["readOnly"] is True
    assert set(mounts) == {"tmp", "api-keys", "spool"}
