"""Reference profiles: what they record, PSI, class shift, and the approve diff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataPolicy
from pipeline.errors import DataError
from pipeline.profile import (
    DataProfile,
    build_profile,
    class_shift,
    column_drift,
    describe_changes,
    parse_profile,
    psi,
)
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
