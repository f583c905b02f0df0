"""What a /metrics refresh costs with a drift window per client ([serve.monitor].drift_clients).

python bench/drift_clients.py [--policy policy.toml] [--window 1000] [--rounds 5]

The reference profile is built from the policy's data file; every active client fills its own
window with ``--window`` approved rows (requests of 100 rows). Measured: ``LiveData.refresh``
(the drift part; no forest) after every window was filled, for 0 per-client windows (the
all-clients window alone: what a refresh cost before per-client windows, the same code path with
every client counted under one shared window) and for 1, 4 and 16 active clients (their windows
plus the all-clients one). Median, min and max over ``--rounds`` rounds, and the load average
(the machine is shared: read the ratios, not the absolute times). A refresh runs at most once a
second and only on a scrape (the metrics token or loopback), never on the request path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd

from gates.service.monitor import LiveData, Metrics
from pipeline.config import load_policy
from pipeline.profile import DataProfile, build_profile


def _refresh_seconds(
    live_clients: int, features: pd.DataFrame, ref: DataProfile, window: int
) -> float:
    metrics = Metrics(model_name="bench", run_id="bench", sha256="0" * 64)
    # 0 clients: one client and drift_clients = 1 would still keep its own window, so the
    # all-clients-only cost is every row under the shared label with a single window kept.
    live = LiveData(
        metrics, reference=ref, forest=None, window=window, clients=max(live_clients, 1)
    )
    senders = max(live_clients, 1)
    for client in range(senders):
        for request in range(window // 100):
            rows = features.sample(100, replace=True, random_state=client * 1000 + request)
            live.add(rows, f"key:c{client}" if live_clients else "other")
    if not live_clients:
        live._clients.clear()  # the shared window alone, as before
    started = time.perf_counter()
    live.refresh()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="policy.toml")
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    loaded = load_policy(Path(args.policy))
    data = loaded.policy.data
    frame = pd.read_csv(loaded.resolve(data.path))
    ref = build_profile(frame, data)
    features = frame[list(data.feature_columns)]
    print(f"window {args.window} rows, {len(features.columns)} columns, {args.rounds} rounds")
    base = None
    for clients in (0, 1, 4, 16):
        times = [_refresh_seconds(clients, features, ref, args.window) for _ in range(args.rounds)]
        median = statistics.median(times)
        base = base or median
        label = "all-clients window only (before)" if not clients else f"{clients} active clients"
        print(
            f"{label:34} refresh median {median * 1000:8.1f} ms (min {min(times) * 1000:.1f}, "
            f"max {max(times) * 1000:.1f}), {median / base:5.1f}x the shared window alone; "
            f"load {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
