"""The noxfile's closing verdict read only from a reports folder the policy may name.

A local ``nox`` run ends with the verdict read from ``[run].reports_dir`` (``gates/closing.py``).
The noxfile read that key with tomllib and no path rule: a pull request's policy naming
``/tmp/x``, ``../elsewhere`` or a symlink out of the project made the run's last line a verdict
from a folder anyone could have written (the gates themselves refuse such a policy, so the
run's own reports were never there). The noxfile now applies the policy's rule
(``pipeline.pathrule.REPORTS_DIR_RULE``) and prints a one-line note instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gates.registry import VERDICT
from tests.conftest import REPO, exec_noxfile


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    return exec_noxfile("noxfile_reports_dir")


def _planted_verdict(folder: Path) -> None:
    """A run.json and a PASSED verdict, as anyone who can write ``folder`` can leave them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"run_id": "planted"}), encoding="utf-8")
    report = {"gate": VERDICT.name, "run_id": "planted", "status": "PASSED"}
    (folder / f"{VERDICT.name}.json").write_text(json.dumps(report), encoding="utf-8")


def _closing(noxfile: ModuleType, root: Path, value: str, monkeypatch: Any, capsys: Any) -> Any:
    (root / "policy.toml").write_text(f"[run]\nreports_dir = {json.dumps(value)}\n", "utf-8")
    monkeypatch.setattr(noxfile, "ROOT", root)
    monkeypatch.setattr(noxfile, "_ran_gates", ["lint"])
    capsys.readouterr()
    noxfile._closing()
    return capsys.readouterr()


def _outside(tmp_path: Path) -> str:
    _planted_verdict(tmp_path / "elsewhere")
    return str(tmp_path / "elsewhere")


def _parent(tmp_path: Path) -> str:
    _planted_verdict(tmp_path / "elsewhere")
    return "../elsewhere"


def _symlink(tmp_path: Path) -> str:
    _planted_verdict(tmp_path / "elsewhere")
    (tmp_path / "project" / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return "out"


def _itself(tmp_path: Path) -> str:
    _planted_verdict(tmp_path / "project")
    return "."


CASES = {
    "absolute path outside": (_outside, "outside the project folder"),
    "../elsewhere": (_parent, "outside the project folder"),
    "symlink out of the project": (_symlink, "outside the project folder"),
    "the project folder itself": (_itself, "which is the project folder itself"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_reports_dir_the_policy_forbids_prints_no_verdict(
    case, noxfile, tmp_path, monkeypatch, capsys
):
    (tmp_path / "project").mkdir()
    plant, expected = CASES[case]
    value = plant(tmp_path)
    out = _closing(noxfile, tmp_path / "project", value, monkeypatch, capsys)
    assert "verdict:" not in out.out, out.out
    note = out.err.strip().splitlines()
    assert len(note) == 1, out.err
    assert note[0].startswith(
        "noxfile: no verdict printed: policy.toml: run.reports_dir: expected a folder inside "
        f"the project folder (not the project folder itself); found {value!r}, "
    ), note
    assert expected in note[0], note
    assert "Traceback" not in out.err


def test_a_reports_dir_inside_the_project_prints_its_verdict(
    noxfile, tmp_path, monkeypatch, capsys
):
    (tmp_path / "project").mkdir()
    _planted_verdict(tmp_path / "project" / "out" / "reports")
    out = _closing(noxfile, tmp_path / "project", "out/reports", monkeypatch, capsys)
    assert out.out.strip() == (
        f"verdict: PASSED (run planted; reports in {tmp_path / 'project' / 'out' / 'reports'})"
    )
    assert out.err == ""


def test_the_noxfile_applies_the_rule_the_policy_model_declares():
    from pipeline.config import RunPolicy
    from pipeline.pathrule import REPORTS_DIR_RULE

    assert REPORTS_DIR_RULE in RunPolicy.model_fields["reports_dir"].metadata


def test_the_rule_imports_nothing_but_the_standard_library():
    # nox's own interpreter runs the noxfile and need not have pydantic: the modules it imports
    # for the rule and the bounded read must load without it (a fresh isolated interpreter without site-packages).
    import subprocess

    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import pipeline.pathrule, pipeline.fsio; "
        "print(sorted({m.split('.')[0] for m in sys.modules} - {*sys.stdlib_module_names, '__main__'}))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(REPO)],  # -S: no site-packages at all
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['pipeline']", done.stdout


def _closing_with(noxfile: ModuleType, root: Path, monkeypatch: Any, capsys: Any) -> Any:
    """``_closing`` over the policy.toml already at ``root``; a FIFO that blocks it is opened
    for writing after 30 s, so a regression fails here instead of hanging the suite."""
    import os
    import threading

    monkeypatch.setattr(noxfile, "ROOT", root)
    monkeypatch.setattr(noxfile, "_ran_gates", ["lint"])
    capsys.readouterr()
    closing = threading.Thread(target=noxfile._closing, daemon=True)
    closing.start()
    closing.join(timeout=30)
    hung = closing.is_alive()
    if hung and (root / "policy.toml").is_fifo():
        os.close(os.open(root / "policy.toml", os.O_WRONLY | os.O_NONBLOCK))
        closing.join(timeout=30)
    assert not hung, "the noxfile's closing waited on policy.toml"
    return capsys.readouterr()


def test_a_policy_committed_as_a_fifo_does_not_hang_the_closing(
    noxfile, tmp_path, monkeypatch, capsys
):
    import os

    root = tmp_path / "project"
    root.mkdir()
    _planted_verdict(root / "reports")
    os.mkfifo(root / "policy.toml")
    out = _closing_with(noxfile, root, monkeypatch, capsys)
    assert "verdict:" not in out.out, out.out
    assert out.err.strip() == (
        "noxfile: no verdict printed: policy.toml: expected a regular file, found a FIFO, "
        "device or folder"
    )


def test_a_policy_past_the_loaders_limit_is_not_read(noxfile, tmp_path, monkeypatch, capsys):
    # Valid TOML (the padding is a comment): read whole, it named the folder of the verdict.
    root = tmp_path / "project"
    _planted_verdict(root / "out" / "reports")
    policy = '[run]\nreports_dir = "out/reports"\n' + "#" * (2 * 1024 * 1024) + "\n"
    (root / "policy.toml").write_text(policy, encoding="utf-8")
    out = _closing_with(noxfile, root, monkeypatch, capsys)
    assert "verdict:" not in out.out, out.out
    assert out.err.strip().startswith(
        "noxfile: no verdict printed: policy.toml: expected at most 1048576 bytes, found "
    ), out.err


def test_the_noxfile_reads_the_policy_with_the_loaders_limit(noxfile):
    from pipeline.config import MAX_POLICY_BYTES

    assert noxfile.MAX_POLICY_BYTES == MAX_POLICY_BYTES
