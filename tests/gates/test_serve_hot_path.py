"""The service's request path after the per-request set-up was cut (docs/serving.md, "Where the
time went"): what it no longer does per request must still hold for every request.

- ``FeatureCheck``: the contract's rules are arrays made once at start and shared by every
  request; a clean batch skips ``ContractCheck`` when the small-table screen clears every
  column. Each rule broken alone, in any row, interleaved with clean batches through one
  ``FeatureCheck``, must get the 422 that ``ContractCheck``'s pandas path gives, and nothing a
  request does may change the shared rules.
- ``_risky_numbers`` deletes ``+`` so one search finds ``e000`` and ``e+000``: every exponent
  form the hooks refuse must still send the body to the exact path.
- The model is called on the event loop: every served row must still reach the prediction
  counter, the drift window and the anomaly scorer, and every request the request counter.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import pipeline.data
from gates.service import validate
from gates.service.validate import (
    FeatureCheck,
    Problem,
    instances_of,
    parse_body,
    served_contract,
)
from pipeline.config import load_policy
from tests.conftest import REPO
from tests.pipeline.test_contract_small import _same
from tests.release_support import copy_project
from tests.serve_support import feature_rows, in_process

POLICY = load_policy(REPO / "policy.toml").policy
CONTRACT = served_contract(POLICY.data)
ROW = feature_rows(REPO, 1)[0]
PREDICT = "/v1/models/model:predict"

# One contract that has every numeric rule the screen carries: bounds, nulls (a nullable column
# and the others not), whole numbers, and a unique column (never served, but the screen must
# not clear it).
RULED = CONTRACT.model_copy(
    update={
        "columns": {
            **CONTRACT.columns,
            "mean_radius": CONTRACT.columns["mean_radius"].model_copy(
                update={"dtype": "int64", "min": 1, "max": 40}
            ),
            "mean_texture": CONTRACT.columns["mean_texture"].model_copy(update={"nullable": True}),
            "mean_area": CONTRACT.columns["mean_area"].model_copy(update={"unique": True}),
        }
    }
)
WHOLE_ROW = {**ROW, "mean_radius": 14.0}

# (column, value) that breaks one rule alone; None where the value is fine.
BREAKS: dict[str, tuple[str, Any]] = {
    "clean": ("mean_perimeter", ROW["mean_perimeter"]),
    "below-min": ("mean_perimeter", -1.0),
    "above-max": ("mean_perimeter", 1e9),
    "null-not-nullable": ("mean_perimeter", None),
    "null-nullable": ("mean_texture", None),
    "fraction-in-int64": ("mean_radius", 14.5),
    "int64-below-min": ("mean_radius", 0),
    "int64-above-max": ("mean_radius", 41),
}


def _batch(case: str, rows: int, where: int) -> list[dict[str, Any]]:
    column, value = BREAKS[case]
    batch = [{**WHOLE_ROW, "mean_area": 500.0 + i} for i in range(rows)]
    batch[where] = {**batch[where], column: value}
    return batch


def _outcome(check: Any, instances: list[dict[str, Any]]) -> tuple[Any, ...]:
    try:
        return ("served", check(instances))
    except Problem as problem:
        return ("problem", problem.status, problem.body("request"), problem.error_count)


def _pandas_path(instances: list[dict[str, Any]], contract: Any) -> tuple[Any, ...]:
    """The same instances through ``ContractCheck``'s pandas path (no screen at all)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline.data, "SMALL_TABLE_ROWS", 0)
        return _outcome(FeatureCheck(contract), instances)


def test_one_feature_check_judges_every_request_as_the_pandas_path_does() -> None:
    """Breaks and clean batches interleaved through one ``FeatureCheck`` (as the service holds
    it): each answer is the pandas path's, so no request is cleared by what an earlier one left."""
    unique_free = RULED.model_copy(
        update={
            "columns": {
                **RULED.columns,
                "mean_area": RULED.columns["mean_area"].model_copy(update={"unique": False}),
            }
        }
    )
    shared = FeatureCheck(unique_free)
    seen: set[str] = set()
    for rows, where in ((1, 0), (5, 4), (100, 57)):
        for case in BREAKS:
            for instances in (_batch("clean", rows, where), _batch(case, rows, where)):
                fast = _outcome(shared, instances)
                _same(fast, _pandas_path(instances, unique_free))
                seen.add(fast[0] if case != "clean" else "clean")
            if case not in ("clean", "null-nullable"):
                assert fast[0] == "problem", case
    assert seen == {"served", "problem", "clean"}


BLOCK_BREAKS = {
    "above-max": ("mean_perimeter", 1e9, False),
    "below-min": ("mean_perimeter", -1.0, False),
    "nan-not-nullable": ("mean_perimeter", math.nan, False),
    "nan-nullable": ("mean_texture", math.nan, True),
    "infinite": ("mean_symmetry", math.inf, False),
    "minus-infinite": ("mean_symmetry", -math.inf, False),
    "fraction-in-int64": ("mean_radius", 14.5, False),
    "int64-above-max": ("mean_radius", 41.0, False),
}


@pytest.mark.parametrize("case", sorted(BLOCK_BREAKS))
def test_the_screen_clears_no_block_with_a_broken_rule(case: str) -> None:
    """The screen on its own, on float blocks: a fraction in an int64 column cannot reach it
    through JSON (``_check_instance`` names it first, DATA012), an infinity cannot be parsed;
    the screen must refuse them all the same."""
    from pipeline.data import NumericRules, small_block_clean

    contract = RULED.model_copy(
        update={
            "columns": {
                **RULED.columns,
                "mean_area": RULED.columns["mean_area"].model_copy(update={"unique": False}),
                # unbounded, so only the infinity rule can flag an infinity
                "mean_symmetry": RULED.columns["mean_symmetry"].model_copy(
                    update={"min": None, "max": None}
                ),
            }
        }
    )
    rules = NumericRules.of(list(contract.columns.values()))
    names = list(contract.columns)
    block = np.array([[float(WHOLE_ROW[n]) for n in names]] * 3, dtype="float64")
    assert small_block_clean(block, rules)
    column, value, clean = BLOCK_BREAKS[case]
    block[1, names.index(column)] = value
    assert small_block_clean(block, rules) is clean


def test_a_unique_column_is_never_cleared_by_the_screen() -> None:
    """A repeat in a unique column is ContractCheck's to find (DATA018), screen or not."""
    instances = [WHOLE_ROW, WHOLE_ROW]
    fast = _outcome(FeatureCheck(RULED), instances)
    assert fast[0] == "problem"
    assert fast[2]["errors"][0]["rule"] == "DATA018"
    _same(fast, _pandas_path(instances, RULED))


def test_the_shared_rules_cannot_be_changed_by_a_request() -> None:
    check = FeatureCheck(CONTRACT)
    assert check.numeric is not None
    for array in (check.numeric.low, check.numeric.high, check.numeric.strict):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = np.inf if array.dtype.kind == "f" else False


def test_a_clean_batch_skips_contract_check_and_a_broken_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: the screen really decides (else the tests above could not fail)."""
    built: list[int] = []
    real = pipeline.data.ContractCheck

    def counted(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.data, "ContractCheck", counted)
    check = FeatureCheck(CONTRACT)
    assert len(check([ROW] * 100)) == 100
    assert built == []
    with pytest.raises(Problem):
        check([ROW, {**ROW, "mean_area": -1.0}])
    assert built == [1]


# -- exponents with a plus sign -----------------------------------------------------------------

PLUS_TOKENS = ["1e+999", "1E+999", "-1E+400", "1e+0400", "1E+308", "1e+99", "1e+0099", "2E+3"]


@pytest.mark.parametrize("token", PLUS_TOKENS)
def test_every_plus_exponent_the_hooks_refuse_is_risky(token: str) -> None:
    body = json.dumps({"instances": [{**ROW, "mean_radius": "T"}]}).replace('"T"', token).encode()
    try:
        validate._finite_float(token)
    except Problem:
        assert validate._risky_numbers(body), token
        with pytest.raises(Problem, match="does not fit a 64-bit float"):
            parse_body(body, POLICY.serve)
    else:
        assert math.isfinite(float(token))
        document = instances_of(parse_body(body, POLICY.serve), POLICY.serve)
        assert document[0]["mean_radius"] == float(token)


# -- every served row counted -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("serve-hot") / "project")


def test_every_served_row_reaches_the_counters_the_drift_window_and_the_scorer(
    served_root: Path,
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    rows = feature_rows(served_root, 40)
    sizes = [1, 7, 20, 3, 1]
    with in_process(served_root) as (url, _, _):
        start = 0
        for size in sizes:
            response = httpx.post(url + PREDICT, json={"instances": rows[start : start + size]})
            assert response.status_code == 200
            assert len(response.json()["predictions"]) == size
            start += size
        bad = {**rows[0], "mean_radius": -1.0}
        assert httpx.post(url + PREDICT, json={"instances": [bad, rows[1]]}).status_code == 422
        text = httpx.get(url + "/metrics", timeout=30).text
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def total(family: str, suffix: str = "_total", **labels: str) -> float:
        return sum(
            s.value
            for s in families[family].samples
            if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items())
        )

    served = sum(sizes)
    assert total("gates_serve_predictions") == served
    assert total("gates_serve_anomaly_score", "_count") == served
    assert total("gates_serve_drift_window_rows", "") == served
    assert total("gates_serve_requests", route="predict", status="200") == len(sizes)
    assert total("gates_serve_requests", route="predict", status="422") == 1
    assert total("gates_serve_request_duration_seconds", "_count", route="predict") == 6
