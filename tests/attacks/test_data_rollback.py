"""Planted attack: a data snapshot approved once, superseded on the base branch, restored.

A data approval (``pipeline.approval``) is an approver's signature over the lock's name and
bytes. The base branch approved snapshot 1, then replaced it with snapshot 2 (here: one row
removed, as when a poisoned row is found) and approved that. A pull request that commits
snapshot 1's data, lock and approval again, every byte genuine, passed the approval check on
the base branch's approvers (red before): nothing said the approval was given against another
base than the one the pull request targets. The policy approval binds the base branch's values
for the same reason (row 23).

The approval now names the lock it was given over (the base branch's approved lock when
``$GATES_BASE_POLICY`` or ``$GATES_APPROVED_LOCK`` names one, else the lock on disk before
``data approve`` rewrote it), and with a trusted lock the data gate takes a changed lock only
when its approval was given over that trusted lock.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.keys_support import new_pem_pair

REPO = Path(__file__).resolve().parents[2]
DATA = "data/breast_cancer.csv"
LOCK = "data/breast_cancer.lock.json"
APPROVAL = "data/breast_cancer.lock.approval.json"
SNAPSHOT = (DATA, LOCK, APPROVAL, "data/SHA256SUMS")


def _approve(root: Path, pem: str, patch: pytest.MonkeyPatch) -> str:
    from gates.approve import approve
    from pipeline.config import load_policy

    patch.setenv("GATES_APPROVER_KEY", pem)
    out = io.StringIO()
    assert approve(load_policy(root / "policy.toml"), out=out) == 0, out.getvalue()
    return out.getvalue()


def _findings(root: Path) -> list[Any]:
    from gates.data_integrity import _approver_findings
    from pipeline.config import load_policy

    return _approver_findings(load_policy(root / "policy.toml"))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The base branch (snapshot 2 approved) and a saved copy of snapshot 1, both carol's."""
    top = tmp_path_factory.mktemp("rollback")
    base = top / "base"
    base.mkdir()
    shutil.copy2(REPO / "policy.toml", base / "policy.toml")
    shutil.copytree(REPO / "data", base / "data")
    shutil.copytree(REPO / "keys", base / "keys")
    secret = top / "secret"
    secret.mkdir()
    carol = new_pem_pair(base, secret, "carol", "ed25519")
    with (base / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[roles]\napprovers = {carol = "keys/carol.pub"}\n')
    old = top / "snapshot-1"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("GATES_BASE_POLICY", raising=False)
        patch.delenv("GATES_APPROVED_LOCK", raising=False)
        _approve(base, carol, patch)
        for name in SNAPSHOT:
            (old / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(base / name, old / name)
        # Snapshot 2: the last row removed (a poisoned row found), approved by carol again.
        lines = (base / DATA).read_text(encoding="utf-8").splitlines(keepends=True)
        (base / DATA).write_text("".join(lines[:-1]), encoding="utf-8")
        _approve(base, carol, patch)
    return base, old, carol


@pytest.fixture
def pr(history: tuple[Path, Path, str], tmp_path: Path, monkeypatch: Any) -> Path:
    """The pull request's checkout (a copy of the base), with $GATES_BASE_POLICY set."""
    base, _, _ = history
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    monkeypatch.delenv("GATES_APPROVED_LOCK", raising=False)
    return Path(shutil.copytree(base, tmp_path / "pr"))


def test_the_base_branchs_own_approval_passes(pr: Path) -> None:
    assert _findings(pr) == []


def test_a_new_snapshot_approved_against_the_base_passes(
    pr: Path, history: tuple[Path, Path, str], monkeypatch: Any
) -> None:
    lines = (pr / DATA).read_text(encoding="utf-8").splitlines(keepends=True)
    (pr / DATA).write_text("".join(lines[:-1]), encoding="utf-8")
    _approve(pr, history[2], monkeypatch)
    assert _findings(pr) == []


def test_a_superseded_snapshot_restored_with_its_genuine_approval_is_refused(
    pr: Path, history: tuple[Path, Path, str]
) -> None:
    from pipeline.config import load_policy
    from pipeline.data import verify_lock

    _, old, _ = history
    for name in SNAPSHOT:
        shutil.copy2(old / name, pr / name)
    assert verify_lock(load_policy(pr / "policy.toml")) == []  # every byte is genuine
    found = _findings(pr)
    assert [f.rule for f in found] == ["DATA003"]
    message = found[0].message
    assert APPROVAL in message
    assert "base" in message
    assert "approve again" in message


def test_the_same_restore_is_refused_against_an_approved_lock_named_by_ci(
    pr: Path, history: tuple[Path, Path, str], monkeypatch: Any
) -> None:
    base, old, _ = history
    monkeypatch.delenv("GATES_BASE_POLICY")
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(base / LOCK))
    assert _findings(pr) == []  # the control: the base's own snapshot
    for name in SNAPSHOT:
        shutil.copy2(old / name, pr / name)
    assert [f.rule for f in _findings(pr)] == ["DATA003"]
