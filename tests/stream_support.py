"""Scoring a streamed table: every row (``score_every_row``) after the scan, and the sample alone."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import DataPolicy
from pipeline.flags import Flags
from pipeline.poison import targeted_on_sample
from pipeline.rowscore import score_every_row
from pipeline.stream import StreamScan, scan


def scan_and_score(
    path: Path, data: DataPolicy, *, chunk_rows: int, **options: object
) -> tuple[StreamScan, list[Flags], dict[str, float]]:
    """The scan (a 400-row sample, seed 11, smaller than the file: asserted), then every row
    scored against that sample, both in ``chunk_rows``-row chunks: the scan, the flags, the
    seconds by step."""
    first = scan(path, data, chunk_rows=chunk_rows, sample_rows=400, seed=11)
    assert first.sample is not None
    assert len(first.sample) < first.rows
    found, seconds = score_every_row(
        path,
        data,
        first.sample,
        rows=first.rows,
        chunk_rows=chunk_rows,
        max_bytes=None,
        seed=11,
        signature=first.signature,
        **options,  # type: ignore[arg-type]
    )
    return first, found, seconds


def every_row_and_sample(
    path: Path, data: DataPolicy, check: str, **options: object
) -> tuple[Flags, Flags]:
    """``check``'s flags over every row, and those of the sample-only check (500-row chunks, a
    400-row sample, seed 11)."""
    first, found, seconds = scan_and_score(path, data, chunk_rows=500, **options)
    assert first.sample is not None
    assert check in seconds
    every = next(f for f in found if f.check == check)
    sampled, _ = targeted_on_sample(first.sample, data, seed=11)
    return every, next(f for f in sampled if f.check == check)
