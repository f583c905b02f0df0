"""The protected branch and a pull request's data gate against its lock, for the batch-screen
attack tests (red teams 16 to 18).

The protected branch is the committed breast-cancer data approved by this code (a
``--rebaseline``); a pull request is a copy of it with its own data, re-approved; its data gate
runs with ``$GATES_APPROVED_LOCK`` naming the protected branch's lock, as CI sets it.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK = "data/breast_cancer.lock.json"
DATA = "data/breast_cancer.csv"


def approve(root: Path, *, rebaseline: bool = False) -> None:
    """``data approve`` of the project at ``root``; it must succeed."""
    from gates.approve import approve as approve_data
    from pipeline.config import load_policy

    out = io.StringIO()
    code = approve_data(load_policy(root / "policy.toml"), out=out, rebaseline=rebaseline)
    assert code == 0, out.getvalue()


def protected_branch(factory: pytest.TempPathFactory, name: str) -> Path:
    """A copy of the committed policy, data and keys, approved by this code."""
    root = factory.mktemp(name) / "base"
    root.mkdir()
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    approve(root, rebaseline=True)
    return root


def gate_against(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch, *, run_id: str) -> Any:
    """The pull request's data gate with the protected branch's lock as the trusted one."""
    from gates.base import RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    monkeypatch.setenv("GATES_APPROVED_LOCK", str(base / LOCK))
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    context = RunContext(
        policy=load_policy(pr / "policy.toml"), run_id=run_id, reports_dir=pr / "r"
    )
    return DataGate().run(context)
