"""Issue 18 speed: the service's whole-batch checks refuse and accept exactly what the per-value
checks do.

``parse_body`` lets the C scanner make the numbers unless ``_risky_numbers`` sees a token that
might overflow or carry over 19 digits (then ``_finite_float``/``_bounded_int`` judge each
token), and measures depth level by level over the containers. ``to_features`` checks a batch
whole (``_rows_if_well_typed``) and falls back to ``_check_instance`` per instance when anything
is off. Each case goes through both (the per-value path forced) and must get the same problem
document, error count, or the same table.
"""

from __future__ import annotations

import importlib.util
import json
import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gates.service import validate
from gates.service.validate import Problem, instances_of, parse_body, served_contract, to_features
from pipeline.config import load_policy
from tests.conftest import REPO
from tests.serve_support import feature_rows

POLICY = load_policy(REPO / "policy.toml").policy
CONTRACT = served_contract(POLICY.data)
ROW = feature_rows(REPO, 1)[0]
COLUMN = "mean_radius"


def _serving_cases() -> dict[str, Any]:
    path = REPO / "tests" / "attacks" / "test_serving.py"
    spec = importlib.util.spec_from_file_location("serving_attack_cases_fast", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.CASES)


# Number tokens at the edges of the fast path: each must be judged as the per-token hooks judge it.
NUMBER_TOKENS = [
    "1e999",
    "1E999",
    "1e+999",
    "-1e400",
    "1e0400",
    "1.5e308",
    "1.8e308",
    "1e308",
    "1e-999",
    "1e99",
    "9" * 19,
    "-" + "9" * 19,
    "9" * 20,
    "-" + "9" * 20,
    "1" + "0" * 400,
    "0." + "0" * 30 + "1",
    "1" * 19 + ".5e99",
    "12.5",
    "17",
]


def _with_value(token: str, *, key: str = COLUMN) -> bytes:
    """A one-instance body whose ``key`` holds the raw JSON ``token``."""
    return (
        json.dumps({"instances": [{**ROW, key: "__TOKEN__"}]})
        .replace('"__TOKEN__"', token)
        .encode()
    )


def _bodies() -> dict[str, bytes]:
    bodies = {f"attack-{name}": case[0](ROW) for name, case in _serving_cases().items()}
    for token in NUMBER_TOKENS:
        bodies[f"number-{token[:24]}"] = _with_value(token)
        bodies[f"undeclared-{token[:24]}"] = _with_value(token, key="backdoor")
        bodies[f"top-level-{token[:24]}"] = f'{{"instances": [], "x": {token}}}'.encode()
        bodies[f"in-string-{token[:24]}"] = json.dumps(
            {"instances": [{**ROW, COLUMN: token}]}
        ).encode()
    rows = [ROW] * 100
    bodies["hundred-rows"] = json.dumps({"instances": rows}).encode()
    bodies["hundred-rows-one-bool"] = json.dumps(
        {"instances": [*rows[:99], {**ROW, COLUMN: False}]}
    ).encode()
    bodies["hundred-rows-one-missing"] = json.dumps(
        {"instances": [*rows[:99], {k: v for k, v in ROW.items() if k != COLUMN}]}
    ).encode()
    bodies["int-values"] = json.dumps(
        {"instances": [{k: round(v) for k, v in ROW.items()}]}
    ).encode()
    bodies["nested-list-value"] = json.dumps({"instances": [{**ROW, COLUMN: [[[1]]]}]}).encode()
    bodies["object-value"] = json.dumps({"instances": [{**ROW, COLUMN: {"a": 1}}]}).encode()
    bodies["instance-is-list"] = json.dumps({"instances": [list(ROW.values())]}).encode()
    bodies["depth-8"] = b'{"instances": [[[[[[[1]]]]]]]}'
    bodies["depth-9"] = b'{"instances": [[[[[[[[1]]]]]]]]}'
    bodies["depth-9-in-object"] = (
        b'{"instances": [{"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}]}'
    )
    return bodies


BODIES = _bodies()


def _outcome(body: bytes) -> tuple[Any, ...]:
    try:
        instances = instances_of(parse_body(body, POLICY.serve), POLICY.serve)
        frame = to_features(instances, CONTRACT)
    except Problem as problem:
        return ("problem", problem.status, problem.body("request"), problem.error_count)
    return ("served", frame)


def _per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the per-token number hooks and the per-instance checks (the code before the fast paths)."""
    monkeypatch.setattr(validate, "_risky_numbers", lambda raw: True)
    monkeypatch.setattr(validate, "_rows_if_well_typed", lambda instances, contract: None)


def _same(fast: tuple[Any, ...], slow: tuple[Any, ...]) -> None:
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "served":
        pd.testing.assert_frame_equal(fast[1], slow[1], check_exact=True)
    else:
        assert fast == slow


@pytest.mark.parametrize("case", sorted(BODIES))
def test_every_body_gets_the_same_answer_as_with_the_per_value_checks(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _outcome(BODIES[case])
    _per_value(monkeypatch)
    _same(fast, _outcome(BODIES[case]))


@pytest.mark.parametrize("token", NUMBER_TOKENS)
def test_a_token_the_hooks_refuse_is_always_seen_as_risky(token: str) -> None:
    """The guard is sound: whatever ``_finite_float`` or ``_bounded_int`` refuses is risky."""
    hook = validate._finite_float if any(c in token for c in ".eE") else validate._bounded_int
    try:
        hook(token)
    except Problem:
        assert validate._risky_numbers(f'{{"a": [{token}]}}'.encode()), token
    else:
        assert math.isfinite(float(token))


def test_the_fast_paths_are_taken_for_a_clean_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: a clean batch of 100 never runs the per-value checks."""
    calls: list[str] = []
    monkeypatch.setattr(validate, "_check_instance", lambda *a: calls.append("instance"))
    monkeypatch.setattr(validate, "_finite_float", lambda t: calls.append("float"))
    monkeypatch.setattr(validate, "_bounded_int", lambda t: calls.append("int"))
    outcome = _outcome(BODIES["hundred-rows"])
    assert outcome[0] == "served"
    assert len(outcome[1]) == 100
    assert calls == []


# -- random documents ---------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='0123456789eE+-.[]{}" ab\\', max_size=30),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=25,
)


def _reference_depth(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + max((_reference_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((_reference_depth(v) for v in node), default=0)
    return 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCUMENTS, limit=st.integers(min_value=0, max_value=6))
def test_depth_by_levels_equals_the_recursive_depth(document: Any, limit: int) -> None:
    assert validate._depth(document, limit) == min(_reference_depth(document), limit + 1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=DOCUMENTS,
    token=st.sampled_from(NUMBER_TOKENS),
    where=st.sampled_from(["none", "front", "back"]),
)
def test_random_documents_parse_the_same_on_both_paths(
    document: Any, token: str, where: str
) -> None:
    text = json.dumps(document)
    text = {"none": text, "front": f"[{token}, {text}]", "back": f'{{"k": {text}, "n": {token}}}'}[
        where
    ]
    body = text.encode()

    def parsed(**hooks: Any) -> Any:
        try:
            return ("document", parse_body(body, POLICY.serve))
        except Problem as problem:
            return ("problem", problem.status, problem.detail)

    fast = parsed()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validate, "_risky_numbers", lambda raw: True)
        slow = parsed()
    assert fast == slow


NUMBER_OR_NOT = st.one_of(
    st.floats(min_value=0, max_value=60, allow_nan=False),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.just([1.0]),
    st.just({"a": 1.0}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=4),
            st.sampled_from([COLUMN, "mean_area", "worst_area", "backdoor"]),
            st.one_of(NUMBER_OR_NOT, st.just("<absent>")),
        ),
        max_size=4,
    ),
    count=st.integers(min_value=1, max_value=5),
    not_object=st.booleans(),
)
def test_random_batches_get_the_same_answer_on_both_paths(
    changes: list[tuple[int, str, Any]], count: int, not_object: bool
) -> None:
    instances: list[Any] = [dict(ROW) for _ in range(count)]
    for index, column, value in changes:
        if index < count:
            if value == "<absent>":
                instances[index].pop(column, None)
            else:
                instances[index][column] = value
    if not_object:
        instances[-1] = list(instances[-1].values())
    body = json.dumps({"instances": instances}).encode()
    fast = _outcome(body)
    with pytest.MonkeyPatch.context() as patch:
        _per_value(patch)  # type: ignore[arg-type]
        slow = _outcome(body)
    _same(fast, slow)


INT_CONTRACT = CONTRACT.model_copy(
    update={
        "columns": {
            **CONTRACT.columns,
            COLUMN: CONTRACT.columns[COLUMN].model_copy(update={"dtype": "int64", "max": 2.0**60}),
        }
    }
)
WHOLE_VALUES = {
    "whole-int": 14,
    "whole-float": 14.0,
    "fraction": 14.5,
    "two-pow-53": 2**53,
    "two-pow-53-plus-one": 2**53 + 1,
    "two-pow-53-plus-one-negative": -(2**53 + 1),
    "two-pow-53-float": 2.0**53,
    "two-pow-53-plus-two-float": 2.0**53 + 2,
    "nineteen-digits": 10**18,
    "bool": True,
    "null": None,
}


@pytest.mark.parametrize("case", sorted(WHOLE_VALUES))
def test_an_int64_column_gets_the_same_answer_on_both_paths(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = [{**ROW, COLUMN: 18}, {**ROW, COLUMN: WHOLE_VALUES[case]}]

    def outcome() -> tuple[Any, ...]:
        try:
            return ("served", to_features(instances, INT_CONTRACT))
        except Problem as problem:
            return ("problem", problem.status, problem.body("request"), problem.error_count)

    fast = outcome()
    _per_value(monkeypatch)
    slow = outcome()
    _same(fast, slow)
    assert fast[0] == (
        "served"
        if case in ("whole-int", "whole-float", "two-pow-53", "two-pow-53-float")
        else "problem"
    )
