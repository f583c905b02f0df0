"""A registry folder the pull request commits (``git add -f`` past ``.gitignore``), refused.

The registry is CI's own: the deploy job writes it, its head is pinned outside it. The gate jobs
have none, so a registry a pull request commits was read as the champion: a genuine signed
version revoked since, with a log that stops before its revocation, became the model the cv and
risk gates compared the candidate with (a weaker bar), and the deploy job's checkout held those
files where the real registry is expected, copied into the serving image. Every reader refuses a
registry folder in which git tracks a file, naming the folder and the file.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.git_support import git as _git
from tests.rollback_support import Promoted, build, run_cli

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

HEAD_ENV = "GATES_REGISTRY_HEAD"
REFUSED = "refused: git tracks registry/"


@pytest.fixture(scope="module")
def managed_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Promoted:
    return build(signed_chain, tmp_path_factory.mktemp("registry-tracked"), roles=True)


def _context(project: Promoted) -> Any:
    from gates.base import RunContext
    from pipeline.config import load_policy

    policy = load_policy(project.root / "policy.toml")
    return RunContext(policy=policy, run_id="r", reports_dir=project.root / "reports")


def _revoked_then_cut(project: Promoted, monkeypatch: Any, capsys: Any) -> None:
    """The champion revoked (a leaked or weak model), then the revoke line cut from the log:
    the registry a pull request commits, every byte of it genuine and signed but the last."""
    monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems["alice"])
    code, out = run_cli(project, monkeypatch, capsys, "revoke", project.versions[-1])
    monkeypatch.delenv("GATES_PROMOTER_KEY")
    assert code == 0, out
    log = project.root / "registry/promotions.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))


def _checkout(project: Promoted) -> None:
    """The project as a git checkout whose .gitignore leaves the registry out, as the repo's."""
    with (project.root / ".gitignore").open("a", encoding="utf-8") as handle:
        handle.write("\n/registry/\n/reports/\n/artifacts/\n")
    _git(project.root, "init", "-q")
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-qm", "base")


def _committed(project: Promoted, *paths: str) -> None:
    _checkout(project)
    _git(project.root, "add", "-f", *paths)
    _git(project.root, "commit", "-qm", "pull request", "--allow-empty")


def test_a_committed_registry_with_a_revoked_champion_is_refused_by_every_reader(
    managed_registry, tmp_path, monkeypatch, capsys
):
    from gates.base import GateError
    from gates.cv_threshold import load_champion
    from gates.feedback.quarantine import champion_model
    from gates.release import DeployRefused, deploy
    from gates.service.server import verified_model
    from pipeline.attestation import AttestationError
    from pipeline.config import load_policy
    from pipeline.errors import DataError

    monkeypatch.delenv(HEAD_ENV, raising=False)  # the gate jobs pin nothing
    project = managed_registry.copy(tmp_path / "p")
    _revoked_then_cut(project, monkeypatch, capsys)
    # Outside git nothing tells: the cut log names the revoked version as the champion.
    found = load_champion(_context(project))
    assert found is not None
    assert found[0].version == project.versions[-1]

    _committed(project, "registry")
    with pytest.raises(GateError, match=REFUSED) as refused:
        load_champion(_context(project))  # the cv gate, and the risk gate through it
    assert "[release].registry_dir" in str(refused.value)
    assert str(project.root / "registry") in str(refused.value)
    policy = load_policy(project.root / "policy.toml")
    with pytest.raises(DataError, match=REFUSED):
        champion_model(policy)  # the feedback screen's champion
    with pytest.raises(AttestationError, match=REFUSED):
        verified_model(policy, champion=True, key=None)  # serve --champion
    with pytest.raises(DeployRefused, match=REFUSED):
        deploy(policy, reports_dir=project.root / "reports")
    for args in (
        ("verify", "--champion"),
        ("registry", "head"),  # the deploy job's first step, before the image is built
        ("revoke", project.versions[0]),
        ("rollback",),
    ):
        monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems["alice"])
        code, out = run_cli(project, monkeypatch, capsys, *args)
        assert code == 1, (args, out)
        assert REFUSED in out, (args, out)
        assert "Traceback" not in out, (args, out)


def test_the_champion_gates_cache_key_holds_the_trusted_keys_versions_and_tracked_state(
    managed_registry, tmp_path, monkeypatch
):
    """The cv and risk gates' cached outcome was keyed on the pointer, the log and the pin, not
    on the trusted key nor the version files the champion is verified and loaded from: another
    ``keys/release.pub`` (a rotated key under which the champion no longer verifies) or a
    version's files changed reused a cached PASS where a fresh run errors; likewise the same
    registry bytes once committed, which every reader now refuses."""
    from gates.cache import tree_digest
    from gates.registry import spec

    monkeypatch.delenv(HEAD_ENV, raising=False)
    project = managed_registry.copy(tmp_path / "p")
    _checkout(project)
    context = _context(project)

    def material(name: str) -> str:
        reads = spec(name).load().reads(context)
        return repr((tree_digest(context.root, reads.files), sorted(reads.external.items())))

    envelopes = sorted((project.root / "registry/versions").rglob("*.intoto.json"))
    assert envelopes
    changes = {
        "trusted key": lambda: (project.root / "keys/release.pub").write_bytes(
            (project.root / "keys/bob.pub").read_bytes()
        ),
        "version file": lambda: envelopes[-1].write_bytes(envelopes[-1].read_bytes() + b" "),
        "registry committed": lambda: (
            _git(project.root, "add", "-f", "registry"),
            _git(project.root, "commit", "-qm", "pull request"),
        ),
    }
    for change, apply in changes.items():
        before = {name: material(name) for name in ("cv", "risk")}
        apply()
        for name in ("cv", "risk"):
            assert material(name) != before[name], (change, name)


def test_a_registry_reached_through_a_committed_symlink_is_refused(
    managed_registry, tmp_path, monkeypatch, capsys
):
    # The folder [release].registry_dir names is a symlink the tree holds, to a committed copy
    # elsewhere (or outside the checkout): the files still come from the commit.
    monkeypatch.delenv(HEAD_ENV, raising=False)
    project = managed_registry.copy(tmp_path / "p")
    (project.root / "vendor").mkdir()
    (project.root / "registry").rename(project.root / "vendor/registry")
    os.symlink("vendor/registry", project.root / "registry")
    _committed(project, "registry", "vendor")
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 1, out
    assert "refused: git tracks" in out, out
    assert "Traceback" not in out, out


def test_an_untracked_registry_in_a_checkout_is_read(
    managed_registry, tmp_path, monkeypatch, capsys
):
    # CI's own registry beside the checkout, ignored by git: read as before.
    monkeypatch.delenv(HEAD_ENV, raising=False)
    project = managed_registry.copy(tmp_path / "p")
    _checkout(project)
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 0, out


@pytest.mark.parametrize("dot_git", ["folder", "file"])
def test_a_committed_registry_is_refused_when_git_cannot_be_run(
    dot_git, managed_registry, tmp_path, monkeypatch, capsys
):
    # A runner image without git (or git not on the job's PATH) over a checkout that has its
    # .git: "git not found" was taken for "outside a git work tree", nothing was checked and
    # the committed registry was read (the revoked champion). A .git file (a worktree's, a
    # submodule's) counts as a folder does.
    from gates.base import GateError
    from gates.cv_threshold import load_champion

    monkeypatch.delenv(HEAD_ENV, raising=False)
    project = managed_registry.copy(tmp_path / "p")
    _revoked_then_cut(project, monkeypatch, capsys)
    _committed(project, "registry")
    if dot_git == "file":
        (project.root / ".git").rename(tmp_path / "git-dir")
        (project.root / ".git").write_text(f"gitdir: {tmp_path / 'git-dir'}\n", encoding="utf-8")
    no_git = tmp_path / "bin-without-git"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))
    assert shutil.which("git") is None
    expected = f"{project.root} holds .git but git could not be run: git not found on PATH"
    with pytest.raises(GateError, match=re.escape(expected)):
        load_champion(_context(project))
    for args in (("verify", "--champion"), ("registry", "head")):
        code, out = run_cli(project, monkeypatch, capsys, *args)
        assert code == 1, (args, out)
        assert expected in out, (args, out)
        assert "install git" in out, (args, out)
        assert "Traceback" not in out, (args, out)

    # The control: no .git at all (an image, an export) is outside git; nothing can be told.
    (project.root / ".git").unlink() if dot_git == "file" else shutil.rmtree(project.root / ".git")
    found = load_champion(_context(project))
    assert found is not None
    assert found[0].version == project.versions[-1]
