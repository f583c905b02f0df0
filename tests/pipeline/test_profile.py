"""Reference profiles: what they record, PSI, class shift, and the approve diff."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from pipeline import profile as profile_module
from pipeline.config import DataPolicy, load_policy
from pipeline.data import check_contract, read_table
from pipeline.errors import DataError
from pipeline.profile import (
    DataProfile,
    build_profile,
    class_mean_shifts,
    class_moments,
    class_shift,
    column_drift,
    describe_changes,
    numeric_columns,
    parse_profile,
    psi,
    raw_matrix,
)
from tests.conftest import REPO
from tests.contract_support import ID_COLUMN, data_policy, floats


def _contract() -> DataPolicy:
    return data_policy(
        {
            **ID_COLUMN,
            "x": {"dtype": "float64", "nullable": True},
            "colour": {"dtype": "string"},
        }
    )


def _frame(n: int = 200, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=float),
            "x": rng.normal(shift, 1.0, n),
            "colour": pd.Series(rng.choice(["red", "blue"], n), dtype="string"),
            "y": pd.Series(np.where(np.arange(n) % 4 == 0, "b", "a"), dtype="string"),
        }
    )


def test_profile_records_quantiles_range_nulls_categories_and_balance():
    frame = _frame()
    frame.loc[3, "x"] = np.nan
    profile = build_profile(frame, _contract())
    x = profile.columns["x"]
    assert x.kind == "numeric"
    assert x.null_share == pytest.approx(1 / 200)
    assert x.minimum == pytest.approx(np.nanmin(frame["x"]))
    assert x.maximum == pytest.approx(np.nanmax(frame["x"]))
    assert len(x.quantiles) == 11
    assert sum(x.bin_shares) == pytest.approx(1.0)
    assert set(profile.columns["colour"].categories) == {"red", "blue"}
    assert profile.class_balance == {"a": 0.75, "b": 0.25}
    assert profile.row_digests is not None
    assert len(profile.row_digests) == 200
    assert "id" not in profile.columns


def test_profile_round_trips_through_json_form():
    profile = build_profile(_frame(), _contract())
    assert DataProfile.from_dict(profile.to_dict()) == profile


def test_malformed_profile_is_a_data_error_naming_where():
    with pytest.raises(DataError, match=r"lock\.json profile: profile is malformed"):
        parse_profile({"version": 1, "rows": 3}, where="lock.json profile")


def test_psi_is_zero_on_the_reference_and_large_on_a_shift():
    contract = _contract()
    reference = build_profile(_frame(), contract)
    same = {d.column: d.psi for d in column_drift(_frame(), reference)}
    moved = {d.column: d.psi for d in column_drift(_frame(seed=1, shift=1.5), reference)}
    assert same["x"] == pytest.approx(0.0, abs=1e-9)
    assert moved["x"] > 0.25
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_class_shift_names_the_class_that_moved_most():
    reference = build_profile(_frame(), _contract())
    labels = pd.Series(["a"] * 50 + ["b"] * 50)
    cls, moved = class_shift(labels, reference)
    assert moved == pytest.approx(0.25)
    assert cls in {"a", "b"}


def test_describe_changes_names_rows_added_removed_changed_categories_and_balance():
    contract = _contract()
    old_frame = _frame()
    new_frame = old_frame.drop(index=[0]).copy()
    new_frame.loc[5, "x"] = 99.0
    new_frame.loc[7, "colour"] = "green"
    extra = old_frame.iloc[[1]].copy()
    extra["id"] = 500.0
    extra["y"] = "a"
    new_frame = pd.concat([new_frame, extra], ignore_index=True)
    lines = describe_changes(build_profile(old_frame, contract), build_profile(new_frame, contract))
    text = "\n".join(lines)
    assert "rows 200 -> 200 (+0)" in text
    assert "rows added (1): ids 500" in text
    assert "rows removed (1): ids 1" in text
    assert "rows changed (2): ids 6, 8" in text
    assert "column 'colour': new categories ['green']" in text
    assert "class 'b'" in text


def test_describe_changes_without_an_earlier_profile():
    assert describe_changes(None, build_profile(_frame(), _contract()))[0].startswith("first")


def _numeric_contract(**checks: object) -> DataPolicy:
    return data_policy(
        {**ID_COLUMN, "x": {"dtype": "float64", "nullable": True}, **floats(["z"])},
        checks=checks,
    )


def _numeric_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=float),
            "x": rng.normal(0.0, 1.0, n),
            "z": rng.normal(5.0, 2.0, n),
            "y": pd.Series(np.where(np.arange(n) % 4 == 0, "b", "a"), dtype="string"),
        }
    )


def test_profile_records_each_class_mean_and_covariance_and_round_trips():
    frame = _numeric_frame()
    profile = build_profile(frame, _numeric_contract())
    assert profile.moment_columns == ("x", "z")
    assert profile.class_moments is not None
    b = profile.class_moments["b"]
    rows = frame[frame["y"] == "b"][["x", "z"]].to_numpy()
    assert b.rows == 50
    assert b.mean == pytest.approx(rows.mean(axis=0))
    assert np.asarray(b.cov) == pytest.approx(np.cov(rows, rowvar=False))
    assert DataProfile.from_dict(profile.to_dict()) == profile


def test_class_moments_are_not_recorded_beyond_max_features_or_when_disabled():
    frame = _numeric_frame()
    few = build_profile(frame, _numeric_contract(class_means={"max_features": 1}))
    off = build_profile(frame, _numeric_contract(class_means={"enabled": False}))
    assert few.class_moments is None
    assert off.class_moments is None
    assert "class_moments" not in off.to_dict()


@pytest.mark.parametrize(
    "moments",
    [
        {"columns": ["x", "z"], "classes": {"a": {"rows": 9, "mean": [0.0], "cov": [[1.0]]}}},
        {
            "columns": ["x"],
            "classes": {"a": {"rows": 9, "mean": [float("nan")], "cov": [[1.0]]}},
        },
        {"columns": ["x"], "classes": {"a": {"rows": 1, "mean": [0.0], "cov": [[1.0]]}}},
        {"columns": ["x"]},
    ],
    ids=["wrong-shape", "not-finite", "one-row", "no-classes"],
)
def test_malformed_class_moments_are_a_data_error_naming_where(moments):
    data = build_profile(_numeric_frame(), _numeric_contract()).to_dict()
    data["class_moments"] = moments
    with pytest.raises(DataError, match=r"lock\.json profile: profile is malformed"):
        parse_profile(data, where="lock.json profile")


def _moments_by_np_cov(clean: pd.DataFrame, contract: DataPolicy) -> dict[str, tuple]:
    """What ``class_moments`` computed until 6 December: a float64 copy of each class, np.cov."""
    matrix = raw_matrix(clean, numeric_columns(contract))
    labels = clean[contract.label].astype("string").to_numpy(dtype=object)
    found = {}
    for cls in sorted({str(v) for v in labels}):
        rows = matrix[labels == cls]
        if len(rows) >= 2:
            found[cls] = (len(rows), rows.mean(axis=0), np.cov(rows, rowvar=False))
    return found


def _assert_same_moments(clean: pd.DataFrame, contract: DataPolicy) -> None:
    columns, moments = class_moments(clean, contract)
    expected = _moments_by_np_cov(clean, contract)
    assert columns == numeric_columns(contract)
    assert moments is not None
    assert moments.keys() == expected.keys()
    for cls, (rows, mean, cov) in expected.items():
        assert moments[cls].rows == rows
        # The lock keeps 10 significant digits: equal within that rounding (of the largest
        # entry for the covariances, whose small off-diagonal entries are differences).
        np.testing.assert_allclose(moments[cls].mean, mean, rtol=1e-9, atol=1e-12)
        scale = float(np.abs(cov).max())
        np.testing.assert_allclose(moments[cls].cov, cov, rtol=1e-9, atol=1e-9 * scale)


def test_class_moments_of_the_embedded_table_are_np_cov_per_class_over_several_blocks(
    monkeypatch,
):
    contract = load_policy(REPO / "policy.toml").policy.data
    clean, violations = check_contract(read_table(REPO / contract.path, fmt="csv"), contract)
    assert not violations
    monkeypatch.setattr(profile_module, "_MOMENT_BLOCK_ROWS", 97)  # 569 rows: 6 blocks
    _assert_same_moments(clean, contract)


def _digits_with_nulls() -> tuple[pd.DataFrame, DataPolicy]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    features = digits.data.copy()
    features[np.random.default_rng(3).random(features.shape) < 0.05] = np.nan
    names = [f"p{i}" for i in range(features.shape[1])]
    frame = pd.DataFrame(features, columns=names)
    frame["y"] = pd.Series([str(v) for v in digits.target], dtype="string")
    contract = DataPolicy.model_validate(
        {
            "path": "d.csv",
            "lock": "d.lock.json",
            "label": "y",
            "classes": [str(v) for v in range(10)],
            "columns": {n: {"dtype": "float64", "nullable": True} for n in names},
        }
    )
    return frame, contract


def test_class_moments_of_digits_with_nulls_and_constant_pixels_are_np_cov_per_class(
    monkeypatch,
):
    frame, contract = _digits_with_nulls()
    monkeypatch.setattr(profile_module, "_MOMENT_BLOCK_ROWS", 250)  # 1,797 rows: 8 blocks
    _assert_same_moments(frame, contract)


def test_class_moments_hold_less_than_one_float64_copy_of_the_features():
    # Until 6 December the moments took a float64 copy of the features, a copy of each
    # class's rows and np.cov's centred copy of them: +386 MiB at 1M x 20 (bench/stream.py).
    rows, dims = 400_000, 10
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (rows, dims)), columns=[f"f{i}" for i in range(dims)])
    frame["y"] = pd.Series(np.where(rng.random(rows) < 0.3, "b", "a"), dtype="string")
    contract = DataPolicy.model_validate(
        {
            "path": "d.csv",
            "lock": "d.lock.json",
            "label": "y",
            "classes": ["a", "b"],
            "columns": {f"f{i}": {"dtype": "float64"} for i in range(dims)},
        }
    )
    tracemalloc.start()
    try:
        _, moments = class_moments(frame, contract)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert moments is not None
    assert moments["a"].rows + moments["b"].rows == rows
    assert peak < rows * dims * 8  # 32 MB


def test_class_mean_shifts_are_the_same_over_blocks_as_over_the_whole_table(monkeypatch):
    frame, contract = _digits_with_nulls()
    reference = build_profile(frame.iloc[: len(frame) // 2], contract)
    table = frame.iloc[len(frame) // 2 :].reset_index(drop=True)
    whole = class_mean_shifts(table, contract, reference)
    monkeypatch.setattr(profile_module, "_MOMENT_BLOCK_ROWS", 100)  # 899 rows: 9 blocks
    blocks = class_mean_shifts(table, contract, reference)
    assert [s.cls for s in blocks] == [s.cls for s in whole] == [str(v) for v in range(10)]
    for a, b in zip(blocks, whole, strict=True):
        assert (a.rows, a.approved_rows, a.dims, a.worst_column) == (
            b.rows,
            b.approved_rows,
            b.dims,
            b.worst_column,
        )
        np.testing.assert_allclose([a.t2, a.pvalue, a.worst_shift], [b.t2, b.pvalue, b.worst_shift])


def test_class_mean_shifts_hold_less_than_one_float64_copy_of_the_features():
    # Until 6 December DATA043 on the gate's path took a float64 copy of the features and a
    # copy of each class's rows (about 1.7 copies of the table).
    rows, dims = 400_000, 10
    rng = np.random.default_rng(5)
    names = [f"f{i}" for i in range(dims)]
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (rows, dims)), columns=names)
    frame["y"] = pd.Series(np.where(rng.random(rows) < 0.3, "b", "a"), dtype="string")
    contract = DataPolicy.model_validate(
        {
            "path": "d.csv",
            "lock": "d.lock.json",
            "label": "y",
            "classes": ["a", "b"],
            "columns": {n: {"dtype": "float64"} for n in names},
        }
    )
    reference = build_profile(frame.iloc[:1000], contract)
    tracemalloc.start()
    try:
        shifts = class_mean_shifts(frame, contract, reference)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [s.rows for s in shifts] == [int((frame["y"] == c).sum()) for c in ("a", "b")]
    assert peak < rows * dims * 8  # 32 MB
