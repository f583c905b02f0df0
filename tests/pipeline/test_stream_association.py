"""The association test (DATA071) on the streaming path counts every row, not the sample.

A backdoor trigger on 40 of 6,000 rows (two correlated features set to a combination no clean
row has, one forced label): a 400-row sample holds about three of them, fewer than
``[data.checks.association].min_rows``, and the sample-only test missed it. The counters per
(feature set, cell, class) over every row find it; a clean table flags nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataPolicy
from tests.contract_support import data_policy, floats
from tests.stream_support import every_row_and_sample

_ROWS, _FEATURES, _PLANTED = 6000, 6, 40


def _table(path: Path, *, plant: bool) -> tuple[DataPolicy, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(_ROWS, _FEATURES))
    x[:, 1] = 0.9 * x[:, 0] + 0.45 * rng.normal(size=_ROWS)  # f0 and f1 rise together
    logit = x[:, 2] - x[:, 3] + 0.5 * x[:, 4]
    y = (rng.random(_ROWS) < 1 / (1 + np.exp(-logit))).astype(int)
    truth = np.zeros(0, dtype=np.int64)
    if plant:
        # f0 low with f1 high: each value common, the combination absent from clean rows.
        truth = np.sort(rng.choice(np.flatnonzero(y == 1), size=_PLANTED, replace=False))
        x[truth, 0] = np.quantile(x[:, 0], 0.05)
        x[truth, 1] = np.quantile(x[:, 1], 0.95)
        y[truth] = 0
    frame = pd.DataFrame(x.round(6), columns=[f"f{j}" for j in range(_FEATURES)])
    frame.insert(0, "id", np.arange(1, _ROWS + 1))
    frame["y"] = np.where(y == 1, "b", "a")
    frame.to_csv(path, index=False, lineterminator="\n")
    data = data_policy(
        {
            "id": {"dtype": "int64", "min": 1, "unique": True},
            **floats(f"f{j}" for j in range(_FEATURES)),
        },
        path=path,
        checks={"labels": {"max_fit_rows": 400, "max_index_rows": 200}},
    )
    return data, truth


def _associations(path: Path, data: DataPolicy, **options: object) -> tuple[object, object]:
    """The association flags over every row, and those of the sample-only check."""
    return every_row_and_sample(path, data, "association", **options)


def test_a_trigger_the_sample_misses_is_found_by_counting_every_row(tmp_path):
    data, truth = _table(tmp_path / "d.csv", plant=True)
    every, sampled = _associations(tmp_path / "d.csv", data)
    # The sample alone: too few trigger rows in the cell for the test (what the gate did).
    assert not np.isin(truth, sampled.rows).any()
    assert every.screened is None  # every row, not a sample
    assert np.isin(truth, every.rows).sum() >= 0.9 * _PLANTED
    assert np.isin(every.rows, truth).all(), "no clean row flagged"
    assert "labelled 'a' where their other features predict" in every.reasons[0]


def test_a_clean_table_flags_no_association_over_every_row(tmp_path):
    data, _ = _table(tmp_path / "d.csv", plant=False)
    every, _ = _associations(tmp_path / "d.csv", data)
    assert every.count == 0
    assert every.screened is None


def test_rows_the_range_check_flagged_are_left_out_as_in_memory(tmp_path):
    data, truth = _table(tmp_path / "d.csv", plant=True)
    every, _ = _associations(tmp_path / "d.csv", data, exclude=truth)
    # The trigger's rows left out (they would fail DATA060 on their own): no cell remains.
    assert every.count == 0


@pytest.mark.slow
def test_two_local_processes_count_the_same_cells(tmp_path):
    data, _ = _table(tmp_path / "d.csv", plant=True)
    one, _ = _associations(tmp_path / "d.csv", data, jobs=1)
    two, _ = _associations(tmp_path / "d.csv", data, jobs=2)
    assert np.array_equal(one.rows, two.rows)
    assert np.array_equal(one.scores, two.scores)
    assert one.reasons == two.reasons


def test_the_two_class_screen_counts_what_the_softmax_counts():
    """The two-class shortcut (logistic of the logit difference, single precision) against
    the general softmax of the logits with the set's features replaced by their prediction
    from the others: the same counts, sums within 1e-6."""
    from pipeline.config import AssociationCheck
    from pipeline.targeted import (
        _probabilities,
        _tally,
        bin_codes,
        fit_cell_models,
        screen_tallies,
    )

    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 5))
    y = (x[:, 0] - x[:, 3] + rng.normal(size=3000) > 0).astype(np.int64)
    models = fit_cell_models(x, y, n_classes=2, check=AssociationCheck(), max_fit_rows=3000, seed=1)
    counts, sums = screen_tallies(models, x, y)
    codes = bin_codes(x, list(models.edges)).astype(np.int64)
    logits = x @ models.coef.T + models.intercept
    assert models.predictors is not None
    for i, (j, k) in enumerate(models.pairs):
        guess = x @ models.predictors[i]  # the set's features predicted from the others
        dropped = logits - models.coef[:, j] * (x[:, j] - guess[:, 0])[:, None]
        if k != j:
            dropped -= models.coef[:, k] * (x[:, k] - guess[:, 1])[:, None]
        cell = codes[:, j] * models.bins + codes[:, k]
        want_counts, want_sums = _tally(cell, y, _probabilities(dropped), models.bins**2, 2)
        assert np.array_equal(counts[i], want_counts)
        assert np.allclose(sums[i], want_sums, rtol=1e-6, atol=1e-3)


def test_clean_clustered_classes_flag_no_association_over_every_row_with_the_trend(tmp_path):
    """Issue 16 on the streaming path: a clean ``make_classification`` table (classes drawn as
    clusters on a hypercube's corners) flags nothing over every row, because the counters'
    test raises each cell's expectation by its neighbouring cells' trend as ``associations``
    does, with ``neighbour_trend`` (before: its corner cells failed DATA071)."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=4000,
        n_features=6,
        n_informative=4,
        n_redundant=1,
        class_sep=1.0,
        flip_y=0.0,
        random_state=1,
    )
    path = tmp_path / "d.csv"
    frame = pd.DataFrame(x.round(6), columns=[f"f{j}" for j in range(6)])
    frame.insert(0, "id", np.arange(1, len(y) + 1))
    frame["y"] = np.where(y == 1, "b", "a")
    frame.to_csv(path, index=False, lineterminator="\n")
    data = data_policy(
        {"id": {"dtype": "int64", "min": 1, "unique": True}, **floats(f"f{j}" for j in range(6))},
        path=path,
        checks={
            "labels": {"max_fit_rows": 2000, "max_index_rows": 200},
            "association": {"neighbour_trend": True},
        },
    )
    every, _ = _associations(path, data)
    assert every.screened is None
    assert every.count == 0
