"""Model risk: robustness to bounded input perturbations and membership-inference exposure.

Robustness is measured on the holdout split, in standardized feature units (one unit is the
feature's standard deviation on the training split, the unit a ``StandardScaler`` uses), under
L-infinity and L2, for every epsilon the policy lists. The attacker moves only the features the
contract marks ``mutable``, inside the contract's ``[min, max]``, and integer features only to
integers. Only numeric columns move: text and bool columns are held fixed (a changed category is
no move of size epsilon), and a blank (NaN) cell stays blank while its row's other cells move.

- Linear models (logistic regression), also behind a ``ColumnTransformer`` that encodes the
  held-fixed columns (each row's margin then read from ``decision_function``): exact, from the
  margin. For each holdout row and each
  other class the worst perturbation in the allowed set is solved in closed form (L-infinity:
  per coordinate, ranges and integers included; L2: the box-constrained problem by bisection on
  its one multiplier, ranges included, integers relaxed to real values, so the figure is then a
  lower bound, never above the true robust accuracy). A row counts only when it is correctly
  classified and no allowed perturbation reaches a tie.
- Tree ensembles (random forest): ART's clique verification (``RobustnessVerificationTreeModels
  CliqueMethod``), a sound lower bound; it lets every feature move over every value (mutability
  and ranges are not used), which only lowers the figure.
- Any other family (and forests too, as the upper figure): ART's HopSkipJump, a seeded
  decision-based attack with a bounded budget, run in standardized units with the contract's
  ranges as clip values and the mutable mask; its adversarial points are rounded to integers
  where the contract says so and predicted again. An attack gives an upper bound on robust
  accuracy (it may miss an adversarial point that exists).

Membership inference compares training rows (members) with holdout rows (non-members):

- the loss-threshold attack (Yeom et al. 2018): score = minus the model's log-loss on the row;
- ART's ``MembershipInferenceBlackBox``: an attack model (a seeded random forest) trained on the
  model's probabilities for half the members and half the non-members, scored on the other
  halves.

Each reports AUC and the true-positive rate at 0.1% and 1% false-positive rate, read from
``sklearn.metrics.roc_curve`` and linearly interpolated between its points (the rate a randomised
threshold achieves). With fewer than 1000 non-members the smallest false-positive step is
``1/n`` > 0.1%: the figure at 0.1% then interpolates between FPR 0 and ``1/n`` and is reported
with ``min_fpr_step`` so a reader knows how coarse it is.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.config import ColumnRule, RobustnessPolicy
from pipeline.errors import PipelineError
from pipeline.risk_encoded import Encoded

Norm = Literal["linf", "l2"]
NORMS: tuple[Norm, ...] = ("linf", "l2")
FPRS: tuple[float, ...] = (0.001, 0.01)
# A worst-case margin at or below this counts as flipped (ties are not robust: fail closed).
_TIE = 1e-12


class RiskError(PipelineError):
    """The risk of a model could not be measured (unsupported model, attack failure)."""


# Contract dtypes an attacker moves within the norm budgets; every other feature column (text,
# bool) is held fixed: changing a category is not a move of size epsilon.
_NUMERIC = frozenset({"int64", "float64"})


@dataclass(frozen=True)
class Space:
    """Where an attacker may move each feature, in standardized units around each row.

    ``columns`` are the numeric feature columns (``int64``/``float64``), the ones an attacker
    moves; ``sigma`` is each one's standard deviation on the training split (the unit of epsilon,
    blank cells ignored); ``lower``/``upper`` the contract's range in raw units (``-inf``/``inf``
    when open); ``mutable`` and ``integer`` one flag per numeric feature. ``fixed`` are the other
    feature columns (text, bool), held fixed: the model still receives them, as they are, through
    :meth:`frame`. ``order`` is every feature column in the contract's order.
    """

    columns: tuple[str, ...]
    sigma: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    mutable: np.ndarray
    integer: np.ndarray
    fixed: tuple[str, ...] = ()
    order: tuple[str, ...] = ()

    @classmethod
    def from_contract(
        cls, columns: Sequence[str], rules: dict[str, ColumnRule], x_train: pd.DataFrame
    ) -> Space:
        """The space of the contract's feature columns, in the order of ``x_train``."""
        names = tuple(str(c) for c in x_train.columns)
        if tuple(columns) != names:
            msg = f"the features {names} are not the contract's feature columns {tuple(columns)}"
            raise RiskError(msg)
        numeric = tuple(c for c in names if rules[c].dtype in _NUMERIC)
        fixed = tuple(c for c in names if c not in numeric)
        values = x_train[list(numeric)].to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(values).any():
            # Blank cells are not data: the unit is the spread of the filled ones.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-blank column: NaN
                sigma = np.nanstd(values, axis=0)
        else:
            sigma = values.std(axis=0)
        # A constant feature has no unit: any move of it is out of the data; keep it fixed.
        constant = ~(sigma > 0)
        sigma = np.where(constant, 1.0, sigma)
        lower = np.array([_bound(rules[c].min, -np.inf) for c in numeric])
        upper = np.array([_bound(rules[c].max, np.inf) for c in numeric])
        mutable = np.array([rules[c].mutable for c in numeric], dtype=bool) & ~constant
        integer = np.array([rules[c].dtype == "int64" for c in numeric], dtype=bool)
        return cls(numeric, sigma, lower, upper, mutable, integer, fixed, names)

    def numeric(self, frame: pd.DataFrame) -> np.ndarray:
        """The numeric feature columns of ``frame`` as floats (a blank cell is NaN)."""
        values: np.ndarray = frame[list(self.columns)].to_numpy(dtype=float, na_value=np.nan)
        return values

    def held(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        """The held-fixed (text, bool) columns of ``frame``, as they are; None when there are none."""
        return frame[list(self.fixed)].reset_index(drop=True) if self.fixed else None

    def frame(self, x: np.ndarray, held: pd.DataFrame | None = None) -> pd.DataFrame:
        """The model's input: ``x`` as the numeric columns, ``held`` (one row per row of ``x``)
        as the others, in the contract's order, text kept as text."""
        numeric = pd.DataFrame(x, columns=list(self.columns))
        if not self.fixed:
            return numeric
        if held is None or len(held) != len(x):
            msg = f"the held-fixed columns {list(self.fixed)} are needed for {len(x)} row(s)"
            raise RiskError(msg)
        joined = pd.concat([numeric, held.reset_index(drop=True)], axis=1)
        return joined[list(self.order)]

    def box(self, x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """Per row and feature, the allowed move ``[lo, hi]`` in standardized units at L-inf ``eps``.

        Integer features move to integers only: the bounds are rounded inwards. Immutable
        features, and blank (NaN) cells, get ``[0, 0]``.
        """
        raw_lo = np.maximum(x - eps * self.sigma, self.lower)
        raw_hi = np.minimum(x + eps * self.sigma, self.upper)
        raw_lo = np.where(self.integer, np.ceil(raw_lo - 1e-9), raw_lo)
        raw_hi = np.where(self.integer, np.floor(raw_hi + 1e-9), raw_hi)
        # A row already outside the range (or an integer feature at a fractional value) may stay.
        raw_lo, raw_hi = np.minimum(raw_lo, x), np.maximum(raw_hi, x)
        movable = self.mutable & ~np.isnan(x)
        lo = np.where(movable, (raw_lo - x) / self.sigma, 0.0)
        hi = np.where(movable, (raw_hi - x) / self.sigma, 0.0)
        return lo, hi


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)


@dataclass(frozen=True)
class RobustResult:
    """Accuracy under attack at one norm and epsilon, how it was obtained, and how long it took."""

    norm: Norm
    epsilon: float
    accuracy: float
    method: str  # "certified" (exact), "verified" (sound lower bound), "attack" (upper bound)
    rows: int
    seconds: float
    conservative: bool = False  # a certified figure computed over a relaxed (larger) set

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly record."""
        return {
            "norm": self.norm,
            "epsilon": self.epsilon,
            "accuracy": round(self.accuracy, 6),
            "method": self.method,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "conservative": self.conservative,
        }


# --- the model as an affine map, for linear models --------------------------------------------


def linear_parts(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(W, b, classes)`` with scores = ``x_raw @ W.T + b``, or None if the model is not linear.

    ``model`` is a fitted ``Pipeline`` of optional ``StandardScaler`` steps then a linear
    classifier (``coef_``/``intercept_``), or that classifier alone.
    """
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    steps = list(model.steps) if isinstance(model, Pipeline) else [("classifier", model)]
    *pre, (_, last) = steps
    if not (hasattr(last, "coef_") and hasattr(last, "intercept_")):
        return None
    if getattr(last, "decision_function", None) is None:
        return None
    weights = np.asarray(last.coef_, dtype=float)
    bias = np.asarray(last.intercept_, dtype=float).reshape(-1)
    for _, step in reversed(pre):
        if not isinstance(step, StandardScaler):
            return None
        scale = np.asarray(step.scale_, dtype=float) if step.scale_ is not None else 1.0
        mean = np.asarray(step.mean_, dtype=float) if step.mean_ is not None else 0.0
        weights = weights / scale
        bias = bias - weights @ (mean * np.ones(weights.shape[1]))
    return weights, bias, np.asarray(last.classes_)


def held_linear_parts(model: Any, space: Space) -> tuple[np.ndarray, np.ndarray] | None:
    """``(W, classes)`` with scores = ``x_numeric @ W.T`` + a part that depends only on the row's
    held-fixed columns, or None when the model is not that.

    ``model`` is a fitted ``Pipeline`` of a ``ColumnTransformer``, then a linear classifier
    (``coef_``/``intercept_``/``decision_function``); the transformer reads ``space.columns``,
    in order, through one ``StandardScaler`` or ``"passthrough"``, and every other column it
    does not drop through transformers that read held-fixed columns only. Those columns do not
    move, so their part of a row's scores is a constant of the row: ``certified_linear`` reads
    each row's scores from ``decision_function`` and moves only the numeric part, exactly.
    """
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    (_, prepare), (_, last) = model.steps
    linear = all(hasattr(last, a) for a in ("coef_", "intercept_", "classes_"))
    if not isinstance(prepare, ColumnTransformer) or not linear:
        return None
    if getattr(last, "decision_function", None) is None:
        return None
    numeric = _numeric_weights(prepare, space, np.asarray(last.coef_, dtype=float))
    return None if numeric is None else (numeric, np.asarray(last.classes_))


def _numeric_weights(prepare: Any, space: Space, weights: np.ndarray) -> np.ndarray | None:
    """The classifier's weights on ``space.columns`` in raw units, when ``prepare`` (a fitted
    ColumnTransformer) reads them as ``held_linear_parts`` says; else None."""
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    numeric: np.ndarray | None = None
    for name, transformer, columns in prepare.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        names = list(columns) if isinstance(columns, list | tuple) else None
        if names is None or not all(isinstance(c, str) for c in names):
            return None
        if set(names) <= set(space.fixed):
            continue  # held-fixed columns only: a constant of the row
        plain = isinstance(transformer, str) and transformer == "passthrough"
        if tuple(names) != space.columns or numeric is not None:
            return None
        if not (plain or isinstance(transformer, StandardScaler)):
            return None
        scale = transformer.scale_ if not plain and transformer.scale_ is not None else 1.0
        numeric = weights[:, prepare.output_indices_[name]] / np.asarray(scale, dtype=float)
    if numeric is None or numeric.shape[1] != len(space.columns):
        return None
    return numeric


def _worst_linf(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Min over the box of ``v . d`` per row: each coordinate at the end that lowers it."""
    result: np.ndarray = np.minimum(v * lo, v * hi).sum(axis=1)
    return result


def _worst_l2(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, eps: float) -> np.ndarray:
    """Min of ``v . d`` per row over ``||d||_2 <= eps`` and ``lo <= d <= hi`` (``lo <= 0 <= hi``).

    The KKT conditions give ``d = clip(-t v, lo, hi)`` for one ``t >= 0`` per row, with
    ``||d|| = eps`` unless the box binds first; ``||d(t)||`` grows with ``t``, so bisection finds
    it (to 1e-12 relative, 200 halvings).
    """
    v = np.broadcast_to(v, lo.shape)
    norm_v = np.linalg.norm(v, axis=1)
    active = norm_v > 0

    def step(t: np.ndarray) -> np.ndarray:
        clipped: np.ndarray = np.clip(-t[:, None] * v, lo, hi)
        return clipped

    # The corner the direction -v reaches when nothing but the box stops it (0 where v is 0).
    with np.errstate(invalid="ignore"):
        corner = np.clip(np.where(v != 0, -np.sign(v) * np.inf, 0.0), lo, hi)
    finite = np.isfinite(corner).all(axis=1)
    inside = finite & (np.linalg.norm(np.where(np.isfinite(corner), corner, 0.0), axis=1) <= eps)
    corner = np.where(np.isfinite(corner), corner, 0.0)
    t_lo = np.zeros(len(v))
    t_hi = np.where(active, eps / np.where(active, norm_v, 1.0), 0.0)
    # ||clip(-t v)|| <= ||t v||, so t = eps/||v|| may be short of the sphere: grow it until past.
    for _ in range(64):
        short = (np.linalg.norm(step(t_hi), axis=1) < eps) & ~inside & active
        if not short.any():
            break
        t_hi = np.where(short, t_hi * 2.0, t_hi)
    for _ in range(200):
        mid = (t_lo + t_hi) / 2.0
        over = np.linalg.norm(step(mid), axis=1) > eps
        t_hi = np.where(over, mid, t_hi)
        t_lo = np.where(over, t_lo, mid)
    d = np.where(inside[:, None], corner, step(t_lo))
    worst: np.ndarray = (v * d).sum(axis=1)
    return np.where(active, worst, 0.0)


def certified_linear(
    model: Any,
    space: Space,
    x: np.ndarray,
    y: np.ndarray,
    *,
    norm: Norm,
    eps: float,
    held: pd.DataFrame | None = None,
) -> RobustResult:
    """Exact robust accuracy of a linear model (see the module's docstring for integers/L2);
    with ``held`` (the rows' held-fixed columns) one that ``held_linear_parts`` reads."""
    start = time.perf_counter()
    scores = None
    parts = linear_parts(model) if held is None else None
    if parts is not None:
        weights, bias, classes = parts
    else:
        encoded = held_linear_parts(model, space) if held is not None else None
        if encoded is None:
            msg = "not a linear model (StandardScaler steps, then coef_ and intercept_)"
            raise RiskError(msg)
        weights, classes = encoded
        bias = np.zeros(weights.shape[0])
        # Each row's scores as they are (the held columns' part included): moves add to them.
        scores = np.asarray(model.decision_function(space.frame(x, held)), dtype=float)
        scores = scores.reshape(len(x), -1)
    index = _label_index(classes, y)
    # The difference of two classes' scores, as a function of the standardized move d:
    # margin(d) = (w_y - w_k) . (x + sigma d) + (b_y - b_k)  (binary: sign(y) (w . x + b)).
    if weights.shape[0] == 1:
        sign = np.where(index == 1, 1.0, -1.0)
        pairs = [(sign[:, None] * weights[0], sign * bias[0])]
    else:
        pairs = [
            (weights[index] - weights[k], bias[index] - bias[k]) for k in range(weights.shape[0])
        ]
    lo, hi = space.box(x, eps if norm == "linf" else np.inf)
    robust = np.ones(len(x), dtype=bool)
    rows = np.arange(len(x))
    for k, (w_diff, b_diff) in enumerate(pairs):
        w_rows = np.broadcast_to(w_diff, x.shape)
        if scores is None:
            margin = (w_rows * x).sum(axis=1) + b_diff
        elif weights.shape[0] == 1:
            margin = sign * scores[:, 0]
        else:
            margin = scores[rows, index] - scores[:, k]
        v = w_rows * space.sigma
        worst = _worst_linf(v, lo, hi) if norm == "linf" else _worst_l2(v, lo, hi, eps)
        ok = margin + worst > _TIE
        if weights.shape[0] > 1:
            ok |= index == k  # a class against itself
        robust &= ok
    conservative = norm == "l2" and bool((space.integer & space.mutable).any())
    return RobustResult(
        norm,
        eps,
        float(robust.mean()) if len(robust) else 0.0,
        "certified",
        len(x),
        time.perf_counter() - start,
        conservative,
    )


def worst_case_linear(
    model: Any, space: Space, x: np.ndarray, y: np.ndarray, *, eps: float
) -> np.ndarray:
    """The L-infinity worst-case points (raw units) of a binary linear model at ``eps``.

    Each row moves every mutable feature to the end of its allowed interval that lowers the
    true class's margin: the exact minimiser, used for adversarial training.
    """
    parts = linear_parts(model)
    if parts is None or parts[0].shape[0] != 1:
        msg = "exact worst-case augmentation needs a binary linear model"
        raise RiskError(msg)
    weights, _, classes = parts
    sign = np.where(_label_index(classes, y) == 1, 1.0, -1.0)
    v = sign[:, None] * weights[0] * space.sigma
    lo, hi = space.box(x, eps)
    move = np.where(v * lo <= v * hi, lo, hi)
    moved: np.ndarray = x + move * space.sigma
    return moved


def _label_index(classes: np.ndarray, y: np.ndarray) -> np.ndarray:
    lookup = {str(c): i for i, c in enumerate(classes)}
    try:
        return np.array([lookup[str(v)] for v in y])
    except KeyError as err:
        msg = f"label {err.args[0]!r} is not one of the model's classes {list(lookup)}"
        raise RiskError(msg) from None


# --- ART: attacks and tree verification --------------------------------------------------------


@contextmanager
def quiet_art() -> Iterator[None]:
    """Import ART without its notice that PyTorch (which nothing here uses) is absent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTorch not found", category=UserWarning)
        yield


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (which ART draws from) and restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _predict_fn(model: Any, columns: Sequence[str], classes: np.ndarray) -> Callable[..., Any]:
    def predict(x_raw: np.ndarray) -> np.ndarray:
        proba: np.ndarray = model.predict_proba(pd.DataFrame(x_raw, columns=list(columns)))
        if proba.shape[1] != len(classes):
            msg = f"the model returned {proba.shape[1]} probabilities for {len(classes)} classes"
            raise RiskError(msg)
        return proba

    return predict


def _predict_rows(model: Any, rows: pd.DataFrame, classes: np.ndarray) -> Callable[..., Any]:
    """Probabilities for row indices (one column) into ``rows``, the frame as it is."""

    def predict(ids: np.ndarray) -> np.ndarray:
        chosen = np.clip(np.rint(np.asarray(ids, dtype=float)[:, 0]), 0, len(rows) - 1)
        proba: np.ndarray = model.predict_proba(rows.iloc[chosen.astype(int)])
        if proba.shape[1] != len(classes):
            msg = f"the model returned {proba.shape[1]} probabilities for {len(classes)} classes"
            raise RiskError(msg)
        return proba

    return predict


@dataclass(frozen=True)
class AttackBudget:
    """How much an ART evasion attack may spend per row, and on how many rows."""

    max_iter: int = 10
    max_eval: int = 200
    init_eval: int = 20
    max_rows: int = 200


@dataclass(frozen=True)
class _Codec:
    """The attack's numeric input (standardized numeric columns, plus the row's index when the
    table has held-fixed columns or blank cells) to and from the model's DataFrame."""

    model: Any
    space: Space
    classes: np.ndarray
    center: np.ndarray
    blank: np.ndarray  # per row and numeric column: a blank (NaN) cell, restored as NaN
    held: pd.DataFrame | None
    keyed: bool
    # The same probabilities, cheaper (held columns encoded once); None: the plain path.
    fast: Encoded | None = None

    @classmethod
    def build(
        cls,
        model: Any,
        space: Space,
        x: np.ndarray,
        held: pd.DataFrame | None,
        classes: np.ndarray,
    ) -> _Codec:
        blank = np.isnan(x)
        keyed = bool(space.fixed) or bool(blank.any())
        if not len(x):
            center = np.zeros(len(space.columns))
        elif keyed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-blank column: NaN
                center = np.nanmean(x, axis=0)
            center = np.where(np.isfinite(center), center, 0.0)
        else:
            center = x.mean(axis=0)

        def frame(raw: np.ndarray, rows: np.ndarray | None) -> pd.DataFrame:
            return space.frame(raw, None if rows is None or held is None else held.iloc[rows])

        fast = Encoded.build(
            model, numeric=space.columns, fixed=space.fixed, frame=frame, x=x, sigma=space.sigma
        )
        return cls(model, space, classes, center, blank, held, keyed, fast)

    def to_raw(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z * self.space.sigma + self.center, dtype=float)

    def predict_raw(self, raw: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Probabilities for raw numeric rows; ``rows`` (indices) restore blanks and held values."""
        if rows is not None:
            raw = np.where(self.blank[rows], np.nan, raw)
        proba: np.ndarray
        if self.fast is not None:
            proba = self.fast.predict_proba(raw, rows)
        else:
            parts = None if rows is None or self.held is None else self.held.iloc[rows]
            proba = self.model.predict_proba(self.space.frame(raw, parts))
        if proba.shape[1] != len(self.classes):
            msg = (
                f"the model returned {proba.shape[1]} probabilities for {len(self.classes)} classes"
            )
            raise RiskError(msg)
        return proba

    def predict_z(self, z: np.ndarray) -> np.ndarray:
        if not self.keyed:
            return self.predict_raw(self.to_raw(z), None)
        width = len(self.space.columns)
        last = max(len(self.blank) - 1, 0)
        # HopSkipJump sometimes proposes a point with a NaN coordinate (seen in the row-index
        # input, which it may not move): a NaN index read as an int is -2**63, an IndexError that
        # made the gate ERRORED at random. Such a point gets row 0's held values; its numeric NaN
        # cells reach the model as blanks. The final check re-predicts every adversarial point
        # with its own row, and a NaN distance never counts as broken, so robust accuracy stays
        # an upper bound (RISK030), as HopSkipJump's figures are.
        index = np.nan_to_num(np.rint(z[:, width]), nan=0.0, posinf=last, neginf=0.0)
        ids = np.clip(index, 0, last).astype(int)
        return self.predict_raw(self.to_raw(z[:, :width]), ids)


def attack_accuracy(
    model: Any,
    space: Space,
    x: np.ndarray,
    y: np.ndarray,
    *,
    norms_eps: Sequence[tuple[Norm, float]],
    budget: AttackBudget,
    seed: int,
    held: pd.DataFrame | None = None,
) -> list[RobustResult]:
    """Robust accuracy under HopSkipJump (ART) in standardized units, for each ``(norm, eps)``.

    The attack is run once per norm (it minimises the perturbation); a row is broken at ``eps``
    when its adversarial point, rounded to integers where the contract says so, is within
    ``eps`` and is misclassified. Rows already misclassified are broken at every ``eps``.

    ``x`` holds the numeric columns (NaN for a blank cell), ``held`` the held-fixed (text, bool)
    columns of the same rows. With either, ART sees one more input, the row's index, masked and
    clipped to the rows: the predict function reads it back to restore the row's blank cells
    and held-fixed values, so the model always gets the row's own text and blanks. Blank cells
    are masked too (they stay blank); the row's filled cells still move.
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    if not space.fixed and not bool(np.isnan(x).any()):
        return _attack_accuracy(
            model, space, x, y, norms_eps=norms_eps, budget=budget, seed=seed, held=None
        )
    # HopSkipJump asks for a few rows at a time, thousands of times: with a one-hot pipeline,
    # scikit-learn's OpenMP pool costs more than the prediction on a loaded machine (7x here),
    # so mixed tables run on one OpenMP thread. All-numeric tables keep the path they had.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _attack_accuracy(
            model, space, x, y, norms_eps=norms_eps, budget=budget, seed=seed, held=held
        )


def _attack_accuracy(
    model: Any,
    space: Space,
    x: np.ndarray,
    y: np.ndarray,
    *,
    norms_eps: Sequence[tuple[Norm, float]],
    budget: AttackBudget,
    seed: int,
    held: pd.DataFrame | None,
) -> list[RobustResult]:
    with quiet_art():
        from art.attacks.evasion import HopSkipJump  # noqa: PLC0415
        from art.estimators.classification import BlackBoxClassifier  # noqa: PLC0415

    classes = np.asarray(model.classes_)
    index = _label_index(classes, y)
    codec = _Codec.build(model, space, x, held, classes)
    blank, keyed, width = codec.blank, codec.keyed, len(space.columns)
    to_raw, predict_raw, predict_z = codec.to_raw, codec.predict_raw, codec.predict_z
    center = codec.center
    z = np.where(blank, 0.0, (x - center) / space.sigma)
    clip_lo = np.where(np.isfinite(space.lower), (space.lower - center) / space.sigma, -1e6)
    clip_hi = np.where(np.isfinite(space.upper), (space.upper - center) / space.sigma, 1e6)
    if len(z):
        clip_lo, clip_hi = np.minimum(clip_lo, z.min(axis=0)), np.maximum(clip_hi, z.max(axis=0))
    mask = space.mutable.astype(np.float32)
    if keyed:
        z = np.column_stack([z, np.arange(len(z), dtype=float)])
        clip_lo = np.append(clip_lo, 0.0)
        clip_hi = np.append(clip_hi, max(len(x) - 1, 0))
        mask = np.column_stack([space.mutable & ~blank, np.zeros(len(x), dtype=bool)])
    classifier = BlackBoxClassifier(
        predict_z,
        input_shape=(z.shape[1],),
        nb_classes=len(classes),
        clip_values=(clip_lo.astype(np.float32), clip_hi.astype(np.float32)),
    )
    predicted = np.argmax(predict_z(z), axis=1) if len(z) else np.zeros(0, dtype=int)
    correct = predicted == index
    results: list[RobustResult] = []
    for norm in dict.fromkeys(n for n, _ in norms_eps):
        start = time.perf_counter()
        distance = np.zeros(len(z))  # misclassified rows: broken at distance 0
        rows = np.flatnonzero(correct)
        row_mask = mask[rows].astype(np.float32) if keyed else mask
        if len(rows) and row_mask.any():
            attack = HopSkipJump(
                classifier,
                norm=np.inf if norm == "linf" else 2,
                max_iter=budget.max_iter,
                max_eval=budget.max_eval,
                init_eval=budget.init_eval,
                init_size=budget.init_eval,
                verbose=False,
            )
            # ART divides by a gradient estimate's norm, which is zero when every probe around a
            # point got the same answer: the step is NaN (numpy's RuntimeWarning, an error under
            # `-W error`, made the gate ERRORED at random). Such points are handled below and in
            # predict_z (a NaN distance never counts as broken), so the warning says nothing new.
            with seeded(seed), np.errstate(divide="ignore", invalid="ignore"):
                adv = attack.generate(z[rows].astype(np.float32), mask=row_mask)
            adv = adv.astype(float)[:, :width]
            # Integers stay integers: round in raw units, then predict again.
            raw = to_raw(adv)
            raw = np.where(space.integer, np.round(raw), raw)
            adv = (raw - center) / space.sigma
            flipped = np.argmax(predict_raw(raw, rows if keyed else None), axis=1) != index[rows]
            delta = np.where(blank[rows], 0.0, adv - z[rows, :width])
            size = np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)
            distance[rows] = np.where(flipped, size, np.inf)
        elif len(rows):
            distance[rows] = np.inf
        seconds = time.perf_counter() - start
        for n, eps in norms_eps:
            if n != norm:
                continue
            broken = distance <= eps + 1e-9
            accuracy = float((~broken).mean()) if len(z) else 0.0
            results.append(RobustResult(norm, eps, accuracy, "attack", len(z), seconds))
    return results


def verified_forest(
    model: Any, space: Space, x: np.ndarray, y: np.ndarray, *, norm: Norm, eps: float
) -> RobustResult | None:
    """A sound lower bound for a random forest (ART's clique verification), or None.

    The verifier takes one epsilon in inputs scaled to [0, 1]; the forest's thresholds are
    mapped affinely so that its unit is one standardized unit divided by the widest feature.
    Every feature may move over every value here (mutability and ranges are not used), which
    only lowers the bound.
    """
    with quiet_art():
        from art.estimators.classification.scikitlearn import (  # noqa: PLC0415
            ScikitlearnRandomForestClassifier,
        )
        from art.metrics import RobustnessVerificationTreeModelsCliqueMethod  # noqa: PLC0415
        from art.metrics.verification_decisions_trees import (  # noqa: PLC0415
            Box,
            Interval,
            LeafNode,
            Tree,
        )
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    steps = list(model.steps) if isinstance(model, Pipeline) else [("classifier", model)]
    *pre, (_, forest) = steps
    if not isinstance(forest, RandomForestClassifier) or len(forest.classes_) != 2:
        return None
    start = time.perf_counter()
    m = x.astype(float)
    gain = space.sigma.copy()  # model-input units per standardized unit
    for _, step in pre:
        if not isinstance(step, StandardScaler):
            return None
        m = step.transform(pd.DataFrame(m, columns=list(space.columns)))
        gain = gain / (step.scale_ if step.scale_ is not None else 1.0)
    low = m.min(axis=0)
    width = float(np.max((m.max(axis=0) - low) / gain)) or 1.0
    scale = gain * width  # u = (m - low) / scale lies in [0, 1]
    u = (m - low) / scale

    class Standardized(ScikitlearnRandomForestClassifier):  # type: ignore[misc]
        """The same forest, its leaf boxes expressed in the verifier's [0, 1] units."""

        def get_trees(self) -> list[Any]:
            # ART lists one tree per class for a forest, but scores a binary model as one sum
            # that must be positive for class 1 and negative for class 0. The forest predicts
            # class 1 when the mean of p1 over trees exceeds 0.5: keep the class-1 trees with
            # leaf values p1 - 0.5 (a tie predicts class 0 and counts as not robust).
            trees = []
            for tree in super().get_trees():
                if tree.class_id != 1:
                    continue
                leaves = []
                for leaf in tree.leaf_nodes:
                    intervals = {
                        f: Interval(
                            (i.lower_bound - low[f]) / scale[f],
                            (i.upper_bound - low[f]) / scale[f],
                        )
                        for f, i in leaf.box.intervals.items()
                    }
                    leaves.append(
                        LeafNode(
                            leaf.tree_id,
                            leaf.class_label,
                            leaf.node_id,
                            Box(intervals=intervals),
                            leaf.value - 0.5,
                        )
                    )
                trees.append(Tree(None, leaves))
            return trees

    verifier = RobustnessVerificationTreeModelsCliqueMethod(Standardized(forest), verbose=False)
    labels = _label_index(forest.classes_, y)
    _, error = verifier.verify(
        np.clip(u, 0.0, 1.0),
        labels,
        eps_init=eps / width,
        norm=np.inf if norm == "linf" else 2,
        nb_search_steps=1,
    )
    return RobustResult(
        norm, eps, 1.0 - float(error), "verified", len(x), time.perf_counter() - start
    )


# --- membership inference -------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipResult:
    """One membership attack: AUC and TPR at each low FPR, on how many members/non-members."""

    attack: str
    auc: float
    tpr: dict[float, float]
    members: int
    non_members: int
    seconds: float
    min_fpr_step: float = field(default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly record (TPR keyed ``tpr_at_0.1pct_fpr``, ``tpr_at_1pct_fpr``)."""
        return {
            "attack": self.attack,
            "auc": round(self.auc, 6),
            **{tpr_key(f): round(v, 6) for f, v in self.tpr.items()},
            "members": self.members,
            "non_members": self.non_members,
            "min_fpr_step": round(self.min_fpr_step, 6),
            "seconds": round(self.seconds, 3),
        }


def tpr_key(fpr: float) -> str:
    """``0.001`` -> ``tpr_at_0.1pct_fpr``."""
    return f"tpr_at_{fpr * 100:g}pct_fpr"


def roc_summary(member: np.ndarray, score: np.ndarray) -> tuple[float, dict[float, float]]:
    """AUC, and TPR at each of ``FPRS`` linearly interpolated on ``roc_curve``'s points."""
    from sklearn.metrics import roc_auc_score, roc_curve  # noqa: PLC0415

    if len(set(member.tolist())) != 2:
        msg = "membership needs both members and non-members"
        raise RiskError(msg)
    fpr, tpr, _ = roc_curve(member, score, drop_intermediate=False)
    auc = float(roc_auc_score(member, score))
    # At equal FPR, the highest TPR (the curve climbs vertically there): interpolate on that
    # envelope, whose x values strictly increase.
    steps, first = np.unique(fpr, return_index=True)
    best = np.maximum.reduceat(tpr, first)
    return auc, {f: float(np.interp(f, steps, best)) for f in FPRS}


def _true_class_proba(model: Any, x: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    classes = np.asarray(model.classes_)
    proba = np.asarray(model.predict_proba(x), dtype=float)
    chosen: np.ndarray = proba[np.arange(len(y)), _label_index(classes, y)]
    return chosen


def loss_threshold(
    model: Any, x_in: pd.DataFrame, y_in: np.ndarray, x_out: pd.DataFrame, y_out: np.ndarray
) -> MembershipResult:
    """The loss-threshold attack: a lower log-loss on a row says "member"."""
    start = time.perf_counter()
    p_in = _true_class_proba(model, x_in, y_in)
    p_out = _true_class_proba(model, x_out, y_out)
    score = np.log(np.clip(np.concatenate([p_in, p_out]), 1e-300, 1.0))
    member = np.concatenate([np.ones(len(p_in)), np.zeros(len(p_out))])
    auc, tpr = roc_summary(member, score)
    return MembershipResult(
        "loss_threshold",
        auc,
        tpr,
        len(p_in),
        len(p_out),
        time.perf_counter() - start,
        1.0 / len(p_out),
    )


def black_box_membership(
    model: Any,
    columns: Sequence[str],
    members: tuple[np.ndarray, np.ndarray],
    others: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    rows: pd.DataFrame | None = None,
) -> MembershipResult:
    """ART's ``MembershipInferenceBlackBox`` (a seeded random forest on the probabilities).

    The attack model learns from half the members and half the non-members (seeded split) and
    is scored on the other halves, so it is never judged on rows it learned from. With ``rows``,
    the members' and others' ``x`` are one column of indices into ``rows`` (the frame the model
    is given); ART reads only the model's probabilities, so nothing else changes.
    """
    with quiet_art():
        from art.attacks.inference.membership_inference import (  # noqa: PLC0415
            MembershipInferenceBlackBox,
        )
        from art.estimators.classification import BlackBoxClassifier  # noqa: PLC0415

    start = time.perf_counter()
    (x_in, y_in), (x_out, y_out) = members, others
    classes = np.asarray(model.classes_)
    if rows is None:
        predict = _predict_fn(model, columns, classes)
        shape = (len(columns),)
    else:
        predict = _predict_rows(model, rows, classes)
        shape = (1,)
    classifier = BlackBoxClassifier(predict, input_shape=shape, nb_classes=len(classes))
    rng = np.random.default_rng(seed)
    in_order, out_order = rng.permutation(len(x_in)), rng.permutation(len(x_out))
    in_fit, in_test = np.array_split(in_order, 2)
    out_fit, out_test = np.array_split(out_order, 2)
    if min(len(in_test), len(out_test), len(in_fit), len(out_fit)) == 0:
        msg = "too few rows for the black-box membership attack (needs 2 members and 2 others)"
        raise RiskError(msg)
    yi, yo = _label_index(classes, y_in), _label_index(classes, y_out)
    # ART's own random forest: an unfitted one passed as attack_model trips ART's truth test of
    # it (sklearn's forest has a __len__); with random_state=None it draws from numpy's global
    # generator, which ``seeded`` fixes.
    with seeded(seed):
        attack = MembershipInferenceBlackBox(
            classifier, input_type="prediction", attack_model_type="rf"
        )
        attack.fit(x_in[in_fit], yi[in_fit], x_out[out_fit], yo[out_fit])
        p_in = attack.infer(x_in[in_test], yi[in_test], probabilities=True)
        p_out = attack.infer(x_out[out_test], yo[out_test], probabilities=True)
    score = np.concatenate([np.ravel(p_in), np.ravel(p_out)])
    member = np.concatenate([np.ones(len(in_test)), np.zeros(len(out_test))])
    auc, tpr = roc_summary(member, score)
    return MembershipResult(
        "art_black_box",
        auc,
        tpr,
        len(in_test),
        len(out_test),
        time.perf_counter() - start,
        1.0 / len(out_test),
    )


# --- the whole measurement, as the gate and the bench run it -----------------------------------


def budgets(robustness: RobustnessPolicy) -> list[tuple[Norm, float]]:
    """Every ``(norm, epsilon)`` the policy lists, in order."""
    pairs: list[tuple[Norm, float]] = []
    for norm in NORMS:
        bar = getattr(robustness, norm)
        if bar is not None:
            pairs.extend((norm, float(eps)) for eps in bar.epsilons)
    return pairs


def measure_robustness(
    model: Any,
    space: Space,
    x: np.ndarray,
    y: np.ndarray,
    robustness: RobustnessPolicy,
    *,
    seed: int,
    held: pd.DataFrame | None = None,
) -> list[RobustResult]:
    """Robust accuracy at every ``(norm, epsilon)``: certified, verified or attacked.

    Linear models are certified exactly; binary random forests get ART's sound verification;
    any other family ART's HopSkipJump on at most ``attack_max_rows`` rows (a seeded sample).
    A table with blank cells is always attacked, and so is one with held-fixed (text, bool)
    columns unless its model is linear behind them (``held_linear_parts``): the verifier does
    not read the transformer that encodes them in front of a forest.
    """
    pairs = budgets(robustness)
    plain = not space.fixed and not bool(np.isnan(x).any())
    if plain and linear_parts(model) is not None:
        return [certified_linear(model, space, x, y, norm=n, eps=e) for n, e in pairs]
    if (
        held is not None
        and not bool(np.isnan(x).any())
        and held_linear_parts(model, space) is not None
    ):
        # Held columns encoded in front of a linear model: still certified, not attacked (an
        # attack's upper bound let a text column lift the figure: 0.72 -> 0.89 at L-inf 0.25).
        return [certified_linear(model, space, x, y, norm=n, eps=e, held=held) for n, e in pairs]
    if plain:
        verified = [verified_forest(model, space, x, y, norm=n, eps=e) for n, e in pairs]
        if all(v is not None for v in verified):
            return [v for v in verified if v is not None]
    if len(x) > robustness.attack_max_rows:
        rows = np.sort(
            np.random.default_rng(seed).permutation(len(x))[: robustness.attack_max_rows]
        )
        x, y = x[rows], y[rows]
        held = None if held is None else held.iloc[rows].reset_index(drop=True)
    budget = AttackBudget(
        max_iter=robustness.attack_max_iter,
        max_eval=robustness.attack_max_eval,
        init_eval=min(20, robustness.attack_max_eval),
        max_rows=robustness.attack_max_rows,
    )
    return attack_accuracy(model, space, x, y, norms_eps=pairs, budget=budget, seed=seed, held=held)


def measure_privacy(
    model: Any,
    columns: Sequence[str],
    members: tuple[pd.DataFrame, np.ndarray],
    others: tuple[pd.DataFrame, np.ndarray],
    *,
    seed: int,
) -> list[MembershipResult]:
    """Both membership attacks: training rows are the members, holdout rows the others.

    ART's black-box attack reads only the model's probabilities (``input_type="prediction"``).
    A table whose features are all numeric and filled is handed to it as the numeric matrix; any
    other (text, bool, blank cells) as each row's index into the members and others, which the
    predict function turns back into the row's own frame, dtypes unchanged: the attack model
    sees the same probabilities and labels either way.
    """
    (x_train, y_train), (x_holdout, y_holdout) = members, others
    loss = loss_threshold(model, x_train, y_train, x_holdout, y_holdout)
    numeric = all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
        for t in pd.concat([x_train.dtypes, x_holdout.dtypes])
    )
    if numeric:
        x_in = x_train.to_numpy(dtype=float, na_value=np.nan)
        x_out = x_holdout.to_numpy(dtype=float, na_value=np.nan)
        if not (np.isnan(x_in).any() or np.isnan(x_out).any()):
            return [
                loss,
                black_box_membership(
                    model, columns, (x_in, y_train), (x_out, y_holdout), seed=seed
                ),
            ]
    rows = pd.concat([x_train, x_holdout], ignore_index=True)[list(columns)]
    ids = np.arange(len(rows), dtype=float).reshape(-1, 1)
    return [
        loss,
        black_box_membership(
            model,
            columns,
            (ids[: len(x_train)], y_train),
            (ids[len(x_train) :], y_holdout),
            seed=seed,
            rows=rows,
        ),
    ]


# --- adversarial training of a linear model ---------------------------------------------------


def robust_logistic_fit(
    model: Any, space: Space, x: np.ndarray, y: np.ndarray, *, eps: float, c: float
) -> Any:
    """A copy of a binary logistic regression refitted on its exact L-inf worst-case loss at ``eps``.

    The objective is scikit-learn's (``C * sum(loss) + ||w||^2 / 2``) with each row's margin
    replaced by its worst case over the allowed moves (mutable features, the contract's ranges,
    integers kept integer): ``y (w . z + b) + sum_j min(y w_j g_j lo_j, y w_j g_j hi_j)``, which
    is concave in ``(w, b)``, so the loss is convex; L-BFGS starts from the fitted ``model``. The
    solution is written to the fitted classifier's public ``coef_`` / ``intercept_``, so the
    model stays the reviewed scikit-learn pipeline. Augmenting the data with worst-case points
    of a fixed model does not do this (it raises the weights and lowers robust accuracy).
    """
    import copy  # noqa: PLC0415

    from scipy.optimize import minimize  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    model = copy.deepcopy(model)  # the fitted model passed in stays as it was
    steps = list(model.steps) if isinstance(model, Pipeline) else [("classifier", model)]
    *pre, (_, classifier) = steps
    if not hasattr(classifier, "coef_") or classifier.coef_.shape[0] != 1:
        msg = "adversarial training needs a fitted binary linear classifier"
        raise RiskError(msg)
    z = x.astype(float)
    gain = space.sigma.copy()  # classifier-input units per standardized unit
    for _, step in pre:
        if not isinstance(step, StandardScaler):
            msg = "adversarial training supports StandardScaler steps only"
            raise RiskError(msg)
        z = step.transform(pd.DataFrame(z, columns=list(space.columns)))
        gain = gain / (step.scale_ if step.scale_ is not None else 1.0)
    sign = np.where(_label_index(classifier.classes_, y) == 1, 1.0, -1.0)
    lo, hi = space.box(x, eps)
    lo, hi = lo * gain, hi * gain  # the allowed moves in classifier-input units
    d = z.shape[1]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        a = sign[:, None] * w
        move = np.where(a * lo <= a * hi, lo, hi)
        robust = sign * (z @ w + b) + (a * move).sum(axis=1)
        loss = np.logaddexp(0.0, -robust)
        weight = -c * np.exp(-np.logaddexp(0.0, robust))  # d loss / d robust, times C
        grad_w = ((weight * sign)[:, None] * (z + move)).sum(axis=0) + w
        grad_b = float((weight * sign).sum())
        return float(c * loss.sum() + 0.5 * w @ w), np.append(grad_w, grad_b)

    start = np.append(classifier.coef_[0], classifier.intercept_[0])
    found = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    classifier.coef_ = found.x[:d].reshape(1, -1)
    classifier.intercept_ = np.array([found.x[d]])
    return model
