"""Red team 19: a column name that writes lines of its own into the CI log by another route.

Red team 17 made the console show a gate's summary, finding and policy key on one line
(``gates.console.one_line``). The pull request also writes ``policy.toml``, and a TOML key may
hold a new line and an escape: ``[data.columns]."tag\\n::error title=verdict::PASSED" = { dtype
= "bogus" }``. ``python -m gates run data`` (the command every CI job runs) refuses the policy
with ``error: <message>``, and the message quoted the key as it was: the workflow command
stood on a line of its own in the job's log, in colour. ``data approve`` printed a class name
or a column name (in its contract violations, its label-share changes and the batch screen's
findings) raw into the approver's terminal the same way. Both now go through ``one_line``;
the CLI writes each line of a message as ``error: <line>``, so a new line in a key starts a
line that is no command, and a policy with several problems still reads one per line.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMAND = "::error title=verdict::PASSED"
NAME = f"tag\n{COMMAND}\x1b[32m"
TOML_NAME = '"tag\\n' + COMMAND + '\\u001b[32m"'


def _project(root: Path) -> Path:
    root.mkdir()
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return root


def _run_data(root: Path, columns: str) -> subprocess.CompletedProcess[str]:
    """``python -m gates run data`` as CI runs it, ``columns`` declared after the id column."""
    policy = root / "policy.toml"
    declared = 'id = { dtype = "int64", min = 1, unique = true }\n'
    text = policy.read_text("utf-8")
    assert declared in text
    policy.write_text(text.replace(declared, declared + columns, 1), "utf-8")
    env = {**os.environ, "CI": "1", "PYTHONPATH": str(REPO)}
    env.pop("GATES_BASE_POLICY", None)
    return subprocess.run(
        [sys.executable, "-m", "gates", "run", "data"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _lines_written(text: str) -> list[str]:
    """The lines of ``text`` a CI runner reads as workflow commands, and raw escapes."""
    commands = [line for line in text.splitlines() if line.lstrip().startswith("::")]
    return commands + (["ESC"] if "\x1b" in text else [])


def test_a_policy_key_does_not_write_a_workflow_command_through_the_cli_error(
    tmp_path: Path,
) -> None:
    """``python -m gates run data`` on a policy whose column name holds a workflow command:
    before, ``error: policy.toml: data.columns.tag`` then ``::error title=verdict::PASSED``
    and an ESC on a line of its own (exit 2)."""
    root = _project(tmp_path / "pr")
    done = _run_data(root, f'{TOML_NAME} = {{ dtype = "bogus" }}\n')
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert _lines_written(output) == [], output
    assert "U+001B" in done.stderr, done.stderr
    assert "bogus" in done.stderr, done.stderr
    # The name's new line starts a line of its own, as every line does, with "error: ".
    assert all(line.startswith("error: ") for line in done.stderr.splitlines()), done.stderr
    assert "Traceback" not in output


def test_data_approve_shows_a_class_name_on_one_line(tmp_path: Path) -> None:
    """``data approve`` of a table whose malignant class is renamed to a name holding a
    workflow command (the policy's ``classes`` and the data alike): before, the label-share
    lines of its report wrote ``::error title=verdict::PASSED`` as a line of its own."""
    import pandas as pd

    from gates.approve import approve
    from pipeline.config import load_policy

    root = _project(tmp_path / "pr")
    frame = pd.read_csv(root / "data/breast_cancer.csv")
    frame["diagnosis"] = frame["diagnosis"].replace({"malignant": NAME})
    frame.to_csv(root / "data/breast_cancer.csv", index=False, lineterminator="\n")
    policy = root / "policy.toml"
    text = policy.read_text("utf-8")
    for old, new in (
        ('classes = ["benign", "malignant"]', f'classes = ["benign", {TOML_NAME}]'),
        ('positive_class = "malignant"', f"positive_class = {TOML_NAME}"),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    policy.write_text(text, "utf-8")
    out = io.StringIO()
    assert approve(load_policy(policy), out=out) == 0, out.getvalue()
    shown = out.getvalue()
    assert "U+000A" in shown, shown  # the class name is shown, as code points
    assert _lines_written(shown) == [], shown


@pytest.mark.parametrize("text", ["benign", "malignant é ✓"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    """Control: letters, accents and symbols are kept as they are."""
    from gates.console import one_line

    assert one_line(text) == text


def test_a_policy_with_two_problems_shows_one_error_line_each(tmp_path: Path) -> None:
    """The control: two bad dtypes are two ``error:`` lines, each naming its key."""
    root = _project(tmp_path / "pr")
    done = _run_data(root, 'first = { dtype = "bogus" }\nsecond = { dtype = "bogus" }\n')
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert all(line.startswith("error: ") for line in lines), done.stderr
    assert any("first" in line for line in lines), done.stderr
    assert any("second" in line for line in lines), done.stderr
    assert "U+000A" not in done.stderr, done.stderr
