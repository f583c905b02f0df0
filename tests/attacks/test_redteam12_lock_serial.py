"""Red team 12: a lock ``serial`` the pull request plants on disk for the approver to go above.

``data approve`` writes the new lock one serial above the lock on disk's and the base branch's
(row 60). The lock on disk is the pull request's, and a serial had no upper bound:

- a serial of 4,300 nines (the most digits Python reads as an integer) made ``data approve``
  a ``ValueError`` traceback (one more is 4,301 digits, which ``json`` cannot write), after the
  checksums file was rewritten;
- a serial of, say, 10**18 planted on disk was carried into the lock the approver signed (the
  approver sees only "serial N" in the output), merged, and from then on the base branch's
  serial: every later approval goes above it, and at 4,300 nines (one approval more) none can
  be written again, while the serial rule forbids any lower one (approvals bricked for good).

Red before: the approve crashed with a traceback; the inflated lock passed DATA003. Fixed: a
serial is at most ``MAX_SERIAL`` (2**53 - 1, what every JSON reader holds exactly), a lock on
disk with a larger one is unreadable (``data approve`` goes above the base's alone); with a
base branch, the lock on disk counts only within ``SERIAL_STEP`` of the base's, and the data
gate refuses a changed lock more than ``SERIAL_STEP`` above the base's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.lockserial import MAX_SERIAL, SERIAL_STEP
from tests.attacks.test_data_revert import (  # the real repositories of row 60's tests
    LOCK,
    REPO,
    _approve,
    _base,
    _drop_last_row,
    _gate,
    _git,
    history,
    repo,
)

__all__ = ["history", "repo"]  # fixtures, used by name


def _plant(root: Path, serial: str) -> None:
    """The lock on disk with ``serial`` written into it (the pull request's bytes)."""
    text = (root / LOCK).read_text(encoding="utf-8").rstrip()
    document = json.loads(text)
    document.pop("serial", None)
    body = json.dumps(document, indent=2, sort_keys=True)
    (root / LOCK).write_text(f'{body[:-2]},\n  "serial": {serial}\n}}\n', encoding="utf-8")


def test_approve_over_a_serial_of_4300_digits_is_no_traceback(
    repo: Path, history: dict[str, Any]
) -> None:
    """The real ``python -m gates data approve`` (no base named): the planted serial is not a
    lock's, so the new lock goes above nothing: serial 1, exit 0, no traceback."""
    _git(repo, "checkout", "-q", "-b", "nines")
    _drop_last_row(repo)
    _plant(repo, "9" * 4300)
    env = {**os.environ, "GATES_APPROVER_KEY": history["carol"], "PYTHONPATH": str(REPO)}
    for name in ("GATES_BASE_POLICY", "GATES_APPROVED_LOCK"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "gates", "data", "approve"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert done.returncode == 0, out
    assert json.loads((repo / LOCK).read_text(encoding="utf-8"))["serial"] == 1


@pytest.mark.parametrize("serial", [str(10**18), str(MAX_SERIAL - 1)])
def test_a_serial_planted_far_above_the_base_is_not_carried_into_the_approval(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch, serial: str
) -> None:
    """Approve against the base branch over a lock whose serial was raised on disk: the new
    lock is one above the base's, and the gate passes it."""
    base = _base(repo, repo.parent / "base-planted")
    base_serial = json.loads((base / LOCK).read_text(encoding="utf-8"))["serial"]
    _git(repo, "checkout", "-q", "-b", "planted")
    _drop_last_row(repo)
    _plant(repo, serial)
    _approve(repo, history["carol"], monkeypatch, base=base)
    assert json.loads((repo / LOCK).read_text(encoding="utf-8"))["serial"] == base_serial + 1
    assert _gate(repo, base, monkeypatch) == []


def test_a_lock_approved_far_above_the_base_is_refused(
    repo: Path, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock the approver signed with a serial far above the base's (approved by a copy of
    ``data approve`` that still went above the lock on disk, or before this bound): DATA003
    naming the serial, so it never becomes the base branch's."""
    base = _base(repo, repo.parent / "base-far")
    base_serial = json.loads((base / LOCK).read_text(encoding="utf-8"))["serial"]
    _git(repo, "checkout", "-q", "-b", "far")
    _drop_last_row(repo)
    _approve(repo, history["carol"], monkeypatch, base=base)
    # The approval is re-made over the lock with its serial raised, as an approver's older
    # ``data approve`` would have written it (the approval signs these very bytes).
    document = json.loads((repo / LOCK).read_text(encoding="utf-8"))
    document["serial"] = base_serial + SERIAL_STEP + 1
    (repo / LOCK).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", "utf-8")
    from pipeline.approval import sign_approval
    from pipeline.config import load_policy
    from pipeline.signing import private_key_from_pem

    key = private_key_from_pem(
        history["carol"].encode(), source="carol", release=True, algorithm=None
    )
    sign_approval(load_policy(repo / "policy.toml"), key, base=(base / LOCK).read_bytes())
    found = _gate(repo, base, monkeypatch)
    assert [f.rule for f in found] == ["DATA003"], found
    assert "serial" in found[0].message
    assert str(base_serial + SERIAL_STEP + 1) in found[0].message


@pytest.mark.parametrize("serial", [str(MAX_SERIAL + 1), "9" * 4300])
def test_a_serial_past_the_bound_is_a_malformed_lock(serial: str, tmp_path: Path) -> None:
    from pipeline.data import read_lock
    from pipeline.errors import DataError

    (tmp_path / "data").mkdir()
    (tmp_path / LOCK).write_text((REPO / LOCK).read_text(encoding="utf-8"), encoding="utf-8")
    _plant(tmp_path, serial)
    with pytest.raises(DataError, match=r"serial: expected a whole number of at least 1"):
        read_lock(tmp_path / LOCK)
