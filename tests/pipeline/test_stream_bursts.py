"""The burst check (DATA072) on the streaming path counts every row, not the sample.

One row copied 30 times with jitter of 1% of each feature's SD, every copy relabelled, in a
6,000-row table: a 400-row sample holds about two copies, fewer than
``[data.checks.bursts].min_copies``, and the sample-only check missed the burst. Every row's
grid cell is hashed while the rows are scored, the rows sharing a cell are collected, and every
row is counted against them; a clean table (and a table of two features, where a radius fitted
on the sample would put clean rows within it: 4 such rows of 20,000) flags nothing. A burst
placed on a corner of the grid's cells is caught by the second, shifted grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataPolicy
from pipeline.flags import Flags
from pipeline.stream import scan
from tests.contract_support import data_policy, floats
from tests.stream_support import every_row_and_sample

_ROWS, _COPIES = 6000, 30


def _table(
    path: Path, *, copies: int, features: int = 8, rows: int = _ROWS
) -> tuple[DataPolicy, np.ndarray]:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(rows, features))
    y = (x[:, 0] - x[:, 1] + rng.normal(size=rows) > 0).astype(int)
    truth = np.zeros(0, dtype=np.int64)
    if copies:
        source = int(np.flatnonzero(y == 1)[0])
        truth = np.sort(rng.choice(np.arange(1, rows), size=copies, replace=False))
        x[truth] = x[source] + rng.normal(0.0, 0.01, (copies, features)) * x.std(axis=0)
        y[truth] = 0
    frame = pd.DataFrame(x.round(8), columns=[f"f{j}" for j in range(features)])
    frame.insert(0, "id", np.arange(1, rows + 1))
    frame["y"] = np.where(y == 1, "b", "a")
    frame.to_csv(path, index=False, lineterminator="\n")
    data = data_policy(
        {
            "id": {"dtype": "int64", "min": 1, "unique": True},
            **floats(f"f{j}" for j in range(features)),
        },
        path=path,
        checks={"labels": {"max_fit_rows": 400, "max_index_rows": 200}},
    )
    return data, truth


def _bursts(path: Path, data: DataPolicy, **options: object) -> tuple[Flags, Flags]:
    """The burst flags over every row, and those of the sample-only check."""
    return every_row_and_sample(path, data, "burst", **options)


def test_a_burst_the_sample_misses_is_found_by_counting_every_row(tmp_path):
    data, truth = _table(tmp_path / "d.csv", copies=_COPIES)
    every, sampled = _bursts(tmp_path / "d.csv", data)
    assert sampled.count == 0  # the sample alone: too few copies drawn (what the gate did)
    assert every.screened is None  # every row, not a sample
    assert set(truth) <= set(every.rows), "every copy listed"
    assert len(set(every.rows) - set(truth)) <= 1, "no clean row but the source"
    # Each flagged row names its evidence: the radius, the rows within it and their labels.
    assert "other rows within" in every.reasons[0]
    assert "their labels: a " in every.reasons[0]
    assert "e.g. rows" in every.reasons[0]


def _on_a_corner(path: Path, data: DataPolicy, copies: int) -> np.ndarray:
    """The attacker's placement: ``copies`` rows outside the scan's sample (labels kept, so the
    sample, its standardization and the burst grid stay the same) moved onto one corner of the
    first grid's cells (a cell boundary on every feature), with 1%-SD jitter: each copy lands
    in one of 2^features cells of that grid, and almost none shares one."""
    from pipeline.rowscore import burst_grid

    first = scan(path, data, chunk_rows=500, sample_rows=400, seed=11)
    assert first.sample is not None
    names = [f"f{j}" for j in range(8)]
    raw = first.sample[names].to_numpy(dtype=np.float64)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    grid = burst_grid((raw - mean) / std, check=data.checks.bursts, rows=first.rows, seed=11)
    assert grid is not None
    frame = pd.read_csv(path)
    rng = np.random.default_rng(4)
    outside = np.setdiff1d(np.arange(len(frame)), first.sample.index.to_numpy())
    truth = np.sort(rng.choice(outside, size=copies, replace=False))
    corner = np.round(((frame.loc[truth[0], names].to_numpy() - mean) / std) / grid.width)
    moved = corner * grid.width + rng.normal(0.0, 0.01, (copies, len(names)))
    frame.loc[truth, names] = (mean + moved * std).round(10)
    frame.to_csv(path, index=False, lineterminator="\n")
    again = scan(path, data, chunk_rows=500, sample_rows=400, seed=11)
    assert again.sample is not None
    assert again.sample.equals(first.sample)
    return truth


def test_a_burst_on_a_cell_corner_is_found_by_the_shifted_grid(tmp_path, monkeypatch):
    """Bypass attempt: the copies spread over the first grid's cells around one corner. The
    second grid, shifted half a cell, holds them in one cell; without it they pass."""
    import pipeline.rowscore

    data, _ = _table(tmp_path / "d.csv", copies=0)
    truth = _on_a_corner(tmp_path / "d.csv", data, _COPIES)
    every, _ = _bursts(tmp_path / "d.csv", data)
    assert set(truth) <= set(every.rows)
    assert set(every.rows) <= set(truth)
    monkeypatch.setattr(pipeline.rowscore, "_SHIFTS", (0.0,))
    one_grid, _ = _bursts(tmp_path / "d.csv", data)
    assert len(set(truth) & set(one_grid.rows)) < _COPIES // 2, "the attack works on one grid"


@pytest.mark.parametrize("features", [2, 8])
def test_a_clean_table_flags_no_burst_over_every_row(tmp_path, features):
    data, _ = _table(tmp_path / "d.csv", copies=0, features=features, rows=20_000)
    every, _ = _bursts(tmp_path / "d.csv", data)
    assert every.count == 0
    assert every.screened is None


def test_two_runs_and_two_processes_flag_the_same_rows(tmp_path):
    data, _ = _table(tmp_path / "d.csv", copies=_COPIES)
    one, _ = _bursts(tmp_path / "d.csv", data, jobs=1)
    again, _ = _bursts(tmp_path / "d.csv", data, jobs=1)
    two, _ = _bursts(tmp_path / "d.csv", data, jobs=2)
    for other in (again, two):
        assert np.array_equal(one.rows, other.rows)
        assert np.array_equal(one.scores, other.scores)
        assert one.reasons == other.reasons
