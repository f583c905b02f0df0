"""A calm key's single-row latency while another key sends allowed 1000-row batches.

The red team's scenario (docs/serving.md, "Abuse limits and auth"): one client sends
``max_instances`` (1000) rows per request on 8 connections back to back, within its 100
requests/s, from its own process; another client sends single rows at a steady pace. Measured
for the service with the row budget (``[serve.rate_limit].rows``) and the client's body bytes in
flight (``max_body_bytes_in_flight_per_client``) each lifted or at its default (four services,
one after the other), ``--repeats`` times each; each repeat measures the calm key alone, then
under the batches. ``--flood-keys 8`` spreads the 8 connections over 8 keys (eight clients
with one batch in flight each); ``--only`` picks the services (``global``: the total body
bytes cap, ``max_body_bytes_in_flight``, lifted, beside ``default``). Beside the calm key's
latency: the server process's CPU time while the calm key measured (from /proc), per batch
request answered (served or refused) and as a share of one core.

    python bench/serve_rows.py --project DIR [--key PUB] [--repeats 3] [--seconds 6]
        [--flood-keys N] [--only default|rows|bytes|global ...]

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
    url: str, body: bytes, *, seconds: float, keys: list[str], backoff: float
) -> dict[str, Any]:
    """8 connections sending 1000-row batches back to back, spread over ``keys`` (one client
    with 8 connections, or 8 clients with one each); after a 429 or 503 each connection waits
    ``backoff`` seconds (0: the next batch at once, as a client that ignores refusals)."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(key: str) -> None:
        connection = Connection(url, body, {"Authorization": f"Bearer {key}"})
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status = await connection.send()
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status in (429, 503) and backoff:
                await asyncio.sleep(backoff)
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(keys[i % len(keys)]) for i in range(8)))
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
    keys: list[str],
    backoff: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """The batch client(s), in their own process."""
    ready.set()
    go.wait(timeout=120)
    out.put(asyncio.run(_send_batches(url, body, seconds=seconds, keys=keys, backoff=backoff)))


def _rows(project: Path, count: int) -> list[dict[str, Any]]:
    import pandas as pd

    from pipeline.config import load_policy

    data = load_policy(project / "policy.toml").policy.data
    frame = pd.read_csv(project / data.path)[list(data.feature_columns)]
    rows = [{str(k): float(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    return [rows[i % len(rows)] for i in range(count)]


def flood_keys(count: int) -> dict[str, str]:
    """The batch clients' key names and keys."""
    return {f"flood{i}": f"flood{i}-" + "f" * 30 for i in range(count)}


def measure(args: argparse.Namespace, setting: dict[str, Any], keys: Path) -> dict[str, Any]:
    names = {"calm": "calm-" + "c" * 30}
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
                    "keys": list(flood_keys(args.flood_keys).values()),
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
            cpu = service.cpu_seconds()
            flooded = asyncio.run(
                paced(url, single, rate=CALM_RATE, seconds=args.seconds, headers=calm)
            )
            cpu = service.cpu_seconds() - cpu  # the server's, while the calm key measured
            batches = out.get(timeout=120)
            # Per answered batch request (served or refused), over the whole sender's run
            # scaled to the measured seconds: what a request costs the server on average.
            answered = batches["requests"] * args.seconds / (args.seconds + 1.0)
            batches["server_cpu_seconds_while_measured"] = round(cpu, 3)
            batches["server_cpu_ms_per_batch_request"] = round(cpu * 1000 / max(answered, 1), 3)
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
        "server_cpu_ms_per_batch_request": statistics.median(
            r["batches"]["server_cpu_ms_per_batch_request"] for r in repeats
        ),
        "server_cpu_share_while_measured": statistics.median(
            round(r["batches"]["server_cpu_seconds_while_measured"] / args.seconds, 3)
            for r in repeats
        ),
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
    parser.add_argument(
        "--flood-keys",
        type=int,
        default=1,
        help="batch clients (keys) sharing the 8 connections (8: one batch in flight each)",
    )
    parser.add_argument(
        "--only",
        choices=("default", "rows", "bytes", "global"),
        action="append",
        default=None,
        help="run only these services (default: the four row/bytes ones; 'global': the "
        "total bytes cap lifted against its default)",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    from gates.service.auth import hash_line

    lifted = {"rate_limit.max_body_bytes_in_flight_per_client": 2**30}
    every = {
        "requests only (rows lifted, bytes in flight lifted)": (
            "rows",
            {"rate_limit.rows": 100_000_000, **lifted},
        ),
        "rows = 10000, bytes in flight lifted": ("bytes", lifted),
        "rows lifted, bytes in flight = 1 MiB": ("rows", {"rate_limit.rows": 100_000_000}),
        "total bytes in flight lifted (rows, per-client bytes at default)": (
            "global",
            {"rate_limit.max_body_bytes_in_flight": 2**40},
        ),
        "defaults": ("default", {}),
    }
    chosen = args.only or ["default", "rows", "bytes"]
    settings = {name: setting for name, (kind, setting) in every.items() if kind in chosen}
    results: dict[str, Any] = {
        "load_start": [round(v, 2) for v in os.getloadavg()],
        "batch_client_backoff_seconds": args.backoff,
        "in_flight_per_client": args.in_flight_per_client,
        "flood_keys": args.flood_keys,
    }
    if args.in_flight_per_client is not None:
        cap = {"rate_limit.max_in_flight_per_client": args.in_flight_per_client}
        settings = {name: {**setting, **cap} for name, setting in settings.items()}
    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder) / "keys.txt"
        lines = [hash_line(n, k) for n, k in flood_keys(args.flood_keys).items()]
        keys.write_text(
            "\n".join([*lines, hash_line("calm", "calm-" + "c" * 30)]), encoding="utf-8"
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
