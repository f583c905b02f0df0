"""The service's contract check names every rule an instance breaks, not only the first kind.

User trial, 7 December: an instance with an undeclared key (DATA011) and a value outside a
column's allowed values (DATA017) got a 422 naming DATA011 alone: the key and type checks
raised before the contract's own rules ran. The data gate names every violation of a table;
the service now does the same for a request, within ``MAX_ERRORS`` listed errors (the caller
is untrusted) and an exact ``error_count``.
"""

from __future__ import annotations

from typing import Any

import pytest

from gates.service import validate
from gates.service.validate import Problem, served_contract, to_features
from pipeline.config import ColumnRule, load_policy
from tests.conftest import REPO

BASE = load_policy(REPO / "policy.toml").policy.data
CONTRACT = served_contract(
    BASE.model_copy(
        update={
            "columns": {
                "age": ColumnRule(dtype="int64", min=0, max=120),
                "income": ColumnRule(dtype="float64", min=0, nullable=True),
                "city": ColumnRule(dtype="string", allowed=("Paris", "Lyon")),
                "member": ColumnRule(dtype="bool"),
            },
            "id_column": None,
        }
    )
)
GOOD = {"age": 40, "income": None, "city": "Paris", "member": True}


def _problem(instances: list[Any]) -> Problem:
    with pytest.raises(Problem) as caught:
        to_features(instances, CONTRACT)
    assert caught.value.status == 422
    return caught.value


def _named(problem: Problem) -> set[tuple[Any, ...]]:
    return {(e["instance"], e.get("column"), e["rule"]) for e in problem.errors}


def test_a_good_instance_is_served() -> None:
    table = to_features([GOOD], CONTRACT)
    assert list(table.columns) == list(CONTRACT.columns)


def test_an_undeclared_key_and_a_value_outside_allowed_are_both_named() -> None:
    problem = _problem([{**GOOD, "backdoor": 1, "city": "Berlin"}])
    assert _named(problem) == {(0, "'backdoor'", "DATA011"), (0, "city", "DATA017")}
    assert problem.error_count == 2
    outside = next(e for e in problem.errors if e["rule"] == "DATA017")
    assert outside["found"] == "'Berlin'"
    assert "Paris" in outside["expected"]
    assert "2 contract violation(s)" in problem.detail


def test_every_kind_of_break_in_one_request_is_named_with_what_was_found() -> None:
    instances = [
        {**GOOD, "age": "forty", "city": "Berlin"},  # DATA012 and DATA017
        {k: v for k, v in GOOD.items() if k != "member"} | {"age": 300},  # DATA010, DATA016
        {**GOOD, "income": -5.0, "member": "yes"},  # DATA015, DATA012
        "not an object",  # SERVE010
        GOOD,
    ]
    problem = _problem(instances)
    assert _named(problem) == {
        (0, "age", "DATA012"),
        (0, "city", "DATA017"),
        (1, "member", "DATA010"),
        (1, "age", "DATA016"),
        (2, "income", "DATA015"),
        (2, "member", "DATA012"),
        (3, None, "SERVE010"),
    }
    assert problem.error_count == 7
    for error in problem.errors:
        assert error["expected"]
        assert error["found"]
    # A mistyped or absent cell is named once, never again as a null or a range break.
    assert not {e["rule"] for e in problem.errors} & {"DATA013"}


def test_the_list_is_capped_and_the_count_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "MAX_ERRORS", 5)
    bad = {**GOOD, "backdoor": 1, "city": "Berlin", "age": -1}
    problem = _problem([bad] * 4)
    assert len(problem.errors) == 5
    assert problem.error_count == 12
    body = problem.body("request")
    assert body["error_count"] == 12
    assert "12 contract violation(s)" in body["detail"]
    assert "7 more" in body["detail"]
