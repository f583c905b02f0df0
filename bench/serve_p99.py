"""The serve gate's p99 rule: the maximum of 40 requests (before 7 December) against the
nearest-rank p99 of up to 200 (gates/serve.py), on the same runs.

python bench/serve_p99.py --project DIR [--runs 10] [--burners 0] [--heap 0] [--freeze on]
                          [--bars 2000,500,200,100,50]

DIR is a project whose chain PASSED (its reports and model; tests' ``passed_chain`` is one).
Each run is the real serve gate (a real server on 127.0.0.1, in this process, as the chain runs
it), and its single-row latencies are kept: the first 40 timed requests are exactly what the
gate measured before (the same 3 warm-up requests, then rows 0 to 39), so both rules are judged
on the same samples. ``--burners`` processes spin on the CPU meanwhile (another CI job on the
runner); ``--heap`` millions of objects stay alive in this process (what the chain's gates or a
test session leave the serve gate's process), and each of the collector's full passes is timed;
``--freeze off`` runs the gate without its ``gc.freeze``, ``alternate`` every other run. For
each bar in ``--bars`` (the policy's 2000 ms and lower ones, to see the tail): how many runs
each rule would have FAILED. The service is the same throughout and fast, so every
FAILED is a false alarm from the machine; the planted slow models are in tests/gates/
test_serve_gate.py. Bounded: ``--runs`` gate runs, the burners stopped at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_SAMPLES = 40


def _spin(stop: Any) -> None:
    while not stop.is_set():
        sum(range(10_000))


class Unfrozen:
    """``gc`` for the gate without its freeze (a bench's probe)."""

    @staticmethod
    def freeze() -> None:
        return None

    @staticmethod
    def unfreeze() -> None:
        return None


class FullPasses:
    """The garbage collector's full passes (the oldest generation: the whole heap), in ms."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self.began: list[float] = []

    def timing(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.began.append(time.perf_counter())
        elif self.began:
            self.ms.append((time.perf_counter() - self.began.pop()) * 1000)


def _p99(values: list[float]) -> float:
    from gates.serve import _percentile

    return _percentile(values, 99)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burners", type=int, default=0)
    parser.add_argument("--bars", default="2000,500,200,100,50")
    parser.add_argument(
        "--heap", type=float, default=0.0, help="millions of small objects kept alive meanwhile"
    )
    parser.add_argument(
        "--freeze",
        choices=("on", "off", "alternate"),
        default="on",
        help="off: the gate's gc.freeze made a no-op (the gate before); alternate: odd runs off",
    )
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    bars = [float(b) for b in args.bars.split(",")]

    import gates.serve as gate
    from gates.base import RunContext
    from pipeline.config import load_policy

    root = args.project.resolve()
    loaded = load_policy(root / "policy.toml")
    run_id = json.loads((root / "reports" / "serve.json").read_text())["run_id"]
    context = RunContext(policy=loaded, run_id=run_id, reports_dir=root / "reports")

    captured: list[list[float]] = []
    real = gate._answers

    def keeping(*a: Any, **k: Any) -> list[float]:
        latencies = real(*a, **k)
        captured.append([s * 1000 for s in latencies])
        return latencies

    gate._answers = keeping  # a bench's probe, never in the gate

    # A process that has run the whole chain first (the test session) holds a large heap: the
    # garbage collector's full passes walk all of it (unless frozen: gates/serve.py).
    heap = [(i, str(i)) for i in range(int(args.heap * 1e6))]
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.burners)]
    for p in burners:
        p.start()

    pauses = FullPasses()
    gc.callbacks.append(pauses.timing)
    runs: list[dict[str, Any]] = []
    errored = 0
    try:
        for index in range(args.runs):
            frozen = args.freeze == "on" or (args.freeze == "alternate" and index % 2 == 1)
            gate.gc = gc if frozen else Unfrozen  # type: ignore[attr-defined,assignment]
            pauses.ms.clear()
            started = time.perf_counter()
            try:
                outcome = gate.ServeGate().run(context)
            except Exception as err:  # the runner makes it ERRORED: counted, not judged
                print(json.dumps({"status": "ERRORED", "error": repr(err)[:200]}), flush=True)
                errored += 1
                continue
            ms = captured[-1]
            runs.append(
                {
                    "status": outcome.status.value,
                    "freeze": frozen,
                    "seconds": round(time.perf_counter() - started, 2),
                    "n": len(ms),
                    "p50_ms": round(statistics.median(ms), 2),
                    "max40_ms": round(max(ms[:OLD_SAMPLES]), 2),
                    "p99_ms": round(_p99(ms), 2),
                    "max_ms": round(max(ms), 2),
                    "over": {f"{b:g}": sum(v > b for v in ms) for b in bars},
                    "full_gc_ms": [round(v, 1) for v in pauses.ms],
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    finally:
        stop.set()
        for p in burners:
            p.join(timeout=5)

    print(
        f"\nERRORED runs (an exception, e.g. a request over the client's 10 s timeout): {errored}"
    )
    for frozen in (False, True):
        group = [r for r in runs if r["freeze"] is frozen]
        if group:
            print(f"\n-- the gate {'with' if frozen else 'without'} gc.freeze")
            _report(group, args.burners, len(heap), bars)
    return 0


def _report(runs: list[dict[str, Any]], burners: int, held: int, bars: list[float]) -> None:
    def spread(key: str) -> str:
        values = sorted(r[key] for r in runs)
        return f"min {values[0]:.1f}  median {statistics.median(values):.1f}  max {values[-1]:.1f}"

    print(
        f"\n{len(runs)} runs, {burners} burner(s), {held:,} objects held; load average {_loadavg()}"
    )
    print(f"  p50 of a run (ms):                 {spread('p50_ms')}")
    print(f"  old p99 = max of the first 40 (ms): {spread('max40_ms')}")
    print(f"  new p99 = nearest rank of n (ms):   {spread('p99_ms')}  (n {spread('n')})")
    print(f"  max of all n (ms):                  {spread('max_ms')}")
    gcs = [v for r in runs for v in r["full_gc_ms"]]
    print(f"  full GC passes: {len(gcs)}, longest {max(gcs, default=0):.1f} ms")
    print("  runs FAILED (false alarms) at each bar: old rule / new rule")
    for b in bars:
        old = sum(r["max40_ms"] > b for r in runs)
        new = sum(r["p99_ms"] > b for r in runs)
        print(f"    {b:>7g} ms: {old:>3} / {new:<3} of {len(runs)}")


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
