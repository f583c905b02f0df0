"""The feedback stage's history read as the history grows: incremental against whole (issue 8).

python bench/history.py [--sizes 100,1000,10000] [--reps 5]: builds a hash-chained history of N
realistic records (each about the size the stage writes) in a temp folder, then times, side
by side and alternating, what the feedback stage reads on every run:

- whole: ``verify(path)`` and ``records(path)``, every record parsed and hashed twice (the stage
  before the checkpoint);
- incremental: ``verify(path, resume=True)`` after one new record, and ``records(path,
  last=1000)``: the stage with ``GATES_HISTORY_HMAC_KEY`` set (the bench sets one when it is
  unset), whose sealed checkpoint spares the records verified before;
- unkeyed: the same without the key (the default): no checkpoint is trusted, so every record is
  parsed and hashed once, and the newest 1,000 read again.

A pipeline run on every commit appends one record per run, so the whole read grows without
end while the incremental one stays near constant once past 1,000 records.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gates.feedback import history  # noqa: E402
from gates.feedback.stage import RECENT_RECORDS  # noqa: E402


def record(i: int) -> dict[str, object]:
    """A record shaped like the stage's: run id, verdict, gates, about 30 metrics."""
    metrics = {f"cv.{m}.{s}": 0.9 + i % 7 / 100 for m in range(8) for s in ("mean", "std")}
    metrics |= {f"data.check{j}": float(j) for j in range(14)}
    gates = {name: {"status": "PASSED", "seconds": 0.01} for name in ("lint", "sast", "audit")}
    return {
        "run_id": f"20261202T000000Z-{i:06x}",
        "verdict": "PASSED",
        "gates": gates,
        "metrics": metrics,
    }


def build(path: Path, n: int) -> None:
    # Written directly (one lock and fsync per record would only slow the set-up down).
    prev = history.GENESIS
    with path.open("wb") as handle:
        for seq in range(n):
            body = {"schema_version": 1, **record(seq), "seq": seq, "prev": prev}
            body["hash"] = prev = history.record_hash(body)
            handle.write(history.encode(body))
    history.head_path(path).write_text(f'{{"count": {n}, "head": "{prev}"}}\n')


def whole(path: Path) -> float:
    start = time.perf_counter()
    assert history.verify(path)
    history.records(path)
    return time.perf_counter() - start


def incremental(path: Path, i: int) -> float:
    history.append(path, record(10**6 + i))  # the run before this one, not timed
    start = time.perf_counter()
    assert history.verify(path, resume=True)
    history.records(path, last=RECENT_RECORDS)
    return time.perf_counter() - start


def unkeyed(path: Path, i: int) -> float:
    history.append(path, record(2 * 10**6 + i))
    key = os.environ.pop(history.HMAC_KEY_ENV)
    try:
        start = time.perf_counter()
        assert history.verify(path, resume=True)
        history.records(path, last=RECENT_RECORDS)
        return time.perf_counter() - start
    finally:
        os.environ[history.HMAC_KEY_ENV] = key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault(history.HMAC_KEY_ENV, "bench/history.py")
    print(f"{'records':>8} {'MiB':>6} {'whole':>9} {'unkeyed':>9} {'incremental':>12} {'ratio':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "runs.jsonl"
            build(path, n)
            assert history.verify(path, resume=True)  # the checkpoint of the last run
            times: dict[str, list[float]] = {"whole": [], "unkeyed": [], "incremental": []}
            for i in range(args.reps):
                times["incremental"].append(incremental(path, i))
                times["unkeyed"].append(unkeyed(path, i))
                times["whole"].append(whole(path))
            w, u, inc = (statistics.median(times[k]) for k in ("whole", "unkeyed", "incremental"))
            size = path.stat().st_size / 2**20
            print(f"{n:>8} {size:>6.1f} {w:>8.3f}s {u:>8.3f}s {inc:>11.3f}s {w / inc:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
