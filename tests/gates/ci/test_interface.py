"""CiPlan splits the registry at the verdict and refuses registries it cannot render."""

from __future__ import annotations

import pytest

from gates.ci.interface import GENERATED_BY, CiError, CiPlan, header
from gates.registry import GATES, VERDICT, GateSpec


def _spec(name: str, **flags: bool) -> GateSpec:
    return GateSpec(name, "m:C", f"{name}.", **flags)


def test_plan_from_the_registry_ends_its_gates_with_the_verdict():
    plan = CiPlan.from_specs(GATES)
    assert plan.verdict == VERDICT
    assert plan.gates + plan.always == GATES
    assert all(spec.always for spec in plan.always)


def test_plan_with_a_feedback_stage_publishes_the_merged_sarif(future_specs):
    plan = CiPlan.from_specs(future_specs)
    assert [s.name for s in plan.always] == [s.name for s in future_specs if s.always]
    assert plan.has_feedback
    assert plan.sarif == "reports/merged.sarif"


def test_plan_without_feedback_publishes_each_gates_sarif():
    plan = CiPlan.from_specs((_spec("a"), _spec("v", verdict=True)))
    assert not plan.has_feedback
    assert plan.sarif == "reports/*.sarif"


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ((_spec("a"),), "exactly one verdict"),
        ((_spec("a", verdict=True), _spec("b", verdict=True)), "exactly one verdict"),
        ((_spec("a", always=True), _spec("v", verdict=True)), "after the verdict"),
        ((_spec("v", verdict=True), _spec("late")), "after the verdict"),
        ((_spec("bad name"), _spec("v", verdict=True)), "must start with a letter"),
        ((_spec("1st"), _spec("v", verdict=True)), "must start with a letter"),
        (
            (_spec("deploy"), _spec("v", verdict=True)),
            "not one of deploy, rotate, report, ci-config",
        ),
        ((_spec("report"), _spec("v", verdict=True)), "not one of"),
        ((_spec("ci-config"), _spec("v", verdict=True)), "not one of"),
        ((_spec("a"), _spec("a"), _spec("v", verdict=True)), "unique"),
    ],
)
def test_plan_refuses_a_registry_it_cannot_render(specs, expected):
    with pytest.raises(CiError, match=expected):
        CiPlan.from_specs(specs)


@pytest.mark.parametrize("marker", ["#", "//"])
def test_header_says_generated_and_how_to_regenerate(marker):
    lines = header(marker).splitlines()
    assert lines[0] == f"{marker} {GENERATED_BY}"
    assert "python -m gates ci render" in lines[0]
    assert "do not edit" in lines[0]
    assert all(line.startswith(marker) for line in lines)


def test_a_multi_line_summary_cannot_break_out_of_a_comment_or_a_name():
    from gates.ci import render_all

    specs = (
        GateSpec("a", "m:C", 'two\nlines: "quoted"\n  evil: true'),
        GateSpec("v", "m:C", "v.", verdict=True),
    )
    import yaml

    rendered = render_all(specs)
    workflow = yaml.safe_load(rendered[".github/workflows/pipeline.yml"])
    assert workflow["jobs"]["a"]["steps"][-2]["name"] == 'two lines: "quoted" evil: true'
    pipeline = yaml.safe_load(rendered[".gitlab-ci.yml"])
    assert "evil" not in pipeline
    assert "# two lines:" in rendered[".gitlab-ci.yml"]
