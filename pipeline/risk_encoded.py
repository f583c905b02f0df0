"""A cheaper ``predict_proba`` for the risk gate's attack, with the same probabilities.

HopSkipJump asks for a few rows at a time, thousands of times. When the model is a
``Pipeline`` whose first step is a fitted ``ColumnTransformer``, most of each call goes to
encoding columns the attack never moves: the held-fixed (text, bool) ones, which depend only on
the row. :meth:`Encoded.build` encodes them once per attacked row; each call then transforms only
the numeric columns' transformers, places every block at its ``output_indices_`` and calls the
rest of the pipeline (``model[1:]``). Public scikit-learn attributes only (``transformers_``,
``output_indices_``, ``sparse_output_``).

Anything it does not handle (another model, sparse or non-float output, a transformer reading
both held and numeric columns, columns named otherwise than by a list of names, an output column
no transformer accounts for) gives None, and so does a build-time check that compares it with
the plain ``model.predict_proba`` of the frame on the attacked rows and perturbed copies of them
(any difference beyond ``ATOL``, any warning, any error): the caller then keeps the plain path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The largest difference in a probability the fast path may show against the plain one.
ATOL = 1e-12
# Perturbed copies of the attacked rows the build-time check also predicts, and their spread in
# standard deviations of each numeric column.
_CHECK_COPIES = 3
_CHECK_SPREAD = (0.5, 3.0, 30.0)


@dataclass(frozen=True)
class _Block:
    """One numeric transformer: where its output goes, and which numeric columns it reads."""

    where: slice
    transformer: Any
    positions: np.ndarray  # indices into the numeric columns
    names: tuple[str, ...]


@dataclass(frozen=True)
class Encoded:
    """``model.predict_proba`` of (numeric values, row index) with the held columns pre-encoded."""

    rest: Any  # model[1:]
    width: int
    held: np.ndarray  # per attacked row, the held transformers' output (zeros elsewhere)
    blocks: tuple[_Block, ...]
    keyed: bool  # the output has held columns' blocks: each call needs its rows

    @classmethod
    def build(
        cls,
        model: Any,
        *,
        numeric: Sequence[str],
        fixed: Sequence[str],
        frame: Callable[[np.ndarray, np.ndarray | None], pd.DataFrame],
        x: np.ndarray,
        sigma: np.ndarray,
    ) -> Encoded | None:
        """The fast path for ``model`` on the rows ``x`` (raw numeric values, NaN blank), or None.

        ``frame(raw, rows)`` is the plain path's model input: ``raw`` as the numeric columns,
        the held-fixed values of attacked rows ``rows``. ``sigma`` scales the check's moves.
        """
        if not len(x):
            return None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                encoded = cls._structure(model, numeric, fixed, frame, x)
                agrees = encoded is not None and encoded._agrees(model, frame, x, sigma)
        except Exception:  # any doubt: the plain path, which reports its own errors
            return None
        if caught or not agrees:
            return None
        return encoded

    @classmethod
    def _structure(
        cls,
        model: Any,
        numeric: Sequence[str],
        fixed: Sequence[str],
        frame: Callable[[np.ndarray, np.ndarray | None], pd.DataFrame],
        x: np.ndarray,
    ) -> Encoded | None:
        prepare = _column_transformer(model)
        if prepare is None:
            return None
        full = prepare.transform(frame(x, np.arange(len(x))))
        if not isinstance(full, np.ndarray) or full.ndim != 2 or full.dtype != np.float64:
            return None
        held = np.zeros_like(full)
        covered = np.zeros(full.shape[1], dtype=int)
        position = {name: i for i, name in enumerate(numeric)}
        blocks: list[_Block] = []
        keyed = False
        for name, transformer, columns in prepare.transformers_:
            where = prepare.output_indices_[name]
            covered[where] += 1
            if where.start == where.stop or (
                isinstance(transformer, str) and transformer == "drop"
            ):
                continue
            names = _names(columns)
            kind = _kind(names, transformer, numeric, fixed)
            if kind is None:
                return None
            if kind == "held":  # depends on the row alone: encoded once
                held[:, where] = full[:, where]
                keyed = True
            else:
                at = np.array([position[n] for n in names], dtype=int)
                blocks.append(_Block(where, transformer, at, names))
        if not (covered == 1).all():
            return None
        return cls(model[1:], full.shape[1], held, tuple(blocks), keyed)

    def _agrees(
        self,
        model: Any,
        frame: Callable[[np.ndarray, np.ndarray | None], pd.DataFrame],
        x: np.ndarray,
        sigma: np.ndarray,
    ) -> bool:
        rng = np.random.default_rng(0)
        rows = [np.arange(len(x))]
        raws = [x]
        for spread in _CHECK_SPREAD:
            ids = rng.integers(0, len(x), size=_CHECK_COPIES * len(x) // 4 + 1)
            moved = x[ids] + rng.normal(size=(len(ids), x.shape[1])) * sigma * spread
            rows.append(ids)
            raws.append(moved)  # a blank cell stays NaN
        raw, ids = np.concatenate(raws), np.concatenate(rows)
        plain = np.asarray(model.predict_proba(frame(raw, ids)), dtype=float)
        fast = self.predict_proba(raw, ids)
        return plain.shape == fast.shape and bool(np.allclose(fast, plain, rtol=0, atol=ATOL))

    def predict_proba(self, raw: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Probabilities for raw numeric rows (NaN blank) of the attacked rows ``rows``."""
        if rows is None:
            if self.keyed:
                msg = "the held-fixed columns' rows are needed"
                raise ValueError(msg)
            out = np.zeros((len(raw), self.width))
        else:
            out = self.held[rows]  # a copy
        for block in self.blocks:
            part = block.transformer.transform(
                pd.DataFrame(raw[:, block.positions], columns=list(block.names))
            )
            out[:, block.where] = np.asarray(part, dtype=float)
        proba: np.ndarray = self.rest.predict_proba(out)
        return proba


def _column_transformer(model: Any) -> Any:
    """The fitted, dense ``ColumnTransformer`` that starts ``model`` (a Pipeline), or None."""
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None
    prepare = model.steps[0][1]
    if not isinstance(prepare, ColumnTransformer) or not hasattr(prepare, "transformers_"):
        return None
    return None if prepare.sparse_output_ else prepare


def _names(columns: Any) -> tuple[str, ...]:
    """A transformer's columns as names; none when they are given another way (positions, a
    mask, a callable), which sends the caller to the plain path."""
    if isinstance(columns, (list, tuple, np.ndarray, pd.Index)):
        values = list(columns)
        if all(isinstance(c, str) for c in values):
            return tuple(values)
    return ()


def _kind(
    names: tuple[str, ...], transformer: Any, numeric: Sequence[str], fixed: Sequence[str]
) -> str | None:
    """``"held"`` for a transformer of held-fixed columns only, ``"numeric"`` for one of numeric
    columns only, None for anything else (both kinds, unknown columns, none)."""
    if names and set(names) <= set(fixed):
        return "held"
    if names and set(names) <= set(numeric) and not isinstance(transformer, str):
        return "numeric"
    return None
