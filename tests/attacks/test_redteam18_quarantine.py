"""Red team 18: DATA100's excess-only reporting (batch18) and quarantine mode.

With ``[data.checks].quarantine = true`` the rows the data gate reports are the rows dropped
from training. batch18 made DATA100 report only the excess of new rows beyond what the
approved rows' doubt explains when its evidence is significant at ``label_report_alpha`` but
does not fail the rule: the verdict is unchanged (it counts every row), but in quarantine
mode a flagged row left unreported is kept and trained on. Four labels flipped near the class
boundary among somewhat harder clean new rows: all four flagged, one of them unreported (7 of
14 flagged rows reported), so quarantine trained on it. The whole-table label check already
reports every row with quarantine (``pipeline.poison``); the batch screen now does too.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.contract_support import data_policy, floats

NAMES = tuple(f"x{j}" for j in range(6))


def _harder_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """900 rows of two Gaussian classes, the last 200 new: 8 of them clean but near the
    boundary, 10 far outliers with flipped labels, and 4 class-b rows near the boundary
    relabelled a (the payload, less doubted than the clean hard rows)."""
    rng = np.random.default_rng(0)
    y = np.arange(900) % 2
    x = rng.normal(0.0, 1.0, (900, 6)) + np.where(y[:, None] == 1, 1.5, 0.0)
    pool_y = np.arange(4000) % 2
    pool = rng.normal(0.0, 1.0, (4000, 6)) + np.where(pool_y[:, None] == 1, 1.5, 0.0)
    near = np.argsort(np.abs(pool.sum(axis=1) - 4.5))[:8]
    x[892:], y[892:] = pool[near], pool_y[near]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    far = np.arange(700, 720, 2)
    x[far] += 6.0
    y[far] = 1 - y[far]
    new = np.arange(730, 860)
    ones = new[y[new] == 1]
    ranked = ones[np.argsort(-x[ones].sum(axis=1))]
    payload = ranked[int(0.9 * ranked.size) :][:4]
    y[payload] = 0
    return x, y, far, payload


def _screen(quarantine: bool | None) -> tuple[object, object, np.ndarray]:
    from pipeline.targeted import screen_batch

    x, y, far, payload = _harder_batch()
    checks = data_policy(floats(NAMES)).checks
    approved = np.ones(900, dtype=bool)
    approved[700:] = False
    extra = {} if quarantine is None else {"quarantine": quarantine}
    result = screen_batch(
        x,
        y,
        approved,
        classes=("a", "b"),
        names=NAMES,
        labels=checks.labels,
        association=checks.association,
        burst=checks.bursts,
        batch=checks.batch,
        seed=7,
        beyond_range=far,
        **extra,
    )
    rate = next(t for t in result.rates if t.check == "batch_label")
    flags = next(f for f in result.flags if f.check == "batch_label")
    return rate, flags, payload


def test_with_quarantine_every_flagged_row_is_reported_and_so_dropped() -> None:
    """Before: 7 of the 14 rows DATA100 flags reported, one of the 4 relabelled rows not
    among them, so quarantine trained on it (the keyword did not exist: screen_batch had no
    way to know)."""
    rate, flags, payload = _screen(True)
    assert not rate.failed  # the verdict: weak evidence, not a failure
    assert np.isin(payload, flags.rows).all(), (payload, flags.rows, rate.reporting)
    assert flags.count == rate.flagged == 14, rate.reporting
    assert rate.reporting.startswith("every row reported: with quarantine"), rate.reporting


@pytest.mark.parametrize("quarantine", [None, False])
def test_without_quarantine_only_the_excess_is_reported(quarantine: bool | None) -> None:
    """Control (batch18's reporting, unchanged): 7 of 14 reported, one relabelled row among the
    unreported; the verdict counts all 14 either way."""
    rate, flags, payload = _screen(quarantine)
    assert rate.flagged == 14
    assert flags.count == 7, rate.reporting
    assert np.isin(payload, flags.rows).sum() == 3
