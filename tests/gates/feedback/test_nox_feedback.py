"""Under nox, feedback still runs after a failing gate (notified, not chained by ``requires``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest


def _nox(root, env, *args):
    return subprocess.run(
        [shutil.which("nox") or "nox", *args],
        cwd=root,
        env=env,
        # One stream, as a terminal shows it: nox's log (stderr) and our lines in their order.
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )


def _shared_env(root):
    """``.nox/env`` as the ``env`` session would leave it, built in a fraction of a second.

    A real venv of the interpreter the tests run in, whose site-packages adds the tests' own
    (``site.addsitedir`` in a ``.pth`` file, so their ``.pth`` files count too): they hold
    every package of requirements.lock already. ``nox -R`` reuses it and installs nothing, so
    the test does not pay for building and byte-compiling scikit-learn, pandas and SciPy again.
    """
    location = root / ".nox" / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(location)],
        check=True,
        capture_output=True,
    )
    (site_packages,) = location.glob("lib/python*/site-packages")
    lines = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "tests-shared-env.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in sorted(lines)),
        encoding="utf-8",
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nox") is None, reason="needs nox on PATH")
def test_nox_chain_with_a_failing_gate_still_runs_feedback(tmp_path):
    from tests.project_support import copy_project

    # The whole project (code included: lint, sast and audit run first and must pass).
    root = copy_project(tmp_path / "project")
    policy = root / "policy.toml"
    policy.write_text(policy.read_text().replace("min_mean = 0.93", "min_mean = 0.999"))
    env = {k: v for k, v in os.environ.items() if k not in ("GATES_RUN_ID", "PYTHONPATH")}
    _shared_env(root)
    done = _nox(root, env, "-R", "-s", "train", "gate")
    log = done.stdout
    assert done.returncode == 1, log
    assert "Session cv failed" in log
    assert "Session gate aborted" in log
    assert "Session feedback was successful" in log
    feedback = json.loads((root / "reports" / "feedback.json").read_text())
    assert feedback["status"] == "PASSED"
    assert feedback["metrics"]["verdict"] == "FAILED"
    assert (root / "history" / "runs.jsonl").read_text().count("\n") == 1
    # Every gate session that ran (lint to cv, then feedback) went to the one warm worker.
    assert log.count("(warm worker;") == 7, log
    # After feedback and nox's summary: the warnings, then the verdict naming where it stopped.
    tail = log.rstrip().splitlines()
    assert tail[-1].startswith("verdict: FAILED: cv FAILED: 1 check(s) missed"), tail[-3:]
    assert tail[-1].endswith(f"report: {root / 'reports' / 'report.html'})"), tail[-1]
    assert not any(line.startswith("warning: artifacts: ART010") for line in tail)  # never ran
    assert log.index("nox > Ran ") < log.index(tail[-1])

    # Restored, with one interpreter per session instead of the worker: the verdict is the
    # same, and the outcomes the worker's run stored are reused by separate processes.
    policy.write_text(policy.read_text().replace("min_mean = 0.999", "min_mean = 0.93"))
    again = _nox(root, {**env, "GATES_NOX_WORKER": "0"}, "-R", "-s", "train", "gate")
    log = again.stdout
    assert again.returncode == 0, log
    assert "warm worker" not in log
    last = log.rstrip().splitlines()[-1]
    assert last.startswith("verdict: PASSED (run "), last
    # The development key's warning reaches the console, before the verdict.
    assert "warning: artifacts: ART010 signed with a DEVELOPMENT key" in log
    # The policy changed, so nothing is reused from the failed run; a third run reuses all.
    assert "reused from run" not in log
