"""Split the approved data and fit the policy's estimator on the training part."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline.config import LoadedPolicy
from pipeline.data import Dataset, load_dataset
from pipeline.errors import DataError
from pipeline.fsio import sha256_bytes
from pipeline.model import build_estimator


@dataclass(frozen=True)
class Split:
    """A seeded, stratified train/holdout split."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_holdout: pd.DataFrame
    y_holdout: pd.Series

    @property
    def digest(self) -> str:
        """SHA-256 of the holdout row positions: the same split gives the same digest."""
        return sha256_bytes(",".join(str(i) for i in sorted(self.x_holdout.index)).encode())


@dataclass(frozen=True)
class TrainResult:
    """A fitted model, the data and split it came from, and how long the fit took."""

    model: Any
    dataset: Dataset
    split: Split
    fit_seconds: float


def split_dataset(dataset: Dataset, *, holdout_fraction: float, seed: int) -> Split:
    """Hold out ``holdout_fraction`` of rows, stratified by label, seeded."""
    x_train, x_hold, y_train, y_hold = train_test_split(
        dataset.features,
        dataset.labels,
        test_size=holdout_fraction,
        stratify=dataset.labels,
        random_state=seed,
    )
    return Split(x_train=x_train, y_train=y_train, x_holdout=x_hold, y_holdout=y_hold)


def prepare(policy: LoadedPolicy, *, drop: Sequence[int] = ()) -> tuple[Dataset, Split]:
    """Load the approved data, drop quarantined rows, and split it as the policy says.

    ``drop`` holds 0-based data rows the data gate quarantined in this run
    (``[data.checks].quarantine``); the split is made after dropping, so train and CV see the
    same rows.
    """
    dataset = quarantine(load_dataset(policy), drop)
    split = split_dataset(
        dataset,
        holdout_fraction=policy.policy.data.holdout_fraction,
        seed=policy.policy.run.seed,
    )
    return dataset, split


def quarantine(dataset: Dataset, drop: Sequence[int]) -> Dataset:
    """The dataset without the rows in ``drop`` (0-based data rows); unknown rows are an error."""
    if not drop:
        return dataset
    rows = sorted(set(drop))
    unknown = [r for r in rows if r not in dataset.features.index]
    if unknown:
        msg = f"quarantine names rows that are not in {dataset.path.name}: {unknown[:5]}"
        raise DataError(msg)
    return replace(
        dataset,
        features=dataset.features.drop(index=rows),
        labels=dataset.labels.drop(index=rows),
        ids=dataset.ids.drop(index=rows) if dataset.ids is not None else None,
    )


def train(policy: LoadedPolicy, *, drop: Sequence[int] = ()) -> TrainResult:
    """Fit the policy's estimator on the training split of the approved data."""
    estimator = build_estimator(
        policy.policy.model, seed=policy.policy.run.seed, contract=policy.policy.data
    )
    dataset, split = prepare(policy, drop=drop)
    start = time.perf_counter()
    estimator.fit(split.x_train, split.y_train)
    if policy.policy.model.adversarial_epsilon is not None:
        estimator = adversarial_refit(policy, estimator, split.x_train, split.y_train)
    return TrainResult(
        model=estimator, dataset=dataset, split=split, fit_seconds=time.perf_counter() - start
    )


def adversarial_refit(policy: LoadedPolicy, model: Any, x: pd.DataFrame, y: pd.Series) -> Any:
    """Adversarial training of a logistic regression at ``[model].adversarial_epsilon``.

    The fitted ``model`` is refitted on its exact L-infinity worst-case loss (standardized units,
    mutable features only, within the contract's ranges, integers kept integer):
    ``pipeline.risk.robust_logistic_fit``. The model stays a scikit-learn pipeline of the
    reviewed types.
    """
    from pipeline.risk import Space, robust_logistic_fit  # noqa: PLC0415

    settings = policy.policy
    eps = settings.model.adversarial_epsilon
    if eps is None:
        return model
    space = Space.from_contract(settings.data.feature_columns, settings.data.columns, x)
    c = float(model.steps[-1][1].get_params()["C"])
    return robust_logistic_fit(model, space, space.numeric(x), y.to_numpy(), eps=eps, c=c)
