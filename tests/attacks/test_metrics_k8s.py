"""The metrics token in the generated Kubernetes manifest (``[serve.deploy].metrics_token``).

Without a token ``/metrics`` answers loopback callers only (red team 13), and in a cluster
Prometheus scrapes the pod's address, never its loopback: the rendered Deployment gave it no
way in, and a hand-edited one (a Secret mounted, the variable set) was refused by ``ci deploy
--check``. With ``metrics_token = true`` the renderer mounts the operator's Secret
``<name>-metrics-keys`` read-only at ``/run/secrets/gates-metrics`` and sets
``$GATES_SERVE_METRICS_KEYS`` to its file, as it does for the API-key file; the check accepts
exactly that, and refuses the Secret swapped for a hostPath, a ConfigMap, a literal path the
pull request chose, a mount over the file, or the variable without the policy key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gates._cli import main
from gates.ci import deploy
from gates.service.auth import METRICS_ENV, hash_line
from pipeline.config import LoadedPolicy, load_policy
from tests.conftest import REPO
from tests.release_support import copy_project
from tests.serve_support import in_process

DEPLOYMENT = f"{deploy.K8S_DIR}/deployment.yaml"
SCHEMA = REPO / "tests/assets/k8s/v1.34.0-standalone-strict/deployment-apps-v1.json"
TOKEN = "prometheus-token-" + "p" * 24
FIGURE = "gates_serve_predictions_total"


def _policy_text(on: bool) -> str:
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    assert "[serve.deploy]" not in text
    return text + f"\n[serve.deploy]\nmetrics_token = {'true' if on else 'false'}\n"


@pytest.fixture(scope="module")
def with_token(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, LoadedPolicy]:
    text = _policy_text(on=True)
    path = tmp_path_factory.mktemp("metrics-token") / "policy.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_policy(path)
    assert loaded.policy.serve.deploy.metrics_token
    return text, loaded


def _container(document: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = document["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_rendered_deployment_mounts_the_token_secret_read_only(
    tmp_path: Path, with_token: tuple[str, LoadedPolicy]
) -> None:
    """The variable names a file inside a read-only mount of the Secret
    ``<name>-metrics-keys``; the manifest validates against the strict Kubernetes schema and
    has no finding. Before: no such key (the policy refused it) and nothing mounted."""
    _, loaded = with_token
    text = deploy.render_deploy(loaded)[DEPLOYMENT]
    document = yaml.safe_load(text)
    container = _container(document)
    env = {e["name"]: e for e in container["env"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in document["spec"]["template"]["spec"]["volumes"]}
    assert env[METRICS_ENV] == {"name": METRICS_ENV, "value": "/run/secrets/gates-metrics/keys"}
    assert mounts["metrics-keys"] == {
        "name": "metrics-keys",
        "mountPath": "/run/secrets/gates-metrics",
        "readOnly": True,
    }
    assert volumes["metrics-keys"] == {
        "name": "metrics-keys",
        "secret": {"secretName": "gates-serve-model-metrics-keys"},
    }
    assert env[METRICS_ENV]["value"].startswith(mounts["metrics-keys"]["mountPath"] + "/")
    assert deploy.security_findings(DEPLOYMENT, text, loaded) == []
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    schema = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout
    # Off (the default): nothing of it is rendered.
    off = yaml.safe_load(deploy.render_deploy(load_policy(REPO / "policy.toml"))[DEPLOYMENT])
    assert METRICS_ENV not in {e["name"] for e in _container(off)["env"]}


def _pod(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    return pod


def _serve(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _pod(manifests)["containers"][0]
    return container


def _var(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = next(e for e in _serve(manifests)["env"] if e["name"] == METRICS_ENV)
    return entry


def _volume(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        v for v in _pod(manifests)["volumes"] if v["name"] == "metrics-keys"
    )
    return found


def _swap(**source: Any) -> Callable[[dict[str, dict[str, Any]]], None]:
    def edit(m: dict[str, dict[str, Any]]) -> None:
        volume = _volume(m)
        volume.pop("secret")
        volume.update(source)

    return edit


# (id, edit of the rendered manifests, what the finding names); the policy's key is on.
SWAPS: list[tuple[str, Callable[[dict[str, dict[str, Any]]], None] | None, str]] = [
    ("control", None, ""),
    (
        "secret-swapped-for-a-hostpath",
        _swap(hostPath={"path": "/var/lib/known-token", "type": "Directory"}),
        "volumeMounts /run/secrets/gates-metrics",
    ),
    (
        "secret-swapped-for-a-configmap",
        _swap(configMap={"name": "known-token"}),
        "volumeMounts /run/secrets/gates-metrics",
    ),
    (
        "another-secret",
        lambda m: _volume(m).update(secret={"secretName": "committed-token"}),
        "volumeMounts /run/secrets/gates-metrics",
    ),
    (
        "writable-mount",
        lambda m: next(x for x in _serve(m)["volumeMounts"] if x["name"] == "metrics-keys").update(
            readOnly=False
        ),
        "volumeMounts /run/secrets/gates-metrics",
    ),
    (
        "literal-path-into-the-tree",
        lambda m: _var(m).update(value="/srv/gates/pipeline/zz-token"),
        f"env {METRICS_ENV}",
    ),
    (
        "literal-path-into-tmp",
        lambda m: _var(m).update(value="/tmp/keys"),  # noqa: S108 - the attack's value
        f"env {METRICS_ENV}",
    ),
    (
        "literal-value-instead-of-a-path",
        lambda m: _var(m).update(value=hash_line("prometheus", TOKEN)),
        f"env {METRICS_ENV}",
    ),
    (
        "file-mounted-over",
        lambda m: _serve(m)["volumeMounts"].append(
            {"name": "tmp", "mountPath": "/run/secrets/gates-metrics/keys", "subPath": "k"}
        ),
        "volumeMounts /run/secrets/gates-metrics",
    ),
]


def _project(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    loaded: LoadedPolicy,
    edit: Callable[[dict[str, dict[str, Any]]], None] | None,
) -> Path:
    """The renderer edited to write ``edit``'s manifests, re-rendered: no drift."""
    (root / "policy.toml").write_text(text, encoding="utf-8")
    original = deploy._manifests

    def edited(policy: LoadedPolicy) -> dict[str, dict[str, Any]]:
        manifests = original(policy)
        if edit is not None:
            edit(manifests)
        return manifests

    monkeypatch.setattr(deploy, "_manifests", edited)
    for relative, body in deploy.render_deploy(loaded).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body.encode("utf-8"))
    assert deploy.check_deploy(root, loaded) == ()
    return root


def _check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["ci", "deploy", "--check", "--root", str(root)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(("edit", "named"), [s[1:] for s in SWAPS], ids=[s[0] for s in SWAPS])
def test_ci_deploy_check_accepts_only_the_operators_secret(
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_token: tuple[str, LoadedPolicy],
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, dict[str, Any]]], None] | None,
    named: str,
) -> None:
    """The real ``ci deploy --check`` on files an edited renderer wrote (no drift): the
    rendered mount passes, each swap exits 1 naming it. Before: the control itself failed
    (no such policy key), so nothing here could pass."""
    text, loaded = with_token
    code, out = _check(_project(tmp_path, monkeypatch, text, loaded, edit), capsys)
    if edit is None:
        assert code == 0, out
        return
    assert code == 1, out
    assert f"{DEPLOYMENT}: container 'serve': {named}" in out, out


def test_the_variable_without_the_policy_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``metrics_token = false`` and a manifest that mounts a Secret and sets the variable
    anyway (what the on-policy renders): refused, the variable named."""
    on = load_policy(_write(tmp_path / "on", _policy_text(on=True)))
    rendered = deploy._manifests(on)
    off_text = _policy_text(on=False)
    off = load_policy(_write(tmp_path / "off", off_text))
    monkeypatch.setattr(deploy, "_manifests", lambda _policy: rendered)
    (tmp_path / "root").mkdir()
    root = _project(tmp_path / "root", monkeypatch, off_text, off, None)
    code, out = _check(root, capsys)
    assert code == 1, out
    assert f"{DEPLOYMENT}: container 'serve': env {METRICS_ENV}: expected only" in out, out


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.toml").write_text(text, encoding="utf-8")
    return folder / "policy.toml"


@pytest.fixture(scope="module")
def root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("metrics-k8s") / "project")


def _kubelet_secret(base: Path, mount: str, files: dict[str, str]) -> Path:
    """A Secret volume as the kubelet lays it out at ``mount`` under ``base``: the files in a
    timestamped folder, ``..data`` a symlink to it, each key a symlink through ``..data``."""
    folder = base / mount.lstrip("/")
    stamped = folder / "..2026_12_07_04_00_00.000000001"
    stamped.mkdir(parents=True)
    (folder / "..data").symlink_to(stamped.name)
    for key, content in files.items():
        (stamped / key).write_text(content, encoding="utf-8")
        (folder / key).symlink_to(f"..data/{key}")
    return folder


def test_a_server_reads_the_token_from_the_rendered_path(
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_token: tuple[str, LoadedPolicy],
) -> None:
    """The Secret's file where the rendered Deployment mounts it (under a temporary root, a
    kubelet-shaped volume), the variable the rendered value (re-rooted): the real service on
    loopback answers ``/metrics`` with the token (200, the figures) and refuses it without
    (401, no figures: a loopback caller too, once a token is set)."""
    _, loaded = with_token
    container = _container(yaml.safe_load(deploy.render_deploy(loaded)[DEPLOYMENT]))
    value = next(e["value"] for e in container["env"] if e["name"] == METRICS_ENV)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "metrics-keys")
    key = os.path.relpath(value, mount["mountPath"])
    _kubelet_secret(tmp_path, mount["mountPath"], {key: hash_line("prometheus", TOKEN) + "\n"})
    monkeypatch.setenv(METRICS_ENV, str(tmp_path / value.lstrip("/")))
    with (
        in_process(root, **{"rate_limit.requests": 10_000}) as (base, _, _),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert scraped.status_code == 200, scraped.text[:300]
    assert FIGURE in scraped.text
    for response in (refused, wrong):
        assert response.status_code == 401, response.text[:300]
        assert FIGURE not in response.text
