"""Red team 11: a Deployment, re-rendered from an edited renderer, that runs another image or
hands the serving process settings through ``env`` the manifest check does not list.

Row 58 holds the Dockerfile to an allow-list because a pull request can edit the renderer and
re-render (no drift). The Deployment is still held to a deny-list (``command``, ``args``,
``PYTHON*``/``LD_*`` in ``env``, volumes over the working folder), so with the renderer edited:

- ``image:`` naming any other image passed: the pod runs an image no allow-list ever saw, so
  the Dockerfile's allow-list decides nothing;
- ``OPENSSL_CONF`` naming a file the image copies from the tree (``pipeline/...``) passed:
  OpenSSL reads it when ``hashlib`` is imported and ``dlopen``s the provider module it names
  (checked here: a constructor in such a module ran on ``import hashlib`` under this
  interpreter), code before ``gates`` reads the pin, as ``LD_PRELOAD`` would;
- ``GATES_TRUSTED_PROXIES`` set in the committed manifest passed (docs/serving.md says to set
  it at deploy time, never in the committed file): a pod network such as ``10.0.0.0/8`` lets
  every pod the NetworkPolicy admits pick its own rate-limit identity;
- ``GATES_SERVE_API_KEYS`` pointing into the image's copied tree (a key file the pull request
  commits under ``pipeline/``) instead of the operator's Secret passed: with
  ``[serve].require_api_key`` (the renderer then writes this variable itself, pointing at the
  Secret's mount) the author's own key is valid in production; without it the variable is
  unused, and still not the renderer's.

Each case runs the real ``ci deploy --check`` on files written by the edited renderer (the
drift check passes) and expects exit 1 and a line naming the key. Red before: exit 0 for all
four (they were strict xfails until ``gates.ci.deploy.container_env``, an allow-list of the
serving container's image and env written apart from the renderer, trusted-model row 67).
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
from tests.deploy_support import deploy_check, edited_project, pod_spec, serving_container


def _env(name: str, value: str) -> Callable[[dict[str, dict[str, Any]]], None]:
    return lambda m: serving_container(m)["env"].append({"name": name, "value": value})


# (id, edit of the rendered manifests, what the finding must name)
ATTACKS: list[tuple[str, Callable[[dict[str, dict[str, Any]]], None], str]] = [
    (
        "another-image",
        lambda m: serving_container(m).update(image="ghcr.io/attacker/serve@sha256:" + "b" * 64),
        "image",
    ),
    ("openssl-conf-loads-a-module", _env("OPENSSL_CONF", "/srv/gates/pipeline/zz.cnf"), "OPENSSL"),
    ("trusted-proxies-committed", _env("GATES_TRUSTED_PROXIES", "10.0.0.0/8"), "GATES_TRUSTED"),
    (
        "api-keys-from-the-tree",
        _env("GATES_SERVE_API_KEYS", "/srv/gates/pipeline/zz-keys"),
        "GATES_SERVE_API_KEYS",
    ),
]


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return load_policy(REPO / "policy.toml")


def test_the_rendered_manifests_pass(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Control: the renderer as committed, the check exits 0."""
    code, out = deploy_check(edited_project(tmp_path, monkeypatch, loaded, None), capsys)
    assert code == 0, out


@pytest.mark.parametrize(("edit", "named"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_a_deployment_edited_through_the_renderer_is_refused(
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, dict[str, Any]]], None],
    named: str,
) -> None:
    code, out = deploy_check(edited_project(tmp_path, monkeypatch, loaded, edit), capsys)
    assert code == 1, out
    assert f"{deploy.K8S_DIR}/deployment.yaml: " in out, out
    assert named in out, out


def _twin(name: str) -> Callable[[dict[str, dict[str, Any]]], None]:
    """A second container in the pod, a copy of the serving one under another name."""
    return lambda m: pod_spec(m)["containers"].append(
        {**copy.deepcopy(serving_container(m)), "name": name}
    )


# Found beside the four (red before: exit 0): another container in the pod, every setting of
# the serving one kept (its own image or command is then no allow-list's).
MORE: list[tuple[str, Callable[[dict[str, dict[str, Any]]], None], str]] = [
    (
        "an-init-container",
        lambda m: pod_spec(m).update(
            initContainers=[{**copy.deepcopy(serving_container(m)), "name": "init"}]
        ),
        "initContainers",
    ),
    ("a-second-container", _twin("two"), "spec.template.spec.containers: expected one"),
]


@pytest.mark.parametrize(("edit", "named"), [a[1:] for a in MORE], ids=[a[0] for a in MORE])
def test_another_container_or_variable_source_is_refused(
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, dict[str, Any]]], None],
    named: str,
) -> None:
    code, out = deploy_check(edited_project(tmp_path, monkeypatch, loaded, edit), capsys)
    assert code == 1, out
    assert f"{deploy.K8S_DIR}/deployment.yaml: " in out, out
    assert named in out, out


@pytest.fixture(scope="module")
def with_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, LoadedPolicy]:
    """The policy with ``[serve].require_api_key = true``: the renderer writes the key
    variable, pointing at the operator's Secret mounted read-only."""
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    assert text.count("require_api_key = false") == 1
    text = text.replace("require_api_key = false", "require_api_key = true")
    path = tmp_path_factory.mktemp("keys") / "policy.toml"
    path.write_text(text, encoding="utf-8")
    variant = load_policy(path)
    assert variant.policy.serve.require_api_key
    return text, variant


def _keys_var(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = serving_container(manifests)["env"][1]
    assert entry["name"] == "GATES_SERVE_API_KEYS"
    return entry


def _keys_volume(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    volume: dict[str, Any] = next(
        v for v in pod_spec(manifests)["volumes"] if v["name"] == "api-keys"
    )
    return volume


KEYS: list[tuple[str, Callable[[dict[str, dict[str, Any]]], None] | None, str]] = [
    ("control", None, ""),
    (
        "key-file-from-the-tree",
        lambda m: _keys_var(m).update(value="/srv/gates/pipeline/zz-keys"),
        "env GATES_SERVE_API_KEYS",
    ),
    (
        "key-folder-from-a-configmap",
        lambda m: _keys_volume(m).update(secret=None, configMap={"name": "keys"}),
        "volumeMounts /run/secrets/gates",
    ),
    (
        "key-file-mounted-over",
        lambda m: serving_container(m)["volumeMounts"].append(
            {"name": "tmp", "mountPath": "/run/secrets/gates/api-keys", "subPath": "k"}
        ),
        "volumeMounts /run/secrets/gates",
    ),
]


@pytest.mark.parametrize(("edit", "named"), [k[1:] for k in KEYS], ids=[k[0] for k in KEYS])
def test_the_api_key_file_is_the_operators_secret(
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_keys: tuple[str, LoadedPolicy],
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, dict[str, Any]]], None] | None,
    named: str,
) -> None:
    """With ``require_api_key``: the variable, the mount and the volume the renderer writes
    pass (control); each pointed elsewhere is refused (red before: exit 0)."""
    text, variant = with_keys
    root = edited_project(tmp_path, monkeypatch, variant, edit)
    (root / "policy.toml").write_text(text, encoding="utf-8")
    code, out = deploy_check(root, capsys)
    if edit is None:
        assert code == 0, out
        return
    assert code == 1, out
    assert f"{deploy.K8S_DIR}/deployment.yaml: container 'serve': {named}" in out, out


def test_without_a_policy_the_deployment_is_one_finding_not_a_pass(loaded: LoadedPolicy) -> None:
    """``security_findings`` without a policy cannot check the image and env: it says so."""
    text = deploy.render_deploy(loaded)[f"{deploy.K8S_DIR}/deployment.yaml"]
    path = f"{deploy.K8S_DIR}/deployment.yaml"
    assert deploy.security_findings(path, text, loaded) == []
    assert deploy.security_findings(path, text) == [
        f"{path}: container 'serve': expected a policy to check the image and env against, "
        "found none"
    ]
