"""data, train and cv on a table split into many partitions, on a real dask.distributed cluster.

The same findings, thresholds and reports as in memory; the accuracy cost of the out-of-core
family against the in-memory model on this table (small enough for both) is stated here.
"""

from __future__ import annotations

import pytest

from gates.base import Status
from tests.conftest import Project

# The embedded table (124 KiB, 569 rows) streams through the data gate in chunks of 100 rows
# and is cut into partitions of about 40 rows (15) for train and cv.
_OUT_OF_CORE = {
    "run.out_of_core": "always",
    "data.stream_above_mb": 0.01,
    "data.stream_chunk_rows": 40,
}


@pytest.mark.slow
def test_the_chain_on_a_cluster_matches_in_memory_within_the_stated_cost(
    project, passed_chain, dask_cluster, monkeypatch
):
    # In memory: the session's passed chain, run on this same policy and data (its data,
    # train and cv PASSED), read instead of training and cross-validating it again here.
    passed = Project(passed_chain)
    assert [passed.report(g)["status"] for g in ("data", "train", "cv")] == ["PASSED"] * 3
    in_memory = passed.report("cv")["metrics"]
    assert "out_of_core" not in passed.report("train")["metrics"]
    assert project.policy_path.read_bytes() == passed.policy_path.read_bytes()
    assert project.data_path.read_bytes() == passed.data_path.read_bytes()

    project.edit_policy(**_OUT_OF_CORE)
    monkeypatch.setenv("GATES_DASK_SCHEDULER", dask_cluster.scheduler_address)
    before = dask_cluster.scheduler.transition_counter
    summary = project.run("data", "train", "cv")
    assert summary.exit_code == 0, [f"{r.gate}: {r.summary}" for r in summary.results]
    assert dask_cluster.scheduler.transition_counter > before

    data = project.report("data")["metrics"]
    assert data["streaming"]["largest_chunk"] == 40
    train = project.report("train")
    where = f"dask {dask_cluster.scheduler_address}"
    assert train["metrics"]["out_of_core"]["where"] == where
    assert train["metrics"]["out_of_core"]["partitions"] >= 12
    assert "fitted out of core" in train["summary"]
    cv = project.report("cv")
    assert cv["metrics"]["out_of_core"]["where"] == where
    assert cv["status"] == "PASSED"
    assert cv["metrics"]["champion"]["status"] == "none"
    # The same report shape as in memory, metric by metric.
    for metric in ("accuracy", "balanced_accuracy", "f1", "roc_auc"):
        assert set(cv["metrics"][metric]) == set(in_memory[metric])
        assert len(cv["metrics"][metric]["folds"]) == len(in_memory[metric]["folds"])
        # The accuracy cost: the same family at the same optimum, on other (hash-drawn) rows;
        # on 569 rows the means differ by the split's noise only.
        assert abs(cv["metrics"][metric]["mean"] - in_memory[metric]["mean"]) < 0.03


def test_a_threshold_missed_out_of_core_is_the_same_finding(project, monkeypatch):
    project.edit_policy(
        **_OUT_OF_CORE,
        **{"run.local_workers": 0, "cv.thresholds.accuracy.min_holdout": 0.999},
    )
    summary = project.run("data", "train", "cv")
    cv = next(r for r in summary.results if r.gate == "cv")
    assert cv.status is Status.FAILED
    report = project.report("cv")
    missed = [f for f in report["findings"] if f["rule"] == "CV004"]
    assert missed
    assert missed[0]["policy_key"] == "[cv.thresholds.accuracy].min_holdout"
    assert report["metrics"]["out_of_core"]["where"] == "in one process"


def test_a_forced_out_of_core_run_of_another_family_names_the_key(project):
    project.edit_policy(**_OUT_OF_CORE, **{"model.estimator": "random_forest"})
    summary = project.run("data", "train")
    train = next(r for r in summary.results if r.gate == "train")
    assert train.status is Status.ERRORED
    assert "[model].estimator" in train.summary
