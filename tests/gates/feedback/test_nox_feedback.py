"""Under nox, feedback still runs after a failing gate (notified, not chained by ``requires``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nox") is None, reason="needs nox on PATH")
def test_nox_chain_with_a_failing_gate_still_runs_feedback(tmp_path):
    from tests.project_support import copy_project

    # The whole project (code included: lint, sast and audit run first and must pass).
    root = copy_project(tmp_path / "project")
    policy = root / "policy.toml"
    policy.write_text(policy.read_text().replace("min_mean = 0.93", "min_mean = 0.999"))
    env = {k: v for k, v in os.environ.items() if k not in ("GATES_RUN_ID", "PYTHONPATH")}
    done = subprocess.run(
        [shutil.which("nox") or "nox", "-s", "train", "gate"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert "Session cv failed" in log
    assert "Session gate aborted" in log
    assert "Session feedback was successful" in log
    feedback = json.loads((root / "reports" / "feedback.json").read_text())
    assert feedback["status"] == "PASSED"
    assert feedback["metrics"]["verdict"] == "FAILED"
    assert (root / "history" / "runs.jsonl").read_text().count("\n") == 1
