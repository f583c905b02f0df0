"""Stratified k-fold cross-validation and held-out scores on the metrics the policy names."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score, get_scorer, make_scorer, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold, cross_validate

from pipeline.errors import PipelineError

Scorer = Callable[..., float]


@dataclass(frozen=True)
class CvScores:
    """Per metric, the score of each fold."""

    folds: dict[str, tuple[float, ...]]

    def mean(self, metric: str) -> float:
        """Mean over folds."""
        return float(np.mean(self.folds[metric]))

    def std(self, metric: str) -> float:
        """Population standard deviation across folds (numpy's default, ddof=0)."""
        return float(np.std(self.folds[metric]))


def build_scorers(
    metrics: Iterable[str], *, classes: Sequence[str], positive_class: str | None
) -> dict[str, Any]:
    """Map metric names to scorers; binary metrics score ``positive_class``, multiclass ones macro."""
    binary = len(classes) == 2
    positive = positive_class if positive_class is not None else classes[-1]
    per_label: dict[str, Callable[..., float]] = {
        "f1": f1_score,
        "precision": precision_score,
        "recall": recall_score,
    }
    scorers: dict[str, Any] = {}
    for metric in metrics:
        if metric in per_label:
            function = per_label[metric]
            scorers[metric] = (
                make_scorer(function, pos_label=positive, zero_division=0.0)
                if binary
                else make_scorer(function, average="macro", zero_division=0.0)
            )
        elif metric == "roc_auc":
            # ROC AUC is symmetric in which class is called positive, so the binary scorer
            # needs no pos_label; multiclass uses one-vs-rest averaged over classes.
            scorers[metric] = get_scorer("roc_auc" if binary else "roc_auc_ovr")
        else:
            scorers[metric] = get_scorer(metric)
    return scorers


def cross_validate_scores(
    estimator: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    scorers: dict[str, Any],
    folds: int,
    seed: int,
) -> CvScores:
    """Run seeded stratified k-fold CV and return each metric's fold scores."""
    smallest = int(labels.value_counts().min())
    if folds > smallest:
        msg = (
            f"[cv].folds = {folds} needs at least {folds} rows of every class in the training "
            f"split; the smallest class has {smallest}"
        )
        raise PipelineError(msg)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    result = cross_validate(
        clone(estimator), features, labels, cv=splitter, scoring=scorers, error_score="raise"
    )
    return CvScores(
        folds={name: tuple(float(v) for v in result[f"test_{name}"]) for name in scorers}
    )


def holdout_scores(
    model: Any, features: pd.DataFrame, labels: pd.Series, *, scorers: dict[str, Any]
) -> dict[str, float]:
    """Score a fitted model on the held-out split."""
    return {name: float(scorer(model, features, labels)) for name, scorer in scorers.items()}
