"""Scoring a streamed table both ways: every row (``score_every_row``) and the sample alone."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import DataPolicy
from pipeline.flags import Flags
from pipeline.poison import targeted_on_sample
from pipeline.rowscore import score_every_row
from pipeline.stream import scan


def every_row_and_sample(
    path: Path, data: DataPolicy, check: str, **options: object
) -> tuple[Flags, Flags]:
    """``check``'s flags over every row, and those of the sample-only check (500-row chunks, a
    400-row sample, seed 11)."""
    first = scan(path, data, chunk_rows=500, sample_rows=400, seed=11)
    assert first.sample is not None
    assert len(first.sample) < first.rows
    found, seconds = score_every_row(
        path,
        data,
        first.sample,
        rows=first.rows,
        chunk_rows=500,
        max_bytes=None,
        seed=11,
        signature=first.signature,
        **options,  # type: ignore[arg-type]
    )
    assert check in seconds
    every = next(f for f in found if f.check == check)
    sampled, _ = targeted_on_sample(first.sample, data, seed=11)
    return every, next(f for f in sampled if f.check == check)
