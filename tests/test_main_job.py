"""The real main job on the embedded data, as a user runs it: red when it should be, green again."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_main_job_passes_turns_red_on_one_byte_and_green_when_restored(passed_project, gates_cli):
    # A clone on which the main job passed once (its gate cache kept, as CI keeps it); the
    # whole chain from scratch through the CLI is test_cache's ``--no-cache`` run.
    project = passed_project
    green = gates_cli(project.root, "run")
    assert green.returncode == 0, green.stdout + green.stderr
    assert "verdict: PASSED" in green.stdout

    original = project.data_path.read_bytes()
    flipped = bytearray(original)
    flipped[1000] = ord("7") if flipped[1000] != ord("7") else ord("6")
    project.data_path.write_bytes(bytes(flipped))
    red = gates_cli(project.root, "run")
    assert red.returncode == 1
    assert "DATA001" in red.stdout
    assert "differs from the approved" in red.stdout
    assert "verdict: FAILED" in red.stdout

    project.data_path.write_bytes(original)
    again = gates_cli(project.root, "run")
    assert again.returncode == 0, again.stdout


def test_main_job_turns_red_on_an_unreachable_threshold_and_green_when_restored(
    passed_project, gates_cli
):
    # A clone on which the main job passed once (its gate cache kept, as CI keeps it).
    project = passed_project
    policy = project.policy_path.read_text()
    project.edit_policy(**{"cv.thresholds.roc_auc.min_holdout": 0.9999})
    red = gates_cli(project.root, "run")
    assert red.returncode == 1
    assert "CV004 roc_auc holdout" in red.stdout
    assert "[cv.thresholds.roc_auc].min_holdout" in red.stdout

    project.policy_path.write_text(policy)
    assert gates_cli(project.root, "run").returncode == 0
