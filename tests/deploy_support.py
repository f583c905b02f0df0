"""Deploy manifests a pull request re-renders from an edited renderer, and the real check on them.

Row 58: a pull request can edit ``gates/ci/deploy.py``'s renderer and commit what it writes, so
the drift check passes. ``edit_manifests`` (the built manifests) and ``edit_deployment_text``
(the rendered ``deployment.yaml``) stand in for such an edit; ``render_into`` writes what the
renderer then renders, asserting no drift; ``deploy_check`` runs ``ci deploy --check`` on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gates._cli import main
from gates.ci import deploy
from pipeline.config import LoadedPolicy
from tests.project_support import REPO

Manifests = dict[str, dict[str, Any]]


def pod_spec(manifests: Manifests) -> dict[str, Any]:
    """The Deployment's pod spec."""
    spec: dict[str, Any] = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    return spec


def serving_container(manifests: Manifests) -> dict[str, Any]:
    """The pod's first container (the serving one, as rendered)."""
    container: dict[str, Any] = pod_spec(manifests)["containers"][0]
    return container


def edit_manifests(
    monkeypatch: pytest.MonkeyPatch, edit: Callable[[Manifests], None] | None
) -> None:
    """The renderer edited: ``edit`` (none: as committed) applied to every manifest it builds."""
    original = deploy._manifests

    def edited(policy: LoadedPolicy) -> Manifests:
        manifests = original(policy)
        if edit is not None:
            edit(manifests)
        return manifests

    monkeypatch.setattr(deploy, "_manifests", edited)


def edit_deployment_text(monkeypatch: pytest.MonkeyPatch, edit: Callable[[str], str]) -> None:
    """The renderer edited to write ``edit``'s text for deployment.yaml (which it must change)."""
    original = deploy.render_deploy
    name = f"{deploy.K8S_DIR}/deployment.yaml"

    def edited(policy: LoadedPolicy) -> dict[str, str]:
        files = original(policy)
        changed = edit(files[name])
        assert changed != files[name]
        return {**files, name: changed}

    monkeypatch.setattr(deploy, "render_deploy", edited)


def render_into(root: Path, loaded: LoadedPolicy) -> Path:
    """The repository's policy.toml and what the renderer renders for ``loaded`` in ``root``;
    the drift check passes (asserted)."""
    shutil.copy(REPO / "policy.toml", root / "policy.toml")
    for relative, text in deploy.render_deploy(loaded).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(text.encode("utf-8"))
    assert deploy.check_deploy(root, loaded) == ()
    return root


def edited_project(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    edit: Callable[[Manifests], None] | None,
) -> Path:
    """``render_into`` with the renderer edited by ``edit_manifests``: no drift."""
    edit_manifests(monkeypatch, edit)
    return render_into(root, loaded)


def deploy_check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The real ``ci deploy --check --root root``: its exit code and what it printed."""
    capsys.readouterr()
    code = main(["ci", "deploy", "--check", "--root", str(root)])
    return code, capsys.readouterr().out
