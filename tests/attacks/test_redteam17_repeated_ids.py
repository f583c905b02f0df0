"""Red team 17: a new row approved by taking an approved row's id, twice in the table.

The batch screen (DATA100-DATA108) judges the rows the base branch's lock did not approve. The
gate took each row's digest (features and label) into a dict *by id*: where an id repeats, the
dict keeps the last row's digest, and every row of that id compared that digest with the
approved one. Nothing makes the id column unique but its ``unique = true``, one word of the
pull request's ``policy.toml`` (GATE017 lists it, a warning without approvers). Dropped, 12
benign rows moved by up to 10% and labelled malignant, each written just before an approved
row under that row's id, were all "approved": the batch screen said "every row is approved"
and did not run, and the data gate PASSED; under fresh ids the same rows fail DATA100, DATA102
and DATA107.

Rows are now matched one by one: an id approves at most one row (the one whose content the
lock approved under it), and every other row is new unless its content is a spare approved
one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.batch_support import DATA, approve, gate_against, protected_branch

UNIQUE = 'id = { dtype = "int64", min = 1, unique = true }'


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code."""
    return protected_branch(tmp_path_factory, "rt17-ids")


def _pull_request(base: Path, tmp_path: Path, *, repeat: bool) -> Path:
    """``unique`` dropped from the id column; 12 benign rows moved and relabelled malignant,
    under the ids of approved rows 100-111, each just before that row (``repeat``), else under
    fresh ids at the end; re-approved."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    policy = (pr / "policy.toml").read_text(encoding="utf-8")
    assert UNIQUE in policy
    (pr / "policy.toml").write_text(
        policy.replace(UNIQUE, 'id = { dtype = "int64", min = 1 }'), encoding="utf-8"
    )
    frame = pd.read_csv(pr / DATA)
    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    new = frame[frame["diagnosis"] == "benign"].iloc[::20][:12].copy()
    jitter = np.random.default_rng(0).uniform(0.9, 1.1, size=(len(new), len(features)))
    new[features] = (new[features] * jitter).round(5)
    new["diagnosis"] = "malignant"
    taken = frame["id"].iloc[100:112].tolist()
    if repeat:
        new["id"] = taken
        parts = []
        for row in range(len(frame)):
            ident = frame["id"].iloc[row]
            if ident in taken:
                parts.append(new[new["id"] == ident])
            parts.append(frame.iloc[[row]])
        frame = pd.concat(parts, ignore_index=True)
    else:
        new["id"] = range(100_000, 100_012)
        frame = pd.concat([frame, new], ignore_index=True)
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    approve(pr)
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return gate_against(pr, base, monkeypatch, run_id="rt17")


@pytest.mark.parametrize("repeat", [True, False], ids=["approved-ids-repeated", "fresh-ids"])
def test_a_repeated_approved_id_approves_one_row(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repeat: bool
) -> None:
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, repeat=repeat), base, monkeypatch)
    batch = outcome.metrics.get("batch", {})
    # Before (repeated): skipped, "every row is approved in the approved lock", PASSED.
    assert batch.get("new_rows") == 12, batch
    assert batch.get("approved_rows") == 569, batch
    assert outcome.status is Status.FAILED, outcome.summary
    assert "DATA100" in {f.rule for f in outcome.findings}


def test_approved_rows_by_row_unit() -> None:
    from gates.data_integrity import _approved_rows

    digests = {"1": "a", "2": "b"}
    # Row 0 takes id 1 before the approved row 1; row 3 takes id 2 after the approved row 2.
    ids = ["1", "1", "2", "2"]
    now = ["x", "a", "b", "y"]
    assert _approved_rows(ids, now, digests).tolist() == [False, True, True, False]
    # An id repeated with the approved content twice: one row approved, the copy new.
    assert _approved_rows(["1", "1"], ["a", "a"], digests).tolist() == [True, False]
