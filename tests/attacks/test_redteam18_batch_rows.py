"""Red team 18: DATA109 (red team 17) and the batch screen's approved rows, attacked.

DATA109 fails a table that, against a trusted lock (``GATES_APPROVED_LOCK``) recording at
least ``[data.checks.batch].min_approved`` rows, keeps fewer of them, or lost more than
``max_dropped`` of them beside new rows. Both refusals asked ``recorded >= min_approved`` of
the pull request's own policy: raising ``min_approved`` above the rows the trusted lock
approved (a change that reads as stricter, one an approver would sign) turned the refusal off
and the batch screen with it (a note), and 12 benign rows relabelled malignant PASSED.
Dropping ``[data] id_column`` from the policy did the same ("no id column", a note). Held: 400
approved rows appended again one ulp apart under new ids (no DATA109, the screen fails them).
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
    return protected_branch(tmp_path_factory, "rt18-rows")


def _set_min_approved(pr: Path, value: int) -> None:
    policy = pr / "policy.toml"
    text, count = re.subn(
        r"(?m)^min_approved = 50\b", f"min_approved = {value}", policy.read_text("utf-8")
    )
    assert count == 1
    policy.write_text(text, "utf-8")


def _pull_request(base: Path, tmp_path: Path, *, min_approved: int | None) -> Path:
    """Every 20th benign row relabelled malignant (12 rows); the policy's min_approved set."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    flipped = frame.index[frame["diagnosis"] == "benign"][::20][:12]
    frame.loc[flipped, "diagnosis"] = "malignant"
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    if min_approved is not None:
        _set_min_approved(pr, min_approved)
    approve(pr)
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return gate_against(pr, base, monkeypatch, run_id="rt18")


@pytest.mark.parametrize("least", [570, 100000])
def test_a_stricter_min_approved_does_not_switch_the_batch_screen_off(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, least: int
) -> None:
    """min_approved raised above the 569 rows the trusted lock approved: before, no DATA109
    (recorded < min_approved), the batch screen skipped with a note, and the 12 relabelled
    rows PASSED (DATA070 counts them within its share)."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, min_approved=least), base, monkeypatch)
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics.get("batch"))
    refused = [f for f in outcome.findings if f.rule == "DATA109"]
    assert len(refused) == 1, [f.rule for f in outcome.findings]
    message = refused[0].message
    assert "557 of the 569 rows approved" in message, message
    assert f"[data.checks.batch].min_approved = {least}" in message, message
    assert refused[0].policy_key == "[data.checks.batch].min_approved"
    assert "Traceback" not in message


def _approval(rows: int) -> Any:
    from gates.data_integrity import Approval

    digests = {str(i): f"{i:064x}" for i in range(rows)}
    return Approval(reference=None, digests=digests, source="base.lock.json", trusted=True)


@pytest.mark.parametrize(
    ("rows", "least", "refused"), [(30, 50, False), (30, 40, False), (60, 100, True)]
)
def test_a_small_trusted_lock_stays_a_note(rows: int, least: int, refused: bool) -> None:
    """Control: a trusted lock that approved fewer rows than both min_approved and its default
    (50) cannot be screened: a note, no DATA109, as before; 60 rows against a raised 100 can."""
    from gates.data_integrity import _refused
    from pipeline.config import BatchCheck

    batch = BatchCheck(min_approved=least)
    got = _refused(_approval(rows), batch, kept=rows - 5, new=10)
    assert (got is not None) is refused, got


def test_the_id_column_dropped_from_the_policy_does_not_switch_the_batch_screen_off(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[data] id_column`` removed (the id stays a declared column): the batch screen said
    "no id column" in a note, though the rows can still be matched to the trusted lock's by
    their exact values."""
    from gates.base import Status

    pr = _pull_request(base, tmp_path, min_approved=None)
    policy = pr / "policy.toml"
    text = policy.read_text("utf-8").replace('id_column = "id"\n', "", 1)
    policy.write_text(text, "utf-8")
    approve(pr)
    outcome = _gate(pr, base, monkeypatch)
    # Before: PASSED, metrics.batch.skipped "no id column: approved rows cannot be told ...".
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics.get("batch"))
    refused = [f for f in outcome.findings if f.rule == "DATA109"]
    assert len(refused) == 1, [f.rule for f in outcome.findings]
    assert refused[0].policy_key == "[data].id_column"
    assert "approved 569 rows by id" in refused[0].message, refused[0].message
    assert "set [data] id_column back" in refused[0].message, refused[0].message
    assert "python -m gates policy approve --base" in refused[0].message, refused[0].message


def test_approved_rows_kept_beside_their_nudged_copies_do_not_dilute_the_new_ones(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held (a control): the attacker's answer to DATA109's max_dropped keeps every approved
    row and appends 400 of them again under new ids, one ulp apart, to dilute the 12
    relabelled rows among 412 new ones. No DATA109 (569 kept), and the batch screen still
    fails the batch (the copies are near copies of approved rows, DATA108)."""
    import numpy as np

    from gates.base import Status

    pr = _pull_request(base, tmp_path, min_approved=None)
    frame = pd.read_csv(pr / DATA)
    picked = np.random.default_rng(1).permutation(len(frame))[:400]
    copies = frame.iloc[picked].copy()
    copies["id"] = np.arange(len(copies)) + int(frame["id"].max()) + 1
    copies["mean_area"] = np.nextafter(copies["mean_area"].to_numpy(), np.inf)
    pd.concat([frame, copies]).to_csv(pr / DATA, index=False, lineterminator="\n")
    approve(pr)
    outcome = _gate(pr, base, monkeypatch)
    rules = {f.rule for f in outcome.findings}
    assert "DATA109" not in rules, rules
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics.get("batch"))
    assert {"DATA108", "DATA100"} <= rules, rules  # seen: DATA052, 070, 100, 102, 108
