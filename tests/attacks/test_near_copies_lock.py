"""Planted attack on the near-copy baseline: the lock records the approved snapshot's own near
copies (``near_copies``), and DATA052 fails beyond ``max_near_share`` only when the table also
exceeds that count significantly. A pull request controls its own lock: it adds near copies of
real rows (pairs, no burst) and re-approves, so its lock's ``near_copies`` counts them and its
table is "within" itself. In CI the yardstick comes from the protected branch's lock
(``GATES_APPROVED_LOCK``), which counts none: the gate must fail.
"""

from __future__ import annotations

import io
import shutil
from typing import Any

import numpy as np
import pandas as pd

from pipeline.data import read_lock

FEATURES_SKIPPED = ("id", "diagnosis")


def _pairs(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` rows (spread over the table) each copied once, one feature one ulp up."""
    extra = frame.iloc[np.linspace(0, len(frame) - 1, count).astype(int)].copy()
    extra["id"] = np.arange(100_000, 100_000 + count)
    extra["mean_texture"] = np.nextafter(extra["mean_texture"].to_numpy(), np.inf)
    return pd.concat([frame, extra], ignore_index=True)


def _errors(report: dict[str, Any]) -> dict[str, str]:
    return {f["rule"]: f["message"] for f in report["findings"] if f["severity"] == "error"}


def test_a_re_approved_lock_counting_planted_near_copies_does_not_loosen_the_gate(
    project, monkeypatch, tmp_path
):
    from gates.approve import approve

    # The protected branch approved the clean table with this code: its lock records the count.
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    lock = project.root / "data" / "breast_cancer.lock.json"
    base = read_lock(lock).files
    (entry,) = base.values()
    assert entry.reference is not None
    assert entry.reference.near_copies is not None
    clean_copies = entry.reference.near_copies[0]
    trusted = tmp_path / "approved.lock.json"
    shutil.copy(lock, trusted)
    # The pull request: 20 near copies (3.4% of the table, over max_near_share 2%), approved.
    frame = pd.read_csv(project.data_path)
    _pairs(frame, 20).to_csv(project.data_path, index=False, lineterminator="\n")
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    (planted,) = read_lock(lock).files.values()
    assert planted.reference is not None
    assert planted.reference.near_copies is not None
    assert planted.reference.near_copies[0] >= clean_copies + 20  # its lock counts them
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(trusted))
    project.run("data")
    errors = _errors(project.report("data"))
    # Against the protected lock's count both the whole table and the batch of new rows fail.
    assert "beyond the approved snapshot" in errors.get("DATA052", ""), errors
    assert "beyond the approved rows" in errors.get("DATA108", ""), errors
