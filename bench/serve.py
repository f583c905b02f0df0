"""The inference service against a bare app on the same stack (issue 18).

python bench/serve.py --project DIR [--key PUB] [--requests 100] [--rounds 5] [--repeats 5]

DIR is a project whose chain PASSED and was signed (``--key`` trusts another public key, e.g.
DIR/.keys/dev-signing.pub). Everything runs on 127.0.0.1 and is bounded in requests and time.
Every server runs in its own process (as deployed: a client never shares its interpreter), the
measuring clients in this one, the flooder in a third.

1. Throughput and p50/p99 at batch 1 and 100, 4 concurrent clients: the service (verified
   model, contract validation, guard, metrics, its JSON log line written to /dev/null; the
   per-client limit lifted so the load is not refused) side by side with a bare Starlette app
   on uvicorn with the same settings that calls ``model.predict`` on whatever JSON arrives, the
   thing a user writes by hand. ``--rounds`` rounds, the two apps alternating within each
   round (the order swapped every round), so a change in the machine's load hits both: the
   ratio of each round is service / bare requests per second, and the median ratio is
   reported with every round's. Beside it, each server's CPU time per request (user + system,
   from /proc: the client and other load on the machine are not in it) and their ratio, bare
   / service, per round: what the throughput ratio tends to when the server is the bottleneck.
2. Flood: auth on, ``--limit`` requests per second per key. After a warm-up, ``--repeats``
   times: a calm key sends at half its limit for ``--flood-seconds`` alone, and again while a
   flooder process (started and ready before, so its start-up is not measured) sends with
   another key at 10x the limit from 0.5 s before to 0.5 s after (the two orders alternating). Reported: the calm
   key's p99 alone and under the flood per repeat, the median of the per-repeat ratios, and
   the flooder's admissions checked on the server against the moving window (each ``hit`` of
   the limiter stamped before and after it; ``over_limit`` counts the admissions that are
   certainly over the limit, ``unclear`` those the stamps cannot decide).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 that sends one fixed request and reads
    the answer (status line, ``Content-Length``, body).

    The load generator has to cost far less than the servers it measures: httpx, in the
    measuring process, capped the bare app and the service alike at about 60 requests/s on this
    machine, so the ratio said nothing. Both apps answer every request with a Content-Length.
    """

    def __init__(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        host_port, _, path = url.removeprefix("http://").partition("/")
        host, _, port = host_port.partition(":")
        self.host, self.port = host, int(port)
        head = {
            "Host": host_port,
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }
        lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
        self.request = f"POST /{path} HTTP/1.1\r\n{lines}\r\n".encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> int:
        """The status of one request (0 when the connection failed)."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            fields = head.lower()
            length = int(fields.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await self.reader.readexactly(length)
            if b"connection: close" in fields:
                self.close()
            return int(head[9:12])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(
    url: str,
    body: bytes,
    *,
    requests: int,
    seconds: float,
    clients: int = 4,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``clients`` connections sending back to back, ``requests`` in all or for ``seconds``."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    sent = 0

    async def worker() -> None:
        nonlocal sent
        connection = Connection(url, body, headers)
        while sent < requests and time.monotonic() < deadline:
            sent += 1
            started = time.perf_counter()
            status = await connection.send()
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
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
    """Send at ``rate`` per second for ``seconds``, not waiting for answers to keep the pace
    (a request finds a free keep-alive connection or opens one)."""
    latencies: list[float] = []
    statuses: list[int] = []
    free: list[Connection] = []

    async def one() -> None:
        connection = free.pop() if free else Connection(url, body, headers)
        started = time.perf_counter()
        status = await connection.send()
        if status:
            latencies.append(time.perf_counter() - started)
        statuses.append(status)
        free.append(connection)

    tasks = []
    start = time.monotonic()
    count = int(rate * seconds)
    for i in range(count):
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    for connection in free:
        connection.close()
    return {
        "sent": count,
        "admitted": statuses.count(200),
        "refused_429": statuses.count(429),
        "other": sorted({s for s in statuses if s not in (200, 429)}),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "latencies_ms": [round(v * 1000, 2) for v in latencies],
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


def _serve_child(
    kind: str,
    *,
    project: str,
    key: str | None,
    changes: dict[str, Any],
    env: dict[str, str],
    ports: Any,
    stamps_path: str | None,
) -> None:
    """A server process: the service with ``changes`` to ``[serve]``, or the bare app."""
    import signal

    import uvicorn

    sys.path.insert(0, str(ROOT))
    os.environ.update(env)
    from gates.service import server
    from pipeline.config import load_policy

    loaded = load_policy(Path(project) / "policy.toml")
    served = server.verified_model(loaded, champion=False, key=Path(key) if key else None)
    stamps: list[tuple[str, float, float, bool]] = []
    if kind == "service":
        import logging

        from limits.strategies import MovingWindowRateLimiter

        from gates.service.app import create_app

        if stamps_path:
            real_hit = MovingWindowRateLimiter.hit

            def stamped(self: Any, item: Any, *identifiers: str, cost: int = 1) -> bool:
                before = time.time()
                admitted = real_hit(self, item, *identifiers, cost=cost)
                stamps.append((identifiers[0], before, time.time(), bool(admitted)))
                return bool(admitted)

            MovingWindowRateLimiter.hit = stamped  # type: ignore[method-assign]
        devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        logger = logging.getLogger("gates.serve.bench")
        logger.propagate = False
        handler = logging.StreamHandler(devnull)
        from gates.service.monitor import JsonLines

        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        app = create_app(server.build_service(with_serve(loaded, **changes), served, logger=logger))
    else:
        app = bare_app(served.model)
    sock = server.loopback_socket()  # Nagle off on what it accepts, as on_loopback
    ports.put(sock.getsockname()[1])
    # uvicorn re-raises the SIGTERM it shut down on; a no-op handler lets the stamps be written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(server.uvicorn_config(app, host="127.0.0.1", port=0)).run(sockets=[sock])
    if stamps_path:
        Path(stamps_path).write_text(json.dumps(stamps), encoding="utf-8")


class Served:
    """A server process on loopback (``_serve_child``); stopped with SIGTERM (uvicorn's graceful
    shutdown), so it can write what it recorded."""

    def __init__(self, kind: str, args: argparse.Namespace, **options: Any) -> None:
        context = multiprocessing.get_context("spawn")
        ports = context.Queue()
        self.process = context.Process(
            target=_serve_child,
            args=(kind,),
            kwargs={
                "project": str(args.project),
                "key": str(args.key) if args.key else None,
                "changes": options.get("changes", {}),
                "env": options.get("env", {}),
                "ports": ports,
                "stamps_path": options.get("stamps"),
            },
            daemon=True,
        )
        self.process.start()
        self.url = f"http://127.0.0.1:{ports.get(timeout=120)}"
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=2)  # 200 (service) or 404 (bare)
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        msg = f"{kind} did not answer on {self.url}"
        raise RuntimeError(msg)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from /proc (Linux)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()  # our own child: uvicorn shuts down on SIGTERM
        self.process.join(timeout=20)


def _flooder(
    url: str, body: bytes, *, rate: float, seconds: float, key: str, ready: Any, go: Any, out: Any
) -> None:
    """The flooding client, in its own process (a flooder does not share our interpreter): it
    says when its interpreter is up, floods when told to, and reports what it got."""
    ready.set()
    go.wait(timeout=120)
    headers = {"Authorization": f"Bearer {key}"}
    out.put(asyncio.run(paced(url, body, rate=rate, seconds=seconds, headers=headers)))


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def throughput(args: argparse.Namespace, bodies: dict[int, bytes]) -> dict[str, Any]:
    """Rounds of service and bare, alternating, at each batch size."""
    lifted = {
        "rate_limit.requests": 1_000_000,
        "rate_limit.rows": 100_000_000,
        "rate_limit.max_in_flight": 10_000,
        "rate_limit.max_in_flight_per_client": 10_000,
    }
    service = Served("service", args, changes=lifted)
    bare = Served("bare", args)
    results: dict[str, Any] = {}
    try:
        for batch, body in bodies.items():
            runs: dict[str, list[dict[str, Any]]] = {"service": [], "bare": []}
            for number in range(args.rounds):
                order = [("service", service), ("bare", bare)]
                for name, app in order if number % 2 == 0 else order[::-1]:
                    before = app.cpu_seconds()
                    run = asyncio.run(
                        load(
                            f"{app.url}/v1/models/model:predict",
                            body,
                            requests=args.requests,
                            seconds=args.seconds,
                        )
                    )
                    run["cpu_ms"] = round((app.cpu_seconds() - before) / run["requests"] * 1e3, 3)
                    runs[name].append(run)
            ratios = [
                s["per_second"] / b["per_second"]
                for s, b in zip(runs["service"], runs["bare"], strict=True)
            ]
            cpu_ratios = [
                b["cpu_ms"] / s["cpu_ms"]
                for s, b in zip(runs["service"], runs["bare"], strict=True)
            ]
            results[f"batch{batch}"] = {
                "ratio": _summary(ratios),
                "ratios": [round(r, 3) for r in ratios],
                "cpu_ratio": _summary(cpu_ratios),
                "cpu_ratios": [round(r, 3) for r in cpu_ratios],
                **{
                    name: {
                        "per_second": _summary([r["per_second"] for r in rounds]),
                        "cpu_ms_per_request": _summary([r["cpu_ms"] for r in rounds]),
                        "p50_ms": _summary([r["p50_ms"] for r in rounds]),
                        "p99_ms": _summary([r["p99_ms"] for r in rounds]),
                        "statuses": _merged([r["statuses"] for r in rounds]),
                    }
                    for name, rounds in runs.items()
                },
            }
    finally:
        service.stop()
        bare.stop()
    return results


def _merged(statuses: list[dict[int, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in statuses:
        for code, count in one.items():
            total[str(code)] = total.get(str(code), 0) + count
    return total


def flood(args: argparse.Namespace, body: bytes) -> dict[str, Any]:
    """The calm key's p99 alone and under a 10x flood from another key, ``--repeats`` times."""
    from gates.service.auth import hash_line

    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder) / "keys.txt"
        names = {"flood": "flood-" + "f" * 30, "calm": "calm-" + "c" * 30}
        keys.write_text("".join(hash_line(n, k) + "\n" for n, k in names.items()), encoding="utf-8")
        stamps_path = Path(folder) / "stamps.json"
        limited = {
            "require_api_key": True,
            "rate_limit.requests": args.limit,
            "rate_limit.window_seconds": 1,
        }
        service = Served(
            "service",
            args,
            changes=limited,
            env={"GATES_SERVE_API_KEYS": str(keys)},
            stamps=str(stamps_path),
        )
        url = f"{service.url}/v1/models/model:predict"
        calm = {"Authorization": f"Bearer {names['calm']}"}
        context = multiprocessing.get_context("spawn")
        repeats: list[dict[str, Any]] = []
        try:
            # Warm-up, not counted: the first requests to a new server are slower.
            asyncio.run(paced(url, body, rate=args.limit / 2, seconds=1.0, headers=calm))
            for number in range(args.repeats):
                one: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 2)}
                for phase in ("alone", "flooded") if number % 2 == 0 else ("flooded", "alone"):
                    if phase == "alone":
                        one["alone"] = asyncio.run(
                            paced(
                                url,
                                body,
                                rate=args.limit / 2,
                                seconds=args.flood_seconds,
                                headers=calm,
                            )
                        )
                        continue
                    out, ready, go = context.Queue(), context.Event(), context.Event()
                    flooder = context.Process(
                        target=_flooder,
                        args=(url, body),
                        kwargs={
                            "rate": args.limit * 10,
                            "seconds": args.flood_seconds + 1.0,
                            "key": names["flood"],
                            "ready": ready,
                            "go": go,
                            "out": out,
                        },
                    )
                    flooder.start()
                    ready.wait(timeout=120)  # its interpreter starting is not part of the flood
                    time.sleep(0.5)
                    go.set()
                    time.sleep(0.5)  # the flood is on before the calm key starts
                    one["flooded"] = asyncio.run(
                        paced(
                            url, body, rate=args.limit / 2, seconds=args.flood_seconds, headers=calm
                        )
                    )
                    one["flooder"] = out.get(timeout=120)
                    flooder.join(timeout=30)
                    time.sleep(1.0)  # let the flooder's window empty before the next phase
                one["flooder"].pop("latencies_ms")
                one["calm_p99_ratio"] = round(one["flooded"]["p99_ms"] / one["alone"]["p99_ms"], 3)
                repeats.append(one)
        finally:
            service.stop()
        stamps = json.loads(stamps_path.read_text(encoding="utf-8")) if stamps_path.exists() else []
    return {
        "limit_per_second": args.limit,
        "flood_per_second": args.limit * 10,
        "seconds": args.flood_seconds,
        "calm_p99_ratio": _summary([r["calm_p99_ratio"] for r in repeats]),
        "calm_p99_alone_ms": _summary([r["alone"]["p99_ms"] for r in repeats]),
        "calm_p99_flooded_ms": _summary([r["flooded"]["p99_ms"] for r in repeats]),
        "calm_pooled": {
            phase: {
                f"p{q}_ms": percentile([v for r in repeats for v in r[phase]["latencies_ms"]], q)
                for q in (50, 90, 99)
            }
            for phase in ("alone", "flooded")
        },
        "calm_refused": sum(
            r["alone"]["refused_429"] + r["flooded"]["refused_429"] for r in repeats
        ),
        "flooder_admitted": sum(r["flooder"]["admitted"] for r in repeats),
        "flooder_refused_429": sum(r["flooder"]["refused_429"] for r in repeats),
        "window": window_check(stamps, "key:flood", args.limit, 1.0),
        "repeats": repeats,
    }


def window_check(
    stamps: list[tuple[str, float, float, bool]], client: str, limit: int, window: float
) -> dict[str, int]:
    """Admissions of ``client`` over the moving window, from the server's own stamps.

    Admission ``i + limit`` within ``window`` seconds of admission ``i`` is over the limit. The
    limiter stamps each hit somewhere between our ``before`` and ``after``: certainly over when
    even ``after[i + limit] - before[i]`` is under the window; unclear when only
    ``before[i + limit] - after[i]`` is.
    """
    admitted = sorted((b, a) for c, b, a, ok in stamps if c == client and ok)
    over = unclear = 0
    for (before, after), (later_before, later_after) in zip(
        admitted, admitted[limit:], strict=False
    ):
        if later_after - before < window:
            over += 1
        elif later_before - after < window:
            unclear += 1
    return {
        "admitted": len(admitted),
        "hits": sum(1 for c, *_ in stamps if c == client),
        "over_limit": over,
        "unclear": unclear,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--key", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=100, help="requests per app per round")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most, per app per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=10, help="flood: requests per second per key")
    parser.add_argument("--flood-seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5, help="flood: calm alone / flooded pairs")
    parser.add_argument("--skip", choices=("throughput", "flood"), default=None)
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    args.project = args.project.resolve()
    args.key = args.key.resolve() if args.key else None

    import pandas as pd

    from pipeline.config import load_policy

    data = load_policy(args.project / "policy.toml").policy.data
    frame = pd.read_csv(args.project / data.path)[list(data.feature_columns)]
    rows = [{k: float(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    bodies = {n: json.dumps({"instances": rows[:n]}).encode() for n in (1, 100)}
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "cpus": os.cpu_count(),
        "load_start": [round(v, 2) for v in os.getloadavg()],
    }
    if args.skip != "throughput":
        results["throughput"] = throughput(args, bodies)
    results["load_after_throughput"] = [round(v, 2) for v in os.getloadavg()]
    if args.skip != "flood":
        results["flood"] = flood(args, bodies[1])
    results["load_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
