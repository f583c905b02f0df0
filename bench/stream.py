"""Streaming against whole-file loading: seconds and peak RSS for a synthetic CSV (issue 8).

python bench/stream.py [--rows 1000000] [--chunk-rows 100000]: writes a CSV of ROWS rows x 22
columns (id, 20 floats with ranges, label) to a temp folder, then in a fresh process each:
whole (read_table + check_contract + build_profile; each step's seconds and the peak so far), stream (scan + stream_profile) and gate
(the data gate's scan: contract, duplicates, a 50,000-row sample; one pass).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import DataPolicy  # noqa: E402


def contract(path: Path) -> DataPolicy:
    columns = {"id": {"dtype": "int64", "min": 0, "unique": True}}
    columns |= {f"f{i}": {"dtype": "float64", "min": -100.0, "max": 100.0} for i in range(20)}
    return DataPolicy.model_validate(
        {
            "path": str(path),
            "lock": "x.lock.json",
            "label": "y",
            "classes": ["a", "b"],
            "id_column": "id",
            "columns": columns,
        }
    )


def write(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(rows)})
    for i in range(20):
        frame[f"f{i}"] = np.round(rng.normal(0, 10, rows), 4)
    frame["y"] = np.where(rng.random(rows) < 0.3, "b", "a")
    frame.to_csv(path, index=False, lineterminator="\n")


def _status(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]


def measure(mode: str, path: Path, chunk_rows: int) -> None:
    from pipeline.data import check_contract, read_table
    from pipeline.profile import build_profile
    from pipeline.stream import scan, stream_profile

    policy = contract(path)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    start = time.perf_counter()
    if mode == "whole":
        steps: list[str] = []

        def step(name: str, began: float) -> float:
            peak = (_status("VmHWM") - before) / 2**20
            steps.append(f"{name} {time.perf_counter() - began:.2f} s (peak +{peak:.0f})")
            return time.perf_counter()

        frame = read_table(path, fmt="csv")
        began = step("read_table", start)
        clean, violations = check_contract(frame, policy)
        assert not violations
        began = step("check_contract", began)
        build_profile(clean, policy)
        step("build_profile", began)
    elif mode == "stream":
        first = scan(path, policy, chunk_rows=chunk_rows)
        assert not first.violations
        stream_profile(first, policy, chunk_rows=chunk_rows)
    else:
        found = scan(path, policy, chunk_rows=chunk_rows, duplicates=True, sample_rows=50_000)
        assert not found.violations
    seconds = time.perf_counter() - start
    extra = (_status("VmHWM") - before) / 2**20
    print(f"{mode:>6}: {seconds:7.2f} s  peak RSS +{extra:7.1f} MiB")
    if mode == "whole":
        print("        " + ", ".join(steps))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--measure", choices=["whole", "stream", "gate"])
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.path, args.chunk_rows)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write(path, args.rows)
        size = path.stat().st_size / 2**20
        print(f"{args.rows} rows x 22 columns, {size:.0f} MiB CSV, chunks of {args.chunk_rows}")
        for mode in ("whole", "stream", "gate"):
            subprocess.run(
                [
                    *(sys.executable, __file__, "--measure", mode, "--path", str(path)),
                    *("--chunk-rows", str(args.chunk_rows)),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
