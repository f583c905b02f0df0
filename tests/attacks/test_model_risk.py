"""Planted attacks on the risk gate: a pull request that edits policy.toml to measure nothing.

Each case either makes the policy unloadable (one message naming the key) or turns the gate
non-PASS with a finding naming the policy key.
"""

from __future__ import annotations

from typing import Any

import pytest

from gates.base import RunContext, Status
from gates.risk import RiskGate
from tests.conftest import write_toml


def _features(document: dict[str, Any]) -> list[str]:
    data = document["data"]
    return [c for c in data["columns"] if c != data.get("id_column")]


def _drop_risk(document: dict[str, Any]) -> None:
    del document["risk"]


def _freeze_every_feature(document: dict[str, Any]) -> None:
    for column in _features(document):
        document["data"]["columns"][column]["mutable"] = False


# (id, edit of the policy document, rule, policy key)
GATE_CASES = [
    pytest.param(_drop_risk, "RISK000", "[risk]", id="no-risk-table"),
    pytest.param(
        _freeze_every_feature, "RISK003", "[data.columns].mutable", id="every-feature-immutable"
    ),
]


@pytest.mark.parametrize(("edit", "rule", "policy_key"), GATE_CASES)
def test_a_policy_that_measures_nothing_fails_the_gate(
    passed_project: Any, edit: Any, rule: str, policy_key: str
) -> None:
    document = passed_project.policy_document()
    edit(document)
    write_toml(passed_project.policy_path, document)
    run_id = passed_project.report("train")["run_id"]
    context = RunContext(
        policy=passed_project.load(),
        run_id=run_id,
        reports_dir=passed_project.root / "reports",
    )
    outcome = RiskGate().run(context)
    assert outcome.status is Status.FAILED
    assert rule in {f.rule for f in outcome.findings}
    assert policy_key in {f.policy_key for f in outcome.findings if f.rule == rule}


def _set(path: str, value: Any) -> Any:
    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return edit


def _only_max_drop(document: dict[str, Any]) -> None:
    document["risk"]["robustness"] = {"max_drop": 0.02}


def _case_variant(document: dict[str, Any]) -> None:
    column = _features(document)[0]
    document["data"]["columns"][column]["Mutable"] = False


def _string_flag(document: dict[str, Any]) -> None:
    column = _features(document)[0]
    document["data"]["columns"][column]["mutable"] = "no"


POLICY_CASES = [
    pytest.param(_set("risk.robustness.linf.epsilons", []), "epsilons", id="no-epsilons"),
    pytest.param(_set("risk.robustness.linf.min_accuracy", [0.9]), "min_accuracy", id="fewer-bars"),
    pytest.param(
        _set("risk.robustness.linf.epsilons", [-0.1, 0.1, 0.25]), "epsilons", id="negative-eps"
    ),
    pytest.param(
        _set("risk.robustness.l2.epsilons", [float("nan"), 0.5, 1.0]), "epsilons", id="nan-eps"
    ),
    pytest.param(
        _set("risk.robustness.l2.epsilons", [0.5, 0.5, 1.0]), "epsilons", id="repeated-eps"
    ),
    pytest.param(_only_max_drop, "risk.robustness", id="no-norm"),
    pytest.param(_set("risk.privacy.max_auc", 1.5), "max_auc", id="auc-above-one"),
    pytest.param(_set("risk.privacy.max_tpr_rise", -1.0), "max_tpr_rise", id="negative-rise"),
    pytest.param(_case_variant, "Mutable", id="mutable-other-case"),
    pytest.param(_string_flag, "mutable", id="mutable-as-string"),
    pytest.param(_set("risk.robustness.attack_max_iter", 0), "attack_max_iter", id="no-attack"),
    pytest.param(_set("model.adversarial_epsilon", 0.0), "adversarial_epsilon", id="zero-adv-eps"),
]


@pytest.mark.parametrize(("edit", "key"), POLICY_CASES)
def test_a_policy_that_weakens_the_gate_is_refused(project: Any, edit: Any, key: str) -> None:
    from pipeline.errors import PolicyError

    document = project.policy_document()
    edit(document)
    write_toml(project.policy_path, document)
    with pytest.raises(PolicyError) as caught:
        project.load()
    message = str(caught.value)
    assert "policy.toml" in message
    assert key in message


def test_a_text_column_does_not_trade_a_linear_models_certificate_for_an_attack() -> None:
    """A contract that declares one text column (here the same site on every row) put a
    ColumnTransformer in front of the logistic regression, and the risk gate then measured it
    with HopSkipJump, an upper bound: 0.89 robust accuracy at L-inf 0.25 where the exact figure
    is 0.72, so a model below the bar could pass RISK001. The text column's part of a row's
    score does not move: the figure stays certified, and equals the accuracy the model itself
    gives at every row's worst L-inf corner."""
    import numpy as np

    from pipeline.config import ColumnRule, load_policy
    from pipeline.model import build_estimator
    from pipeline.risk import Space, measure_robustness
    from pipeline.train import prepare
    from tests.conftest import REPO

    loaded = load_policy(REPO / "policy.toml")
    policy = loaded.policy
    _, split = prepare(loaded)
    columns = {**policy.data.columns, "site": ColumnRule(dtype="string", mutable=False)}
    contract = policy.data.model_copy(update={"columns": columns})
    features = list(contract.feature_columns)
    x_train = split.x_train.assign(site="clinic-a")[features]
    x_holdout = split.x_holdout.assign(site="clinic-a")[features]
    model = build_estimator(policy.model, seed=policy.run.seed, contract=contract)
    model.fit(x_train, split.y_train)
    space = Space.from_contract(features, contract.columns, x_train)
    x, y, held = space.numeric(x_holdout), split.y_holdout.to_numpy(), space.held(x_holdout)
    assert policy.risk is not None
    results = measure_robustness(
        model, space, x, y, policy.risk.robustness, seed=policy.run.seed, held=held
    )
    assert {r.method for r in results} == {"certified"}, [(r.method, r.accuracy) for r in results]
    # The exact L-inf figure from the model's own predictions at each row's worst corner.
    prepared = model[0]
    numeric = prepared.output_indices_["numeric"]
    weights = model[-1].coef_[0][numeric] / prepared.named_transformers_["numeric"].scale_
    positive = np.asarray(y == model[-1].classes_[1])
    for result in (r for r in results if r.norm == "linf"):
        lo, hi = space.box(x, result.epsilon)
        v = np.where(positive, 1.0, -1.0)[:, None] * weights * space.sigma
        corner = x + np.where(v * lo <= v * hi, lo, hi) * space.sigma
        exact = float(np.mean(model.predict(space.frame(corner, held)) == y))
        assert result.accuracy == pytest.approx(exact, abs=1 / len(y)), result
