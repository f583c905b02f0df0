"""Estimators are built from policy, with parameters checked before any data is read."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_wine

from pipeline.config import ModelPolicy
from pipeline.errors import PolicyError
from pipeline.model import ESTIMATORS, build_estimator
from pipeline.persist import REVIEWED_TYPES


def test_every_family_has_reviewed_skops_types():
    assert set(ESTIMATORS) == set(REVIEWED_TYPES)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_each_family_builds_fits_and_is_seeded(estimator):
    params = {"n_estimators": 10} if estimator == "random_forest" else {}
    pipe = build_estimator(ModelPolicy(estimator=estimator, params=params), seed=7)
    classifier = pipe.named_steps["classifier"]
    if "random_state" in classifier.get_params():
        assert classifier.random_state == 7
    x, y = load_wine(return_X_y=True)
    assert pipe.fit(x, y).score(x, y) > 0.8


def test_scale_false_leaves_only_the_classifier():
    pipe = build_estimator(ModelPolicy(scale=False), seed=0)
    assert [name for name, _ in pipe.steps] == ["classifier"]


def test_unknown_parameter_names_the_key_and_alternatives():
    with pytest.raises(
        PolicyError,
        match=r"\[model\.params\]\.depth: not a parameter of LogisticRegression; expected one of: .*max_iter",
    ):
        build_estimator(ModelPolicy(params={"depth": 3}), seed=0)


def test_invalid_parameter_value_is_a_policy_error():
    with pytest.raises(PolicyError, match=r"\[model\.params\]\.C: invalid for LogisticRegression"):
        build_estimator(ModelPolicy(params={"C": -1.0}), seed=0)
