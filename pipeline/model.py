"""Build the estimator the policy names, with its parameters checked before any fitting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.config import DataPolicy, ModelPolicy
from pipeline.errors import PolicyError


# Each family's class is imported on demand by a literal name: the sast gate's unsafe-load rule
# refuses an import whose module name is computed at run time.
def _logistic_regression() -> Any:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    return LogisticRegression


def _random_forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415

    return RandomForestClassifier


def _hist_gradient_boosting() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415

    return HistGradientBoostingClassifier


# policy name -> the classifier's class. Adding a family means adding its reviewed skops types
# in pipeline/persist.py too; a test checks the two tables name the same families.
ESTIMATORS: dict[str, Callable[[], Any]] = {
    "logistic_regression": _logistic_regression,
    "random_forest": _random_forest,
    "hist_gradient_boosting": _hist_gradient_boosting,
}


# Estimators that fit rows with missing numeric values (NaN) as they are.
_TAKES_NAN = frozenset({"random_forest", "hist_gradient_boosting"})


def build_estimator(
    model: ModelPolicy, *, seed: int, contract: DataPolicy | None = None
) -> Pipeline:
    """Return an unfitted ``Pipeline`` (optional StandardScaler, then the classifier).

    With a ``contract`` that declares string or bool feature columns, a ColumnTransformer comes
    first: the numeric columns scaled (when ``scale``), the others one-hot encoded (a value
    not seen in training is all zeros; a null is the empty-string category). A nullable numeric
    column needs an estimator that takes NaN: anything else is a PolicyError naming both keys.
    """
    cls = ESTIMATORS[model.estimator]()
    class_name: str = cls.__name__
    classifier: ClassifierMixin = cls()
    accepted = classifier.get_params(deep=False)
    unknown = sorted(set(model.params) - set(accepted))
    if unknown:
        msg = (
            f"[model.params].{unknown[0]}: not a parameter of {class_name}; "
            f"expected one of: {', '.join(sorted(accepted))}"
        )
        raise PolicyError(msg)
    params: dict[str, Any] = dict(model.params)
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = seed
    classifier.set_params(**params)
    _validate(classifier, class_name, model.params)
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())] if model.scale else []
    if contract is not None:
        _check_missing(model, contract)
        steps = _prepare(model, contract) or steps
    steps.append(("classifier", classifier))
    return Pipeline(steps)


def _check_missing(model: ModelPolicy, contract: DataPolicy) -> None:
    nullable = [
        name
        for name in contract.feature_columns
        if contract.columns[name].nullable and contract.columns[name].dtype in ("float64", "int64")
    ]
    if nullable and model.estimator not in _TAKES_NAN:
        msg = (
            f"[model].estimator: {model.estimator} cannot fit missing values, and "
            f"[data.columns].{nullable[0]} is nullable; expected one of "
            f"{', '.join(sorted(_TAKES_NAN))} (they take missing values as they are)"
        )
        raise PolicyError(msg)


def _prepare(model: ModelPolicy, contract: DataPolicy) -> list[tuple[str, Any]]:
    """A ColumnTransformer step for a contract with string or bool columns, else nothing."""
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder  # noqa: PLC0415

    columns = contract.columns
    categorical = [n for n in contract.feature_columns if columns[n].dtype in ("string", "bool")]
    if not categorical:
        return []
    numeric = [n for n in contract.feature_columns if n not in categorical]
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)
    parts: list[tuple[str, Any, list[str]]] = [("categorical", encoder, categorical)]
    if numeric:
        scaler: Any = StandardScaler() if model.scale else "passthrough"
        parts.insert(0, ("numeric", scaler, numeric))
    return [("prepare", ColumnTransformer(parts))]


def _validate(classifier: Any, class_name: str, params: dict[str, Any]) -> None:
    # scikit-learn checks parameter values at fit time; run the same check now so a bad value
    # is a policy error before any data is read. (_validate_params exists since 1.2.)
    validate = getattr(classifier, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as err:
        name = next((key for key in params if f"'{key}'" in str(err)), None)
        where = f"[model.params].{name}" if name else "[model.params]"
        msg = f"{where}: invalid for {class_name}: {err}"
        raise PolicyError(msg) from None
