"""Hostile JSON in the three report readers row 54's sweep left (leftovers, 6 December).

``reports/run.json`` (read when a later gate joins a run: ``gates.runner.resolve_run_id``), the
verdict's report read by ``python -m gates ci dotenv`` (``gates.ci.dotenv``) and the reports
the noxfile's closing lines read (``gates.closing``, in nox's own interpreter at exit) were
parsed with ``json.loads(path.read_text())``: nesting 200,000 deep raised RecursionError, a
100,001-digit number ValueError (neither a JSONDecodeError), both tracebacks; a symlink to a
FIFO hung them and one to ``/dev/zero`` or a 3 GiB sparse file read memory until it ran out.
A committed report is refused (rows 21, 44), but the pull request's own code runs in the
same workspace (the train gate, the tests) and can write them there. Each form is planted here in a child
with a timeout and a 3 GiB address space (``test_hostile_json.py``'s forms). Now: read as a
regular file of at most 16 MiB, nesting and huge numbers an unparsable report: ``run`` exits 2
naming the file, ``ci dotenv`` exports ``GATES_VERDICT=MISSING`` (its contract for an
unparsable verdict), the closing lines read no run or no verdict.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hostile_support import FORMS, run_child
from tests.project_support import REPO

_CHILD = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(os.environ["HOSTILE_AS"]),) * 2)
sys.path.insert(0, sys.argv[1])
os.chdir(sys.argv[2])
from pathlib import Path
if sys.argv[3] == "closing":
    from gates.closing import closing_lines
    sys.stdout.write("".join(f"{line}\\n" for line in closing_lines(Path("reports"))))
    sys.exit(0)
from gates._cli import main
sys.exit(main(sys.argv[3:]))
"""


def _child(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_child(_CHILD, root, *args)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "reports").mkdir(parents=True)
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return root


def _plant(root: Path, name: str, form: str, tmp_path: Path) -> None:
    target = root / "reports" / name
    target.unlink(missing_ok=True)
    FORMS[form](target, tmp_path)


@pytest.mark.parametrize("form", list(FORMS))
def test_a_later_gate_joining_a_hostile_run_file_is_one_error_naming_it(
    project: Path, tmp_path: Path, form: str
) -> None:
    _plant(project, "run.json", form, tmp_path)
    done = _child(project, "run", "sast")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert "run.json: " in lines[0]
    assert "unparsable run file" in lines[0] or "run file refused, not read" in lines[0]


def test_the_control_a_run_file_of_another_run_is_joined(project: Path) -> None:
    (project / "reports" / "run.json").write_text(json.dumps({"run_id": "r1"}), encoding="utf-8")
    done = _child(project, "run", "audit", "--no-cache")  # joins r1; no sast report: ERRORED
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "run.json" not in done.stderr
    assert "r1" in done.stdout + done.stderr


@pytest.mark.parametrize("form", list(FORMS))
def test_ci_dotenv_exports_missing_for_a_hostile_verdict(
    project: Path, tmp_path: Path, form: str
) -> None:
    _plant(project, "gate.json", form, tmp_path)
    done = _child(project, "ci", "dotenv", "--reports", "reports")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "GATES_VERDICT=MISSING\n"


@pytest.mark.parametrize("form", list(FORMS))
def test_the_closing_lines_read_no_run_from_a_hostile_run_file(
    project: Path, tmp_path: Path, form: str
) -> None:
    _plant(project, "run.json", form, tmp_path)
    done = _child(project, "closing")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0
    assert done.stdout == ""


@pytest.mark.parametrize("form", list(FORMS))
def test_the_closing_lines_read_no_verdict_from_a_hostile_report(
    project: Path, tmp_path: Path, form: str
) -> None:
    (project / "reports" / "run.json").write_text(json.dumps({"run_id": "r1"}), encoding="utf-8")
    _plant(project, "gate.json", form, tmp_path)
    done = _child(project, "closing")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0
    assert done.stdout.startswith("verdict: not reached: 0 gate(s) PASSED in run r1"), done.stdout
