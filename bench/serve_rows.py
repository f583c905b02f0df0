"""A calm key's single-row latency while another key sends allowed 1000-row batches.

The red team's scenario (docs/serving.md, "Abuse limits and auth"): one client sends
``max_instances`` (1000) rows per request on 8 connections back to back, within its 100
requests/s, from its own process; another client sends single rows at a steady pace. Measured
for the service with the row budget (``[serve.rate_limit].rows``) and the client's body bytes in
flight (``max_body_bytes_in_flight_per_client``) each lifted or at its default (four services,
one after the other), ``--repeats`` times each; each repeat measures the calm key alone, then
under the batches.

    python bench/serve_rows.py --project DIR [--key PUB] [--repeats 3] [--seconds 6]

Run it plainly, not under ``nice``: a niced server waits behind the machine's other work and
its tail measures that. The load average is recorded at the start and end of the run.

Loopback only; each server and the batch sender in their own processes (bench/serve.py's
``Served`` and ``load``). Prints every figure, wins and losses alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import ROOT, Connection, Served, paced, percentile  # bench/serve.py, beside this file

sys.path.insert(0, str(ROOT))

BATCH = 1000
CALM_RATE = 20.0  # single-row requests per second from the calm key


async def _send_batches(
    url: str, body: bytes, *, seconds: float, key: str, backoff: float
) -> dict[str, Any]:
    """8 connections sending 1000-row batches back to back; after a 429 each connection waits
    ``backoff`` seconds (0: the next batch at once, as a client that ignores 429s)."""
    headers = {"Authorization": f"Bearer {key}"}
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        connection = Connection(url, body, headers)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status = await connection.send()
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 429 and backoff:
                await asyncio.sleep(backoff)
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "statuses": statuses,
    }


def _batch_sender(
    url: str,
    body: bytes,
    *,
    seconds: float,
    key: str,
    backoff: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """The batch client, in its own process."""
    ready.set()
    go.wait(timeout=120)
    out.put(asyncio.run(_send_batches(url, body, seconds=seconds, key=key, backoff=backoff)))


def _rows(project: Path, count: int) -> list[dict[str, Any]]:
    import pandas as pd

    from pipeline.config import load_policy

    data = load_policy(project / "policy.toml").policy.data
    frame = pd.read_csv(project / data.path)[list(data.feature_columns)]
    rows = [{str(k): float(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    return [rows[i % len(rows)] for i in range(count)]


def measure(args: argparse.Namespace, setting: dict[str, Any], keys: Path) -> dict[str, Any]:
    names = {"flood": "flood-" + "f" * 30, "calm": "calm-" + "c" * 30}
    rows = _rows(args.project, BATCH)
    single = json.dumps({"instances": rows[:1]}).encode()
    batch = json.dumps({"instances": rows}).encode()
    service = Served(
        "service",
        args,
        changes={"require_api_key": True, **setting},
        env={"GATES_SERVE_API_KEYS": str(keys)},
    )
    url = f"{service.url}/v1/models/model:predict"
    calm = {"Authorization": f"Bearer {names['calm']}"}
    context = multiprocessing.get_context("spawn")
    repeats = []
    try:
        asyncio.run(paced(url, single, rate=CALM_RATE, seconds=1.0, headers=calm))  # warm-up
        for _ in range(args.repeats):
            alone = asyncio.run(
                paced(url, single, rate=CALM_RATE, seconds=args.seconds, headers=calm)
            )
            time.sleep(1.0)
            ready, go, out = context.Event(), context.Event(), context.Queue()
            sender = context.Process(
                target=_batch_sender,
                args=(url, batch),
                kwargs={
                    "seconds": args.seconds + 1.0,
                    "key": names["flood"],
                    "backoff": args.backoff,
                    "ready": ready,
                    "go": go,
                    "out": out,
                },
                daemon=True,
            )
            sender.start()
            ready.wait(timeout=120)
            go.set()
            time.sleep(0.5)  # the batches are on before the calm key starts
            flooded = asyncio.run(
                paced(url, single, rate=CALM_RATE, seconds=args.seconds, headers=calm)
            )
            batches = out.get(timeout=120)
            sender.join(timeout=30)
            time.sleep(1.5)  # the sender's window empties
            for phase in (alone, flooded):
                phase.pop("latencies_ms")
            repeats.append({"alone": alone, "flooded": flooded, "batches": batches})
    finally:
        service.stop()
    return {
        "repeats": repeats,
        "calm_p50_ms": {
            phase: statistics.median(r[phase]["p50_ms"] for r in repeats)
            for phase in ("alone", "flooded")
        },
        "calm_p99_ms": {
            phase: statistics.median(r[phase]["p99_ms"] for r in repeats)
            for phase in ("alone", "flooded")
        },
        "batch_rows_served_per_second": statistics.median(
            r["batches"]["statuses"].get(200, 0) * BATCH / (args.seconds + 1.0) for r in repeats
        ),
        "batch_requests_per_second": statistics.median(r["batches"]["per_second"] for r in repeats),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--key", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--backoff", type=float, default=0.0, help="seconds the batch client waits after a 429"
    )
    parser.add_argument(
        "--in-flight-per-client",
        type=int,
        default=None,
        help="[serve.rate_limit].max_in_flight_per_client for both services (default: policy's)",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    from gates.service.auth import hash_line

    lifted = {"rate_limit.max_body_bytes_in_flight_per_client": 2**30}
    settings = {
        "requests only (rows lifted, bytes in flight lifted)": {
            "rate_limit.rows": 100_000_000,
            **lifted,
        },
        "rows = 10000, bytes in flight lifted": lifted,
        "rows lifted, bytes in flight = 1 MiB": {"rate_limit.rows": 100_000_000},
        "rows = 10000, bytes in flight = 1 MiB (default)": {},
    }
    results: dict[str, Any] = {
        "load_start": [round(v, 2) for v in os.getloadavg()],
        "batch_client_backoff_seconds": args.backoff,
        "in_flight_per_client": args.in_flight_per_client,
    }
    if args.in_flight_per_client is not None:
        cap = {"rate_limit.max_in_flight_per_client": args.in_flight_per_client}
        settings = {name: {**setting, **cap} for name, setting in settings.items()}
    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder) / "keys.txt"
        keys.write_text(
            hash_line("flood", "flood-" + "f" * 30) + "\n" + hash_line("calm", "calm-" + "c" * 30),
            encoding="utf-8",
        )
        for name, setting in settings.items():
            results[name] = measure(args, setting, keys)
    results["load_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
