"""The inference service against a bare app on the same stack (issue 18).

python bench/serve.py --project DIR [--key PUB] [--requests 200] [--seconds 20]

DIR is a project whose chain PASSED and was signed (``--key`` trusts another public key, e.g.
DIR/.keys/dev-signing.pub). Everything runs on 127.0.0.1 and is bounded in requests and time.

1. Throughput and p50/p99 at batch 1 and 100, 4 concurrent clients: the service (verified
   model, contract validation, guard, metrics; the per-client limit lifted so the load is not
   refused) side by side with a bare Starlette app on uvicorn that calls ``model.predict`` on
   whatever JSON arrives, the thing a user writes by hand.
2. Flood: auth on, ``--limit`` requests per second per key; one key sends at 10x the limit for
   ``--flood-seconds``; a second key sends at half its limit. Reports the flooder's admitted
   requests against the most the moving window allows, and the second client's p99 with and
   without the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def load(
    url: str,
    body: bytes,
    *,
    requests: int,
    seconds: float,
    clients: int = 4,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    sent = 0
    head = {"Content-Type": "application/json", **(headers or {})}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < requests and time.monotonic() < deadline:
            sent += 1
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=head)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "statuses": statuses,
    }


async def paced(
    url: str, body: bytes, *, rate: float, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    """Send at ``rate`` per second for ``seconds``, not waiting for answers to keep the pace."""
    import httpx

    head = {"Content-Type": "application/json", **headers}
    latencies: list[float] = []
    statuses: list[tuple[float, int]] = []

    async def one(client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        try:
            response = await client.post(url, content=body, headers=head)
        except httpx.TransportError:
            statuses.append((time.monotonic(), 0))  # reported under "other"
            return
        latencies.append(time.perf_counter() - started)
        statuses.append((time.monotonic(), response.status_code))

    tasks = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.monotonic()
        count = int(rate * seconds)
        for i in range(count):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(client)))
        await asyncio.gather(*tasks)
    admitted = sorted(t for t, s in statuses if s == 200)
    return {
        "sent": count,
        "admitted": len(admitted),
        "refused_429": sum(1 for _, s in statuses if s == 429),
        "other": sorted({s for _, s in statuses if s not in (200, 429)}),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "admitted_times": admitted,
    }


def with_serve(loaded: Any, **changes: Any) -> Any:
    """``loaded`` with ``[serve]`` keys changed in memory (``rate_limit.requests`` style keys)."""
    from dataclasses import replace

    serve = loaded.policy.serve
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        table, dot, field = key.partition(".")
        if dot:
            nested.setdefault(table, {})[field] = value
        else:
            flat[key] = value
    for table, fields in nested.items():
        flat[table] = getattr(serve, table).model_copy(update=fields)
    return replace(
        loaded, policy=loaded.policy.model_copy(update={"serve": serve.model_copy(update=flat)})
    )


@contextlib.contextmanager
def _url_of(running: Any) -> Iterator[str]:
    with running as r:
        yield r.url


def bare_app(model: Any) -> Any:
    import pandas as pd
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def predict(request: Request) -> JSONResponse:
        instances = (await request.json())["instances"]
        labels = model.predict(pd.DataFrame(instances))
        return JSONResponse({"predictions": [str(v) for v in labels]})

    return Starlette(routes=[Route("/v1/models/model:predict", predict, methods=["POST"])])


def main() -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--key", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--limit", type=int, default=20, help="flood test: requests per second per key"
    )
    parser.add_argument("--flood-seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()

    import pandas as pd

    from gates.service import server
    from gates.service.auth import hash_line
    from pipeline.config import load_policy

    loaded = load_policy(args.project / "policy.toml")
    served = server.verified_model(loaded, champion=False, key=args.key)
    data = loaded.policy.data
    frame = pd.read_csv(args.project / data.path)[list(data.feature_columns)]
    rows = [{k: float(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    bodies = {n: json.dumps({"instances": rows[:n]}).encode() for n in (1, 100)}
    results: dict[str, Any] = {"machine_load": os.getloadavg()[0]}

    import uvicorn  # noqa: F401 - fail early when the stack is missing

    lifted = with_serve(
        loaded, **{"rate_limit.requests": 1_000_000, "rate_limit.max_in_flight": 10_000}
    )
    service = server.build_service(lifted, served)
    service.logger.disabled = True
    runs = (
        ("service", lambda: _url_of(server.on_loopback(service))),
        ("bare", lambda: _bare_loopback(served.model)),
    )
    for name, start in runs:
        with start() as base:
            for batch, body in bodies.items():
                results[f"{name}_batch{batch}"] = asyncio.run(
                    load(
                        f"{base}/v1/models/model:predict",
                        body,
                        requests=args.requests,
                        seconds=args.seconds,
                    )
                )
    for batch in (1, 100):
        ours, theirs = results[f"service_batch{batch}"], results[f"bare_batch{batch}"]
        results[f"ratio_batch{batch}"] = round(ours["per_second"] / theirs["per_second"], 3)

    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder) / "keys.txt"
        names = {"flood": "flood-" + "f" * 30, "calm": "calm-" + "c" * 30}
        keys.write_text("".join(hash_line(n, k) + "\n" for n, k in names.items()), encoding="utf-8")
        os.environ["GATES_SERVE_API_KEYS"] = str(keys)
        limited = with_serve(
            loaded,
            require_api_key=True,
            **{"rate_limit.requests": args.limit, "rate_limit.window_seconds": 1},
        )
        flood_service = server.build_service(limited, served)
        flood_service.logger.disabled = True
        with server.on_loopback(flood_service) as running:
            url = f"{running.url}/v1/models/model:predict"
            calm = {"Authorization": f"Bearer {names['calm']}"}
            flood = {"Authorization": f"Bearer {names['flood']}"}
            alone = asyncio.run(
                paced(url, bodies[1], rate=args.limit / 2, seconds=args.flood_seconds, headers=calm)
            )

            async def both() -> tuple[dict[str, Any], dict[str, Any]]:
                return await asyncio.gather(
                    paced(
                        url,
                        bodies[1],
                        rate=args.limit * 10,
                        seconds=args.flood_seconds,
                        headers=flood,
                    ),
                    paced(
                        url,
                        bodies[1],
                        rate=args.limit / 2,
                        seconds=args.flood_seconds,
                        headers=calm,
                    ),
                )

            flooded, calm_loaded = asyncio.run(both())
    times = flooded.pop("admitted_times")
    alone.pop("admitted_times")
    calm_loaded.pop("admitted_times")
    worst = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
    results["flood"] = {
        "limit_per_second": args.limit,
        "flooder": flooded,
        "flooder_most_admitted_in_any_1s": worst,
        "over_limit_admitted": max(0, worst - args.limit),
        "calm_alone": alone,
        "calm_under_flood": calm_loaded,
        "calm_p99_ratio": round(calm_loaded["p99_ms"] / alone["p99_ms"], 2)
        if alone["p99_ms"]
        else None,
    }
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


class _bare_loopback:
    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> str:
        import socket
        import threading

        import uvicorn

        from gates.service.server import uvicorn_config

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn_config(bare_app(self.model), host="127.0.0.1", port=port)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


if __name__ == "__main__":
    raise SystemExit(main())
