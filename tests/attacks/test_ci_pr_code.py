"""Planted attack: the pull request's own code run before the gates, in their workspace.

Jenkins runs every stage of a build in one workspace and one ``.venv``. Its ``tests`` stage runs
``nox -s tests`` (the pull request's noxfile and tests) before the gate stages, so a test could
drop a ``.pth`` file into ``.venv``'s site-packages, which Python runs at every start even under
``python -I``: the tools the gates run isolated (bandit, pip-audit, ruff) and the libraries
they trust would be the pull request's. ``python3 -m venv .venv`` on an existing folder kept
whatever an earlier build's code left there. Shown below with a real interpreter.

The rendered Jenkinsfile must run the checks only after the last gate, and make the venv anew.
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
import venv
from pathlib import Path


def _jenkinsfile() -> str:
    from gates.ci.interface import CiPlan
    from gates.ci.jenkins import JenkinsRenderer

    return JenkinsRenderer().render(CiPlan.from_specs())


def test_a_pth_file_in_the_venv_runs_under_python_isolated(tmp_path: Path) -> None:
    """Why the order matters: -I does not stop site-packages' .pth files."""
    venv.create(tmp_path / "v", with_pip=False)
    python = tmp_path / "v" / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "planted.pth").write_text(
        "import sys; sys.stderr.write('planted code ran\\n')\n", encoding="utf-8"
    )
    ran = subprocess.run([python, "-I", "-c", "pass"], capture_output=True, text=True, check=True)
    assert "planted code ran" in ran.stderr
    assert sysconfig.get_paths()["purelib"] != purelib  # not this interpreter's


def test_jenkins_runs_the_pull_requests_code_after_every_gate() -> None:
    """Its tests run after the last gate of the gates' workspace, and the verdict runs in a
    workspace of its own (test_jenkins.py checks that one is fresh)."""
    from gates.ci.interface import CHECKS, CiPlan

    text = _jenkinsfile()
    plan = CiPlan.from_specs()
    last_gate = text.index(f"stage('{plan.cached[-1].name}')")
    verdict = text.index(f"\n        stage('{plan.verdict.name}') {{")
    for name, command, _ in CHECKS:
        stage = text.index(f"stage('{name}')")
        assert stage > last_gate, f"stage {name} ({command}) runs before gate {plan.cached[-1]}"
        assert stage < verdict, f"stage {name} ({command}) is not in the gates' workspace"


def test_jenkins_makes_the_venv_anew_every_build() -> None:
    text = _jenkinsfile()
    install = text[text.index("stage('install')") : text.index("stage('ci-config')")]
    assert re.search(r"python3 -m venv --clear \.venv", install), install
