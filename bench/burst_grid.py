"""The streaming burst check's grid against an attacker who knows it (no gate run: the grid alone).

Run from the project root: ``python bench/burst_grid.py`` (``--output``). Writes
``bench/results/burst-grid.txt`` by default.

On the streaming path (``pipeline/rowscore.py``) the burst check (DATA072) counts a row's
neighbours among the rows that share a cell of one of two grids (cells 2 x the radius wide, the
second shifted half a cell) with another row. Everything that fixes the grid (the sample, the
seed, the policy) is in the pull request, so an attacker can centre a burst on cell boundaries:
``a`` features on the first grid's, ``b`` on the second's (each feature can sit on one grid's
boundary only: the two are half a cell apart). Each copy then lands in one of 2^a cells of
the first grid and 2^b of the second. This plants ``copies`` rows (1%-SD jitter, as
``bench/stream_association.py``) around such a centre in 20 standardized features, radius
0.195 (0.1 x the median nearest-neighbour distance of the 1,000,000-row benchmark table, 1.96),
and counts what ``pipeline.rowscore``'s passes would flag: copies with ``min_copies`` (5) or
more shared-cell copies within the radius. No clean rows: on that table none shares a cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.rowscore import _CELL, _SHIFTS  # noqa: E402

FEATURES, RADIUS, MIN_COPIES = 20, 0.195, 5


def flagged(copies: int, a: int, b: int, rng: np.random.Generator) -> tuple[int, int]:
    """Copies flagged, and copies sharing a cell, for a centre on a + b cell boundaries."""
    from sklearn.neighbors import KDTree

    width = _CELL * RADIUS
    centre = np.full(FEATURES, 0.25 * width)  # a quarter cell from either grid's boundaries
    centre[:a] = 0.0
    centre[a : a + b] = 0.5 * width
    x = centre + rng.normal(0.0, 0.01, (copies, FEATURES))
    shared = np.zeros(copies, dtype=bool)
    for shift in _SHIFTS:
        cells = np.floor(x / width + shift).astype(np.int64)
        _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        shared |= counts[inverse.ravel()] >= 2
    if shared.sum() <= MIN_COPIES:
        return 0, int(shared.sum())
    near = KDTree(x[shared]).query_radius(x, RADIUS, count_only=True) - shared
    return int((near >= MIN_COPIES).sum()), int(shared.sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/burst-grid.txt")
    args = parser.parse_args()
    splits = ((0, 0), (20, 0), (3, 3), (5, 5), (8, 8), (10, 10))
    lines = [
        f"{FEATURES} features, radius {RADIUS}, cells {_CELL} x radius, grids shifted {_SHIFTS}; "
        "per burst size and (first-grid, second-grid) boundary features: copies flagged "
        "(copies sharing a cell), 5 seeds"
    ]
    for copies in (6, 10, 30, 100, 200, 1000):
        cells = []
        for a, b in splits:
            runs = [flagged(copies, a, b, np.random.default_rng(seed)) for seed in range(5)]
            found = "/".join(str(f) for f, _ in runs)
            cells.append(f"({a},{b}): {found}")
        lines.append(f"{copies:>5} copies  " + "  ".join(cells))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
