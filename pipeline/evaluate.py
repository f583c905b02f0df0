"""Stratified k-fold cross-validation and held-out scores on the metrics the policy names."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score, get_scorer, make_scorer, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold, cross_validate

from pipeline.errors import PipelineError

Scorer = Callable[..., float]
# A dask.distributed scheduler address; overrides [run].dask_scheduler.
DASK_SCHEDULER_ENV = "GATES_DASK_SCHEDULER"
# How long to wait for the scheduler (and for its first worker) before giving up.
_DASK_TIMEOUT_SECONDS = 30


def resolve_scheduler(configured: str | None) -> str | None:
    """The scheduler to use: ``GATES_DASK_SCHEDULER`` when set, else the policy's setting."""
    from_env = os.environ.get(DASK_SCHEDULER_ENV, "").strip()
    return from_env or configured or None


@contextlib.contextmanager
def joblib_backend(scheduler: str | None) -> Iterator[str]:
    """Run the joblib work inside on this machine, or on the Dask cluster at ``scheduler``.

    Yields a description of where the work runs. scikit-learn's ``cross_validate`` (and any
    other joblib-parallel step) picks the backend up from ``joblib.parallel_config``; the
    results do not depend on it, because every split and estimator is seeded.
    """
    if not scheduler:
        yield "local"
        return
    import joblib  # noqa: PLC0415 - only the Dask path configures joblib

    try:
        from distributed import Client  # noqa: PLC0415 - optional extra 'dask'
    except ImportError:
        msg = (
            f"a Dask scheduler is configured ({scheduler}) but dask.distributed is not "
            "installed; pip install 'secure-ml-pipeline[dask]', or unset "
            f"{DASK_SCHEDULER_ENV} and [run].dask_scheduler"
        )
        raise PipelineError(msg) from None
    try:
        client = Client(scheduler, timeout=_DASK_TIMEOUT_SECONDS, set_as_default=False)  # type: ignore[no-untyped-call, unused-ignore]
    except (OSError, TimeoutError, ValueError) as err:
        msg = (
            f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}: {err}); "
            f"check {DASK_SCHEDULER_ENV} or [run].dask_scheduler"
        )
        raise PipelineError(msg) from None
    try:
        with joblib.parallel_config(
            backend="dask",
            n_jobs=-1,
            client=client,
            wait_for_workers_timeout=_DASK_TIMEOUT_SECONDS,
        ):
            yield f"dask {scheduler}"
    finally:
        client.close()  # type: ignore[no-untyped-call, unused-ignore]


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
    scheduler: str | None = None,
) -> CvScores:
    """Run seeded stratified k-fold CV and return each metric's fold scores.

    With a Dask ``scheduler`` address the folds run on that cluster (see ``joblib_backend``).
    """
    smallest = int(labels.value_counts().min())
    if folds > smallest:
        msg = (
            f"[cv].folds = {folds} needs at least {folds} rows of every class in the training "
            f"split; the smallest class has {smallest}"
        )
        raise PipelineError(msg)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with joblib_backend(scheduler):
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
