"""Cross-validation and holdout scoring, binary and multiclass."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_wine

from pipeline.config import ModelPolicy
from pipeline.errors import PipelineError
from pipeline.evaluate import build_scorers, cross_validate_scores, holdout_scores
from pipeline.model import build_estimator

METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc")


@pytest.fixture
def wine():
    data = load_wine(as_frame=True)
    return data.data, data.target.map(lambda c: f"cultivar_{c}")


def test_multiclass_metrics_are_macro_and_one_vs_rest(wine):
    features, labels = wine
    scorers = build_scorers(METRICS, classes=sorted(set(labels)), positive_class=None)
    estimator = build_estimator(ModelPolicy(), seed=0)
    scores = cross_validate_scores(estimator, features, labels, scorers=scorers, folds=3, seed=0)
    assert set(scores.folds) == set(METRICS)
    for metric in METRICS:
        assert len(scores.folds[metric]) == 3
        assert 0.85 < scores.mean(metric) <= 1.0


def test_cv_is_deterministic_for_a_seed(wine):
    features, labels = wine
    scorers = build_scorers(["accuracy"], classes=sorted(set(labels)), positive_class=None)
    estimator = build_estimator(
        ModelPolicy(estimator="random_forest", params={"n_estimators": 5}), seed=1
    )
    first = cross_validate_scores(estimator, features, labels, scorers=scorers, folds=3, seed=1)
    second = cross_validate_scores(estimator, features, labels, scorers=scorers, folds=3, seed=1)
    assert first == second


def test_binary_f1_scores_the_positive_class():
    labels = pd.Series(["a", "a", "b", "b"])
    features = pd.DataFrame({"x": [0.0, 0.1, 0.9, 1.0]})
    model = build_estimator(ModelPolicy(), seed=0).fit(features, labels)
    for positive in ("a", "b"):
        scorers = build_scorers(["f1", "recall"], classes=["a", "b"], positive_class=positive)
        assert holdout_scores(model, features, labels, scorers=scorers) == {
            "f1": 1.0,
            "recall": 1.0,
        }


def test_more_folds_than_rows_of_a_class_is_a_clear_error(wine):
    features, labels = wine
    scorers = build_scorers(["accuracy"], classes=sorted(set(labels)), positive_class=None)
    with pytest.raises(
        PipelineError, match=r"\[cv\]\.folds = 60 needs at least 60 rows of every class"
    ):
        cross_validate_scores(
            build_estimator(ModelPolicy(), seed=0),
            features,
            labels,
            scorers=scorers,
            folds=60,
            seed=0,
        )


# --- the path past one machine: the same CV on a real Dask cluster on loopback -------------


# dask_cluster (a scheduler and two worker processes on 127.0.0.1) is in tests/conftest.py.


@pytest.mark.slow
def test_cv_on_a_dask_cluster_gives_the_local_scores(wine, dask_cluster):
    features, labels = wine
    scorers = build_scorers(METRICS, classes=sorted(set(labels)), positive_class=None)
    estimator = build_estimator(ModelPolicy(), seed=3)
    local = cross_validate_scores(estimator, features, labels, scorers=scorers, folds=4, seed=3)
    remote = cross_validate_scores(
        estimator,
        features,
        labels,
        scorers=scorers,
        folds=4,
        seed=3,
        scheduler=dask_cluster.scheduler_address,
    )
    assert remote.folds == local.folds
    # The folds really ran on the cluster (joblib's tasks went through its scheduler).
    assert dask_cluster.scheduler.transition_counter > 0


@pytest.mark.slow
def test_the_cv_gate_follows_the_scheduler_from_the_environment(project, dask_cluster, monkeypatch):
    assert project.run("data", "train", "cv").exit_code == 0
    local = project.report("cv")["metrics"]
    monkeypatch.setenv("GATES_DASK_SCHEDULER", dask_cluster.scheduler_address)
    before = dask_cluster.scheduler.transition_counter
    assert project.run("data", "train", "cv").exit_code == 0
    assert project.report("cv")["metrics"] == local
    assert dask_cluster.scheduler.transition_counter > before


def test_an_unreachable_scheduler_is_one_clear_error(wine, unreachable_scheduler):
    features, labels = wine
    scorers = build_scorers(["accuracy"], classes=sorted(set(labels)), positive_class=None)
    with pytest.raises(
        PipelineError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1"
    ):
        cross_validate_scores(
            build_estimator(ModelPolicy(), seed=0),
            features,
            labels,
            scorers=scorers,
            folds=3,
            seed=0,
            scheduler=unreachable_scheduler,
        )


def test_the_environment_overrides_the_policy_scheduler(monkeypatch):
    from pipeline.evaluate import DASK_SCHEDULER_ENV, resolve_scheduler

    monkeypatch.delenv(DASK_SCHEDULER_ENV, raising=False)
    assert resolve_scheduler(None) is None
    assert resolve_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    monkeypatch.setenv(DASK_SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    assert resolve_scheduler("tcp://10.0.0.1:8786") == "tcp://127.0.0.1:8786"
