"""Planted attacks on the out-of-core path (issue 21): a split steered through the hash, a bad
row deep in one partition, a malformed partition, a cluster that dies mid-fit.

Each case makes train (or cv) refuse with one message naming the class, row, column or
partition. The contract and split cases run in one process (the tasks are the same functions
a worker runs); the worker death runs on a real LocalCluster of two worker processes.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates.base import Status
from pipeline import outofcore
from pipeline.config import LoadedPolicy, load_policy
from pipeline.data import read_table, write_lock
from pipeline.errors import DataError, PipelineError
from tests.project_support import copy_project

_CHUNK_ROWS = 40


def _policy(root: Path, **run: Any) -> LoadedPolicy:
    policy = load_policy(root / "policy.toml")
    settings = policy.policy
    return dataclasses.replace(
        policy,
        policy=settings.model_copy(
            update={
                "run": settings.run.model_copy(update={"local_workers": 0, **run}),
                "data": settings.data.model_copy(update={"stream_chunk_rows": _CHUNK_ROWS}),
            }
        ),
    )


def _group(text: str, policy: LoadedPolicy) -> int:
    key = f"{policy.policy.run.seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(pd.Series([text]), index=False, hash_key=key)
    return int(
        outofcore.groups_of(
            hashed.to_numpy(),
            folds=policy.policy.cv.folds,
            holdout_fraction=policy.policy.data.holdout_fraction,
        )[0]
    )


def _steer(root: Path, target: int) -> LoadedPolicy:
    """Give every malignant row an id whose hash puts it in ``target`` (the holdout = folds)."""
    policy = _policy(root)
    path = policy.resolve(policy.policy.data.path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    malignant = frame.index[frame["diagnosis"] == "malignant"]
    if target != policy.policy.cv.folds:  # into one fold: the holdout's rows stay where they are
        held = [
            i for i in malignant if _group(frame.loc[i, "id"], policy) == policy.policy.cv.folds
        ]
        malignant = malignant.difference(held)
    fresh = (str(i) for i in range(10_000, 10_000_000))
    frame.loc[malignant, "id"] = [
        next(t for t in fresh if _group(t, policy) == target) for _ in malignant
    ]
    frame.to_csv(path, index=False)
    write_lock(policy, read_table(path, fmt="csv"))
    return policy


@pytest.mark.parametrize(
    ("target", "where"),
    [
        pytest.param(5, "in the holdout", id="all-malignant-in-holdout"),
        pytest.param(0, "in fold 0", id="all-malignant-in-fold-0"),
    ],
)
def test_ids_that_steer_one_class_into_one_part_are_refused(tmp_path, target, where):
    policy = _steer(copy_project(tmp_path / "p", keys=False), target)
    with pytest.raises(DataError) as refused:
        outofcore.train(policy)
    message = str(refused.value)
    assert "class 'malignant' has" in message
    assert where in message
    assert "[data].id_column" in message


def _plant(root: Path, row: int, column: str, value: str) -> LoadedPolicy:
    policy = _policy(root)
    path = policy.resolve(policy.policy.data.path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    write_lock(policy, read_table(path, fmt="csv"))  # approved: only the contract can stop it
    return policy


@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        pytest.param(300, "mean_radius", "abc", "row 300 not float64", id="text-in-a-number"),
        pytest.param(451, "mean_texture", "-3", "row 451", id="below-the-minimum"),
        pytest.param(77, "diagnosis", "Benign", "row 77", id="label-outside-the-classes"),
    ],
)
def test_a_bad_row_deep_in_one_partition_is_named_by_its_file_row(
    tmp_path, row, column, value, expected
):
    policy = _plant(copy_project(tmp_path / "p", keys=False), row, column, value)
    with pytest.raises(DataError) as refused:
        outofcore.train(policy)
    assert expected in str(refused.value)
    assert column in str(refused.value)
    assert "breaks its contract" in str(refused.value)


def test_labels_and_numbers_in_padding_train_as_the_contract_reads_them(tmp_path):
    """ " benign " and " 17.99" pass the contract as benign and 17.99; every pass reads them so."""
    clean = outofcore.train(_policy(copy_project(tmp_path / "a", keys=False)))
    root = copy_project(tmp_path / "b", keys=False)
    policy = _policy(root)
    path = policy.resolve(policy.policy.data.path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame.index[::7], "diagnosis"] = " " + frame.loc[frame.index[::7], "diagnosis"] + " "
    frame.loc[frame.index[::5], "mean_radius"] = " " + frame.loc[frame.index[::5], "mean_radius"]
    frame.to_csv(path, index=False)
    write_lock(policy, read_table(path, fmt="csv"))
    padded = outofcore.train(policy)
    np.testing.assert_allclose(
        clean.model.steps[-1][1].coef_, padded.model.steps[-1][1].coef_, rtol=0, atol=1e-12
    )


def test_a_bad_row_with_quarantined_rows_still_names_its_file_row(tmp_path):
    policy = _plant(copy_project(tmp_path / "p", keys=False), 300, "mean_radius", "abc")
    with pytest.raises(DataError, match="row 300 not float64"):
        outofcore.train(policy, drop=(3, 250))


def test_a_row_with_an_extra_field_names_its_partition(tmp_path):
    root = copy_project(tmp_path / "p", keys=False)
    policy = _policy(root)
    path = policy.resolve(policy.policy.data.path)
    lines = path.read_bytes().split(b"\n")
    lines[200] += b",1.0"
    path.write_bytes(b"\n".join(lines))
    write_lock(policy, _frame_of(path))
    with pytest.raises(DataError, match=r"partition \d+ \(bytes \d+-\d+\): malformed CSV"):
        outofcore.train(policy)


def _frame_of(path: Path) -> pd.DataFrame:
    # The lock records the file's digest; the frame only gives it its profile (row 200's extra
    # field is dropped by reading the first columns only).
    header = path.read_bytes().split(b"\n", 1)[0].decode().split(",")
    return pd.read_csv(path, dtype=str, keep_default_na=False, usecols=header, on_bad_lines="skip")


@pytest.mark.slow
def test_a_cluster_whose_workers_die_mid_fit_fails_closed(tmp_path):
    """Every worker killed while tasks run: the fit raises, naming the cluster; no model."""
    distributed = pytest.importorskip("distributed")
    import dask

    policy = _policy(copy_project(tmp_path / "p", keys=False), local_workers=2)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port: never 8787 on every interface
        )
    try:
        pids = [w.process.pid for w in cluster.workers.values()]
        stop = threading.Event()

        def kill_when_busy() -> None:
            while not stop.is_set():
                if any(ws.processing for ws in cluster.scheduler.workers.values()):
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    return
                time.sleep(0.001)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        try:
            with pytest.raises(PipelineError) as failed:
                outofcore.train(policy, scheduler=cluster.scheduler_address)
        finally:
            stop.set()
            killer.join()
        message = str(failed.value)
        assert f"the Dask cluster (dask {cluster.scheduler_address}) failed during task_" in message
        assert "nothing computed there was used" in message
    finally:
        cluster.close()


def test_the_train_gate_is_errored_on_a_steered_split(project):
    """The gate form of the first case: ERRORED, the message in the summary, no model."""
    # The batch screen is off: with every malignant row new (new ids), the approved rows hold
    # one class and the data gate rightly fails every malignant row, so train would not run.
    project.edit_policy(
        **{
            "run.out_of_core": "always",
            "run.local_workers": 0,
            "data.checks.batch.enabled": False,
        }
    )
    _steer(project.root, 5)
    summary = project.run("data", "train")
    statuses = {r.gate: r.status for r in summary.results}
    assert statuses["train"] is Status.ERRORED, [r.summary for r in summary.results]
    train = next(r for r in summary.results if r.gate == "train")
    assert "class 'malignant' has" in train.summary
    assert not (project.root / "artifacts" / "model.skops").exists()
