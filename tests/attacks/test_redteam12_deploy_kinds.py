"""Red team 12: workloads ``ci deploy --check`` never looked at, re-rendered from an edited renderer.

Rows 55, 58 and 67 hold what runs in the cluster to the rules: the Dockerfile to an allow-list,
the Deployment's serving container to its image and environment, its pod to one container and
no host namespaces. All of that was read only from a document whose ``kind`` is
``Deployment``; ``security_findings`` passed any other kind without a look. So with the
renderer edited (a pull request can, and re-render without drift, as row 58 says):

- ``service.yaml`` rendered as a privileged ``Pod`` (or a ``Job``, ``CronJob``, ``DaemonSet``)
  running any image as root with the node's file system mounted: exit 0;
- ``deployment.yaml`` rendered as a ``StatefulSet`` (the same pod template, every rule broken):
  exit 0;
- and in the Deployment itself, what no rule read: a ``hostPath`` volume (the node's ``/``)
  mounted outside the working folder (volumes were not looked at except the API-key Secret's),
  a ``lifecycle.postStart`` hook or an ``exec`` startup probe (a command run in the serving
  container beside the entrypoint, which row 55 holds to ``serve --champion``), a service
  account named, its token mounted, and security settings no rule named (an AppArmor profile
  ``Unconfined``, ``procMount: Unmasked``, pod ``sysctls``).

Each case runs the real ``ci deploy --check`` on files the edited renderer wrote (no drift) and
expects exit 1 and a line naming the file and key. Red before: exit 0 for all thirteen. Fixed in
``gates/ci/deploy.py``: every manifest's ``kind`` and ``apiVersion`` are the ones its file
name renders (``KINDS``), and the pod's volumes are the renderer's kinds (``emptyDir``,
``secret``) only, its keys, its container's and their ``securityContext``'s the renderer's only, every probe
``httpGet``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gates.ci import deploy
from pipeline.config import LoadedPolicy, load_policy
from tests.conftest import REPO
from tests.deploy_support import (
    Manifests,
    deploy_check,
    edited_project,
    pod_spec,
    serving_container,
)


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return load_policy(REPO / "policy.toml")


def _root_pod(manifests: Manifests) -> dict[str, Any]:
    """A pod spec that breaks every rule: root, privileged, another image, the node's /."""
    pod = copy.deepcopy(pod_spec(manifests))
    container = pod["containers"][0]
    container["image"] = "ghcr.io/attacker/miner:latest"
    container["command"] = ["/bin/sh", "-c", "cat /host/etc/shadow"]
    container["securityContext"] = {"privileged": True, "runAsUser": 0}
    container["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
    pod["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
    pod["securityContext"] = {"runAsUser": 0}
    pod["hostPID"] = True
    return pod


def _as(file: str, kind: str, api: str, wrap: Callable[[dict[str, Any]], dict[str, Any]]):
    def edit(manifests: Manifests) -> None:
        meta = copy.deepcopy(manifests[file]["metadata"])
        manifests[file] = {"apiVersion": api, "kind": kind, "metadata": meta, **wrap(manifests)}

    return edit


def _template(manifests: Manifests) -> dict[str, Any]:
    labels = manifests["deployment.yaml"]["spec"]["template"]["metadata"]
    return {"metadata": copy.deepcopy(labels), "spec": _root_pod(manifests)}


def _host_path(manifests: Manifests) -> None:
    pod_spec(manifests)["volumes"].append({"name": "node", "hostPath": {"path": "/"}})
    pod_spec(manifests)["containers"][0]["volumeMounts"].append(
        {"name": "node", "mountPath": "/node", "readOnly": False}
    )


# (id, edit of the rendered manifests, the file and the words the finding must name)
ATTACKS: list[tuple[str, Callable[[Manifests], None], str, str]] = [
    (
        "service-as-a-root-pod",
        _as("service.yaml", "Pod", "v1", lambda m: {"spec": _root_pod(m)}),
        "service.yaml",
        "kind: expected 'Service'",
    ),
    (
        "service-as-a-job",
        _as("service.yaml", "Job", "batch/v1", lambda m: {"spec": {"template": _template(m)}}),
        "service.yaml",
        "kind: expected 'Service'",
    ),
    (
        "pdb-as-a-cronjob",
        _as(
            "poddisruptionbudget.yaml",
            "CronJob",
            "batch/v1",
            lambda m: {
                "spec": {
                    "schedule": "* * * * *",
                    "jobTemplate": {"spec": {"template": _template(m)}},
                }
            },
        ),
        "poddisruptionbudget.yaml",
        "kind: expected 'PodDisruptionBudget'",
    ),
    (
        "networkpolicy-as-a-daemonset",
        _as(
            "networkpolicy.yaml",
            "DaemonSet",
            "apps/v1",
            lambda m: {
                "spec": {
                    "selector": copy.deepcopy(m["deployment.yaml"]["spec"]["selector"]),
                    "template": _template(m),
                }
            },
        ),
        "networkpolicy.yaml",
        "kind: expected 'NetworkPolicy'",
    ),
    (
        "deployment-as-a-statefulset",
        lambda m: m["deployment.yaml"].update(
            kind="StatefulSet", spec={**m["deployment.yaml"]["spec"], "template": _template(m)}
        ),
        "deployment.yaml",
        "kind: expected 'Deployment'",
    ),
    (
        "a-poststart-hook",
        lambda m: serving_container(m).update(
            lifecycle={"postStart": {"exec": {"command": ["/bin/sh", "-c", "exec evil"]}}}
        ),
        "deployment.yaml",
        "lifecycle: expected none",
    ),
    (
        "an-exec-startup-probe",
        lambda m: serving_container(m).update(
            startupProbe={"exec": {"command": ["/bin/sh", "-c", "exec evil"]}, "periodSeconds": 5}
        ),
        "deployment.yaml",
        "startupProbe: expected an httpGet probe only",
    ),
    (
        "a-service-account",
        lambda m: pod_spec(m).update(serviceAccountName="cluster-admin-sa"),
        "deployment.yaml",
        "serviceAccountName: expected none",
    ),
    (
        "the-token-mounted",
        lambda m: pod_spec(m).update(automountServiceAccountToken=True),
        "deployment.yaml",
        "automountServiceAccountToken: expected false",
    ),
    (
        "apparmor-unconfined",
        lambda m: serving_container(m)["securityContext"].update(
            appArmorProfile={"type": "Unconfined"}
        ),
        "deployment.yaml",
        "securityContext.appArmorProfile: expected none",
    ),
    (
        "proc-unmasked",
        lambda m: serving_container(m)["securityContext"].update(procMount="Unmasked"),
        "deployment.yaml",
        "securityContext.procMount: expected none",
    ),
    (
        "pod-sysctls",
        lambda m: pod_spec(m)["securityContext"].update(
            sysctls=[{"name": "kernel.shm_rmid_forced", "value": "0"}]
        ),
        "deployment.yaml",
        "spec.template.spec.securityContext.sysctls: expected none",
    ),
    (
        "a-hostpath-volume",
        _host_path,
        "deployment.yaml",
        "volumes 'node': expected one of emptyDir, secret",
    ),
]


def test_the_rendered_manifests_pass(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Control: the renderer as committed, the check exits 0."""
    code, out = deploy_check(edited_project(tmp_path, monkeypatch, loaded, None), capsys)
    assert code == 0, out


@pytest.mark.parametrize(
    ("edit", "file", "named"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_a_workload_rendered_under_another_kind_is_refused(
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[Manifests], None],
    file: str,
    named: str,
) -> None:
    code, out = deploy_check(edited_project(tmp_path, monkeypatch, loaded, edit), capsys)
    assert code == 1, out
    assert f"{deploy.K8S_DIR}/{file}: " in out, out
    assert named in out, out
