"""The CLI around feedback: history verify/head/show, run --json and structured logs."""

from __future__ import annotations

import io
import json
import re
import shutil

from gates import console
from gates.base import GateResult, Status
from gates.feedback import history
from gates.registry import NAMES, spec


def test_history_verify_head_and_show_with_their_exit_codes(passed_run, tmp_path, gates_cli):
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    path = root / "history" / "runs.jsonl"
    ok = gates_cli(root, "history", "verify")
    assert ok.returncode == 0
    assert "intact, 1 records" in ok.stdout
    head = gates_cli(root, "history", "head")
    assert head.stdout.strip() == history.head_hash(path)
    wrong = gates_cli(root, "history", "verify", "--expect-head", "0" * 64)
    assert wrong.returncode == 1
    shown = gates_cli(root, "history", "show", "-n", "5")
    assert "PASSED" in shown.stdout
    path.write_bytes(path.read_bytes().replace(b'"verdict":"PASSED"', b'"verdict":"FAILED"'))
    tampered = gates_cli(root, "history", "verify")
    assert tampered.returncode == 1
    assert "line 1" in tampered.stdout
    assert "edited" in tampered.stdout


def test_run_json_puts_one_document_on_stdout_and_progress_on_stderr(passed_project, gates_cli):
    # A copy of a project the chain passed on, its gate cache included: reused where unchanged.
    done = gates_cli(passed_project.root, "run", "--json", env={"CI": "true"})
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "PASSED"
    assert [r["gate"] for r in document["results"]] == list(NAMES)
    assert "[ok  ] feedback" in done.stderr
    assert "verdict: PASSED" in done.stderr


def test_json_logs_are_one_object_per_line(project, gates_cli):
    done = gates_cli(project.root, "run", "data", env={"GATES_LOG_FORMAT": "json"})
    assert done.returncode == 0
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["gate.start", "gate.finish"]
    assert events[1]["status"] == "PASSED"
    assert events[1]["level"] == "info"
    bad = gates_cli(project.root, "run", "data", env={"GATES_LOG_FORMAT": "xml"})
    assert bad.returncode == 2
    assert "GATES_LOG_FORMAT" in bad.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_display_is_rich_on_a_terminal_and_plain_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert isinstance(console.choose(_Tty(), fmt="text", total=1), console.RichDisplay)
    assert isinstance(console.choose(io.StringIO(), fmt="text", total=1), console.PlainDisplay)
    assert isinstance(console.choose(_Tty(), fmt="json", total=1), console.JsonLogDisplay)
    monkeypatch.setenv("CI", "true")
    assert isinstance(console.choose(_Tty(), fmt="text", total=1), console.PlainDisplay)


def test_the_rich_display_prints_every_status_and_its_findings():
    out = _Tty()
    display = console.RichDisplay(out, total=len(Status))
    for status in Status:
        display.start(spec("cv"))
        display.finish(
            GateResult.from_dict(
                {
                    "schema_version": 1,
                    "gate": "cv",
                    "status": status.value,
                    "summary": f"[bold]{status.value}[/] summary",
                    "run_id": "r",
                    "inputs": {},
                    "findings": [{"rule": "CV001", "message": "accuracy [low]"}]
                    if status is not Status.PASSED
                    else [],
                    "metrics": {},
                    "artifacts": {},
                    "started": "",
                    "duration_seconds": 1.5,
                }
            )
        )
    display.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    for status in Status:
        # Summaries are shown literally: text in brackets is not rich markup.
        assert f"{status.value:<8}   1.50s  [bold]{status.value}[/] summary" in text
    assert "CV001 accuracy [low]" in text
    assert "[cv]." in text  # the spinner shows the summary literally too


def test_a_failing_feedback_stage_is_named_under_the_verdict(passed_project, gates_cli):
    project = passed_project  # the whole chain passed once (its gate cache included)
    path = project.root / "history" / "runs.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"verdict":"PASSED"', b'"verdict":"FAILED"'))
    done = gates_cli(project.root, "run", env={"CI": "true"})
    assert done.returncode == 1
    assert "  feedback FAILED: 1 feedback problem(s): run history" in done.stdout
