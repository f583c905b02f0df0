"""Planted attack: a poisoned data batch reverted on the base branch, then brought back.

Red team 8 made a data approval name the lock it replaces (``base_lock_sha256``), so a
snapshot the base branch replaced, restored with its genuine approval, is refused. Left open: the
maintainers approve batch B over lock A and merge it, find B poisoned and revert it, approving
the revert (the revert pull request is refused otherwise). Re-approving A's data wrote A's lock
byte for byte, so the base branch held lock A again, and a later pull request bringing B back,
data, lock and genuine approval (signed over A), passed the approval check (red before).

Every lock ``data approve`` writes now carries a ``serial`` above the one on disk and the base
branch's: a lock's bytes never come back, and a pull request's changed lock must carry a serial
above the base branch's. The real history is built with git in a temporary folder: main, the
batch's pull request, the revert's and the attacker's, each checked by the data gate against a
clone of main as CI checks it out ($GATES_BASE_POLICY).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.keys_support import new_pem_pair

REPO = Path(__file__).resolve().parents[2]
DATA = "data/breast_cancer.csv"
LOCK = "data/breast_cancer.lock.json"
APPROVAL = "data/breast_cancer.lock.approval.json"
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    assert GIT is not None
    command = [GIT, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _approve(root: Path, pem: str, patch: pytest.MonkeyPatch, *, base: Path | None) -> str:
    """``data approve`` in ``root`` with carol's key; ``base``: the base branch's checkout."""
    from gates.approve import approve
    from pipeline.config import load_policy

    patch.setenv("GATES_APPROVER_KEY", pem)
    patch.delenv("GATES_APPROVED_LOCK", raising=False)
    if base is None:
        patch.delenv("GATES_BASE_POLICY", raising=False)
    else:
        patch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    out = io.StringIO()
    assert approve(load_policy(root / "policy.toml"), out=out) == 0, out.getvalue()
    return out.getvalue()


def _gate(root: Path, base: Path, patch: pytest.MonkeyPatch) -> list[Any]:
    """The data gate's approval findings on a pull request: ``base`` is main's clone."""
    from gates.data_integrity import _approver_findings
    from pipeline.config import load_policy

    patch.delenv("GATES_APPROVED_LOCK", raising=False)
    patch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    return _approver_findings(load_policy(root / "policy.toml"))


def _base(origin: Path, folder: Path) -> Path:
    """Main as CI checks it out for a pull request: a clone, apart from the request's files."""
    if folder.exists():
        shutil.rmtree(folder)
    _git(origin.parent, "clone", "-q", "-b", "main", str(origin), str(folder))
    return folder


def _merge(work: Path, branch: str) -> None:
    _git(work, "checkout", "-q", "main")
    _git(work, "merge", "-q", "--ff-only", branch)


def _drop_last_row(root: Path) -> None:
    lines = (root / DATA).read_text(encoding="utf-8").splitlines(keepends=True)
    (root / DATA).write_text("".join(lines[:-1]), encoding="utf-8")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Main: A approved; B (the last row dropped: the poisoned batch) approved over A and merged."""
    top = tmp_path_factory.mktemp("revert")
    work = top / "main"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    shutil.copy2(REPO / "policy.toml", work / "policy.toml")
    shutil.copytree(REPO / "data", work / "data")
    shutil.copytree(REPO / "keys", work / "keys")
    secret = top / "secret"
    secret.mkdir()
    carol = new_pem_pair(work, secret, "carol", "ed25519")
    with (work / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[roles]\napprovers = {carol = "keys/carol.pub"}\n')
    with pytest.MonkeyPatch.context() as patch:
        _approve(work, carol, patch, base=None)
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", "A: the approved snapshot")
        a = _git(work, "rev-parse", "HEAD").strip()
        # The batch's pull request, approved against main, checked, merged.
        _git(work, "checkout", "-q", "-b", "batch")
        _drop_last_row(work)
        base = _base(work, top / "base")
        _approve(work, carol, patch, base=base)
        _git(work, "commit", "-q", "-am", "B: a new batch (poisoned, found later)")
        assert _gate(work, base, patch) == []
        b = _git(work, "rev-parse", "HEAD").strip()
        _merge(work, "batch")
    return {"top": top, "work": work, "carol": carol, "a": a, "b": b}


@pytest.fixture
def repo(history: dict[str, Any], tmp_path: Path) -> Path:
    """A clone of main (B merged) for one test: its own branches, its own base clones."""
    clone = tmp_path / "repo"
    _git(tmp_path, "clone", "-q", str(history["work"]), str(clone))
    return clone


def _honest_revert(repo: Path, history: dict[str, Any], patch: pytest.MonkeyPatch) -> Path:
    """The maintainers revert B (git revert), approve the revert against main, and merge it;
    returns main's clone as CI takes it afterwards."""
    _git(repo, "checkout", "-q", "-b", "revert-b")
    _git(repo, "revert", "--no-edit", history["b"])
    base = _base(repo, repo.parent / "base-b")
    _approve(repo, history["carol"], patch, base=base)
    _git(repo, "commit", "-q", "-am", "approve the revert of B")
    assert _gate(repo, base, patch) == []
    _merge(repo, "revert-b")
    return _base(repo, repo.parent / "base-reverted")


def _bring_back_b(repo: Path, history: dict[str, Any]) -> None:
    """The attacker's pull request: B's data, lock, approval and checksums, every byte genuine."""
    _git(repo, "checkout", "-q", "-b", "attack")
    _git(repo, "checkout", history["b"], "--", "data")
    _git(repo, "commit", "-q", "-m", "bring the batch back")


def test_the_reverted_batch_brought_back_with_its_genuine_approval_is_refused(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _honest_revert(repo, history, monkeypatch)
    _bring_back_b(repo, history)
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found
    message = found[0].message
    assert APPROVAL in message
    assert "serial" in message
    assert "approve again" in message
    # The everyday cause: another data change merged first; the message says what to do.
    assert f"merge the base branch into this one, taking its {LOCK!r}, approval" in message


def test_the_real_data_verify_refuses_it_too(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _honest_revert(repo, history, monkeypatch)
    _bring_back_b(repo, history)
    from tests.conftest import run_module

    done = run_module(
        "gates", "data", "verify", cwd=repo, env={"GATES_BASE_POLICY": str(base / "policy.toml")}
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DATA003" in done.stdout
    assert "serial" in done.stdout
    assert "Traceback" not in done.stderr


def test_the_honest_revert_approved_against_main_passes_and_locks_above_b(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.data import read_lock

    b_serial = read_lock(repo / LOCK).serial
    base = _honest_revert(repo, history, monkeypatch)
    assert read_lock(base / LOCK).serial > b_serial
    assert (base / DATA).read_bytes() == subprocess.run(
        [GIT or "git", "show", f"{history['a']}:{DATA}"], cwd=repo, capture_output=True, check=True
    ).stdout
    # Main's own run (no base branch) passes the reverted lock too.
    from gates.data_integrity import _approver_findings
    from pipeline.config import load_policy

    monkeypatch.delenv("GATES_BASE_POLICY")
    assert _approver_findings(load_policy(base / "policy.toml")) == []


def test_the_revert_of_the_data_file_alone_approved_without_a_base_checkout_passes(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quickest honest revert: A's data file back, `data approve` on main's lock."""
    base = _base(repo, repo.parent / "base-b")
    _git(repo, "checkout", "-q", "-b", "revert-b")
    _git(repo, "checkout", history["a"], "--", DATA)
    _approve(repo, history["carol"], monkeypatch, base=None)
    _git(repo, "commit", "-q", "-am", "revert B's data")
    assert _gate(repo, base, monkeypatch) == []


def test_a_plain_git_revert_is_refused_until_approved(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's lock and approval put back as they were: a lock main replaced, refused."""
    base = _base(repo, repo.parent / "base-b")
    _git(repo, "checkout", "-q", "-b", "revert-b")
    _git(repo, "revert", "--no-edit", history["b"])
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found
    assert "approve again" in found[0].message


def test_a_revert_approved_without_the_base_is_refused_naming_the_way_out(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `git revert` the lock on disk is A's: approved without $GATES_BASE_POLICY, the new
    serial is not above main's, and the gate says how to approve it."""
    base = _base(repo, repo.parent / "base-b")
    _git(repo, "checkout", "-q", "-b", "revert-b")
    _git(repo, "revert", "--no-edit", history["b"])
    _approve(repo, history["carol"], monkeypatch, base=None)
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found
    assert "GATES_BASE_POLICY" in found[0].message


def _legacy(root: Path, pem: str, base: Path) -> None:
    """Rewrite the lock as data approve wrote it before serials and sign it over ``base``'s."""
    from pipeline.approval import sign_approval
    from pipeline.config import load_policy
    from pipeline.signing import private_key_from_pem

    lock = json.loads((root / LOCK).read_text(encoding="utf-8"))
    lock.pop("serial", None)
    (root / LOCK).write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    key = private_key_from_pem(pem.encode(), source="test", release=True, algorithm=None)
    sign_approval(load_policy(root / "policy.toml"), key, base=(base / LOCK).read_bytes())


def test_an_approval_from_before_serials_is_refused_with_one_message(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration: a changed lock without a serial, genuinely approved over main's, is refused
    with one message saying to approve again (nothing tells such a lock from a reverted one)."""
    base = _base(repo, repo.parent / "base-b")
    _git(repo, "checkout", "-q", "-b", "old-approval")
    _drop_last_row(repo)
    _approve(repo, history["carol"], monkeypatch, base=base)
    _legacy(repo, history["carol"], base)
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found
    assert "no serial" in found[0].message
    assert "approve again" in found[0].message


def test_a_base_lock_from_before_serials_takes_a_new_approval(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration, the other side: main's lock has no serial; a new approval over it passes, and
    the unchanged lock still passes."""
    _legacy(repo, history["carol"], repo)  # main's lock and approval as the old code wrote them
    _git(repo, "commit", "-q", "-am", "main as before serials")
    base = _base(repo, repo.parent / "base-legacy")
    _git(repo, "checkout", "-q", "-b", "batch-c")
    assert _gate(repo, base, monkeypatch) == []
    _drop_last_row(repo)
    _approve(repo, history["carol"], monkeypatch, base=base)
    assert _gate(repo, base, monkeypatch) == []


def test_a_serial_raised_by_hand_breaks_the_approval(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serial is in the lock's bytes, which the approval signs."""
    base = _honest_revert(repo, history, monkeypatch)
    _bring_back_b(repo, history)
    lock = json.loads((repo / LOCK).read_text(encoding="utf-8"))
    lock["serial"] = 1000
    (repo / LOCK).write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found


@pytest.mark.parametrize(
    "value", ["true", "0", "-3", '"7"', "2.0", "1e400", "null", "[]", '1, "serial": 9']
)
def test_a_serial_that_is_not_a_whole_number_above_zero_is_a_malformed_lock(
    value: str, tmp_path: Path
) -> None:
    from pipeline.data import read_lock
    from pipeline.errors import DataError

    lock = json.loads((REPO / LOCK).read_text(encoding="utf-8"))
    text = json.dumps(lock, sort_keys=True)[:-1] + f', "serial": {value}}}'
    (tmp_path / "x.lock.json").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=r"serial|1e400"):  # 1e400: no double, not JSON here
        read_lock(tmp_path / "x.lock.json")


def test_a_base_lock_whose_serial_cannot_be_read_fails_closed(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base branch's lock is trusted, but a serial that is not a whole number never reads
    as 0 ("nothing to go above"): the gate and approve both refuse, naming it."""
    from pipeline.errors import DataError

    base = _base(repo, repo.parent / "base-bad")
    lock = json.loads((base / LOCK).read_text(encoding="utf-8"))
    lock["serial"] = "7"
    (base / LOCK).write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _git(repo, "checkout", "-q", "-b", "batch-c")
    _drop_last_row(repo)
    with pytest.raises(DataError, match="base branch's approved lock: serial"):
        _approve(repo, history["carol"], monkeypatch, base=base)
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found
    assert "serial" in found[0].message


def test_approve_over_a_corrupt_lock_on_disk_still_writes_one(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a base branch named, the lock on disk is read leniently, as before serials."""
    from pipeline.data import read_lock

    (repo / LOCK).write_text('{"serial": "x"}\n', encoding="utf-8")
    _approve(repo, history["carol"], monkeypatch, base=None)
    assert read_lock(repo / LOCK).serial == 1
