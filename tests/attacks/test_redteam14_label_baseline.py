"""Red team 14: a pull request's own reference profile carried into the approved lock (row 90).

The data gate judges a pull request against the base branch's approved lock (``$GATES_BASE_POLICY``
or ``$GATES_APPROVED_LOCK``), its reference profile included: DATA070's baseline (cleanlab's
share on the approved snapshot, ``label_rates.cleanlab``), drift and range. But ``data approve``,
run by the approver in the pull request's checkout with that variable set (docs/keys.md), kept
the reference profile of the lock *on disk*, the pull request's file: a lock edited to record
``label_rates: {"cleanlab": 0.99}`` (DATA070 then never fails: no count is significant over 99%)
was approved, signed and merged with it, and the report showed no change. Now, with a trusted
lock named, approve builds on that lock's entry and says when the lock on disk's reference
differs.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = "data/breast_cancer.lock.json"
KEY = "breast_cancer.csv"


def _copy(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return root


def _reference(root: Path) -> dict[str, object]:
    document = json.loads((root / LOCK).read_text(encoding="utf-8"))
    reference: dict[str, object] = document["files"][KEY]["reference"]
    return reference


def _approve(root: Path) -> str:
    from gates.approve import approve
    from pipeline.config import load_policy

    out = io.StringIO()
    assert approve(load_policy(root / "policy.toml"), out=out) == 0, out.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy(tmp_path_factory.mktemp("rt14-base") / "base")


def _edited(tmp_path: Path) -> Path:
    """The pull request: the same data, its lock's reference claiming cleanlab flags 99%."""
    pr = _copy(tmp_path / "pr")
    document = json.loads((pr / LOCK).read_text(encoding="utf-8"))
    document["files"][KEY]["reference"]["label_rates"] = {"cleanlab": 0.99}
    (pr / LOCK).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return pr


def test_approve_keeps_the_approved_locks_reference_not_the_pull_requests(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red before: the approved lock carried ``label_rates.cleanlab`` 0.99 from the pull
    request's edit, and nothing in the output said so."""
    pr = _edited(tmp_path)
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(base / LOCK))
    out = _approve(pr)
    reference = _reference(pr)
    assert reference.get("label_rates") == _reference(base).get("label_rates"), reference
    assert "differs from the approved lock" in out, out


def test_without_a_trusted_lock_the_lock_on_disk_is_what_approve_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control (green before and after): on a laptop with no base named, the lock on disk is
    the only approved state there is; its reference is kept, as documented."""
    pr = _edited(tmp_path)
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    monkeypatch.delenv("GATES_APPROVED_LOCK", raising=False)
    _approve(pr)
    assert _reference(pr).get("label_rates") == {"cleanlab": 0.99}


def test_an_unreadable_approved_lock_stops_approve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A named approved lock that is not valid JSON: approve refuses before writing, naming
    the variable. Red before: without approvers approve never read the named lock."""
    from pipeline.errors import DataError

    pr = _edited(tmp_path)
    broken = tmp_path / "broken.lock.json"
    broken.write_text("{not json", encoding="utf-8")
    before = (pr / LOCK).read_bytes()
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(broken))
    from gates.approve import approve
    from gates.errors import GateError
    from pipeline.config import load_policy

    with pytest.raises((DataError, GateError), match=r"GATES_APPROVED_LOCK"):
        approve(load_policy(pr / "policy.toml"), out=io.StringIO())
    assert (pr / LOCK).read_bytes() == before
