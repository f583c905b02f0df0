"""pipeline/risk.py: the certified margin against brute force, the contract's limits, the ROC reads."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.config import ColumnRule
from pipeline.risk import (
    RiskError,
    Space,
    certified_linear,
    linear_parts,
    loss_threshold,
    roc_summary,
    worst_case_linear,
)


def _data(seed: int = 0, n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * np.array([1.0, 10.0, 0.1]) + np.array([5.0, 50.0, 1.0])
    score = (x[:, 0] - 5) + (x[:, 1] - 50) / 10 - (x[:, 2] - 1) / 0.1 + rng.normal(size=n)
    return pd.DataFrame(x, columns=["a", "b", "c"]), np.where(score > 0, "pos", "neg")


def _rules(**overrides: dict[str, object]) -> dict[str, ColumnRule]:
    rules = {c: {"dtype": "float64"} for c in "abc"}
    for c, extra in overrides.items():
        rules[c] = {**rules[c], **extra}
    return {c: ColumnRule(**r) for c, r in rules.items()}  # type: ignore[arg-type]


def _fit(x: pd.DataFrame, y: np.ndarray) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("classifier", LogisticRegression())]).fit(x, y)


def _brute_linf(model, space, x, y, eps):
    """Robust iff every corner/grid point of the allowed box keeps the label (exact for linear)."""
    robust = []
    for row, label in zip(x, y, strict=True):
        lo, hi = space.box(row[None, :], eps)
        grids = [np.linspace(lo[0, j], hi[0, j], 5) for j in range(len(row))]
        points = np.array([row + np.array(d) * space.sigma for d in itertools.product(*grids)])
        predicted = model.predict(pd.DataFrame(points, columns=list(space.columns)))
        robust.append(bool((predicted == label).all()))
    return float(np.mean(robust))


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2, 0.5])
def test_linf_certificate_matches_brute_force_with_ranges(eps):
    x, y = _data()
    model = _fit(x, y)
    rules = _rules(a={"min": 4.5, "max": 5.5}, c={"mutable": False})
    space = Space.from_contract(("a", "b", "c"), rules, x)
    rows = x.to_numpy()[:60]
    certified = certified_linear(model, space, rows, y[:60], norm="linf", eps=eps)
    assert certified.accuracy == pytest.approx(_brute_linf(model, space, rows, y[:60], eps))
    assert certified.method == "certified"
    assert not certified.conservative


def test_l2_without_limits_is_the_closed_form_margin():
    x, y = _data(1)
    model = _fit(x, y)
    space = Space.from_contract(("a", "b", "c"), _rules(), x)
    weights, bias, classes = linear_parts(model)
    rows = x.to_numpy()
    signed = np.where(y == classes[1], 1.0, -1.0) * (rows @ weights[0] + bias[0])
    for eps in (0.1, 0.5, 1.0):
        expected = float((signed - eps * np.linalg.norm(weights[0] * space.sigma) > 0).mean())
        got = certified_linear(model, space, rows, y, norm="l2", eps=eps).accuracy
        assert got == pytest.approx(expected)


def test_l2_with_a_box_is_not_beaten_by_sampled_points():
    """The bisection's minimum: no feasible point found by sampling lowers the margin further."""
    x, y = _data(2)
    model = _fit(x, y)
    rules = _rules(a={"min": 4.8, "max": 5.2}, b={"mutable": False})
    space = Space.from_contract(("a", "b", "c"), rules, x)
    rows, labels = x.to_numpy()[:40], y[:40]
    eps = 0.6
    certified = certified_linear(model, space, rows, labels, norm="l2", eps=eps)
    rng = np.random.default_rng(0)
    lo, hi = space.box(rows, np.inf)
    broken = 0
    for i, row in enumerate(rows):
        d = rng.normal(size=(4000, 3))
        d *= (eps * rng.uniform(size=(4000, 1)) ** (1 / 3)) / np.linalg.norm(d, axis=1)[:, None]
        d = np.clip(d, lo[i], hi[i])
        points = row + d * space.sigma
        if (model.predict(pd.DataFrame(points, columns=["a", "b", "c"])) != labels[i]).any():
            broken += 1
    # Sampling finds at most the certificate's broken rows (an attack never beats the bound).
    assert 1 - broken / len(rows) >= certified.accuracy - 1e-12


def test_integers_move_by_whole_units_only():
    x, y = _data(3)
    x["b"] = np.round(x["b"])
    model = _fit(x, y)
    rules = _rules(b={"dtype": "int64"}, a={"mutable": False}, c={"mutable": False})
    space = Space.from_contract(("a", "b", "c"), rules, x)
    rows = x.to_numpy()
    clean = float((model.predict(x) == y).mean())
    # b's std is about 10: eps 0.05 allows 0.5 raw units, which no integer move fits in.
    assert certified_linear(model, space, rows, y, norm="linf", eps=0.05).accuracy == clean
    assert certified_linear(model, space, rows, y, norm="linf", eps=0.3).accuracy < clean
    # L2 relaxes integers to real values: the figure is flagged as a (conservative) lower bound.
    assert certified_linear(model, space, rows, y, norm="l2", eps=0.3).conservative


def test_nothing_mutable_leaves_clean_accuracy():
    x, y = _data(4)
    model = _fit(x, y)
    rules = _rules(**{c: {"mutable": False} for c in "abc"})
    space = Space.from_contract(("a", "b", "c"), rules, x)
    clean = float((model.predict(x) == y).mean())
    for norm in ("linf", "l2"):
        result = certified_linear(model, space, x.to_numpy(), y, norm=norm, eps=5.0)
        assert result.accuracy == clean


def test_worst_case_points_flip_exactly_the_uncertified_rows():
    x, y = _data(5)
    model = _fit(x, y)
    space = Space.from_contract(("a", "b", "c"), _rules(), x)
    rows = x.to_numpy()
    moved = worst_case_linear(model, space, rows, y, eps=0.2)
    kept = model.predict(pd.DataFrame(moved, columns=["a", "b", "c"])) == y
    certified = certified_linear(model, space, rows, y, norm="linf", eps=0.2)
    assert float(kept.mean()) == pytest.approx(certified.accuracy)


def test_a_non_linear_model_is_refused_by_the_certificate():
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data(6)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    space = Space.from_contract(("a", "b", "c"), _rules(), x)
    with pytest.raises(RiskError, match="not a linear model"):
        certified_linear(forest, space, x.to_numpy(), y, norm="linf", eps=0.1)


def test_columns_must_be_the_contracts():
    x, _ = _data()
    with pytest.raises(RiskError, match="not the contract's feature columns"):
        Space.from_contract(("a", "c", "b"), _rules(), x)


def test_tpr_at_low_fpr_interpolates_the_roc_curve():
    # 4 non-members: the FPR steps are 0.25; 2 of 4 members score above every non-member.
    member = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    score = np.array([9.0, 8.0, 3.0, 1.0, 7.0, 2.0, 0.5, 0.1])
    auc, tpr = roc_summary(member, score)
    assert auc == pytest.approx(13 / 16)
    # TPR is 0.5 at FPR 0 and, at FPR 0.25 (threshold 3.0), 0.75: a randomised threshold
    # between 8.0 and 3.0 reaches every point on the segment between them.
    assert tpr[0.001] == pytest.approx(0.5 + 0.004 * 0.25)
    assert tpr[0.01] == pytest.approx(0.5 + 0.04 * 0.25)
    # 10 non-members, 3 members above all of them, the other 7 above all but one: at 1% FPR
    # (a tenth of the first step) the randomised threshold reaches 0.3 + 0.1 * (1.0 - 0.3).
    member = np.array([1] * 10 + [0] * 10)
    score = np.array([20, 19, 18, 16.5, *range(10, 4, -1), 17, *range(4, -5, -1)], dtype=float)
    _, tpr = roc_summary(member, score)
    assert tpr[0.01] == pytest.approx(0.3 + 0.1 * 0.7)
    with pytest.raises(RiskError, match="both members and non-members"):
        roc_summary(np.ones(3), np.ones(3))


def test_loss_threshold_sees_an_overfit_forest():
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data(7, n=160)
    x_in, y_in, x_out, y_out = x[:80], y[:80], x[80:], y[80:]
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(x_in, y_in)
    linear = _fit(x_in, y_in)
    leaky = loss_threshold(forest, x_in, y_in, x_out, y_out)
    calm = loss_threshold(linear, x_in, y_in, x_out, y_out)
    assert leaky.auc > calm.auc
    assert leaky.auc > 0.7
    assert leaky.min_fpr_step == pytest.approx(1 / 80)


def _policy(adversarial_epsilon: float | None):
    from pathlib import Path

    from pipeline.config import LoadedPolicy, load_policy

    loaded = load_policy(Path(__file__).resolve().parents[2] / "policy.toml")
    model = loaded.policy.model.model_copy(update={"adversarial_epsilon": adversarial_epsilon})
    return LoadedPolicy(loaded.path, loaded.policy.model_copy(update={"model": model}), "x")


def test_adversarial_training_raises_certified_accuracy_and_saves_as_reviewed(tmp_path):
    from pipeline.persist import load_model, save_model
    from pipeline.train import train

    plain, robust = train(_policy(None)), train(_policy(0.1))
    settings, split = _policy(0.1).policy, robust.split
    space = Space.from_contract(settings.data.feature_columns, settings.data.columns, split.x_train)
    x, y = split.x_holdout.to_numpy(dtype=float), split.y_holdout.to_numpy()
    before = certified_linear(plain.model, space, x, y, norm="linf", eps=0.1).accuracy
    after = certified_linear(robust.model, space, x, y, norm="linf", eps=0.1).accuracy
    assert after > before
    # Still a plain scikit-learn pipeline: the reviewed skops types load it.
    manifest = save_model(robust.model, tmp_path / "model.skops", estimator="logistic_regression")
    again = load_model(
        tmp_path / "model.skops", expected_sha256=manifest.sha256, estimator="logistic_regression"
    )
    assert (again.predict(split.x_holdout) == robust.model.predict(split.x_holdout)).all()


def test_adversarial_training_is_refused_for_other_families():
    from pydantic import ValidationError

    from pipeline.config import Policy

    document = _policy(0.1).policy.model_dump()
    document["model"]["estimator"] = "random_forest"
    with pytest.raises(ValidationError, match="adversarial_epsilon"):
        Policy.model_validate(document, strict=False)
