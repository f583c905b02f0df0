"""Red team 19: the whole-table trend measured on the approved rows (trend18), attacked.

With approved rows, DATA071's neighbouring-cell trend is measured on them (``trend_rows``):
rows a pull request plants beside a trigger are new and make no trend. The approved rows are
the pull request's to *delete*, up to ``max_dropped`` of them: held, deleting the approved rows
of the other class in the cells on the lines out of a 40-row trigger (a ring of 8 cells, 11
rows on seed 3: all there are) leaves the trigger flagged (37 to 36 of 40); on seed 2 those
cells hold no such row. Only rows that raise a neighbouring cell's excess could make a trend,
and the cells next to a corner the trigger's class leads up to hold few of the other class.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.pipeline.test_targeted import NAMES, _clustered, _expected, data_policy, floats


def _association(x: np.ndarray, y: np.ndarray, approved: np.ndarray) -> tuple[object, np.ndarray]:
    from pipeline.targeted import associations, bin_codes, bin_edges

    policy = data_policy(floats(NAMES), checks={"association": {"neighbour_trend": True}})
    edges = bin_edges(x, policy.checks.association.bins)
    codes = bin_codes(x, edges)
    found = associations(
        codes,
        y,
        _expected(x, y),
        edges=edges,
        names=NAMES,
        classes=("a", "b"),
        check=policy.checks.association,
        trend_rows=approved,
    )
    return found, codes


@pytest.mark.parametrize("seed", [2, 3])
def test_deleting_approved_rows_beside_a_trigger_makes_no_trend_that_hides_it(seed: int) -> None:
    x, y = _clustered(seed=seed)
    trigger = np.flatnonzero(y == 1)[:40]
    x[trigger, 0] = np.quantile(x[:, 0], 0.95)
    x[trigger, 1] = np.quantile(x[:, 1], 0.05)
    y[trigger] = 0
    approved = np.setdiff1d(np.arange(len(y)), trigger)
    _, codes = _association(x, y, approved)
    tj, tk = codes[trigger[0], 0], codes[trigger[0], 1]
    ring = {(tj + a, tk + b) for a in (-2, -1, 0) for b in (0, 1, 2)} - {(tj, tk)}
    drop = np.array(
        [i for i in approved if y[i] == 1 and (codes[i, 0], codes[i, 1]) in ring], dtype=int
    )
    assert drop.size <= 0.2 * approved.size  # within max_dropped
    keep = np.setdiff1d(np.arange(len(y)), drop)
    moved = np.searchsorted(keep, trigger)
    found, _ = _association(x[keep], y[keep], np.setdiff1d(np.arange(keep.size), moved))
    assert np.isin(moved, found.rows).mean() >= 0.875, (drop.size, found.rows)
