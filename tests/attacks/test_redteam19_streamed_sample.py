"""Red team 19: the batch screen switched off by two lines that read as tuning.

On the streaming path (a data file over ``[data].stream_above_mb``) the batch screen runs only
when the label check's seeded sample (``[data.checks.labels].max_fit_rows`` rows) holds every
row; otherwise ``metrics.batch.skipped`` said so in a note. Both keys are the pull request's:
``stream_above_mb = 0.01`` (the 120 KB table streams) and ``max_fit_rows = 100`` (a sample of
100 of 569 rows), lines an approver reads as memory and speed tuning, switched the screen off
against the trusted lock and 12 benign rows relabelled malignant PASSED (DATA070 counts them
within its 5% share; the batch screen's DATA100 fails them). Against a trusted lock that
approved rows enough, that is DATA109 now, naming ``max_fit_rows`` and the rows it must hold;
without a trusted lock it stays a note, and a sample holding every row runs the screen.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.batch_support import DATA, approve, gate_against, protected_branch


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code."""
    return protected_branch(tmp_path_factory, "rt19-stream")


def _pull_request(base: Path, tmp_path: Path, *, fit_rows: int) -> Path:
    """12 benign rows relabelled malignant; the table streamed, the sample ``fit_rows``."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    flipped = frame.index[frame["diagnosis"] == "benign"][::20][:12]
    frame.loc[flipped, "diagnosis"] = "malignant"
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    policy = pr / "policy.toml"
    text = policy.read_text("utf-8")
    for pattern, value in (
        (r"(?m)^stream_above_mb = 256\.0", "stream_above_mb = 0.01"),
        (r"(?m)^max_fit_rows = 50000", f"max_fit_rows = {fit_rows}"),
    ):
        text, count = re.subn(pattern, value, text)
        assert count == 1, pattern
    policy.write_text(text, "utf-8")
    approve(pr)
    return pr


def _errors(outcome: Any) -> set[str]:
    return {f.rule for f in outcome.findings if f.severity.value == "error"}


def test_a_sample_smaller_than_the_table_does_not_switch_the_batch_screen_off(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: PASSED, metrics.batch.skipped 'the streaming path holds a sample of 100 of 569
    rows, not every row: the batch screen did not run'."""
    from gates.base import Status

    pr = _pull_request(base, tmp_path, fit_rows=100)
    outcome = gate_against(pr, base, monkeypatch, run_id="rt19")
    assert "streaming" in outcome.metrics, outcome.metrics
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics.get("batch"))
    refused = [f for f in outcome.findings if f.rule == "DATA109"]
    assert len(refused) == 1, [f.rule for f in outcome.findings]
    assert refused[0].policy_key == "[data.checks.labels].max_fit_rows"
    assert "a sample of 100 of 569 rows" in refused[0].message, refused[0].message
    assert "max_fit_rows to at least 569" in refused[0].message, refused[0].message


def test_without_a_trusted_lock_the_skip_stays_a_note(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: no GATES_APPROVED_LOCK nor GATES_BASE_POLICY (a laptop): a note as before."""
    from gates.base import RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    pr = _pull_request(base, tmp_path, fit_rows=100)
    monkeypatch.delenv("GATES_APPROVED_LOCK", raising=False)
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    context = RunContext(
        policy=load_policy(pr / "policy.toml"), run_id="rt19", reports_dir=pr / "r"
    )
    outcome = DataGate().run(context)
    assert "DATA109" not in {f.rule for f in outcome.findings}
    assert "not every row" in outcome.metrics["batch"]["skipped"], outcome.metrics["batch"]


def test_a_sample_of_every_row_runs_the_batch_screen(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held (red team 15's route): streamed, with a sample of every row, the screen runs and
    DATA100 fails the 12 relabelled rows."""
    from gates.base import Status

    pr = _pull_request(base, tmp_path, fit_rows=50000)
    outcome = gate_against(pr, base, monkeypatch, run_id="rt19")
    assert outcome.metrics["batch"]["new_rows"] == 12, outcome.metrics["batch"]
    assert outcome.status is Status.FAILED, outcome.summary
    assert "DATA100" in _errors(outcome), _errors(outcome)
