"""DATA070 reports its rows only beyond the approved snapshot's own doubt; far rows leave it.

Issue 16, outlier precision: on classes that overlap, cleanlab flags clean rows at the approved
snapshot's own rate, and far outliers with another label (DATA060's) made the label model
doubt more clean rows. Those rows counted against every attack's precision.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from gates.base import Severity
from gates.data_integrity import DataGate
from pipeline.config import DataPolicy
from pipeline.poison import label_baseline, screen
from pipeline.profile import DataProfile, build_profile
from tests.contract_support import ID_COLUMN, data_policy, floats, two_classes

SEED = 7
OFF = {"enabled": False}


def _contract(
    *, far: bool = False, range_share: float = 0.0, quarantine: bool = False
) -> DataPolicy:
    checks: dict[str, object] = {
        "quarantine": quarantine,
        "duplicates": OFF,
        "drift": OFF,
        "class_means": OFF,
        "isolation": OFF,
        "association": OFF,
        "bursts": OFF,
    }
    checks["range"] = {"max_share": range_share} if far else OFF
    return data_policy({**ID_COLUMN, **floats(f"x{j}" for j in range(4))}, checks=checks)


def _approved(frame: pd.DataFrame, contract: DataPolicy) -> DataProfile:
    profile = build_profile(frame, contract)
    return replace(profile, label_rates=label_baseline(frame, contract, seed=SEED))


def _overlapping(n: int = 600, *, seed: int = 0) -> pd.DataFrame:
    """Two clean classes 0.75 SD apart on each of 4 features: cleanlab flags 17% of them."""
    return two_classes(n, shift=0.75, seed=seed)


def _errors(frame: pd.DataFrame, contract: DataPolicy, reference: DataProfile) -> set[str]:
    screening = screen(frame, contract, reference=reference, seed=SEED)
    return {
        f.rule for f in DataGate.judge(screening, contract, "d.csv") if f.severity is Severity.ERROR
    }


def _far_flips(frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Every 20th row (5%) moved 6 SD out on every feature (either way), its label flipped."""
    far = np.arange(0, len(frame), 20)
    poisoned = frame.copy()
    columns = [f"x{j}" for j in range(4)]
    sign = np.where(np.arange(far.size)[:, None] % 2 == 0, 1.0, -1.0)
    poisoned.loc[far, columns] = 6.0 * sign + poisoned.loc[far, columns].to_numpy()
    poisoned.loc[far, "y"] = np.where(poisoned.loc[far, "y"] == "a", "b", "a")
    return far, poisoned


def _label_rows(frame: pd.DataFrame, contract: DataPolicy, reference: DataProfile) -> set[int]:
    found = screen(frame, contract, reference=reference, seed=SEED).by_check("label")
    assert found is not None
    return set(found.rows.tolist())


def test_clean_rows_at_the_approved_rate_are_not_reported():
    """The approved table and a clean table grown from the same source: cleanlab flags their
    ambiguous rows at the approved rate, which says nothing about poisoning (red before: the
    label check reported 100 and 133 clean rows)."""
    contract = _contract()
    frame = _overlapping()
    reference = _approved(frame, contract)
    assert reference.label_rates is not None
    assert reference.label_rates["cleanlab"] > 0.01  # the approved table has such rows
    assert _label_rows(frame, contract, reference) == set()
    grown = pd.concat([frame, _overlapping(200, seed=1)], ignore_index=True)
    grown["id"] = np.arange(1, len(grown) + 1, dtype=float)
    assert _label_rows(grown, contract, reference) == set()
    assert _errors(grown, contract, reference) == set()


def test_with_quarantine_the_approved_rate_is_reported_for_cleaning():
    """Quarantine drops the reported rows from training: there every row the label check
    doubts is reported, the approved snapshot's own ambiguous rows too (as before)."""
    contract = _contract(quarantine=True)
    frame = _overlapping()
    reference = _approved(frame, contract)
    assert len(_label_rows(frame, contract, reference)) == 100
    assert _errors(frame, contract, reference) == set()


def test_flips_beyond_the_approved_rate_are_reported_with_the_table_failing():
    contract = _contract()
    frame = _overlapping()
    reference = _approved(frame, contract)
    rows = np.random.default_rng(0).choice(len(frame), size=36, replace=False)  # 6%
    poisoned = frame.copy()
    poisoned.loc[rows, "y"] = np.where(poisoned.loc[rows, "y"] == "a", "b", "a")
    found = _label_rows(poisoned, contract, reference)
    assert len(found & set(rows.tolist())) >= 24
    assert "DATA070" in _errors(poisoned, contract, reference)


def test_a_few_flips_beyond_the_approved_rate_are_reported_though_the_table_passes():
    """18 flips (3%): not significantly beyond the approved share (binomial p 0.018 >=
    witness_alpha), so the table passes DATA070, but the rows no other check explains doubt
    their labels more than the approved snapshot did, and they are reported."""
    contract = _contract()
    frame = _overlapping()
    reference = _approved(frame, contract)
    rows = np.random.default_rng(1).choice(len(frame), size=18, replace=False)
    poisoned = frame.copy()
    poisoned.loc[rows, "y"] = np.where(poisoned.loc[rows, "y"] == "a", "b", "a")
    found = _label_rows(poisoned, contract, reference)
    assert len(found & set(rows.tolist())) >= 12
    assert "DATA070" not in _errors(poisoned, contract, reference)


def test_far_rows_with_another_label_do_not_make_clean_rows_doubtful():
    """30 rows (5%) 6 SD beyond the approved range on every feature, their labels flipped:
    DATA060 flags and fails them; the label model and neighbour vote no longer fit on them,
    so no clean row is reported (red before: 100 clean rows beside them)."""
    contract = _contract(far=True)
    frame = _overlapping()
    reference = _approved(frame, contract)
    far, poisoned = _far_flips(frame)
    screening = screen(poisoned, contract, reference=reference, seed=SEED)
    assert set(far.tolist()) <= set(screening.by_check("range").rows.tolist())
    assert set(screening.flagged_rows().tolist()) == set(far.tolist())
    assert "DATA060" in _errors(poisoned, contract, reference)


def test_far_rows_under_a_permissive_range_share_stay_in_the_label_check():
    """With `range.max_share` above their share the far rows do not fail the table on their
    own, so the label check keeps judging them: they still count and can be reported."""
    contract = _contract(far=True, range_share=0.1)
    frame = _overlapping()
    reference = _approved(frame, contract)
    far, poisoned = _far_flips(frame)
    found = _label_rows(poisoned, contract, reference)
    assert found & set(far.tolist())  # judged (and some flagged) by the label check
    strict = _contract(far=True)
    assert not _label_rows(poisoned, strict, _approved(frame, strict)) & set(far.tolist())
