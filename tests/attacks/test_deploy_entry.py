"""Red team 9: a Deployment that passes ``ci deploy --check``'s findings yet starts unpinned.

Row 47 makes the pin a Secret (``optional: false``) and the image's entrypoint
``serve --champion --require-pin``; the manifest check looked at where the pin comes from, not
at what the container runs with it. Kubernetes' ``command`` replaces the image's ENTRYPOINT
(``args`` its CMD), so ``env -u GATES_REGISTRY_HEAD python -m gates serve --champion`` serves
the copied registry unpinned beside a perfectly formed Secret reference; ``PYTHONPATH`` naming
the pod's writable ``/tmp`` (shared with an init container that writes a ``sitecustomize.py``)
drops the pin before ``gates`` is imported; a volume mounted over the image's working folder
replaces its registry, code or key; ``workingDir`` makes ``python -m gates`` import another
``gates``; ``envFrom`` brings any of those variables under names the check never sees.
Each edit is checked with the rendered Deployment's every other line intact.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates._cli import main
from gates.ci import deploy
from pipeline.config import load_policy
from tests.conftest import REPO

DEPLOYMENT = "deploy/k8s/deployment.yaml"
POD_TMP = "/tmp"  # noqa: S108 - the pod's writable emptyDir, not a file made here


def _serve(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]["containers"][0]


def _init_writer(document: dict[str, Any]) -> None:
    """An init container, every security setting kept, sharing the pod's /tmp volume."""
    init = {
        k: v for k, v in _serve(document).items() if k not in ("livenessProbe", "readinessProbe")
    }
    init = yaml.safe_load(yaml.safe_dump(init))
    init.update(
        name="prepare",
        command=["sh", "-c", "echo 'import os; os.environ.pop(\"X\", 0)' > /tmp/sitecustomize.py"],
    )
    init.pop("env", None)
    init.pop("startupProbe", None)
    document["spec"]["template"]["spec"]["initContainers"] = [init]


UNPIN = ["env", "-u", "GATES_REGISTRY_HEAD", "python", "-m", "gates", "serve", "--champion"]

# (id, edit of the rendered Deployment, what the finding must name)
ATTACKS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("command-unsets-the-pin", lambda d: _serve(d).update(command=UNPIN), "command"),
    (
        "command-without-require-pin",
        lambda d: _serve(d).update(command=["python", "-m", "gates", "serve", "--champion"]),
        "command",
    ),
    ("args-replace-the-cmd", lambda d: _serve(d).update(args=["--port", "9"]), "args"),
    (
        "a-second-container-with-its-own-command",
        lambda d: d["spec"]["template"]["spec"]["containers"].append(
            {**yaml.safe_load(yaml.safe_dump(_serve(d))), "name": "two", "command": UNPIN}
        ),
        "command",
    ),
    (
        "pythonpath-to-a-sitecustomize-an-init-container-wrote",
        lambda d: (
            _init_writer(d),
            _serve(d)["env"].append({"name": "PYTHONPATH", "value": POD_TMP}),
        ),
        "PYTHONPATH",
    ),
    (
        "ld-preload",
        lambda d: _serve(d)["env"].append({"name": "LD_PRELOAD", "value": f"{POD_TMP}/x.so"}),
        "LD_PRELOAD",
    ),
    (
        "env-from-a-config-map",
        lambda d: _serve(d).update(envFrom=[{"configMapRef": {"name": "extra"}}]),
        "envFrom",
    ),
    ("working-dir-elsewhere", lambda d: _serve(d).update(workingDir=POD_TMP), "workingDir"),
    (
        "volume-over-the-registry",
        lambda d: _serve(d)["volumeMounts"].append(
            {"name": "tmp", "mountPath": "/srv/gates/registry"}
        ),
        "/srv/gates/registry",
    ),
    (
        "a-module-shadowed-by-a-mount-other-spelling",
        lambda d: _serve(d)["volumeMounts"].append(
            {"name": "tmp", "mountPath": "/srv//gates/./numpy.py"}
        ),
        "numpy.py",
    ),
    (
        "volume-over-a-parent",
        lambda d: _serve(d)["volumeMounts"].append({"name": "tmp", "mountPath": "/srv"}),
        "mountPath",
    ),
]


@pytest.fixture(scope="module")
def rendered() -> str:
    return deploy.render_deploy(load_policy(REPO / "policy.toml"))[DEPLOYMENT]


def test_the_rendered_deployment_has_no_finding(rendered: str) -> None:
    loaded = load_policy(REPO / "policy.toml")
    assert deploy.security_findings(DEPLOYMENT, rendered, loaded) == []


@pytest.mark.parametrize(
    ("edit", "expected"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_a_deployment_that_runs_the_image_otherwise_is_named(
    rendered: str, edit: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    document = yaml.safe_load(rendered)
    edit(document)
    findings = deploy.security_findings(DEPLOYMENT, yaml.safe_dump(document))
    assert any(expected in f for f in findings), findings


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("ENV PYTHONPATH=/tmp", "PYTHONPATH"),
        ("ENV PYTHONPATH /tmp", "PYTHONPATH"),
        ("ENV A=1 LD_PRELOAD=/tmp/x.so", "LD_PRELOAD"),
        ("ARG PYTHONHOME", "PYTHONHOME"),
    ],
)
def test_an_image_variable_that_loads_code_before_gates_is_named(line: str, name: str) -> None:
    """The same ``PYTHONPATH`` set in the image instead of the manifest (an init container
    still shares the pod's ``/tmp``)."""
    loaded = load_policy(REPO / "policy.toml")
    dockerfile = deploy.render_deploy(loaded)["deploy/Dockerfile"]
    assert deploy.security_findings("deploy/Dockerfile", dockerfile, loaded) == []
    planted = dockerfile.replace("WORKDIR ", f"{line}\nWORKDIR ", 1)
    findings = deploy.security_findings("deploy/Dockerfile", planted, loaded)
    assert len(findings) == 1, findings
    assert f"{line!r}" in findings[0], findings
    assert name in findings[0], findings


def test_a_pin_from_another_secret_is_named(rendered: str) -> None:
    """A well-formed, non-optional ``secretKeyRef`` to a Secret other than the operator's (one
    the pull request commits, holding ``1:<line 1's hash>``, which a cut log satisfies)."""
    for ref in ({"name": "pinned-by-pr", "key": "head"}, {"key": "stale"}):
        document = yaml.safe_load(rendered)
        pin = next(e for e in _serve(document)["env"] if e["name"] == "GATES_REGISTRY_HEAD")
        pin["valueFrom"]["secretKeyRef"].update(ref)
        findings = deploy.security_findings(DEPLOYMENT, yaml.safe_dump(document))
        assert any("secretKeyRef: expected name" in f for f in findings), (ref, findings)


def test_a_secret_committed_beside_the_manifests_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kubectl apply -f deploy/k8s/`` would apply it over the operator's Secret."""
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    for relative, text in deploy.render_deploy(load_policy(REPO / "policy.toml")).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    assert main(["ci", "deploy", "--check", "--root", str(tmp_path)]) == 0
    capsys.readouterr()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gates-serve-model-registry-head", "namespace": "gates"},
        "stringData": {"head": "1:" + "0" * 64},
    }
    (tmp_path / "deploy/k8s/zz-pin.yaml").write_text(yaml.safe_dump(secret), encoding="utf-8")
    assert main(["ci", "deploy", "--check", "--root", str(tmp_path)]) == 1
    assert "deploy/k8s/zz-pin.yaml: not rendered from policy.toml" in capsys.readouterr().out


def test_yaml_aliases_and_deep_nesting_are_one_finding_not_a_hang(rendered: str) -> None:
    """A Deployment of a few hundred bytes of nested aliases: its repr in a finding expanded
    them (57 s, then MemoryError under 3 GB); 20,000 brackets escaped as RecursionError."""
    laughs = ["a0: &a0 [x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)
    ]
    body = yaml.safe_dump(yaml.safe_load(rendered)).replace(
        "        - name: GATES_REGISTRY_HEAD\n",
        "        - name: GATES_REGISTRY_HEAD\n          value: *a11\n",
        1,
    )
    planted = "\n".join(laughs) + "\n" + body
    assert "value: *a11" in planted
    (found,) = deploy.security_findings(DEPLOYMENT, planted)
    # The line of an alias (red team 12: aliases are refused before the document is built)
    assert re.fullmatch(
        rf"{DEPLOYMENT}:\d+: expected no YAML aliases \(\*name\), found one; write each value out",
        found,
    ), found
    deep = deploy.security_findings(DEPLOYMENT, "[" * 20_000 + "]" * 20_000)
    # Refused by the nesting bound before it is built (tests/attacks/test_deep_yaml.py).
    assert deep == [
        f"{DEPLOYMENT}:1: expected YAML nested at most {deploy.MAX_MANIFEST_DEPTH} levels deep, "
        "found more"
    ]


def test_a_rendered_file_committed_as_a_symlink_to_a_device_is_drift_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``deploy/k8s/deployment.yaml -> /dev/zero`` (git commits a symlink): the check read it
    until memory ran out."""
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    for relative, text in deploy.render_deploy(load_policy(REPO / "policy.toml")).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    (tmp_path / DEPLOYMENT).unlink()
    (tmp_path / DEPLOYMENT).symlink_to("/dev/zero")
    assert main(["ci", "deploy", "--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{DEPLOYMENT}: not read: expected a regular file, found a symlink" in out
