"""DATA070's second witness: rows the neighbours *and* the out-of-fold model both doubt.

Issue 16, whole-table label cells: flips aimed at the decision boundary (each row relabelled
to its runner-up class) replace the ambiguous rows the kNN witness flags on clean data, so its
count stays at the approved rate, and cleanlab, which needs another class confidently above
its threshold, is blind to them. On clean data the two halves of the combined probabilities
rarely doubt the same row; on boundary flips they do. The ``both`` witness is judged like the
kNN one, against its own rate on the approved snapshot (``label_rates["both"]``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gates.base import Severity
from gates.data_integrity import DataGate
from pipeline.config import DataPolicy
from pipeline.poison import LabelScores, label_baseline, label_flags, screen
from pipeline.profile import DataProfile, build_profile
from tests.contract_support import ID_COLUMN, data_policy, floats, labelled_frame

SEED = 7
OFF = {"enabled": False}
WINE_FEATURES = 13


def _contract() -> DataPolicy:
    """The label check alone (committed thresholds), on wine's 13 numeric features."""
    checks: dict[str, object] = {
        "duplicates": OFF,
        "drift": OFF,
        "class_means": OFF,
        "range": OFF,
        "isolation": OFF,
        "association": OFF,
        "bursts": OFF,
    }
    columns = {**ID_COLUMN, **floats(f"x{j}" for j in range(WINE_FEATURES))}
    return data_policy(columns, checks=checks, classes=["0", "1", "2"])


def _wine() -> tuple[np.ndarray, np.ndarray]:
    """A seeded, stratified 80% of wine (142 rows), as the benchmark's tables are."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    data = load_wine()
    rows = np.arange(len(data.target))
    kept, _ = train_test_split(rows, test_size=0.2, stratify=data.target, random_state=0)
    kept = np.sort(kept)
    return data.data[kept].astype(float), data.target[kept].astype(int)


def _boundary_flips(x: np.ndarray, y: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows a logistic regression is least sure of (smallest gap between its two likeliest
    classes), each relabelled to its runner-up class (``bench/poisoning.py``'s boundary attack)."""
    from sklearn.linear_model import LogisticRegression

    xs = (x - x.mean(axis=0)) / x.std(axis=0)
    probs = LogisticRegression(max_iter=1000).fit(xs, y).predict_proba(xs)
    ranked = np.sort(probs, axis=1)
    rows = np.argsort(ranked[:, -1] - ranked[:, -2], kind="stable")[: round(share * len(y))]
    runner_up = probs.copy()
    runner_up[np.arange(len(y)), y] = -1.0
    flipped = y.copy()
    flipped[rows] = runner_up[rows].argmax(axis=1)
    return np.sort(rows), flipped


def _frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = labelled_frame(x, y)
    frame["y"] = pd.Series(y.astype(str), dtype="string")
    return frame


def _approved(frame: pd.DataFrame, contract: DataPolicy) -> DataProfile:
    profile = build_profile(frame, contract)
    return replace(profile, label_rates=label_baseline(frame, contract, seed=SEED))


def _judge(
    frame: pd.DataFrame, contract: DataPolicy, reference: DataProfile
) -> tuple[set[int], set[str]]:
    screening = screen(frame, contract, reference=reference, seed=SEED)
    found = screening.by_check("label")
    assert found is not None
    errors = {
        f.rule
        for f in DataGate.judge(screening, contract, "wine.csv")
        if f.severity is Severity.ERROR
    }
    return set(found.rows.tolist()), errors


def test_boundary_flips_on_wine_fail_the_label_check_and_are_reported():
    """14 of 142 wine rows (10%) relabelled to their runner-up class, the lock approved on the
    clean table. Red before: cleanlab and the kNN witness's excess reported 4 of them and
    DATA070 passed the table (the kNN witness's count barely moves: the flips replace the
    ambiguous rows it flags on clean data). On four other 80% splits (``random_state`` 1-3 and
    the benchmark's) the same attack went from 3-5 rows reported to 9-10 on three of them."""
    contract = _contract()
    x, y = _wine()
    reference = _approved(_frame(x, y), contract)
    rows, flipped = _boundary_flips(x, y, 0.10)
    found, errors = _judge(_frame(x, flipped), contract, reference)
    assert "DATA070" in errors
    caught = found & set(rows.tolist())
    assert len(caught) >= 9, (sorted(found), rows.tolist())
    assert len(caught) / len(found) >= 0.8
    assert reference.label_rates is not None
    assert reference.label_rates["both"] < 0.02  # the two halves rarely doubt a clean row


def test_the_clean_wine_table_passes_with_no_label_row_reported():
    contract = _contract()
    x, y = _wine()
    frame = _frame(x, y)
    found, errors = _judge(frame, contract, _approved(frame, contract))
    assert found == set()
    assert "DATA070" not in errors


def _planted(n: int = 400, *, model_doubts: bool = True) -> tuple[np.ndarray, LabelScores]:
    """Two classes; rows 0-19 have 3 of 10 neighbours for their label and the model gives it
    0.4 (both halves doubt it; ``model_doubts=False``: 0.95, the approved snapshot, where the
    kNN witness's rows are rows the model trusts), every other row 0.88 and 0.95. cleanlab
    flags none of them: the other class's combined 0.65 is below its class's average."""
    y = np.arange(n) % 2
    own_knn = np.full(n, 0.88)
    own_model = np.full(n, 0.95)
    own_knn[:20], own_model[:20] = 0.3, (0.4 if model_doubts else 0.95)
    knn = np.zeros((n, 2))
    model = np.zeros((n, 2))
    knn[np.arange(n), y], knn[np.arange(n), 1 - y] = own_knn, 1 - own_knn
    model[np.arange(n), y], model[np.arange(n), 1 - y] = own_model, 1 - own_model
    return y, LabelScores(model=model, knn=knn, combined=(model + knn) / 2)


@pytest.mark.parametrize(
    ("both_rate", "expected"),
    [
        ("recorded", list(range(20))),  # 20 rows where the approved snapshot had 0
        (0.05, []),  # as many rows as the approved snapshot's: nothing to add
        (None, []),  # a lock approved before the rate was recorded: the kNN witness alone
    ],
)
def test_rows_both_halves_doubt_are_added_beyond_their_approved_rate(both_rate, expected):
    """The kNN witness flags the same 20 rows as on the approved snapshot (count and mass at
    its rate), but now the model doubts them too (red before: nothing was flagged)."""
    from pipeline.poison import label_rates

    y, approved = _planted(model_doubts=False)
    rates = label_rates(approved, y)
    assert rates["knn"] == pytest.approx(0.05)
    if both_rate is None:
        rates.pop("both", None)
    elif both_rate != "recorded":
        rates["both"] = both_rate
    _, scores = _planted()
    found = label_flags(scores, y, classes=["a", "b"], rates=rates)
    assert found.rows.tolist() == expected
    if expected:
        assert "the knn-and-model witness flags 20 rows vs 0 expected" in found.reasons[0]


def test_label_rates_record_the_both_witness():
    from pipeline.poison import label_rates

    y, scores = _planted()
    rates = label_rates(scores, y)
    assert rates["both"] == pytest.approx(0.05)
    assert rates["knn"] == pytest.approx(0.05)


def test_the_batch_setting_leaves_the_both_witness_to_data100():
    """With approved rows (the batch setting) DATA100 judges the new rows' doubt against the
    approved rows' own rate; the whole-table check reports as before."""
    from pipeline.poison import label_rates

    y, approved = _planted(model_doubts=False)
    rates = label_rates(approved, y)
    _, scores = _planted()
    found = label_flags(
        scores, y, classes=["a", "b"], rates=rates, approved_rows=np.arange(200, 400)
    )
    assert found.count == 0
