"""The replayed supply-chain gates: the real outcome on the same code, the real tool otherwise."""

from __future__ import annotations

import json

from gates.base import RunContext, Status
from gates.cache import compute_key
from gates.registry import spec
from gates.runner import input_digests
from pipeline.fsio import sha256_file
from tests.chain_support import SUPPLY_CHAIN, ReplayedSpec, replaying


def _replayed(project, name):
    return project.report(name)["summary"].startswith("replayed: ")


def test_an_unchanged_copy_replays_the_recorded_outcome_and_its_files(project, recorded_chain):
    recorded, _ = recorded_chain
    summary = project.run("data")
    assert summary.results[0].status is Status.PASSED
    for name in SUPPLY_CHAIN:
        report = project.report(name)
        original = json.loads((recorded / "reports" / f"{name}.json").read_text())
        assert report["summary"] == f"replayed: {original['summary']}"
        assert report["findings"] == original["findings"]
        assert report["artifacts"] == original["artifacts"]
        for rel, digest in report["artifacts"].items():  # the native reports, byte for byte
            assert sha256_file(project.root / rel) == digest
    # The ML tables are not read by lint, sast or audit: a change there still replays.
    project.edit_policy(**{"cv.folds": 4})
    project.run("lint", replay=("lint",))
    assert _replayed(project, "lint")


def test_changed_code_runs_the_real_tool(project):
    planted = project.root / "pipeline" / "planted.py"
    planted.write_text("import os;x=1\n", encoding="utf-8")
    result = project.run("lint", replay=("lint",)).results[0]
    assert result.status is Status.FAILED
    assert not _replayed(project, "lint")
    assert "pipeline/planted.py" in result.summary


def test_a_changed_supply_chain_table_runs_the_real_tool(project):
    project.edit_policy(**{"lint.paths": ["pipeline"]})
    result = project.run("lint", replay=("lint",)).results[0]
    assert result.status is Status.PASSED
    assert not _replayed(project, "lint")
    assert "in pipeline" in result.summary


def test_a_patched_real_run_is_what_runs(project, monkeypatch):
    from gates.base import Outcome
    from gates.lint import LintGate

    monkeypatch.setattr(
        LintGate, "run", lambda self, context: Outcome(status=Status.FAILED, summary="patched")
    )
    result = project.run("lint", replay=("lint",)).results[0]
    assert result.summary == "patched"


def test_a_replayed_gate_has_the_cache_key_of_the_registered_one(project, recorded_chain):
    run_id = project.run("data").run_id
    policy = project.load()
    context = RunContext(policy=policy, run_id=run_id, reports_dir=project.root / "reports")
    inputs = input_digests(policy)
    for replayed in replaying(recorded_chain[0]):
        if isinstance(replayed, ReplayedSpec):
            real = spec(replayed.name)
            assert type(replayed.load()).__mro__[1] is type(real.load())
            assert (
                compute_key(replayed, context, inputs).digest
                == compute_key(real, context, inputs).digest
            )
