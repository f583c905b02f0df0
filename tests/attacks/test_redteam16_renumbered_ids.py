"""Red team 16: approved rows made to look new by renumbering the id column.

The batch screen (DATA100-DATA108) judges a pull request's new rows against the rows the
protected branch's lock approved (``GATES_APPROVED_LOCK``); a row was approved when the digest
of its features and label matched the one the lock recorded *under its id*. The id is the
pull request's to write: renumbering every id (``id + 10,000,000``) made all 569 rows new,
fewer than ``[data.checks.batch].min_approved`` approved, and the batch screen did not run: the
data gate PASSED ("every check within its threshold") with a metric note, whatever the new rows
were. Renumbering 400 ids kept the screen running with 440 "new" rows, the pull request's 40
diluted among 400 approved ones.

A row is approved under its own id, else when its content is an approved row's that no row
keeps under its id, each approved content approving one row only: renumbered rows stay
approved, and a copy of an approved row beyond the first is still new.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.batch_support import DATA, approve, gate_against, protected_branch


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code."""
    return protected_branch(tmp_path_factory, "rt16-ids")


def _pull_request(base: Path, tmp_path: Path, *, renumber: int, copies: int = 0) -> Path:
    """40 benign rows shifted (the pull request's new rows), the first ``renumber`` ids moved
    by 10,000,000, and ``copies`` copies of approved rows under new ids; re-approved."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    rows = frame.index[frame["diagnosis"] == "benign"][-40:]
    for name, sign in (("mean_radius", 1.0), ("mean_perimeter", -1.0)):
        frame.loc[rows, name] = (frame.loc[rows, name] + sign * 0.4 * frame[name].std()).round(5)
    frame.loc[frame.index[:renumber], "id"] += 10_000_000
    if copies:
        extra = frame.iloc[100 : 100 + copies].copy()
        extra["id"] = range(20_000_000, 20_000_000 + copies)
        frame = pd.concat([frame, extra], ignore_index=True)
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    approve(pr)
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return gate_against(pr, base, monkeypatch, run_id="rt16")


@pytest.mark.parametrize("renumber", [569, 400], ids=["every-id", "400-ids"])
def test_renumbered_ids_leave_the_approved_rows_approved(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renumber: int
) -> None:
    outcome = _gate(_pull_request(base, tmp_path, renumber=renumber), base, monkeypatch)
    batch = outcome.metrics.get("batch", {})
    assert "skipped" not in batch, batch  # before (every id): skipped, the gate PASSED
    assert batch.get("new_rows") == 40, batch  # before (400 ids): 440
    assert batch.get("approved_rows") == 529, batch
    assert batch.get("trusted") is True


def test_a_copy_of_an_approved_row_under_a_new_id_is_still_new(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: an approved content approves one row; its copies are new rows (DATA108's)."""
    outcome = _gate(_pull_request(base, tmp_path, renumber=0, copies=5), base, monkeypatch)
    batch = outcome.metrics.get("batch", {})
    assert batch.get("new_rows") == 45, batch
    assert batch.get("approved_rows") == 529, batch


def test_approved_rows_unit() -> None:
    from gates.data_integrity import _approved_rows

    digests = {"1": "a", "2": "b", "3": "c"}
    # id 1 kept; 2 renumbered to 20; 3's label flipped (its digest changed); 30 copies 1.
    ids = ["1", "20", "3", "30", "40"]
    now = {"1": "a", "20": "b", "3": "x", "30": "a", "40": "c"}
    assert _approved_rows(ids, now, digests).tolist() == [True, True, False, False, True]
