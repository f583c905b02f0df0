"""The serving image's registry read under the pod's pin, never unpinned.

The image copies ``registry/`` and has no ``.git``: the tracked-registry check cannot run in
it, and ``serve --champion`` read the copied audit log with no pin at all. An image built from
a registry copy older than a revocation (an earlier image tag rolled out again, or one built
from a checkout whose registry stops before the ``revoke`` line) served the revoked champion.
The generated Deployment now takes ``$GATES_REGISTRY_HEAD`` from a Secret (not optional) and
the entrypoint is ``serve --champion --require-pin``, which refuses to start without a pin.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.rollback_support import Promoted, build, run_cli
from tests.serve_support import cli_server

HEAD_ENV = "GATES_REGISTRY_HEAD"
ENTRYPOINT = ("serve", "--champion", "--require-pin")


@pytest.fixture(scope="module")
def managed_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Promoted:
    return build(signed_chain, tmp_path_factory.mktemp("registry-pod-pin"), roles=True)


def _revoked(project: Promoted, monkeypatch: Any, capsys: Any) -> str:
    """Revoke the champion as release manager alice; the head the command printed."""
    monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems["alice"])
    code, out = run_cli(project, monkeypatch, capsys, "revoke", project.versions[-1])
    monkeypatch.delenv("GATES_PROMOTER_KEY")
    assert code == 0, out
    return next(line.split()[2] for line in out.splitlines() if line.startswith("registry head:"))


def test_an_image_whose_registry_predates_a_revocation_does_not_serve_under_the_pods_pin(
    managed_registry, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv(HEAD_ENV, raising=False)
    project = managed_registry.copy(tmp_path / "p")
    image = tmp_path / "image-registry"
    shutil.copytree(project.root / "registry", image)  # the registry an older image copied
    head = _revoked(project, monkeypatch, capsys)
    shutil.rmtree(project.root / "registry")
    shutil.copytree(image, project.root / "registry")

    # Unpinned, as the pod was: the revoked version is the champion the image serves.
    assert project.registry().champion().version == project.versions[-1]

    monkeypatch.setenv(HEAD_ENV, head)  # the Secret, updated after the revoke
    code, out = run_cli(project, monkeypatch, capsys, *ENTRYPOINT)
    assert code == 2, out
    assert "the log was cut or an older registry put back" in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "case",
    [
        (None, "is unset or empty"),
        ("", "is unset or empty"),
        ("  ", "is unset or empty"),
        ("0:" + "0" * 64, "pins no line"),
        ("00:" + "0" * 64, "pins no line"),
    ],
    ids=["unset", "empty", "whitespace", "genesis", "genesis-00"],
)
def test_the_entrypoint_refuses_to_serve_without_a_pin(
    case, managed_registry, tmp_path, monkeypatch, capsys
):
    pinned, expected = case
    project = managed_registry.copy(tmp_path / "p")
    if pinned is None:
        monkeypatch.delenv(HEAD_ENV, raising=False)
    else:
        monkeypatch.setenv(HEAD_ENV, pinned)
    code, out = run_cli(project, monkeypatch, capsys, *ENTRYPOINT)
    assert code == 2, out
    assert f"error: serve --require-pin: ${HEAD_ENV} {expected}" in out, out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


def test_require_pin_without_champion_is_a_usage_error(
    managed_registry, tmp_path, monkeypatch, capsys
):
    project = managed_registry.copy(tmp_path / "p")
    code, out = run_cli(project, monkeypatch, capsys, "serve", "--require-pin")
    assert code == 2, out
    assert "expected --champion" in out, out


def test_under_the_current_head_the_entrypoint_serves(
    managed_registry, tmp_path, monkeypatch, capsys
):
    """The control: the pod's command, a real server on loopback, under the deploy's head."""
    project = managed_registry.copy(tmp_path / "p")
    monkeypatch.delenv(HEAD_ENV, raising=False)
    code, head = run_cli(project, monkeypatch, capsys, "registry", "head")
    assert code == 0, head
    monkeypatch.setenv(HEAD_ENV, head.strip())
    with cli_server(project.root, *ENTRYPOINT[1:]) as server:
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
