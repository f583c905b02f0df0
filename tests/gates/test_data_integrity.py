"""The data gate: PASS on the embedded data, FAIL per check on planted data, ERRORED, bad input."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gates.approve import approve
from gates.base import Status


def _rules(project, *, severity: str = "error") -> set[str]:
    return {f["rule"] for f in project.report("data")["findings"] if f["severity"] == severity}


def _rewrite(project, change: Callable[[pd.DataFrame], pd.DataFrame], *, lock: bool = True) -> None:
    frame = pd.read_csv(project.data_path)
    change(frame).to_csv(project.data_path, index=False, lineterminator="\n")
    if lock:
        assert approve(project.load(), out=io.StringIO()) == 0


def _status(project) -> Status:
    return project.run("data").results[0].status


def test_passes_on_the_embedded_data_and_writes_the_flagged_rows_report(project):
    assert _status(project) is Status.PASSED
    assert _rules(project, severity="warning") == set()  # the lock records class moments
    report = project.report("data")
    assert set(report["metrics"]["checks"]) == {
        "duplicate",
        "conflicting_labels",
        "range",
        "label",
        "isolation",
        "association",
        "burst",
        "near_duplicate",
        "near_conflict",
    }
    flagged = project.root / "reports" / "data.flagged.csv"
    assert flagged.read_text(encoding="utf-8").splitlines()[0] == (
        '"row","id","check","score","reason"'
    )
    assert "reports/data.flagged.csv" in report["artifacts"]
    assert report["metrics"]["drift"]["worst_psi"] == pytest.approx(0.0, abs=1e-9)


def test_flagged_rows_are_identical_across_two_runs(project):
    project.run("data")
    first = (project.root / "reports" / "data.flagged.csv").read_bytes()
    project.run("data")
    assert (project.root / "reports" / "data.flagged.csv").read_bytes() == first


def test_exact_duplicates_over_the_share_fail(project):
    def copies(frame: pd.DataFrame) -> pd.DataFrame:
        extra = frame.iloc[:8].copy()
        extra["id"] = np.arange(1000, 1008)
        return pd.concat([frame, extra], ignore_index=True)

    _rewrite(project, copies)
    assert _status(project) is Status.FAILED
    assert "DATA050" in _rules(project)


def test_same_features_with_a_different_label_fail(project):
    def conflict(frame: pd.DataFrame) -> pd.DataFrame:
        extra = frame.iloc[[0]].copy()
        extra["id"] = 2000
        extra["diagnosis"] = "benign" if extra["diagnosis"].iloc[0] == "malignant" else "malignant"
        return pd.concat([frame, extra], ignore_index=True)

    _rewrite(project, conflict)
    assert _status(project) is Status.FAILED
    assert "DATA051" in _rules(project)
    flagged = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    assert set(flagged.loc[flagged["check"] == "conflicting_labels", "id"]) == {1, 2000}


def test_a_trigger_beyond_the_reference_range_fails_even_when_approved(project):
    def trigger(frame: pd.DataFrame) -> pd.DataFrame:
        # 50 is inside the contract's max (56.22) but far beyond the approved max (28.11).
        frame.loc[[5, 6], "mean_radius"] = 50.0
        return frame

    _rewrite(project, trigger)
    assert _status(project) is Status.FAILED
    assert "DATA060" in _rules(project)
    flagged = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    assert {5, 6} <= set(flagged.loc[flagged["check"] == "range", "row"])


def test_drift_and_class_balance_shift_fail(project):
    def drift(frame: pd.DataFrame) -> pd.DataFrame:
        frame["mean_texture"] = frame["mean_texture"] * 1.3
        benign = frame.index[frame["diagnosis"] == "benign"][:150]
        return frame.drop(index=benign).reset_index(drop=True)

    _rewrite(project, drift)
    assert _status(project) is Status.FAILED
    rules = _rules(project)
    assert {"DATA041", "DATA042"} <= rules
    # Each says which reference it measured against, and when a --rebaseline counts.
    for finding in project.report("data")["findings"]:
        if finding["rule"] in {"DATA041", "DATA042"}:
            assert (
                "the reference is the approved lock's profile, on a pull request the base"
                in (finding["message"])
            )
            assert "--rebaseline there counts only once merged" in finding["message"]


def test_label_flips_over_the_share_fail(project):
    def flips(frame: pd.DataFrame) -> pd.DataFrame:
        rows = np.random.default_rng(1).choice(len(frame), size=57, replace=False)
        swap = {"benign": "malignant", "malignant": "benign"}
        frame.loc[rows, "diagnosis"] = frame.loc[rows, "diagnosis"].map(swap)
        return frame

    _rewrite(project, flips)
    assert _status(project) is Status.FAILED
    assert "DATA070" in _rules(project)


def test_off_manifold_rows_over_the_share_fail(project):
    project.edit_policy(
        **{"data.checks.isolation.min_score": 0.55, "data.checks.isolation.max_share": 0.0}
    )
    assert _status(project) is Status.FAILED
    assert _rules(project) == {"DATA080"}


def test_a_lock_without_a_reference_profile_fails(project):
    lock_path = project.root / "data" / "breast_cancer.lock.json"
    document = json.loads(lock_path.read_text(encoding="utf-8"))
    for entry in document["files"].values():
        entry.pop("profile")
        entry.pop("reference")
    lock_path.write_text(json.dumps(document), encoding="utf-8")
    assert _status(project) is Status.FAILED
    assert _rules(project) == {"DATA040"}


def test_a_lock_without_class_moments_warns_that_the_class_mean_test_did_not_run(project):
    # A lock approved before class moments were recorded: DATA043 cannot run, and says so.
    lock_path = project.root / "data" / "breast_cancer.lock.json"
    document = json.loads(lock_path.read_text(encoding="utf-8"))
    for entry in document["files"].values():
        entry["reference"].pop("class_moments")
    lock_path.write_text(json.dumps(document), encoding="utf-8")
    assert _status(project) is Status.PASSED
    assert _rules(project, severity="warning") == {"DATA043"}
    (warning,) = [f for f in project.report("data")["findings"] if f["rule"] == "DATA043"]
    assert "did not run" in warning["message"]
    assert "--rebaseline" in warning["message"]


def test_an_unwritable_report_folder_is_errored_not_passed(project):
    (project.root / "reports" / "data.flagged.csv").mkdir(parents=True)
    result = project.run("data").results[0]
    assert result.status is Status.ERRORED
    assert not (project.root / "reports" / "data.quarantine.json").exists()


@pytest.mark.parametrize(
    ("content", "rule", "text"),
    [
        ("id,mean_radius\n1,2\n3,4,5,6\n", "DATA000", "malformed CSV"),
        ("", "DATA000", "empty"),
        ("id,diagnosis\n1,benign\n", "DATA010", "is missing"),
    ],
)
def test_bad_files_fail_with_one_clear_message(project, gates_cli, content, rule, text):
    project.data_path.write_text(content, encoding="utf-8")
    done = gates_cli(project.root, "run", "data")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert rule in done.stdout
    assert text in done.stdout


def test_nan_inf_extra_columns_and_unknown_labels_are_contract_failures(project):
    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        frame["mean_radius"] = frame["mean_radius"].astype(object)
        frame.loc[3, "mean_radius"] = "nan"
        frame.loc[4, "mean_radius"] = "inf"
        frame.loc[5, "diagnosis"] = "unknown"
        frame["sneaky"] = 1
        return frame

    _rewrite(project, broken, lock=False)
    project.approve()
    assert _status(project) is Status.FAILED
    assert {"DATA011", "DATA013", "DATA014", "DATA020"} <= _rules(project)


def test_a_file_larger_than_the_policy_allows_is_refused_before_reading(project, gates_cli):
    project.edit_policy(**{"data.checks.max_file_mb": 0.01})
    done = gates_cli(project.root, "run", "data")
    assert done.returncode == 1
    assert "larger than the 0.0 MiB allowed ([data.checks].max_file_mb)" in done.stdout


def test_a_csv_declared_as_parquet_is_refused(project, gates_cli):
    project.edit_policy(**{"data.format": "parquet"})
    done = gates_cli(project.root, "run", "data")
    assert done.returncode == 1
    assert "expected a Parquet file" in done.stdout
    assert "Traceback" not in done.stderr


def _few_flips(frame: pd.DataFrame) -> pd.DataFrame:
    swap = {"benign": "malignant", "malignant": "benign"}
    # The most clearly malignant and benign rows (by worst_concave_points), labels swapped.
    frame.loc[[82, 181, 568], "diagnosis"] = frame.loc[[82, 181, 568], "diagnosis"].map(swap)
    return frame


def test_three_flipped_rows_as_the_only_new_rows_fail_the_batch_on_the_doubt_mass(project):
    # Against the committed reference's row digests the three changed rows are the batch, every
    # one of them contradicted by the approved rows: too few for the count test (5 flagged
    # rows needed), and the gate passed. The doubt mass of the new rows fails it (DATA100).
    _rewrite(project, _few_flips)
    assert _status(project) is Status.FAILED
    data100 = [f for f in project.report("data")["findings"] if f["rule"] == "DATA100"]
    assert [f["severity"] for f in data100] == ["error"]
    assert "3 of 3 new rows" in data100[0]["message"]
    assert "doubt mass of every new row z=" in data100[0]["message"]


def test_quarantine_trains_and_cross_validates_without_the_flagged_rows(project):
    # The flips approved as the reference (no batch: DATA100 would fail them, see above); the
    # whole-table label check flags them under its max_share, and quarantine drops them.
    _rewrite(project, _few_flips)
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    project.edit_policy(**{"data.checks.quarantine": True})
    summary = project.run("data", "train", "cv")
    assert [r.status for r in summary.results] == [Status.PASSED] * 3
    quarantine = json.loads((project.root / "reports" / "data.quarantine.json").read_text())
    assert {82, 181, 568} <= set(quarantine["rows"])
    assert {"83", "182", "569"} <= set(quarantine["ids"])
    train = project.report("train")["metrics"]
    assert train["quarantined_rows"] == len(quarantine["rows"])
    assert train["n_train"] + train["n_holdout"] == 569 - len(quarantine["rows"])


def test_a_changed_quarantine_list_stops_training(project):
    project.edit_policy(**{"data.checks.quarantine": True})
    project.run("data")
    path = project.root / "reports" / "data.quarantine.json"
    document = json.loads(path.read_text())
    document["rows"] = [0, 1, 2]
    path.write_text(json.dumps(document))
    result = project.run("train").results[0]
    assert result.status is Status.ERRORED
    assert "changed since the data gate wrote it" in result.summary


def test_a_parquet_file_where_a_csv_is_declared_is_refused(project, gates_cli):
    frame = pd.read_csv(project.data_path)
    frame.to_parquet(project.data_path, index=False)
    done = gates_cli(project.root, "run", "data")
    assert done.returncode == 1
    assert "expected UTF-8 CSV" in done.stdout
    assert "Traceback" not in done.stderr


# --- the label check's out-of-fold fits on a real Dask cluster on loopback -----------------


def _without_seconds(metrics: dict) -> dict:
    """The data gate's metrics without its timings, which differ between any two runs."""
    kept = {k: v for k, v in metrics.items() if k != "seconds"}
    kept["checks"] = {
        name: {k: v for k, v in check.items() if k != "seconds"}
        for name, check in metrics["checks"].items()
    }
    return kept


@pytest.mark.slow
def test_the_data_gate_follows_the_scheduler_from_the_environment(
    project, dask_cluster, monkeypatch
):
    monkeypatch.delenv("GATES_DASK_SCHEDULER", raising=False)
    # With quarantine the label check reports the approved snapshot's own doubtful rows
    # (without it, only rows beyond its rate): rows to compare.
    project.edit_policy(**{"data.checks.quarantine": True})
    flagged = project.root / "reports" / "data.flagged.csv"
    assert _status(project) is Status.PASSED
    local, local_rows = project.report("data"), flagged.read_bytes()
    assert local["metrics"]["flagged_rows"] > 0
    monkeypatch.setenv("GATES_DASK_SCHEDULER", dask_cluster.scheduler_address)
    before = dask_cluster.scheduler.transition_counter
    assert _status(project) is Status.PASSED
    assert dask_cluster.scheduler.transition_counter > before
    remote = project.report("data")
    assert flagged.read_bytes() == local_rows
    assert remote["findings"] == local["findings"]
    assert _without_seconds(remote["metrics"]) == _without_seconds(local["metrics"])


def test_an_unreachable_scheduler_makes_the_data_gate_errored(
    project, monkeypatch, unreachable_scheduler
):
    monkeypatch.setenv("GATES_DASK_SCHEDULER", unreachable_scheduler)
    summary = project.run("data")
    assert summary.exit_code == 2
    result = summary.results[0]
    assert result.status is Status.ERRORED
    assert f"cannot reach the Dask scheduler at {unreachable_scheduler}" in result.summary
    assert "GATES_DASK_SCHEDULER or [run].dask_scheduler" in result.summary
    assert not (project.root / "reports" / "data.flagged.csv").exists()


def _approved_lock(project, tmp_path) -> str:
    copy = tmp_path / "approved.lock.json"
    copy.write_text((project.root / "data" / "breast_cancer.lock.json").read_text())
    return str(copy)


def test_an_approved_lock_that_is_missing_or_lacks_the_file_makes_the_gate_errored(
    project, monkeypatch, tmp_path
):
    # A verdict reached without the approved lock is cached; it must not be reused with one.
    assert _status(project) is Status.PASSED
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(tmp_path / "absent.lock.json"))
    result = project.run("data").results[0]
    assert result.status is Status.ERRORED
    assert "GATES_APPROVED_LOCK" in result.summary
    other = tmp_path / "other.lock.json"
    other.write_text(json.dumps({"schema_version": 1, "files": {}}))
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(other))
    result = project.run("data").results[0]
    assert result.status is Status.ERRORED
    assert "has no entry for breast_cancer.csv" in result.summary


def _base_branch(project, tmp_path) -> Path:
    """The protected branch as CI checks it out apart from the pull request: its policy and lock."""
    base = tmp_path / "base"
    (base / "data").mkdir(parents=True)
    shutil.copy(project.policy_path, base / "policy.toml")
    shutil.copy(project.root / "data" / "breast_cancer.lock.json", base / "data")
    return base / "policy.toml"


def test_the_base_branchs_policy_names_the_approved_lock(project, monkeypatch, tmp_path):
    # CI sets only $GATES_BASE_POLICY (the generated files do, on pull requests): the lock its
    # [data].lock names, in the base branch's folder, is the approved one. The pull request
    # flips labels, re-baselines its own lock and moves [data].lock to a name of its own.
    base = _base_branch(project, tmp_path)
    frame = pd.read_csv(project.data_path)
    rows = frame.index[::10][:40]
    swap = {"benign": "malignant", "malignant": "benign"}
    frame.loc[rows, "diagnosis"] = frame.loc[rows, "diagnosis"].map(swap)
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    project.edit_policy(
        **{"data.lock": "data/forged.lock.json", "data.checks.labels.enabled": False}
    )
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    assert _status(project) is Status.PASSED  # the forged lock calls every row approved
    monkeypatch.setenv("GATES_BASE_POLICY", str(base))
    assert _status(project) is Status.FAILED  # the base branch's lock does not
    batch = project.report("data")["metrics"]["batch"]
    assert batch["new_rows"] == 40
    assert batch["trusted"] is True
    assert str(base.parent / "data" / "breast_cancer.lock.json") in batch["source"]
    assert "DATA100" in _rules(project)
    # $GATES_APPROVED_LOCK, when set too, names the lock itself and wins.
    monkeypatch.setenv("GATES_APPROVED_LOCK", str(tmp_path / "absent.lock.json"))
    result = project.run("data").results[0]
    assert result.status is Status.ERRORED
    assert "$GATES_APPROVED_LOCK" in result.summary


def test_an_unreadable_base_policy_or_its_missing_lock_makes_the_gate_errored(
    project, monkeypatch, tmp_path
):
    # A verdict reached without the base branch is cached; it must not be reused with it.
    assert _status(project) is Status.PASSED
    monkeypatch.setenv("GATES_BASE_POLICY", str(tmp_path / "absent.toml"))
    result = project.run("data").results[0]
    assert result.status is Status.ERRORED
    assert "$GATES_BASE_POLICY" in result.summary
    assert "the base branch's policy cannot be read" in result.summary
    base = _base_branch(project, tmp_path)
    (base.parent / "data" / "breast_cancer.lock.json").unlink()
    monkeypatch.setenv("GATES_BASE_POLICY", str(base))
    result = project.run("data").results[0]
    assert result.status is Status.ERRORED
    assert "$GATES_BASE_POLICY's [data].lock" in result.summary
    assert "breast_cancer.lock.json" in result.summary


def test_rows_approved_only_in_the_pull_requests_lock_are_screened_as_new(
    project, monkeypatch, tmp_path
):
    trusted = _approved_lock(project, tmp_path)

    def flips(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame.index[::10][:40]
        swap = {"benign": "malignant", "malignant": "benign"}
        frame.loc[rows, "diagnosis"] = frame.loc[rows, "diagnosis"].map(swap)
        return frame

    frame = pd.read_csv(project.data_path)
    flips(frame).to_csv(project.data_path, index=False, lineterminator="\n")
    # The attacker re-baselines: in the committed lock every row is approved.
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    project.edit_policy(**{"data.checks.labels.enabled": False})  # the batch screen alone
    assert _status(project) is Status.PASSED  # the forged approval hides the batch...
    assert project.report("data")["metrics"]["batch"]["skipped"].startswith("every row")
    monkeypatch.setenv("GATES_APPROVED_LOCK", trusted)
    assert _status(project) is Status.FAILED  # ...but not from the protected branch's lock
    report = project.report("data")
    assert report["metrics"]["batch"]["new_rows"] == 40
    assert report["metrics"]["batch"]["trusted"] is True
    assert "DATA100" in _rules(project)
    assert "DATA106" not in _rules(project, severity="note")


def _near_copies(
    frame: pd.DataFrame,
    rows: np.ndarray,
    *,
    columns: list[str],
    move: Callable[[pd.Series], pd.Series],
) -> pd.DataFrame:
    """Copies of ``rows`` with new ids and ``columns`` moved a hair (appended at the end)."""
    extra = frame.loc[rows].copy()
    extra["id"] = np.arange(100_000, 100_000 + len(extra))
    for column in columns:
        extra[column] = move(extra[column])
    return pd.concat([frame, extra], ignore_index=True)


def _one_ulp(values: pd.Series) -> pd.Series:
    return pd.Series(np.nextafter(values.to_numpy(), np.inf), index=values.index)


def _data052(project) -> dict:
    return next(f for f in project.report("data")["findings"] if f["rule"] == "DATA052")


def test_a_one_ulp_copy_of_every_row_fails(project):
    # Red team: every row copied once, new id, mean_radius one ulp up, re-approved by the
    # attacker: each holdout row had a twin in training (holdout accuracy 0.965 -> 0.987) and
    # the gate passed (exact duplicates only, bursts from 5 copies up).
    _rewrite(
        project,
        lambda f: _near_copies(f, f.index.to_numpy(), columns=["mean_radius"], move=_one_ulp),
    )
    assert _status(project) is Status.FAILED
    finding = _data052(project)
    assert finding["severity"] == "error"
    assert finding["message"].startswith("569 near-duplicate rows")
    # Over max_near_share and beyond the approved snapshot's own near copies (none of 569).
    assert "(50.00% > 2.00%; beyond the approved" in finding["message"]
    # Names its twin; the distance is floating-point noise around 0 (1.69e-07 or 0 by the
    # order of the sums), so only its form is asserted.
    assert re.search(r"first row 569: within [0-9.e+-]+ of row 0 ", finding["message"])
    assert "pairs: 569~0, 570~1, 571~2" in finding["message"]
    assert finding["policy_key"] == "[data.checks.duplicates].max_near_share"


def test_a_quarter_of_the_rows_copied_with_tiny_moves_on_three_features_and_shuffled_fails(
    project,
):
    def attack(frame: pd.DataFrame) -> pd.DataFrame:
        rows = np.random.default_rng(3).choice(len(frame), size=142, replace=False)
        out = _near_copies(
            frame,
            rows,
            columns=["mean_radius", "mean_texture", "worst_area"],
            move=lambda v: v * (1 + 1e-9),
        )
        return out.sample(frac=1.0, random_state=5).reset_index(drop=True)  # reordered

    _rewrite(project, attack)
    assert _status(project) is Status.FAILED
    finding = _data052(project)
    assert finding["severity"] == "error"
    assert finding["message"].startswith("142 near-duplicate rows")
    assert "> 2.00%" in finding["message"]


def test_a_handful_of_legitimate_near_duplicates_under_the_share_passes(project):
    # Five near copies (0.9% of the table), the whole table approved (no batch): a note.
    frame = pd.read_csv(project.data_path)
    frame = _near_copies(
        frame, np.array([3, 50, 200, 400, 500]), columns=["mean_texture"], move=_one_ulp
    )
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    assert _status(project) is Status.PASSED
    finding = _data052(project)
    assert finding["severity"] == "note"
    assert finding["message"].startswith("5 near-duplicate rows")
    assert "(0.87% <= 2.00%)" in finding["message"]
    assert "pairs: 569~3, 570~50, 571~200" in finding["message"]


def test_a_batch_of_near_copies_of_approved_rows_fails(project, monkeypatch, tmp_path):
    # Ten near copies in a 579-row table: 1.7% of the table (under the whole-table share),
    # but every new row of the batch has an approved twin.
    trusted = _approved_lock(project, tmp_path)
    _rewrite(
        project,
        lambda f: _near_copies(
            f, np.arange(0, 500, 50), columns=["mean_radius", "mean_area"], move=_one_ulp
        ),
    )
    project.edit_policy(**{"data.checks.labels.enabled": False})  # the batch screen alone
    monkeypatch.setenv("GATES_APPROVED_LOCK", trusted)
    assert _status(project) is Status.FAILED
    report = project.report("data")
    assert report["metrics"]["batch"]["new_rows"] == 10
    batch = next(f for f in report["findings"] if f["rule"] == "DATA108")
    assert batch["severity"] == "error"
    assert batch["message"].startswith("10 new rows within the bursts radius")
    assert "first row 569: within 0 of approved row 0" in batch["message"]
    assert _data052(project)["severity"] == "note"
