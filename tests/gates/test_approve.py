"""`python -m gates data approve`: the diff a reviewer reads, the baseline, and refusing bad data."""

from __future__ import annotations

import io
import json

import pandas as pd

from gates.approve import approve


def _lock_bytes(project) -> bytes:
    return (project.root / "data" / "breast_cancer.lock.json").read_bytes()


def test_approve_prints_rows_added_removed_changed_and_class_shift(project):
    frame = pd.read_csv(project.data_path)
    frame.loc[4, "mean_texture"] = 20.5  # id 5 changed
    extra = frame.iloc[[0]].copy()
    extra["id"] = 900
    extra["diagnosis"] = "benign"
    frame = pd.concat([frame.drop(index=[1, 2]), extra], ignore_index=True)  # ids 2, 3 removed
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    out = io.StringIO()
    assert approve(project.load(), out=out) == 0
    text = out.getvalue()
    assert "rows 569 -> 568 (-1)" in text
    assert "rows added (1): ids 900" in text
    assert "rows removed (2): ids 2, 3" in text
    assert "rows changed (1): ids 5" in text
    assert "class 'benign': share" in text
    assert "reference profile kept from the earlier approval" in text
    lock = json.loads(_lock_bytes(project))
    entry = lock["files"]["breast_cancer.csv"]
    assert entry["rows"] == 568
    assert entry["profile"]["rows"] == 568
    assert entry["reference"]["rows"] == 569  # the baseline stays until --rebaseline


def test_rebaseline_makes_this_snapshot_the_reference(project, gates_cli):
    frame = pd.read_csv(project.data_path).drop(index=[0])
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    done = gates_cli(project.root, "data", "approve", "--rebaseline")
    assert done.returncode == 0, done.stderr
    assert "this snapshot is the new baseline" in done.stdout
    entry = json.loads(_lock_bytes(project))["files"]["breast_cancer.csv"]
    assert entry["reference"]["rows"] == 568


def test_unchanged_data_says_so(project, gates_cli):
    done = gates_cli(project.root, "data", "approve")
    assert done.returncode == 0
    assert "unchanged since the last approval" in done.stdout


def test_contract_breaking_data_is_not_approved_and_the_lock_is_untouched(project, gates_cli):
    before = _lock_bytes(project)
    frame = pd.read_csv(project.data_path)
    frame.loc[0, "diagnosis"] = "unknown"
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    done = gates_cli(project.root, "data", "approve")
    assert done.returncode == 1
    assert "not approved" in done.stdout
    assert "DATA020" in done.stdout
    assert _lock_bytes(project) == before


def test_unreadable_or_too_large_files_exit_2_without_a_traceback(project, gates_cli):
    before = _lock_bytes(project)
    project.edit_policy(**{"data.checks.max_file_mb": 0.01})
    done = gates_cli(project.root, "data", "approve")
    assert done.returncode == 2
    assert "[data.checks].max_file_mb" in done.stderr
    project.edit_policy(**{"data.checks.max_file_mb": 100.0})
    project.data_path.write_bytes(b"")
    done = gates_cli(project.root, "data", "approve")
    assert done.returncode == 2
    assert "data file is empty" in done.stderr
    assert "Traceback" not in done.stderr
    assert _lock_bytes(project) == before


def test_approve_screens_new_rows_against_the_previously_approved_ones(project):
    frame = pd.read_csv(project.data_path)
    rows = frame.index[::10][:40]
    swap = {"benign": "malignant", "malignant": "benign"}
    frame.loc[rows, "diagnosis"] = frame.loc[rows, "diagnosis"].map(swap)
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    out = io.StringIO()
    assert approve(project.load(), out=out) == 0  # approving stays a person's decision...
    text = out.getvalue()
    assert "screened against the 529 previously approved" in text
    assert "the data gate fails on this: DATA100" in text  # ...told what the gate will say
    # Approving the same file again: nothing new to screen.
    again = io.StringIO()
    assert approve(project.load(), out=again) == 0
    assert "screened against" not in again.getvalue()


def test_approve_records_the_label_witness_rates_of_the_snapshot(project):
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    entry = json.loads(_lock_bytes(project))["files"]["breast_cancer.csv"]
    rates = entry["profile"]["label_rates"]
    # The witnesses' count rates (kNN; kNN and model both doubting), the mean and variance
    # of the kNN disagreement test; cleanlab's share, DATA070's baseline.
    assert set(rates) == {"knn", "both", "knn_mean", "knn_var", "cleanlab"}
    assert 0.0 <= rates["cleanlab"] < 0.05
    assert 0.0 <= rates["both"] <= rates["knn"] < 0.1
    assert 0.0 <= rates["knn_mean"] < 1.0
    assert rates["knn_var"] >= 0.0
    assert entry["reference"]["label_rates"] == rates
