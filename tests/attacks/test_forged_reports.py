"""Planted attack: reports and artifacts committed to the pull request itself.

A gate trusts a report of this run; the run id is all that says "this run". CI run ids are
counters (``jenkins-<job>-<build>``, ``gitlab-<pipeline>``), so a pull request can commit
(``git add -f``) a PASSED report of every gate under the next id, with the input digests of its
own files. The verdict then PASSED with no gate having run in the run: the label flips below
were never screened. A file committed to the artifacts folder would be signed beside the model.

Each case must be refused before any gate runs, naming the committed file.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

GIT = shutil.which("git")
PREDICTED = "jenkins-project-PR-7-3"
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> None:
    assert GIT is not None
    command = [GIT, "-c", "user.email=pr@example.invalid", "-c", "user.name=pr", *args]
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)


def _commit(root: Path, *forced: str) -> None:
    """A checkout of the project that ignores what the real .gitignore ignores, plus ``forced``."""
    (root / ".gitignore").write_text(
        "reports/\nartifacts/\nregistry/\nhistory/\n.keys/\n.cache/\n", encoding="utf-8"
    )
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    if forced:  # what the pull request commits on purpose (git add -f)
        _git(root, "add", "-f", *forced)
    _git(root, "commit", "-q", "-m", "pull request")


def _forge(project: Any) -> None:
    """Flip labels, then rewrite every report to the predicted run and today's inputs."""
    from gates.inputs import input_digests
    from pipeline.fsio import sha256_file

    root: Path = project.root
    lines = project.data_path.read_text(encoding="utf-8").splitlines(keepends=True)
    swapped = {"benign": "malignant", "malignant": "benign"}
    for index in range(1, 61):
        cells = lines[index].rstrip("\n").split(",")
        cells = [swapped.get(cell, cell) for cell in cells]
        lines[index] = ",".join(cells) + "\n"
    project.data_path.write_text("".join(lines), encoding="utf-8")
    inputs = input_digests(project.load())
    for path in (root / "reports").glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or "run_id" not in document:
            continue
        document["run_id"] = PREDICTED
        if "inputs" in document:
            document["inputs"] = inputs
        if document.get("gate") == "artifacts":
            document["artifacts"] = {
                rel: sha256_file(root / rel)
                for rel in document["artifacts"]
                if (root / rel).is_file()
            }
        path.write_text(json.dumps(document), encoding="utf-8")


def _verdict(project: Any) -> Any:
    from gates.runner import run_chain

    return run_chain(
        ["gate"], policy=project.load(), reports_dir=project.root / "reports", out=io.StringIO()
    )


@pytest.mark.parametrize("folder", ["reports", "artifacts"])
def test_committed_reports_or_artifacts_are_refused(
    passed_project: Any, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    from gates.errors import GatesError

    root = passed_project.root
    _forge(passed_project)
    _commit(root, folder)
    monkeypatch.setenv("GATES_RUN_ID", PREDICTED)
    with pytest.raises(GatesError) as refused:
        _verdict(passed_project)
    message = str(refused.value)
    assert message.startswith(f"{folder}/")
    assert "committed to the repository" in message


def test_the_same_files_untracked_still_judge(
    passed_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the forged run is only the attack when git delivers it; left untracked (a
    local run's own folders) the verdict runs as before."""
    root = passed_project.root
    _forge(passed_project)
    _commit(root)
    monkeypatch.setenv("GATES_RUN_ID", PREDICTED)
    summary = _verdict(passed_project)
    assert [r.gate for r in summary.results] == ["gate"]


def test_a_checkout_git_cannot_read_is_refused_not_trusted(
    passed_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: where git cannot tell what the commit holds (here GIT_DIR names no
    repository; in CI a checkout git refuses as of dubious ownership), committed reports could
    not be told from this run's, so the run refuses rather than reading them."""
    from gates.errors import GatesError

    root = passed_project.root
    _forge(passed_project)
    _commit(root, "reports")
    monkeypatch.setenv("GATES_RUN_ID", PREDICTED)
    monkeypatch.setenv("GIT_DIR", str(root / "no-such-repository"))
    with pytest.raises(GatesError, match="git cannot read the checkout"):
        _verdict(passed_project)
