"""Red team 17: approved rows made new by moving each by one ulp (row 120's attack, by value).

The batch screen (DATA100-DATA108) judges a pull request's new rows against the rows the
protected branch's lock approved (``GATES_APPROVED_LOCK``). A row is approved when the digest
of its features and label, as text, is an approved row's: under its id, else by content (red
team 16). The values are the pull request's to write: ``np.nextafter`` on one column of every
row (12.5 -> 12.500000000000002, invisible to any model) changes every row's digest, so no row
is approved, fewer than ``[data.checks.batch].min_approved``, and the batch screen did not run:
the data gate PASSED ("every check within its threshold") with a metric note, with 12 benign
rows relabelled malignant that DATA100, DATA102 and DATA107 fail when the ulp is left out
(DATA070 counts them within its 5% share on the whole table).

With a trusted lock that approved at least ``min_approved`` rows, a table keeping fewer of
them is DATA109 (an error naming the counts and the way to replace a snapshot on purpose).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.batch_support import DATA, approve, gate_against, protected_branch


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code."""
    return protected_branch(tmp_path_factory, "rt17-ulp")


def _next_ulp(frame: pd.DataFrame) -> None:
    frame["mean_area"] = np.nextafter(frame["mean_area"].to_numpy(), np.inf)


def _plus_nano(frame: pd.DataFrame) -> None:
    frame["worst_area"] = frame["worst_area"] + 1e-9


def _untouched(frame: pd.DataFrame) -> None:
    return None


def _ulp_on(frame: pd.DataFrame, positions: np.ndarray) -> None:
    """One ulp up on ``mean_area`` of the rows at ``positions``."""
    rows = frame.index[positions]
    frame.loc[rows, "mean_area"] = np.nextafter(frame.loc[rows, "mean_area"].to_numpy(), np.inf)


def _most_rows(frame: pd.DataFrame) -> None:
    """One ulp on 400 rows drawn at random: 163 rows kept as approved (the 12 relabelled rows
    are new too), above min_approved."""
    _ulp_on(frame, np.random.default_rng(1).permutation(len(frame))[len(frame) - 400 :])


def _pull_request(
    base: Path, tmp_path: Path, nudge: Callable[[pd.DataFrame], pd.DataFrame | None]
) -> Path:
    """Every 20th benign row relabelled malignant (12 rows), every row nudged; re-approved."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    flipped = frame.index[frame["diagnosis"] == "benign"][::20][:12]
    frame.loc[flipped, "diagnosis"] = "malignant"
    changed = nudge(frame)  # in place, or a new frame (rows deleted)
    if changed is not None:
        frame = changed
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    approve(pr)
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return gate_against(pr, base, monkeypatch, run_id="rt17")


@pytest.mark.parametrize("nudge", [_next_ulp, _plus_nano], ids=["next-ulp", "plus-1e-9"])
def test_rows_moved_by_an_ulp_do_not_switch_the_batch_screen_off(
    base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    nudge: Callable[[pd.DataFrame], None],
) -> None:
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, nudge), base, monkeypatch)
    # Before: PASSED, metrics.batch.skipped "0 approved rows ... fewer than min_approved".
    assert outcome.status is Status.FAILED, outcome.summary
    refused = [f for f in outcome.findings if f.rule == "DATA109"]
    assert len(refused) == 1, [f.rule for f in outcome.findings]
    message = refused[0].message
    assert "0 of the 569 rows approved" in message, message
    assert "[data.checks.batch].min_approved = 50" in message, message
    _says_the_way_out(message)
    assert refused[0].policy_key == "[data.checks.batch].min_approved"
    assert refused[0].location.path == DATA


def test_the_same_flips_without_the_nudge_fail_the_batch_screen(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the 12 relabelled rows alone are new rows DATA100 fails; no DATA109."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, _untouched), base, monkeypatch)
    rules = {f.rule for f in outcome.findings}
    assert outcome.status is Status.FAILED
    assert "DATA100" in rules, rules
    assert "DATA109" not in rules
    assert outcome.metrics["batch"]["new_rows"] == 12


def _says_the_way_out(message: str) -> None:
    """DATA109 says how to replace the snapshot on purpose, what the verdict then asks for
    (an approver's policy signature) and that the screen must come back on."""
    assert "set [data.checks.batch].enabled = false in this pull request's policy" in message
    assert "python -m gates policy approve --base BASE/policy.toml" in message, message
    assert "set it back to true in the next data change" in message, message
    assert 'docs/own-data.md, "Changing the data"' in message, message


def _some_rows(frame: pd.DataFrame) -> None:
    """One ulp on 100 rows drawn at random: within max_dropped (0.2 of 569), so they are new
    rows the batch screen judges with the 12 relabelled ones."""
    _ulp_on(frame, np.random.default_rng(1).permutation(len(frame))[:100])


def _drop_some(frame: pd.DataFrame) -> pd.DataFrame:
    """50 approved rows deleted (a cleaning change): within max_dropped."""
    gone = frame.index[np.random.default_rng(2).permutation(len(frame))[:50]]
    return frame.drop(index=gone)


def test_most_rows_moved_by_an_ulp_do_not_dilute_the_new_ones(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ulp on 400 of 569 rows kept 163 approved (above min_approved), and the 406 "new"
    rows diluted the 12 relabelled ones: DATA100's Fisher p = 0.19, a note, and the gate
    PASSED (red team 17's strict xfail). More than max_dropped of the approved rows gone from
    a table with new rows is DATA109."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, _most_rows), base, monkeypatch)
    assert outcome.status is Status.FAILED, outcome.summary
    refused = [f for f in outcome.findings if f.rule == "DATA109"]
    assert len(refused) == 1, [f.rule for f in outcome.findings]
    message = refused[0].message
    assert "406 of the 569 rows approved" in message, message
    assert "[data.checks.batch].max_dropped = 0.2" in message, message
    assert "drop approved rows in a change of their own" in message, message
    _says_the_way_out(message)
    assert refused[0].policy_key == "[data.checks.batch].max_dropped"
    assert refused[0].observed == "406"


def test_fewer_rows_moved_by_an_ulp_are_judged_with_the_relabelled_ones(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker's answer, staying within max_dropped: 100 nudged rows are new rows beside
    the 12 relabelled, and the batch screen still fails them (DATA100)."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, _some_rows), base, monkeypatch)
    rules = {f.rule for f in outcome.findings}
    assert "DATA109" not in rules, rules
    assert outcome.status is Status.FAILED, outcome.summary
    assert "DATA100" in rules, rules


def test_approved_rows_deleted_within_max_dropped_are_no_refusal(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: 50 approved rows deleted beside the 12 relabelled: no DATA109, and the
    relabelled rows fail DATA100 as without the deletion."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, _drop_some), base, monkeypatch)
    rules = {f.rule for f in outcome.findings}
    assert "DATA109" not in rules, rules
    assert outcome.status is Status.FAILED
    assert "DATA100" in rules, rules


def test_without_a_trusted_lock_too_few_approved_rows_stay_a_note(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: on a laptop (no base lock named) the committed lock's reference is all there
    is (the pull request's to write): its skip stays a note, no DATA109."""
    from gates.base import RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    pr = _pull_request(base, tmp_path, _next_ulp)
    monkeypatch.delenv("GATES_APPROVED_LOCK", raising=False)
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    context = RunContext(
        policy=load_policy(pr / "policy.toml"), run_id="rt17", reports_dir=pr / "r"
    )
    outcome = DataGate().run(context)
    assert "DATA109" not in {f.rule for f in outcome.findings}
