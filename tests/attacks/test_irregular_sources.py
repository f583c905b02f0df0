"""A source file that is not a file: the lint and sast gates name it instead of waiting on it.

A pull request controls every committed byte, symlinks included: ``pipeline/planted.py`` as a
symlink to a FIFO (or to ``/dev/zero``) is a ``.py`` name every walk lists. ruff and bandit
were handed its folder and read it, waiting until their timeout (900 s for bandit) before the
gate was ERRORED; the gates' own readers (``# noqa`` and ``# nosec`` scans, the unsafe-load
check) would have waited for ever (red team 7, 6 December). Each gate now fails at once,
naming the file, before any tool runs. Run in a child (the project's own code) with a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

_RUN_GATE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gates.base import RunContext
from gates.registry import spec
from pipeline.config import load_policy

root = Path(sys.argv[1])
(root / "reports").mkdir(exist_ok=True)
context = RunContext(policy=load_policy(root / "policy.toml"), run_id="r", reports_dir=root / "reports")
outcome = spec(sys.argv[2]).load().run(context)
print(outcome.status.value)
for finding in outcome.findings:
    print(finding.rule, finding.location.path, finding.message)
"""


@pytest.mark.parametrize(("gate", "rule"), [("lint", "LINT008"), ("sast", "SAST007")])
def test_a_source_that_is_a_symlink_to_a_fifo_fails_the_gate_naming_it(
    project: Any, tmp_path: Path, gate: str, rule: str
) -> None:
    os.mkfifo(tmp_path / "fifo")
    (project.root / "pipeline" / "planted.py").symlink_to(tmp_path / "fifo")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RUN_GATE, str(project.root), gate],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=project.root,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {gate} gate waited on a planted symlink to a FIFO")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "FAILED", done.stdout
    assert f"{rule} pipeline/planted.py pipeline/planted.py: not a regular file" in done.stdout
