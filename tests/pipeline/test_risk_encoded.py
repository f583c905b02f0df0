"""pipeline/risk_encoded.py: the attack's cheaper predict function gives the model's own
probabilities, and steps aside (the plain path) for any pipeline it does not handle or that
disagrees with it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import pipeline.risk
from pipeline.config import ColumnRule, RobustnessPolicy
from pipeline.risk import Space, _Codec, measure_robustness
from pipeline.risk_encoded import Encoded
from tests.pipeline.test_risk_mixed import _model, _rules, _table


def _split(x: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return x.iloc[:120].reset_index(drop=True), x.iloc[120:].reset_index(drop=True)


def _codec(model: Any, space: Space, holdout: pd.DataFrame) -> _Codec:
    x = space.numeric(holdout)
    return _Codec.build(model, space, x, space.held(holdout), np.asarray(model.classes_))


def _points(codec: _Codec, n: int = 200, seed: int = 1) -> np.ndarray:
    """Attack inputs as HopSkipJump makes them: moved numeric cells, a row index, odd values."""
    rng = np.random.default_rng(seed)
    width = len(codec.space.columns)
    z = rng.normal(scale=3.0, size=(n, width + int(codec.keyed)))
    if codec.keyed:
        z[:, width] = rng.integers(0, len(codec.blank), n) + rng.uniform(-0.4, 0.4, n)
        z[0, width], z[1, width], z[2, width] = np.nan, np.inf, -np.inf
    z[3, 0] = np.nan
    return z


def _same_as_plain(codec: _Codec) -> None:
    assert codec.fast is not None
    plain = dataclasses.replace(codec, fast=None)
    z = _points(codec)
    for rows in (slice(0, 1), slice(0, 3), slice(None)):
        fast, slow = codec.predict_z(z[rows]), plain.predict_z(z[rows])
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_the_mixed_table_is_predicted_fast_with_the_models_probabilities():
    x, y = _table()
    train, holdout = _split(x)
    model = _model(train, y[:120])
    space = Space.from_contract(list(x.columns), _rules(), train)
    codec = _codec(model, space, holdout)
    assert codec.keyed
    assert codec.fast is not None
    assert codec.fast.keyed
    _same_as_plain(codec)
    # ... and the final check's path (raw values, each row's own index).
    raw = space.numeric(holdout) + 1.0
    rows = np.arange(len(holdout))
    np.testing.assert_allclose(
        codec.predict_raw(raw, rows),
        model.predict_proba(space.frame(np.where(codec.blank, np.nan, raw), space.held(holdout))),
        rtol=0,
        atol=1e-12,
    )


def test_a_bool_column_passed_through_is_pre_encoded_too():
    # The remainder (here the bool column, as 0.0/1.0) depends on the row alone, like an encoder.
    x, y = _table()
    train, holdout = _split(x)
    prepare = ColumnTransformer(
        [("numeric", StandardScaler(), ["key", "age", "income"]), ("city", _encoder(), ["city"])],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model = Pipeline([("prepare", prepare), ("classifier", classifier)]).fit(train, y[:120])
    space = Space.from_contract(list(x.columns), _rules(), train)
    codec = _codec(model, space, holdout)
    assert codec.fast is not None
    assert codec.fast.keyed
    _same_as_plain(codec)


def _numeric_table(blank: bool) -> tuple[pd.DataFrame, np.ndarray, dict[str, ColumnRule]]:
    rng = np.random.default_rng(3)
    n = 160
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 9, n), "c": rng.normal(size=n)})
    if blank:
        x.loc[rng.choice(n, 20, replace=False), "c"] = np.nan
    y = np.where(x.a + x.b / 3 > 1, "yes", "no")
    rules = {
        "a": ColumnRule(dtype="float64"),
        "b": ColumnRule(dtype="int64", min=0, max=20),
        "c": ColumnRule(dtype="float64", nullable=blank),
    }
    return x, y, rules


@pytest.mark.parametrize("blank", [False, True], ids=["filled", "blank-cells"])
def test_an_all_numeric_column_transformer_is_predicted_fast(blank):
    x, y, rules = _numeric_table(blank)
    train, holdout = _split(x)
    prepare = ColumnTransformer(
        [("scaled", StandardScaler(), ["a", "c"]), ("kept", "passthrough", ["b"])]
    )
    classifier = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model = Pipeline([("prepare", prepare), ("classifier", classifier)]).fit(train, y[:120])
    space = Space.from_contract(list(x.columns), rules, train)
    codec = _codec(model, space, holdout)
    assert codec.keyed is blank
    assert codec.fast is not None
    assert not codec.fast.keyed
    _same_as_plain(codec)


def test_a_pipeline_without_a_column_transformer_keeps_the_plain_path():
    # What pipeline/model.py builds for an all-numeric contract: nothing to pre-encode.
    x, y, rules = _numeric_table(blank=True)
    train, holdout = _split(x)
    model = Pipeline(
        [("scale", StandardScaler()), ("classifier", HistGradientBoostingClassifier(max_iter=20))]
    ).fit(train, y[:120])
    space = Space.from_contract(list(x.columns), rules, train)
    assert _codec(model, space, holdout).fast is None


def _by_batch(frame: pd.DataFrame) -> np.ndarray:
    """A held column's "encoding" that depends on the batch, not the row alone (it is 1 for
    "north" in a batch of 120 rows, as in training): precomputing it is wrong, and the
    build-time check must see it."""
    north: np.ndarray = (frame.to_numpy() == "north").astype(float) * len(frame) / 120
    return north


def _encoder() -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)


UNHANDLED: dict[str, Any] = {
    "held-and-numeric-in-one-transformer": lambda: ColumnTransformer(
        [("numeric", StandardScaler(), ["key", "age"]), ("mixed", _encoder(), ["income", "city"])],
        remainder="drop",
    ),
    "sparse-output": lambda: ColumnTransformer(  # (a classifier that takes sparse input)
        [
            ("numeric", StandardScaler(), ["key", "age", "income"]),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), ["city", "member"]),
        ],
        sparse_threshold=1.0,
    ),
    "columns-by-position": lambda: ColumnTransformer(
        [("numeric", StandardScaler(), [0, 1, 2]), ("categorical", _encoder(), [3, 4])]
    ),
    "pandas-output": lambda: ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["key", "age", "income"]),
            ("categorical", _encoder(), ["city", "member"]),
        ]
    ).set_output(transform="pandas"),
    "disagrees-with-the-plain-path": lambda: ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["key", "age", "income"]),
            ("categorical", _encoder(), ["member"]),
            ("batch", FunctionTransformer(_by_batch), ["city"]),
        ],
        remainder="drop",
    ),
}


@pytest.mark.parametrize("name", list(UNHANDLED))
def test_an_unhandled_or_disagreeing_pipeline_keeps_the_plain_path(name):
    x, y = _table()
    classifier: Any = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    if name == "sparse-output":
        x["income"] = x["income"].fillna(50.0)
        classifier = LogisticRegression()
    train, holdout = _split(x)
    model = Pipeline([("prepare", UNHANDLED[name]()), ("classifier", classifier)])
    model.fit(train, y[:120])
    space = Space.from_contract(list(x.columns), _rules(), train)
    codec = _codec(model, space, holdout)
    assert codec.fast is None
    if name == "disagrees-with-the-plain-path":
        # The structure alone is one the fast path handles: the check is what refused it.
        def frame(raw: np.ndarray, rows: np.ndarray | None) -> pd.DataFrame:
            held = space.held(holdout)
            return space.frame(raw, None if rows is None or held is None else held.iloc[rows])

        x_num = space.numeric(holdout)
        assert Encoded._structure(model, space.columns, space.fixed, frame, x_num) is not None
    # The plain path predicts as the model does.
    z = _points(codec)
    z[3, 0] = 0.0  # (a blank key: the sparse case's classifier takes no NaN)
    assert codec.predict_z(z).shape == (len(z), 2)


class _SeededRandomState(np.random.RandomState):
    def __init__(self, seed: Any = None) -> None:
        super().__init__(0 if seed is None else seed)


@pytest.mark.slow  # three attacks, one on the plain path (about 15 s under load)
def test_the_attack_reports_the_same_figures_with_and_without_the_fast_path(monkeypatch):
    x, y = _table()
    train, holdout = _split(x)
    model = _model(train, y[:120])
    space = Space.from_contract(list(x.columns), _rules(), train)
    policy = RobustnessPolicy.model_validate(
        {
            "attack_max_iter": 2,
            "attack_max_eval": 20,
            "attack_max_rows": 12,
            "linf": {"epsilons": [0.1, 0.5, 1.0], "min_accuracy": [0.0, 0.0, 0.0]},
            "l2": {"epsilons": [0.5, 2.0], "min_accuracy": [0.0, 0.0]},
        }
    )

    def measure() -> list[tuple[str, float, float]]:
        found = measure_robustness(
            model, space, space.numeric(holdout), y[120:], policy, seed=0, held=space.held(holdout)
        )
        return [(r.norm, r.epsilon, r.accuracy) for r in found]

    # ART's HopSkipJump draws its starting points from an unseeded np.random.RandomState()
    # (art/attacks/evasion/hop_skip_jump.py), so two runs of the same code differ at times:
    # seed it here, to compare the two predict paths alone.
    monkeypatch.setattr(np.random, "RandomState", _SeededRandomState)
    built: list[Encoded | None] = []
    real = Encoded.build

    def spy(*args: Any, **kwargs: Any) -> Encoded | None:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(pipeline.risk.Encoded, "build", spy)
    fast = measure()
    assert built
    assert built[-1] is not None
    assert measure() == fast  # seeded: the same code gives the same figures
    monkeypatch.setattr(pipeline.risk.Encoded, "build", lambda *a, **k: None)
    assert measure() == fast
