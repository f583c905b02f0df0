"""pipeline/risk.py on a table with text, bool and blank (NaN) cells, the one `gates init` writes.

Numeric columns are attacked; text and bool columns are held fixed; blank cells stay blank; the
model always receives a DataFrame with the original dtypes (a spy around the real model records
every frame ART makes it predict).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.config import ColumnRule, RobustnessPolicy
from pipeline.risk import Space, measure_privacy, measure_robustness

CITIES = ["east", "north", "south"]


def _table(n: int = 160, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "key": np.arange(n),  # immutable, unique: lets the spy tell each row apart
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50, 10, n).round(2),
            "city": rng.choice(CITIES, n),
            "member": rng.choice([True, False], n),
        }
    )
    x.loc[rng.choice(n, n // 8, replace=False), "income"] = np.nan
    y = np.where((x.age > 50) ^ (x.city == "north"), "yes", "no")
    return x, y


def _rules() -> dict[str, ColumnRule]:
    return {
        "key": ColumnRule(dtype="int64", mutable=False),
        "age": ColumnRule(dtype="int64", min=0, max=160),
        "income": ColumnRule(dtype="float64", min=0.0, max=150.0, nullable=True),
        "city": ColumnRule(dtype="string", allowed=CITIES),
        "member": ColumnRule(dtype="bool"),
    }


def _model(x: pd.DataFrame, y: np.ndarray) -> Pipeline:
    """The pipeline pipeline/model.py builds for such a contract (scaler + one-hot, then HGB)."""
    prepare = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["key", "age", "income"]),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float),
                ["city", "member"],
            ),
        ]
    )
    classifier = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    return Pipeline([("prepare", prepare), ("classifier", classifier)]).fit(x, y)


class Spy:
    """The real model, recording every frame it is asked to predict."""

    def __init__(self, model: Pipeline) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.frames: list[pd.DataFrame] = []

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        self.frames.append(frame.copy())
        return self.model.predict_proba(frame)


@pytest.fixture(scope="module")
def measured() -> dict[str, Any]:
    x, y = _table()
    train, holdout = x.iloc[:120].reset_index(drop=True), x.iloc[120:].reset_index(drop=True)
    model = _model(train, y[:120])
    space = Space.from_contract(list(x.columns), _rules(), train)
    spy = Spy(model)
    policy = RobustnessPolicy.model_validate(
        {
            "attack_max_iter": 1,
            "attack_max_eval": 10,
            "attack_max_rows": 12,
            "linf": {"epsilons": [0.1, 1.0], "min_accuracy": [0.0, 0.0]},
            "l2": {"epsilons": [1.0], "min_accuracy": [0.0]},
        }
    )
    robust = measure_robustness(
        spy,
        space,
        space.numeric(holdout),
        y[120:],
        policy,
        seed=0,
        held=space.held(holdout),
    )
    attack_frames = list(spy.frames)
    privacy = measure_privacy(spy, space.order, (train, y[:120]), (holdout, y[120:]), seed=0)
    return {
        "x": x,
        "train": train,
        "space": space,
        "robust": robust,
        "privacy": privacy,
        "attack_frames": attack_frames,
        "privacy_frames": spy.frames[len(attack_frames) :],
    }


def test_the_space_attacks_numeric_columns_and_holds_text_and_bool(measured):
    space, train = measured["space"], measured["train"]
    assert space.columns == ("key", "age", "income")
    assert space.fixed == ("city", "member")
    assert space.order == tuple(train.columns)
    # The unit of income ignores its blank cells (NaN would make every move NaN).
    assert space.sigma[2] == pytest.approx(np.nanstd(train["income"].to_numpy(dtype=float)))
    assert np.isfinite(space.sigma).all()
    assert list(space.mutable) == [False, True, True]
    # A blank cell gets no move; the row's other cells do.
    x = space.numeric(train)
    lo, hi = space.box(x, 0.5)
    blank = np.isnan(x)
    assert blank[:, 2].any()
    assert (lo[blank] == 0).all()
    assert (hi[blank] == 0).all()
    assert np.isfinite(lo).all()
    assert np.isfinite(hi).all()
    assert (hi[blank[:, 2], 1] > 0).all()  # age still moves on rows with a blank income


def test_figures_are_attack_figures_within_0_and_1(measured):
    robust = measured["robust"]
    assert [(r.norm, r.epsilon) for r in robust] == [("linf", 0.1), ("linf", 1.0), ("l2", 1.0)]
    assert {r.method for r in robust} == {"attack"}  # blank cells, and not a linear model
    assert all(0.0 <= r.accuracy <= 1.0 for r in robust)
    assert all(r.rows == 12 for r in robust)
    # The attack found something at the large budget: the frames below are real attacks.
    assert robust[1].accuracy < robust[0].accuracy or robust[2].accuracy < 1.0
    for m in measured["privacy"]:
        assert 0.0 <= m.auc <= 1.0
        assert all(0.0 <= v <= 1.0 for v in m.tpr.values())
    assert {m.attack for m in measured["privacy"]} == {"loss_threshold", "art_black_box"}


def test_every_attacked_row_keeps_its_text_bool_and_blank_cells(measured):
    x = measured["x"].set_index("key")
    frames = measured["attack_frames"]
    assert len(frames) > 3
    moved = False
    for frame in frames:
        assert list(frame.columns) == list(measured["space"].order)
        assert frame["city"].map(type).eq(str).all()  # text stays text (not floats, not codes)
        assert frame["member"].dtype == bool
        keys = np.rint(frame["key"].to_numpy(dtype=float)).astype(int)
        original = x.loc[keys]
        assert (frame["city"].to_numpy() == original["city"].to_numpy()).all()
        assert (frame["member"].to_numpy() == original["member"].to_numpy()).all()
        blank = original["income"].isna().to_numpy()
        assert frame["income"].isna().to_numpy()[blank].all()  # blank stays blank
        assert frame["income"].notna().to_numpy()[~blank].all()  # filled stays filled
        moved |= bool(
            (np.abs(frame["age"].to_numpy(dtype=float) - original["age"].to_numpy()) > 0.5).any()
        )
    assert moved, "no attack frame moved a numeric feature: the test would prove nothing"


def test_the_black_box_membership_attack_predicts_original_rows(measured):
    frames = measured["privacy_frames"]
    assert frames
    everything = pd.concat([measured["train"], measured["x"].iloc[120:]], ignore_index=True)
    for frame in frames:
        assert frame["city"].map(type).eq(str).all()
        keys = frame["key"].to_numpy()
        expected = everything.set_index("key").loc[keys].reset_index()
        pd.testing.assert_frame_equal(
            frame.reset_index(drop=True), expected[list(frame.columns)], check_dtype=True
        )


@pytest.mark.parametrize(
    "retype",
    [
        pytest.param({"age": "string", "income": "string"}, id="numbers-declared-text"),
        pytest.param({"age": "bool", "income": "bool"}, id="numbers-declared-bool"),
        pytest.param({"age": "blank", "income": "blank"}, id="numbers-all-blank"),
    ],
)
def test_a_table_with_no_movable_numeric_cell_has_nothing_mutable(retype):
    """Hiding every number as text, bool or blanks leaves no mutable feature: the gate's RISK003
    (it does not pass on clean accuracy)."""
    x, _ = _table(40)
    rules = _rules()
    for column, kind in retype.items():
        if kind == "blank":
            x[column] = np.nan
        else:
            x[column] = x[column].astype(str) if kind == "string" else x[column] > 50
            rules[column] = ColumnRule(dtype=kind)
    space = Space.from_contract(list(x.columns), rules, x)
    assert not space.mutable.any()
    assert np.isfinite(space.sigma).all()


def test_a_nan_row_index_from_the_attack_is_predicted_not_an_index_error():
    # HopSkipJump once proposed a point whose row-index input was NaN; read as an int it was
    # -2**63 and the risk gate ERRORED at random ("index 9223372036854775808 is out of bounds").
    from pipeline.risk import _Codec

    x, y = _table()
    train, holdout = x.iloc[:120].reset_index(drop=True), x.iloc[120:].reset_index(drop=True)
    model = _model(train, y[:120])
    space = Space.from_contract(list(x.columns), _rules(), train)
    numeric = space.numeric(holdout)
    codec = _Codec.build(model, space, numeric, space.held(holdout), np.asarray(model.classes_))
    assert codec.keyed
    z = np.zeros((3, len(space.columns) + 1))
    z[:, -1] = [np.nan, np.inf, 1.0]
    z[0, 0] = np.nan
    proba = codec.predict_z(z)
    assert proba.shape == (3, len(model.classes_))
    assert np.isfinite(proba).all()
