"""Planted attack: a label flip one ulp away from its row (red team, 6 December).

DATA051 fails a table on any two rows with equal features and different labels
(``[data.checks.duplicates].max_conflict_share = 0.0``: a classic poisoning signal). A copy of
a row with its label flipped and one feature moved one ulp is not equal, so it was counted only
among the near duplicates (DATA052), which allow 2% of the table: five such flips of
breast-cancer rows, re-approved, passed the data gate, where one exact flip fails it.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

ROWS = np.array([3, 50, 200, 400, 500])


def _flipped_near_copies(frame: pd.DataFrame, *, move: bool) -> pd.DataFrame:
    extra = frame.loc[ROWS].copy()
    extra["id"] = np.arange(100_000, 100_000 + len(extra))
    extra["diagnosis"] = extra["diagnosis"].map({"benign": "malignant", "malignant": "benign"})
    if move:
        extra["mean_texture"] = np.nextafter(extra["mean_texture"].to_numpy(), np.inf)
    return pd.concat([frame, extra], ignore_index=True)


def _run(project: Any, *, move: bool) -> dict[str, Any]:
    from gates.approve import approve

    frame = pd.read_csv(project.data_path)
    _flipped_near_copies(frame, move=move).to_csv(
        project.data_path, index=False, lineterminator="\n"
    )
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    project.run("data")
    return project.report("data")


def _errors(report: dict[str, Any]) -> dict[str, str]:
    return {f["rule"]: f["message"] for f in report["findings"] if f["severity"] == "error"}


def test_five_label_flips_one_ulp_from_their_rows_fail_like_exact_ones(project):
    errors = _errors(_run(project, move=True))
    assert "DATA053" in errors, errors
    message = errors["DATA053"]
    assert message.startswith("5 near copies of a row with another label"), message
    assert "(0.87% > 0.00%)" in message
    assert "pairs: 569~3, 570~50, 571~200" in message


def test_the_exact_flips_still_fail_as_conflicts(project):
    # Control: the same flips without the move are DATA051's, as before.
    errors = _errors(_run(project, move=False))
    assert "DATA051" in errors, errors
