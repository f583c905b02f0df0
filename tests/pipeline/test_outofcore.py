"""Out-of-core train and CV (pipeline/outofcore.py): the in-memory family's optimum, the same
result on a real dask.distributed cluster as in one process, scores as scikit-learn's."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipeline import outofcore
from pipeline.config import LoadedPolicy, load_policy
from pipeline.data import read_table, write_lock
from tests.project_support import copy_project

# 569 rows cut into partitions of about 40 rows: 15 partitions.
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


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("ooc") / "project", keys=False)


def _table(policy: LoadedPolicy) -> tuple[pd.DataFrame, np.ndarray]:
    """The whole table (small enough here) and each row's split group, as the tasks draw it."""
    data = policy.policy.data
    raw = pd.read_csv(policy.resolve(data.path), dtype=str, keep_default_na=False)
    key = f"{policy.policy.run.seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(raw[data.id_column], index=False, hash_key=key)
    groups = outofcore.groups_of(
        hashed.to_numpy(), folds=policy.policy.cv.folds, holdout_fraction=data.holdout_fraction
    )
    return raw, groups


def test_the_plan_cuts_whole_rows_and_hashes_each_partition(root):
    policy = _policy(root)
    plan = outofcore.plan(policy)
    assert len(plan.partitions) >= 12
    body = policy.resolve(policy.policy.data.path).read_bytes()
    assert plan.partitions[0].start == body.index(b"\n") + 1
    assert plan.partitions[-1].end == len(body)
    for left, right in zip(plan.partitions, plan.partitions[1:], strict=False):
        assert left.end == right.start
        assert body[left.end - 1 : left.end] == b"\n"


def test_a_quoted_newline_is_never_a_cut(tmp_path):
    rows = [f'"id {i}\nstill id {i}",{i}.5,"a ""quoted"" word"\n' for i in range(200)]
    path = tmp_path / "quoted.csv"
    path.write_bytes(b"id,x,text\n" + "".join(rows).encode())
    partitions, _ = outofcore._cut(path, len(b"id,x,text\n"), 100)
    assert len(partitions) > 20
    body = path.read_bytes()
    parsed = [
        pd.read_csv(pd.io.common.BytesIO(body[p.start : p.end]), header=None, dtype=str)
        for p in partitions
    ]
    assert sum(len(frame) for frame in parsed) == 200
    assert all(frame[0].str.startswith("id ").all() for frame in parsed)


def test_newton_reaches_scikit_learns_logistic_regression_on_the_same_split(root):
    """The accuracy cost of the out-of-core family: none beyond the solvers' tolerance."""
    policy = _policy(root)
    trained = outofcore.train(policy)
    raw, groups = _table(policy)
    data = policy.policy.data
    x = raw[list(data.feature_columns)].astype(float)
    y = raw[data.label]
    train = groups != policy.policy.cv.folds
    reference = Pipeline(
        [("scale", StandardScaler()), ("c", LogisticRegression(C=1.0, max_iter=10_000, tol=1e-10))]
    ).fit(x[train], y[train])
    ours = trained.model.steps[-1][1]
    assert np.abs(reference[-1].coef_ - ours.coef_).max() < 1e-5
    assert np.abs(reference.predict_proba(x) - trained.model.predict_proba(x)).max() < 1e-5
    assert (reference.predict(x) == trained.model.predict(x)).all()
    assert trained.n_train == int(train.sum())
    assert trained.n_holdout == int((~train).sum())


def test_cv_scores_are_scikit_learns_on_the_same_folds(root):
    policy = _policy(root)
    trained = outofcore.train(policy)
    metrics = ["accuracy", "balanced_accuracy", "f1", "roc_auc"]
    result = outofcore.cross_validate(policy, trained.model, champion=None, metrics=metrics)
    raw, groups = _table(policy)
    data = policy.policy.data
    x = raw[list(data.feature_columns)].astype(float)
    y = raw[data.label]
    folds = policy.policy.cv.folds
    positive = data.positive_class or sorted(data.classes)[-1]
    for fold in range(folds):
        train = (groups != fold) & (groups != folds)
        test = groups == fold
        model = Pipeline(
            [("s", StandardScaler()), ("c", LogisticRegression(max_iter=10_000, tol=1e-10))]
        ).fit(x[train], y[train])
        predicted = model.predict(x[test])
        proba = model.predict_proba(x[test])[:, list(model.classes_).index(positive)]
        assert result.folds["accuracy"][fold] == pytest.approx(accuracy_score(y[test], predicted))
        assert result.folds["balanced_accuracy"][fold] == pytest.approx(
            balanced_accuracy_score(y[test], predicted)
        )
        assert result.folds["f1"][fold] == pytest.approx(
            f1_score(y[test], predicted, pos_label=positive)
        )
        exact = roc_auc_score(y[test] == positive, proba)
        assert abs(result.folds["roc_auc"][fold] - exact) <= result.auc_tie_bound + 1e-9
    held = groups == folds
    assert result.holdout["accuracy"] == pytest.approx(
        accuracy_score(y[held], trained.model.predict(x[held]))
    )


@pytest.mark.slow
def test_a_cluster_computes_what_one_process_computes(root, dask_cluster):
    """Same partitions, same sums in the same order: the same model to the last bit."""
    here = _policy(root)
    there = _policy(root, local_workers=2)
    address = dask_cluster.scheduler_address
    before = dask_cluster.scheduler.transition_counter
    local = outofcore.train(here)
    remote = outofcore.train(there, scheduler=address)
    assert dask_cluster.scheduler.transition_counter > before
    assert remote.where == f"dask {address}"
    assert local.where == "in one process"
    np.testing.assert_array_equal(local.model.steps[-1][1].coef_, remote.model.steps[-1][1].coef_)
    assert local.split_digest == remote.split_digest
    metrics = ["accuracy", "roc_auc"]
    a = outofcore.cross_validate(here, local.model, champion=None, metrics=metrics)
    b = outofcore.cross_validate(
        there, remote.model, champion=local.model, metrics=metrics, scheduler=address
    )
    assert a.folds == b.folds
    assert a.holdout == b.holdout == b.champion


def test_a_file_changed_after_the_plan_is_refused_by_partition(root, tmp_path):
    copy = copy_project(tmp_path / "p", keys=False)
    policy = _policy(copy)
    plan = outofcore.plan(policy)
    path = policy.resolve(policy.policy.data.path)
    body = bytearray(path.read_bytes())
    part = plan.partitions[3]
    digit = body.index(b"1", part.start + 10)
    body[digit : digit + 1] = b"2"  # same size, same rows, one value changed
    path.write_bytes(bytes(body))
    setup = outofcore.setup_for(policy, plan)
    with pytest.raises(outofcore.DataError, match=r"partition 3 \(bytes .*SHA-256"):
        outofcore.split_stats(plan, setup, outofcore.InProcess())


def test_a_worker_array_of_the_wrong_shape_is_refused():
    with pytest.raises(outofcore.PipelineError, match=r"expected \(2, 3\) finite numbers"):
        outofcore._array(np.array([[1.0, np.nan, 0.0], [0.0, 0.0, 0.0]]), (2, 3))
    with pytest.raises(outofcore.PipelineError, match="shape"):
        outofcore._array(np.zeros((3, 2)), (2, 3))


def test_takes_out_of_core_follows_the_policy(root):
    policy = _policy(root)
    assert not outofcore.takes_out_of_core(policy)  # 124 KiB, below 256 MiB: in memory
    small = dataclasses.replace(
        policy,
        policy=policy.policy.model_copy(
            update={"data": policy.policy.data.model_copy(update={"stream_above_mb": 0.01})}
        ),
    )
    assert outofcore.takes_out_of_core(small)
    forced = _policy(root, out_of_core="always")
    assert outofcore.takes_out_of_core(forced)
    never = dataclasses.replace(
        small,
        policy=small.policy.model_copy(
            update={"run": small.policy.run.model_copy(update={"out_of_core": "never"})}
        ),
    )
    assert not outofcore.takes_out_of_core(never)


def test_quarantined_rows_are_left_out_as_if_they_were_not_in_the_file(root, tmp_path):
    """``drop`` (the data gate's quarantine, file rows) against the file without those rows."""
    policy = _policy(root)
    drop = (0, 41, 42, 300, 568)
    dropped = outofcore.train(policy, drop=drop)
    copy = copy_project(tmp_path / "p", keys=False)
    shorter = _policy(copy)
    path = shorter.resolve(shorter.policy.data.path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).drop(index=list(drop))
    frame.to_csv(path, index=False)
    write_lock(shorter, read_table(path, fmt="csv"))
    without = outofcore.train(shorter)
    assert dropped.n_train + dropped.n_holdout == 569 - len(drop)
    assert (dropped.n_train, dropped.n_holdout) == (without.n_train, without.n_holdout)
    np.testing.assert_allclose(
        dropped.model.steps[-1][1].coef_, without.model.steps[-1][1].coef_, atol=1e-9
    )


def test_scores_summed_batch_by_batch_are_the_scores_of_one_batch(root, monkeypatch):
    policy = _policy(root)
    model = outofcore.train(policy).model
    metrics = ["accuracy", "roc_auc"]
    whole = outofcore.cross_validate(policy, model, champion=model, metrics=metrics)
    monkeypatch.setattr(outofcore, "_SCORE_BATCH", 4)
    batched = outofcore.cross_validate(policy, model, champion=model, metrics=metrics)
    assert (whole.folds, whole.holdout, whole.champion) == (
        batched.folds,
        batched.holdout,
        batched.champion,
    )


@pytest.mark.slow
def test_without_a_scheduler_the_path_starts_a_local_cluster_of_the_policys_size(root, monkeypatch):
    monkeypatch.delenv("GATES_DASK_SCHEDULER", raising=False)
    started = outofcore.train(_policy(root, local_workers=2))
    assert started.where == "a local Dask cluster of 2 workers"
    here = outofcore.train(_policy(root))
    np.testing.assert_array_equal(started.model.steps[-1][1].coef_, here.model.steps[-1][1].coef_)
