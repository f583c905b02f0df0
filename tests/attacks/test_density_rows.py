"""Planted: rows far from their class's approved rows, against DATA101's row reporting.

DATA101 reports a row only when its conformal p-value survives Benjamini-Hochberg over the new
rows (``[data.checks.batch].density_fdr``); the verdict is the count of rows beyond the
approved rows' ``density_quantile``. An attacker who knows this spreads a few far rows over a
small approved set, where no single row can be significant (the smallest conformal p-value is
1 / (approved rows of the class + 1)): the batch must still fail, naming a row.
"""

from __future__ import annotations

import numpy as np
import pytest

from gates.base import Severity
from gates.data_integrity import judge_batch
from tests.pipeline.test_targeted import _batch
from tests.pipeline.test_targeted import _checks as _policy


def _plant(approved_rows: int, new_rows: int, far: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(3)
    n = approved_rows + new_rows
    y = np.arange(n) % 2
    x = rng.normal(0.0, 1.0, (n, 6)) + np.where(y[:, None] == 1, 1.5, 0.0)
    planted = approved_rows + np.arange(0, 3 * far, 3)  # new rows, both classes
    x[planted] += 5.0  # five SDs off on every feature
    approved = np.zeros(n, dtype=bool)
    approved[:approved_rows] = True
    return (x - x[approved].mean(axis=0)) / x[approved].std(axis=0), y, approved, planted


CASES = {
    # 80 approved rows per class: the smallest conformal p is 1/81, above BH's 0.1 x 6/60.
    "spread-over-a-small-approved-set": (160, 60, 6, False),
    # 250 per class: each far row (p = 1/251) is significant on its own and reported.
    "far-rows-in-a-large-batch": (500, 150, 10, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_far_rows_fail_the_batch_and_a_row_is_named(case: str) -> None:
    approved_rows, new_rows, far, reported = CASES[case]
    x, y, approved, planted = _plant(approved_rows, new_rows, far)
    policy = _policy()
    batch = _batch(x, y, approved)
    flags = next(f for f in batch.flags if f.check == "batch_density")
    findings = [
        f
        for f in judge_batch(batch, policy, "d.csv", source="test", trusted=True)
        if f.rule == "DATA101"
    ]
    assert [f.severity for f in findings] == [Severity.ERROR]
    assert findings[0].location.path == "d.csv"
    assert findings[0].location.row in set(planted.tolist())
    assert f"row {findings[0].location.row}" in findings[0].message
    if reported:
        assert set(planted.tolist()) <= set(flags.rows.tolist())
    else:
        assert flags.count == 0
        assert "none reported" in findings[0].message
