"""check_contract's fast numeric parsing (issue 8) decides exactly as pandas' parser does."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.data import _parse_float

CELLS = ["1.5", "+5", ".5", "5.", "1e5", "-0", "inf", "-inf", "nan", "NaN", "Infinity"]
ODD = [" 3", "3 ", "1_000", "0x10", "1,5", "abc", "\uff11\uff12"]  # full-width digits


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_plain_numbers_parse_like_pandas(dtype):
    text = pd.Series(CELLS, dtype=dtype)
    expected = pd.to_numeric(pd.Series(CELLS, dtype=object), errors="coerce").astype("float64")
    pd.testing.assert_series_equal(_parse_float(text), expected, check_names=False)


@pytest.mark.parametrize("odd", ODD)
def test_a_cell_arrow_refuses_falls_back_to_pandas_for_the_column(odd):
    cells = ["1.5", odd, None]
    text = pd.Series(cells, dtype="str")
    expected = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce").astype("float64")
    pd.testing.assert_series_equal(_parse_float(text), expected, check_names=False)


def test_numeric_columns_pass_through_as_float():
    parsed = _parse_float(pd.Series([1, 2, 3], dtype="int64"))
    assert parsed.dtype == "float64"
    assert parsed.tolist() == [1.0, 2.0, 3.0]
