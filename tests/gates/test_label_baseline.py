"""DATA070 against the approved snapshot's own share: overlapping clean classes pass, flips fail."""

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
ONLY_LABELS = {
    "duplicates": {"enabled": False},
    "drift": {"enabled": False},
    "class_means": {"enabled": False},
    "range": {"enabled": False},
    "isolation": {"enabled": False},
    "association": {"enabled": False},
    "bursts": {"enabled": False},
}


def _contract() -> DataPolicy:
    return data_policy({**ID_COLUMN, **floats(f"x{j}" for j in range(4))}, checks=ONLY_LABELS)


def _overlapping(n: int = 600, *, seed: int = 0) -> pd.DataFrame:
    """Two clean classes one standard deviation apart: about 30% of rows sit on the wrong side."""
    return two_classes(n, shift=0.5, seed=seed)


def _approved(frame: pd.DataFrame, contract: DataPolicy, *, rates: bool = True) -> DataProfile:
    profile = build_profile(frame, contract)
    if not rates:
        return profile
    return replace(profile, label_rates=label_baseline(frame, contract, seed=SEED))


def _data070(frame: pd.DataFrame, contract: DataPolicy, reference: DataProfile) -> list[str]:
    screening = screen(frame, contract, reference=reference, seed=SEED)
    label = screening.by_check("label")
    assert label is not None
    # Over max_share either way: the rows flagged, or (rows at the approved snapshot's own
    # rate are not reported) the approved share itself.
    assert label.count > 0.05 * len(frame) or (
        label.baseline is not None and label.baseline.rate > 0.05
    )
    return [
        f.message
        for f in DataGate.judge(screening, contract, "d.csv")
        if f.rule == "DATA070" and f.severity is Severity.ERROR
    ]


def test_overlapping_clean_classes_pass_against_their_approved_share():
    contract = _contract()
    frame = _overlapping()
    assert _data070(frame, contract, _approved(frame, contract)) == []
    # A clean table that grew by other rows of the same source passes too.
    grown = pd.concat([frame, _overlapping(200, seed=1)], ignore_index=True)
    grown["id"] = np.arange(1, len(grown) + 1, dtype=float)
    assert _data070(grown, contract, _approved(frame, contract)) == []


def test_flips_beyond_the_approved_share_fail():
    contract = _contract()
    frame = _overlapping()
    reference = _approved(frame, contract)
    # 60 random rows (10%) relabelled: clearly more issues than the approved 27.5%.
    rows = np.random.default_rng(0).choice(len(frame), size=60, replace=False)
    poisoned = frame.copy()
    poisoned.loc[rows, "y"] = np.where(poisoned.loc[rows, "y"] == "a", "b", "a")
    found = _data070(poisoned, contract, reference)
    assert len(found) == 1
    assert "beyond the approved snapshot's" in found[0]


def test_a_lock_without_the_approved_share_keeps_max_share_alone():
    contract = _contract()
    frame = _overlapping()
    assert len(_data070(frame, contract, _approved(frame, contract, rates=False))) == 1
