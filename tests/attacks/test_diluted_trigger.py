"""Planted: a trigger on a feature combination another class already holds (DATA071).

The attacker picks the trigger's values where the rows of another class gather (both features
in their top decile, where class 'b' lives) and relabels 20 rows of 'b' as 'a'. The cell then
holds the 20 trigger rows and about as many clean rows of 'b': 20 of 43 rows labelled 'a'
where their other features predict 2.1. The share gap (0.42) is under `min_gap` (0.5), so the
cell was not even a refit candidate, and none of the 20 rows was flagged. The clean rows of
'b' dilute the gap, not the share of the label's rows that their other features do not
explain: 0.90 here. A cell now also counts when that share is at least `min_unexplained`
(0.8), on the screen and in the refit, every other condition (Bonferroni p, `min_rows`) as
before. The benchmark's held-out digits-10 in-range trigger is this attack: 43 trigger rows and
31 clean rows of '5' in its cell, gap 0.4999 (recall 0.67, now 1.00).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataPolicy
from pipeline.poison import screen
from pipeline.profile import build_profile
from tests.contract_support import ID_COLUMN, data_policy, floats

D, N = 6, 2000


def _contract(**association: object) -> DataPolicy:
    return data_policy(
        {**ID_COLUMN, **floats(f"x{j}" for j in range(D))},
        # Only the check this attack is about (the label check would see these flips too).
        checks={
            "labels": {"enabled": False},
            "isolation": {"enabled": False},
            "bursts": {"enabled": False},
            "association": dict(association),
        },
    )


def _frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(D)])
    frame.insert(0, "id", np.arange(1, len(y) + 1))
    frame["y"] = pd.Series(np.where(y == 0, "a", "b"), dtype="string")
    return frame


def _table(trigger: bool) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Two classes three SDs apart on every feature; with ``trigger``, 20 rows of 'b' moved to
    x0's and x1's 95th percentile (where 'b' already gathers) and labelled 'a'."""
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    x = rng.normal(0.0, 1.0, (N, D)) + np.where(y[:, None] == 1, 3.0, 0.0)
    approved = _frame(x, y)
    planted = np.zeros(0, dtype=np.int64)
    if trigger:
        planted = np.flatnonzero(y == 1)[:20]
        x, y = x.copy(), y.copy()
        x[planted, 0] = np.quantile(x[:, 0], 0.95)
        x[planted, 1] = np.quantile(x[:, 1], 0.95)
        y[planted] = 0
    return approved, _frame(x, y), planted


def _associations(table: pd.DataFrame, approved: pd.DataFrame, contract: DataPolicy):
    result = screen(table, contract, reference=build_profile(approved, contract), seed=7)
    found = result.by_check("association")
    assert found is not None
    return found


def test_a_trigger_diluted_by_another_class_in_its_cell_is_flagged() -> None:
    approved, table, planted = _table(trigger=True)
    found = _associations(table, approved, _contract())
    assert np.isin(planted, found.rows).mean() >= 0.9
    # The clean rows of 'b' sharing the cell are not blamed.
    assert set(found.rows.tolist()) <= set(planted.tolist())
    assert "x0 in" in found.reasons[0]
    assert "x1 in" in found.reasons[0]


def test_the_share_gap_alone_misses_the_diluted_trigger() -> None:
    # min_unexplained = 1: no cell reaches it (the expectation is never 0), the rule before.
    approved, table, _ = _table(trigger=True)
    assert _associations(table, approved, _contract(min_unexplained=1.0)).count == 0


@pytest.mark.parametrize("unexplained", [0.8, 1.0])
def test_the_clean_table_flags_nothing(unexplained: float) -> None:
    approved, table, _ = _table(trigger=False)
    assert _associations(table, approved, _contract(min_unexplained=unexplained)).count == 0


@pytest.mark.parametrize("unexplained", [0.8, 1.0])
def test_the_streaming_path_counts_the_diluted_trigger_the_same_way(
    tmp_path: Path, unexplained: float
) -> None:
    # Every row counted in 500-row chunks with the models of a 400-row sample: the same
    # ``_screen_hits`` / ``_significant`` on the file's counters (1.0: the rule before, red).
    from tests.stream_support import every_row_and_sample

    _, table, planted = _table(trigger=True)
    path = tmp_path / "d.csv"
    table.round(6).to_csv(path, index=False, lineterminator="\n")
    data = data_policy(
        {"id": {"dtype": "int64", "min": 1, "unique": True}, **floats(f"x{j}" for j in range(D))},
        path=path,
        checks={
            "labels": {"max_fit_rows": 400, "max_index_rows": 200},
            "association": {"min_unexplained": unexplained},
        },
    )
    every, _ = every_row_and_sample(path, data, "association")
    found = np.isin(planted, every.rows).mean()
    assert found >= 0.9 if unexplained < 1 else found == 0
    assert set(every.rows.tolist()) <= set(planted.tolist())
