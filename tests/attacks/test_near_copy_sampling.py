"""Near copies of rows on tables larger than ``[data.checks.bursts].max_rows``.

Above ``max_rows`` rows (20,000) the near-duplicate search (DATA052 on the whole table, DATA108
for a batch, FBQ011/FBQ014 at feedback ingest) looked at a seeded sample, and a pair counted
only when both of its rows were drawn: the copies' share was undercounted by the sampling rate,
so on a table ten times ``max_rows`` a copy of every twentieth row (5%, over twice the 2%
limit) showed as about 0.5% and passed. A batch's new rows were likewise compared with a sample
of the approved rows. Here the scale model: ``max_rows = 200`` on 2,000 distinct rows.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import BurstCheck
from pipeline.targeted import near_duplicates

SEED = 7
CHECK = BurstCheck(max_rows=200)  # the 20,000 of the policy, on a table ten times as large
LIMIT = 0.02  # [data.checks.duplicates].max_near_share


def _rows(n: int = 2000, features: int = 10) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, features))


def _share(found) -> float:
    return found.count / (found.screened or 1)


def test_one_ulp_copies_of_5_percent_of_a_large_table_exceed_the_share():
    x = _rows()
    clean = near_duplicates(x, check=CHECK, seed=SEED)
    assert clean.count == 0
    # Every 20th row copied once, its first feature one ulp up: 100 twins among 2,100 rows.
    copies = x[::20].copy()
    copies[:, 0] = np.nextafter(copies[:, 0], np.inf)
    table = np.random.default_rng(5).permutation(np.concatenate([x, copies]))
    found = near_duplicates(table, check=CHECK, seed=SEED)
    assert found.screened == CHECK.max_rows
    # 100 of 2,100 rows are the later of a pair: about 4.8% of any sample of rows.
    assert _share(found) > LIMIT, (found.count, found.screened)
    assert found.reasons[0].startswith("within ")
    assert float(found.reasons[0].split()[1]) < 1e-12  # a one-ulp twin, named


def test_a_batch_copying_approved_rows_is_compared_with_every_approved_row():
    approved = _rows()
    fresh = np.random.default_rng(11).normal(size=(90, approved.shape[1]))
    copies = approved[::200] * (1 + 1e-9)  # 10 approved rows moved 1e-9 relative
    batch = np.concatenate([fresh, copies])
    found = near_duplicates(
        batch,
        check=CHECK,
        seed=SEED,
        approved=approved,
        names=np.arange(len(approved), len(approved) + len(batch)),
        approved_names=np.arange(len(approved)),
    )
    # 10 of 100 new rows copy an approved row: all ten are found and named with their twin.
    assert found.count == 10, found.reasons
    assert found.rows.tolist() == list(range(90, 100))
    assert found.twins is not None
    assert found.twins.tolist() == list(range(0, 2000, 200))
