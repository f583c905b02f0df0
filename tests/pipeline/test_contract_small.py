"""Issue 18: the contract's small-table path (numpy on a few rows) equals its pandas path.

One set of rules, two evaluation strategies: ``ContractCheck`` checks tables of at most
``SMALL_TABLE_ROWS`` rows with numpy for their plain numeric columns. Here every planted
request of ``tests/attacks/test_serving.py`` and random tables (hypothesis) go through both
paths (``small_table_rows=0`` / ``SMALL_TABLE_ROWS = 0`` forces the pandas one) and must give
the same findings, messages, rows, counts and converted table.
"""

from __future__ import annotations

import importlib.util
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.data
from gates.service.validate import Problem, instances_of, parse_body, served_contract, to_features
from pipeline.config import ColumnRule, load_policy
from pipeline.data import ContractCheck
from tests.conftest import REPO
from tests.serve_support import feature_rows


def _serving_cases() -> dict[str, Any]:
    path = REPO / "tests" / "attacks" / "test_serving.py"
    spec = importlib.util.spec_from_file_location("serving_attack_cases", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.CASES)


CASES = _serving_cases()
POLICY = load_policy(REPO / "policy.toml").policy
CONTRACT = served_contract(POLICY.data)
ROW = feature_rows(REPO, 1)[0]


def _more_cases() -> dict[str, bytes]:
    """Contract breaks the attack cases do not all reach, as request bodies."""

    def doc(*rows: dict[str, Any]) -> bytes:
        return json.dumps({"instances": list(rows)}).encode()

    return {
        "valid-row": doc(ROW),
        "bounds": doc({**ROW, "mean_area": 5002, "mean_radius": 0}),
        "above-max-third-row": doc(ROW, ROW, {**ROW, "mean_area": 1e9}),
        "below-min": doc({**ROW, "mean_radius": -0.5}),
        "null": doc({**ROW, "mean_texture": None}),
        "many-rows-many-breaks": doc(
            *[{**ROW, "mean_area": 6000.0 + i, "mean_radius": -float(i)} for i in range(12)]
        ),
        "string-number": doc({**ROW, "mean_radius": "1e999"}),
        "hundred-rows": doc(*[ROW] * 100),
    }


def _outcome(body: bytes) -> tuple[Any, ...]:
    try:
        instances = instances_of(parse_body(body, POLICY.serve), POLICY.serve)
        frame = to_features(instances, CONTRACT)
    except Problem as problem:
        return ("problem", problem.status, problem.body("request"), problem.error_count)
    return ("served", frame)


def _same(left: tuple[Any, ...], right: tuple[Any, ...]) -> None:
    assert left[0] == right[0], (left, right)
    if left[0] == "served":
        pd.testing.assert_frame_equal(left[1], right[1], check_exact=True)
    else:
        assert left == right


BODIES = {
    **{f"attack-{name}": case[0] for name, case in CASES.items()},
    **{name: (lambda _row, body=body: body) for name, body in _more_cases().items()},
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_every_planted_request_gets_the_same_answer_on_both_paths(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = BODIES[case](ROW)
    calls: list[int] = []
    # The numpy path: its whole-block screen, then the rules of the columns it flags.
    for name in ("_suspect_columns", "_numeric_small"):
        real = getattr(pipeline.data, name)

        def counted(*args: Any, real: Any = real, **kwargs: Any) -> Any:
            calls.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(pipeline.data, name, counted)
    small = _outcome(body)
    reached = bool(calls)
    monkeypatch.setattr(pipeline.data, "SMALL_TABLE_ROWS", 0)
    calls.clear()
    large = _outcome(body)
    assert not calls, "SMALL_TABLE_ROWS = 0 must force the pandas path"
    _same(small, large)
    if case in _more_cases() and case != "string-number":  # that one stops at the JSON types
        assert reached, f"{case}: the contract (numpy path) was never reached"


# -- random tables ------------------------------------------------------------------------------

RULES = {
    "bounded": ColumnRule(dtype="float64", min=0.0, max=10.0),
    "count": ColumnRule(dtype="int64", min=1, max=1000, nullable=True),
    "free": ColumnRule(dtype="float64", nullable=True),
    "key": ColumnRule(dtype="int64", unique=True, nullable=True),
    "kind": ColumnRule(dtype="string", allowed=["a", "b"], nullable=True),
}
RANDOM_CONTRACT = POLICY.data.model_copy(update={"columns": RULES, "id_column": None})

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-5, max_value=1005).map(float),
    st.sampled_from([0.0, 10.0, -0.0, 1.0, 1000.0, 1000.5, 10.000001, -1e-300, 2.5]),
)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(min_value=1, max_value=25))
    columns: dict[str, Any] = {}
    for name in ("bounded", "count", "free", "key"):
        values = draw(st.lists(NUMBERS, min_size=rows, max_size=rows))
        whole = all(math.isfinite(v) and v == int(v) and abs(v) < 2**53 for v in values)
        # Integer columns arrive as int64 when every value is whole (a Parquet int column).
        if whole and draw(st.booleans()):
            columns[name] = np.array(values, dtype="int64")
        else:
            columns[name] = np.array(values, dtype="float64")
    columns["kind"] = pd.Series(
        draw(st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=rows, max_size=rows)),
        dtype=object,
    )
    return pd.DataFrame(columns)


def _check(chunks: list[pd.DataFrame], small_table_rows: int) -> tuple[Any, ...]:
    check = ContractCheck(RANDOM_CONTRACT, require_label=False, small_table_rows=small_table_rows)
    start = 0
    converted = []
    for chunk in chunks:
        converted.append(check.add(chunk.reset_index(drop=True), start=start))
        start += len(chunk)
    return check.violations(), check.failed, converted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), split=st.integers(min_value=0, max_value=25))
def test_random_tables_give_the_same_findings_and_table_on_both_paths(
    table: pd.DataFrame, split: int
) -> None:
    chunks = [table.iloc[:split], table.iloc[split:]] if 0 < split < len(table) else [table]
    small_violations, small_failed, small_frames = _check(chunks, 1024)
    large_violations, large_failed, large_frames = _check(chunks, 0)
    assert small_violations == large_violations
    assert small_failed == large_failed
    for small, large in zip(small_frames, large_frames, strict=True):
        pd.testing.assert_frame_equal(small, large, check_exact=True)


# One rule broken alone in a column whose other values are clean: the numpy path's whole-block
# screen (``_suspect_columns``) must send that column to its rules, never skip it as clean.
ALONE = {
    "clean": {},
    "whole": {"count": 2.5},
    "min": {"bounded": -0.5, "count": 0.0},
    "max": {"bounded": 10.5, "count": 1001.0},
    "infinite": {"free": math.inf},
    "minus-infinite": {"free": -math.inf},
    "null-not-nullable": {"bounded": math.nan},
    "null-nullable": {"count": math.nan, "free": math.nan},
    "repeat-unique": {"key": 0.0},
}


@pytest.mark.parametrize("case", sorted(ALONE))
def test_each_rule_broken_alone_is_seen_on_both_paths(case: str) -> None:
    rows = [
        {"bounded": 1.0, "count": 5.0, "free": 2.0, "key": float(i), "kind": "a"} for i in range(3)
    ]
    rows[1] = {**rows[1], **ALONE[case]}
    table = pd.DataFrame(rows)
    small_violations, small_failed, small_frames = _check([table], 1024)
    large_violations, large_failed, large_frames = _check([table], 0)
    assert small_violations == large_violations
    assert small_failed == large_failed == (case not in ("clean", "null-nullable"))
    pd.testing.assert_frame_equal(small_frames[0], large_frames[0], check_exact=True)


def test_the_paths_really_differ_in_what_they_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: a broken numpy rule is seen by the comparison (the test can fail)."""
    table = pd.DataFrame(
        {"bounded": [11.0], "count": [5], "free": [1.0], "key": [1], "kind": ["a"]}
    )
    real = pipeline.data._numeric_small

    def no_max(raw: Any, rule: ColumnRule, tally: Any, start: int) -> Any:
        return real(raw, rule.model_copy(update={"max": None}), tally, start)

    monkeypatch.setattr(pipeline.data, "_numeric_small", no_max)
    small_violations, _, _ = _check([table], 1024)
    large_violations, _, _ = _check([table], 0)
    assert [v.rule for v in large_violations] == ["DATA016"]
    assert small_violations != large_violations


def test_a_table_over_the_threshold_takes_the_pandas_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(pipeline.data, "_numeric_small", lambda *a: calls.append(1))
    table = pd.DataFrame(
        {
            "bounded": [1.0] * 3,
            "count": [5] * 3,
            "free": [1.0] * 3,
            "key": [1, 2, 3],
            "kind": ["a"] * 3,
        }
    )
    ContractCheck(RANDOM_CONTRACT, require_label=False, small_table_rows=2).add(table)
    assert calls == []
