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
