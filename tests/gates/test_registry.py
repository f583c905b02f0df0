"""The registry is the one ordered list: unique names, loadable classes, nox derived from it."""

from __future__ import annotations

import pytest

from gates.base import Gate, Status
from gates.registry import GATES, NAMES, VERDICT, GateSpec, _check, checked_before, spec
from tests.conftest import exec_noxfile


def test_every_spec_loads_a_gate_with_its_registered_name():
    for entry in GATES:
        gate = entry.load()
        assert isinstance(gate, Gate)
        assert gate.name == entry.name
        assert gate.description


def test_issue_order_of_the_spine():
    spine = [name for name in NAMES if name in {"data", "train", "cv", "artifacts", "gate"}]
    assert spine == ["data", "train", "cv", "artifacts", "gate"]
    assert VERDICT.name == "gate"


def test_duplicate_names_and_verdict_rules_are_errors():
    one = GateSpec("a", "m:A", "a")
    verdict = GateSpec("v", "m:V", "v", verdict=True)
    with pytest.raises(ValueError, match="registered twice"):
        _check((one, one, verdict))
    with pytest.raises(ValueError, match="exactly one verdict"):
        _check((one,))
    with pytest.raises(ValueError, match="after the verdict"):
        _check((verdict, one))


def test_unknown_gate_lookup_names_the_known_ones():
    with pytest.raises(KeyError, match=r"expected one of: .*data"):
        spec("nope")


def test_prerequisites_are_every_earlier_checking_gate():
    assert [s.name for s in checked_before("cv")] == list(NAMES[: NAMES.index("cv")])
    assert VERDICT not in checked_before(NAMES[-1])


def test_every_status_has_a_truth_value():
    assert [bool(status) for status in Status] == [s is Status.PASSED for s in Status]


def test_nox_sessions_follow_the_registry():
    import nox.registry

    exec_noxfile("noxfile_under_test")
    sessions = nox.registry.get()
    previous = "env"
    for entry in GATES:
        assert sessions[entry.name].__doc__ == entry.summary
        if entry.always:
            # Runs whether the gates passed or not: notified by every gate, required by none.
            assert sessions[entry.name].requires == ["env"]
            continue
        assert sessions[entry.name].requires == [previous]
        previous = entry.name
