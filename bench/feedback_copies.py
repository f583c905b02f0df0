"""Feedback ingest: are copies of training rows found (FBQ011 flips, FBQ014 same label)?

``python bench/feedback_copies.py``. On the five benchmark sets (``bench/poisoning.py``), 5
seeds each: 10% of the real rows are a feedback batch against the other 90% as training (honest
rows: every flagged one is a false alarm), and 10 training rows copied with a small move
(an attack). Two checks side by side: exact equality of the features (FBQ011 before 6 December)
and the data gate's near-duplicate test as feedback ingest runs it now
(``gates.data_integrity.approved_standardized`` + ``pipeline.targeted.near_duplicates`` with the
training rows as the approved ones). Prints, per set and move, the share of copies found.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.poisoning import datasets
from gates.data_integrity import approved_standardized
from pipeline.config import BurstCheck
from pipeline.targeted import near_duplicates

Array = np.ndarray[Any, Any]
SEEDS = 5
COPIES = 10


def _ulp(x: Array, rng: Any, spread: Array) -> Array:
    out = x.copy()
    out[:, 0] = np.nextafter(out[:, 0], np.inf)
    return out


def _relative(x: Array, rng: Any, spread: Array) -> Array:
    out = x.copy()
    out[:, :3] *= 1 + 1e-9
    return out


def _jitter(sd: float) -> Callable[[Array, Any, Array], Array]:
    def move(x: Array, rng: Any, spread: Array) -> Array:
        return x + rng.normal(0.0, sd, x.shape) * spread

    return move


MOVES: dict[str, Callable[[Array, Any, Array], Array]] = {
    "1 ulp, 1 feature": _ulp,
    "1e-9 rel, 3 features": _relative,
    "0.01 SD, every feature": _jitter(0.01),
    "0.03 SD, every feature": _jitter(0.03),
    "0.1 SD, every feature": _jitter(0.1),
}


def _found(train: Array, batch: Array, seed: int) -> tuple[Array, Array, float]:
    """Per batch row: exactly equal to a training row; near one (the ingest check); seconds."""
    exact = np.array([bool((train == row).all(axis=1).any()) for row in batch])
    names = tuple(f"f{j}" for j in range(train.shape[1]))
    both = pd.DataFrame(np.vstack([train, batch]), columns=list(names))
    n = len(train)
    start = time.perf_counter()
    x = approved_standardized(both, names, np.arange(len(both)) < n)
    flags = near_duplicates(x[n:], check=BurstCheck(), seed=seed, approved=x[:n])
    near = np.zeros(len(batch), dtype=bool)
    twins = flags.twins if flags.twins is not None else np.zeros(0, dtype=np.int64)
    near[flags.rows[twins < n]] = True
    return exact, near, time.perf_counter() - start


def main() -> None:
    """Print the table."""
    print(f"{'set':14s} {'batch':30s} {'rows':>6s} {'exact':>7s} {'near':>7s} {'s/batch':>8s}")
    for case in datasets():
        results: dict[str, list[float]] = {}
        for seed in range(SEEDS):
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(case.y))
            cut = max(COPIES, len(order) // 10)
            train = case.x[order[cut:]]
            batches = {"real held-out rows": case.x[order[:cut]]}
            picks = train[rng.choice(len(train), COPIES, replace=False)]
            for name, move in MOVES.items():
                batches[f"copies: {name}"] = move(picks, rng, train.std(axis=0))
            for name, batch in batches.items():
                exact, near, seconds = _found(train, batch, seed)
                row = results.setdefault(name, [0, 0, 0, 0.0])
                row[0] += len(batch)
                row[1] += int(exact.sum())
                row[2] += int(near.sum())
                row[3] += seconds
        for name, (rows, exact, near, seconds) in results.items():
            print(
                f"{case.name:14s} {name:30s} {int(rows):6d} {exact / rows:7.1%} "
                f"{near / rows:7.1%} {seconds / SEEDS:8.3f}"
            )


if __name__ == "__main__":
    main()
