"""A near-range trigger (issue 16): two features set just past the approved maximum, inside the
range margin, with a forced label, where the top bin of each feature is crowded with clean rows
of that label (a pixel at its maximum, as on digits 3-vs-8).

Without bins of their own for values beyond the approved range, the trigger rows share their
cell with the clean rows at the maximum, whose label their other features explain, and the
cell's gap stays below ``min_gap``: the table passed. The approved rows' [min, max] come from
the reference profile (never from the table under test), and rows beyond it train no
expectation model (a trigger must not explain itself through its other features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import DataPolicy
from pipeline.poison import screen
from pipeline.profile import build_profile
from tests.contract_support import ID_COLUMN, data_policy, floats

D = 6
N = 600


def _contract() -> DataPolicy:
    return data_policy({**ID_COLUMN, **floats(f"x{j}" for j in range(D))})


def _frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(D)])
    frame.insert(0, "id", np.arange(1, len(y) + 1))
    frame["y"] = pd.Series(np.where(y == 0, "a", "b"), dtype="string")
    return frame


def _clean() -> tuple[np.ndarray, np.ndarray]:
    """Class 'a' high on every feature; x0 and x1 clipped at 1.0 (half of 'a' at the maximum)."""
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    x = rng.normal(0.0, 1.0, (N, D)) + np.where(y[:, None] == 0, 1.0, -1.0)
    x[:, :2] = np.minimum(x[:, :2], 1.0)
    return x, y


def _flagged(x: np.ndarray, y: np.ndarray, approved: pd.DataFrame) -> tuple[set[int], bool]:
    contract = _contract()
    result = screen(_frame(x, y), contract, reference=build_profile(approved, contract), seed=7)
    found = result.by_check("association")
    assert found is not None
    assert result.by_check("range") is not None
    assert result.by_check("range").count == 0  # inside the margin: the range check passes
    return set(found.rows.tolist()), found.count > 0


def test_a_trigger_just_past_the_approved_maximum_is_flagged_beside_a_crowded_top_bin():
    x, y = _clean()
    approved = _frame(x, y)
    rows = np.flatnonzero(y == 1)[:18]  # 3% of the rows, from the other class
    x[rows, 0] = 1.0 + 0.1 * (1.0 - x[:, 0].min())
    x[rows, 1] = 1.0 + 0.1 * (1.0 - x[:, 1].min())
    y[rows] = 0
    flagged, _ = _flagged(x, y, approved)
    assert set(rows.tolist()) <= flagged
    assert len(flagged) <= 2 * rows.size  # precision of at least 0.5


def test_rows_just_past_the_approved_maximum_with_their_own_label_are_not_flagged():
    x, y = _clean()
    approved = _frame(x, y)
    rows = np.flatnonzero(y == 1)[:18]  # the same rows, past the maximum, label kept
    x[rows, 0] = 1.0 + 0.1 * (1.0 - x[:, 0].min())
    x[rows, 1] = 1.0 + 0.1 * (1.0 - x[:, 1].min())
    flagged, any_flagged = _flagged(x, y, approved)
    assert not any_flagged, flagged


def test_a_clean_table_inside_the_approved_range_is_not_flagged():
    x, y = _clean()
    flagged, any_flagged = _flagged(x, y, _frame(x, y))
    assert not any_flagged, flagged


def test_a_table_wholly_beyond_the_approved_range_on_one_column_is_still_screened():
    # Every row has a value past the approved maximum: no row is left to fit the expectation
    # on without them, so the folds fit on every row as before (no crash, no empty model).
    x, y = _clean()
    approved = _frame(x, y)
    x[:, 5] += 0.1 * (x[:, 5].max() - x[:, 5].min())
    x[:, 5] = np.maximum(x[:, 5], approved["x5"].max() + 1e-6)
    contract = _contract()
    result = screen(_frame(x, y), contract, reference=build_profile(approved, contract), seed=7)
    assert result.by_check("association") is not None
