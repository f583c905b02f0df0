"""The Starlette application: KServe V1 routes behind one guard.

Every HTTP request passes ``Guard`` (a plain ASGI wrapper): a request id, the global in-flight
cap (503), the client's identity (the API key's name when auth is on, else the peer address,
an IPv6 one by its /64, or the address the operator's trusted proxy names in
``X-Forwarded-For``), the client's own in-flight caps (429: one address must not hold every
slot with bodies that never finish, nor queue several max-size
bodies ahead of every other client's requests on the one event loop: ``BodiesInFlight``), the
body bytes all clients have in flight (503), the per-client moving-window rate limit of
``limits`` (429 with Retry-After and RateLimit headers), then auth (401 without a key, 403 with a wrong one). Only
``/healthz`` and ``/readyz`` skip the guard's checks (probes). ``/metrics`` (every client's
figures together) takes no API key: only the operator's metrics token when one is set
(``$GATES_SERVE_METRICS_KEYS``, 401 otherwise), else loopback clients only (403). The guard counts, times and logs
every request, one JSON line each. Refusals are RFC 9457 problem documents.

The predict route also charges the client's row budget (``RowBudget``, the same storage and
identity, limits' sliding window counter, the request's instance count as the cost) once the
rows are counted, before the contract check and the model: a row, not a request, is what
holds the event loop. It refuses a body unread when the client has fewer rows left than the
body's bytes could hold.
"""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gates.service.auth import METRICS_ENV
from gates.service.monitor import LiveData, Metrics, Spool, log_event
from gates.service.validate import (
    FeatureCheck,
    Problem,
    check_content_type,
    instance_bytes_at_least,
    instances_of,
    parse_body,
    rows_at_most,
    too_large,
)

if TYPE_CHECKING:
    import logging

    from prometheus_client import Gauge

    from gates.service.auth import KeyRing
    from pipeline.config import DataPolicy, LoadedPolicy, ServePolicy, ServeRateLimit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM_MEDIA = "application/problem+json"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"
# The connection's own address, kept by ``gates.service.server.KeepPeer`` before a trusted
# proxy's forwarded header names the client (absent: none was read).
PEER = "gates.peer"


@dataclass(frozen=True)
class ServedModel:
    """A model the service answers with, and where it came from (for metadata and logs)."""

    model: Any
    sha256: str
    run_id: str
    source: str
    # The signed policy whose settings, data contract, lock and data the service runs with
    # when they are not the project's own (the champion's copies); None: the project's.
    inputs: LoadedPolicy | None = None


@dataclass
class Service:
    """What the routes share."""

    served: ServedModel
    policy: ServePolicy
    contract: DataPolicy
    metrics: Metrics
    live: LiveData
    logger: logging.Logger
    keyring: KeyRing | None = None
    spool: Spool | None = None
    # The metrics tokens ($GATES_SERVE_METRICS_KEYS); None: /metrics answers loopback only.
    metrics_keyring: KeyRing | None = None


def problem_response(problem: Problem, request_id: str) -> JSONResponse:
    """The problem document as a response."""
    return JSONResponse(
        problem.body(f"urn:request:{request_id}"),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA,
        headers=problem.headers,
    )


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def _reject(request: Request, problem: Problem) -> JSONResponse:
    request.scope.setdefault("state", {})["reason"] = problem.reason
    return problem_response(problem, _request_id(request))


def create_app(service: Service) -> Starlette:
    """The application: routes, problem handlers for 404/405, wrapped in the guard."""
    name = service.policy.name
    check_features = FeatureCheck(service.contract)  # the contract's set-up, made once
    limiter, budget, bodies = _client_limits(service)

    async def predict(request: Request) -> Response:
        if request.path_params["name"] != name:
            return _reject(request, _no_model(request.path_params["name"]))
        state = request.scope.setdefault("state", {})
        client = str(state.get("client", "-"))
        declared = _declared_size(request)
        try:
            check_content_type(request.headers.get("content-type"))
            budget.check(client, declared)
            raw = await _read_body(
                request,
                service.policy.max_body_bytes,
                service.policy.read_timeout_seconds,
                _claims(client, state, budget, bodies, declared=declared),
            )
            instances = _instances(raw, service.policy, budget, client)
            state["instances"] = len(instances)
            budget.charge(client, len(instances))
            features = check_features(instances)
        except Problem as problem:
            return _reject(request, problem)
        if service.policy.log_features:
            state["features"] = instances
        # On the event loop, as a bare app calls its model: a hop to a worker thread cost more than
        # the prediction (the thread and the loop then take turns at the GIL on every call that
        # releases it; docs/serving.md, "Where the time went").
        body = _predict(service, features)
        service.live.add(features, client)  # the window all share, and the client's own
        labels = [str(label) for label in body["labels"]]
        for label, count in Counter(labels).items():  # one increment per class, not per row
            service.metrics.predictions.labels(label).inc(count)
        if service.spool is not None:
            service.spool.write(_request_id(request), service.served.sha256, instances, labels)
        return JSONResponse({"predictions": body["predictions"]})

    async def metadata(request: Request) -> Response:
        if request.path_params["name"] == f"{name}:predict":
            detail = f"{request.method} {request.url.path[:200]}: method not allowed"
            problem = Problem(
                405, "method-not-allowed", "Method Not Allowed", detail, headers={"Allow": "POST"}
            )
            return _reject(request, problem)
        if request.path_params["name"] != name:
            return _reject(request, _no_model(request.path_params["name"]))
        served = service.served
        return JSONResponse(
            {
                "name": name,
                "ready": True,
                "run_id": served.run_id,
                "sha256": served.sha256,
                "source": served.source,
                "classes": [str(c) for c in getattr(served.model, "classes_", ())],
                "probabilities": service.policy.return_probabilities,
            }
        )

    async def healthz(request: Request) -> Response:
        del request
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        del request
        return JSONResponse({"status": "ready", "model": name, "sha256": service.served.sha256})

    async def metrics(request: Request) -> Response:
        del request
        text = await run_in_threadpool(service.live.exposition)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    document = openapi_document(service.policy, service.contract)

    async def openapi(request: Request) -> Response:
        del request
        return JSONResponse(document)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        slug = {404: "not-found", 405: "method-not-allowed"}.get(status, "http-error")
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(status, "HTTP Error")
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        detail = f"{request.method} {request.url.path[:200]}: {title.lower()}"
        return _reject(request, Problem(status, slug, title, detail, headers=headers))

    routes = [
        Route("/v1/models/{name}:predict", predict, methods=["POST"]),
        Route("/v1/models/{name}", metadata, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(METRICS_PATH, metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: http_error, 405: http_error})
    return Guard(app, service, limiter, bodies)  # type: ignore[return-value]


def _client_limits(
    service: Service,
) -> tuple[MovingWindowRateLimiter, RowBudget, BodiesInFlight]:
    """The guard's request limiter, the predict route's row budget, and the body bytes in
    flight the guard and the route both claim."""
    # One storage (one timer thread) for the guard's request count and the rows. The rows use
    # limits' sliding window counter: two counters per client, where a moving window keeps
    # one timestamp per unit of cost (10,000 entries for a full budget).
    limits = service.policy.rate_limit
    limiter = MovingWindowRateLimiter(MemoryStorage())
    budget = RowBudget(
        SlidingWindowCounterRateLimiter(limiter.storage),
        limits,
        max_instances=service.policy.max_instances,
        instance_bytes=instance_bytes_at_least(service.contract),
    )
    bodies = BodiesInFlight(
        limits.max_body_bytes_in_flight_per_client,
        service.metrics.body_bytes,
        total=limits.max_body_bytes_in_flight,
    )
    return limiter, budget, bodies


def _instances(raw: bytes, policy: ServePolicy, budget: RowBudget, client: str) -> list[Any]:
    """The request's instances; a body refused by its parse or shape (400, 413) spends the rows
    its bytes could hold: its parse cost the same, and no rows would be charged otherwise."""
    try:
        return instances_of(parse_body(raw, policy), policy)
    except Problem:
        budget.spend_body(client, len(raw))
        raise


def _declared_size(request: Request) -> int | None:
    """The body's Content-Length, None when absent or malformed (the read refuses the latter)."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() and len(declared) <= 18 else None


def _claims(
    client: str,
    state: MutableMapping[str, Any],
    budget: RowBudget,
    bodies: BodiesInFlight,
    *,
    declared: int | None,
) -> Callable[[int], Problem | None]:
    """What the read tells the size of the body so far: the body bytes in flight, and, for a
    body without a Content-Length, the row budget (raises its 429) as its bytes arrive."""

    def claim(size: int) -> Problem | None:
        refusal = bodies.claim(client, state, size)
        if refusal is None and declared is None:
            budget.check(client, size)
        return refusal

    return claim


def _no_model(found: str) -> Problem:
    return Problem(404, "no-such-model", "No Such Model", f"no model named {ascii(found)[:80]}")


async def _read_body(
    request: Request, limit: int, timeout: float, claim: Callable[[int], Problem | None]
) -> bytes:
    try:
        with anyio.fail_after(timeout):
            return await _read_limited(request, limit, claim)
    except TimeoutError:
        detail = f"the body was not complete within {timeout:g} s ([serve].read_timeout_seconds)"
        raise Problem(408, "request-timeout", "Request Timeout", detail) from None


async def _read_limited(
    request: Request, limit: int, claim: Callable[[int], Problem | None]
) -> bytes:
    """The body, at most ``limit`` bytes; ``claim`` is told the size read so far after each chunk
    (a body without a Content-Length, or longer than it said, is counted as it arrives) and
    returns the problem that refuses it, if any."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(
                400, "bad-content-length", "Bad Content-Length", "Content-Length is not a number"
            )
        if int(declared) > limit:
            raise too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(size, limit)
            refusal = claim(size)
            if refusal is not None:
                raise refusal
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; the guard's log line says why (not a traceback).
        detail = f"the client hung up after {size} bytes of the body"
        raise Problem(400, "client-disconnected", "Client Disconnected", detail) from None
    return b"".join(chunks)


def _predict(service: Service, features: Any) -> dict[str, Any]:
    from pipeline.data import model_features  # noqa: PLC0415 - loaded by then

    model = service.served.model
    # As training gave them to the model: text and bool columns as text, a null as "".
    features = model_features(features, service.contract)
    labels = list(model.predict(features))
    if not service.policy.return_probabilities or not hasattr(model, "predict_proba"):
        return {"labels": labels, "predictions": [str(label) for label in labels]}
    classes = [str(c) for c in model.classes_]
    proba = model.predict_proba(features)
    return {
        "labels": labels,
        "predictions": [
            {
                "label": str(label),
                "probabilities": {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
            }
            for label, row in zip(labels, proba, strict=True)
        ],
    }


class RowBudget:
    """[serve.rate_limit].rows: the instances one client may send per window.

    ``limits``' sliding window counter on the guard's storage, keyed apart from the request count
    (``"rows"``), with the request's instance count as the cost of its hit: two counters per
    client (the current and the previous window, the previous weighted by how much of it still
    overlaps), where a moving window would keep one timestamp per row.

    Before its body is read (``check``), a request is refused when what the client has left is
    below the rows its body could hold: ``rows_at_most`` of its Content-Length (the fewest bytes
    a valid instance takes, from the contract), at most ``max_instances``; a body without one
    is held to the same bound as its bytes arrive. The counter frees rows continuously (at
    10 000 per second, one every 0.1 ms), so a check for one row left passed nearly every body
    of a client that ignores 429s, and each was parsed before ``charge`` refused it. A batch
    that still does not fit once its rows are counted (padded bytes, or the client's requests
    checked together) is refused after its parse and spends the rest (``charge``).
    """

    def __init__(
        self,
        limiter: SlidingWindowCounterRateLimiter,
        limit: ServeRateLimit,
        *,
        max_instances: int,
        instance_bytes: int,
    ) -> None:
        self.limiter = limiter
        self.item = RateLimitItemPerSecond(limit.rows, limit.window_seconds)
        self.max_instances = max_instances
        self.instance_bytes = instance_bytes

    def check(self, client: str, size: int | None) -> None:
        """Raise the 429 when ``client`` has fewer rows left than a body of ``size`` bytes
        could hold (None, nothing known yet: when it has no row left)."""
        need = 1
        if size is not None:
            need = self._rows_in(size)
        if not self.limiter.test(self.item, "rows", client, cost=need):
            if need == 1:
                raise self._problem(client, "no row left")
            _, left = self.limiter.get_window_stats(self.item, "rows", client)
            raise self._problem(
                client,
                f"{left} rows left, fewer than the {need} a body of {size} bytes may hold",
            )

    def charge(self, client: str, rows: int) -> None:
        """Spend ``rows`` of what ``client`` has left; raise the 429 when they do not fit."""
        left = self._spend(client, rows)
        if left is not None:
            raise self._problem(client, f"{rows} rows do not fit the {left} left")

    def spend_body(self, client: str, size: int) -> None:
        """Spend the rows a body of ``size`` bytes could hold (at most ``max_instances``, at
        least one), or what is left: for a body whose parse or shape was refused."""
        self._spend(client, self._rows_in(size))

    def _rows_in(self, size: int) -> int:
        """The rows a body of ``size`` bytes could hold: at most ``max_instances``, at least one."""
        return max(min(rows_at_most(size, self.instance_bytes), self.max_instances), 1)

    def _spend(self, client: str, rows: int) -> int | None:
        """Spend ``rows``; when they do not fit, spend what is left and return it (else None)."""
        if self.limiter.hit(self.item, "rows", client, cost=rows):
            return None
        _, left = self.limiter.get_window_stats(self.item, "rows", client)
        if left > 0:
            self.limiter.hit(self.item, "rows", client, cost=left)
        return max(left, 0)

    def _problem(self, client: str, what: str) -> Problem:
        reset, _ = self.limiter.get_window_stats(self.item, "rows", client)
        reset_in = max(1, math.ceil(reset - time.time()))
        return Problem(
            429,
            "rate-limited",
            "Too Many Requests",
            f"{what}: more than {self.item.amount} rows per {self.item.multiples} s from this "
            "client ([serve.rate_limit].rows)",
            headers={"Retry-After": str(reset_in)},
            reason="rate_limit_rows",
        )


class BodiesInFlight:
    """[serve.rate_limit].max_body_bytes_in_flight_per_client: the body bytes one client's
    requests may hold at once.

    A request's parse, contract check and model run on the event loop, in proportion to its
    body: with eight 1000-row bodies of one client in flight, every other client's single row
    queued behind eight parses (docs/serving.md, "Abuse limits and auth"). Each request claims
    its body's bytes: its Content-Length when the guard admits it (before the body is read),
    and what has arrived when that is more (a chunked body, counted chunk by chunk); the claim
    is released when the request ends. A claim that would put the client's requests over the
    cap, beside at least one other of its requests holding bytes, is refused (429): splitting a
    batch into small requests claims the same bytes, and a request alone is always admitted
    (``[serve].max_body_bytes`` bounds it), so a cap below that size still serves one request
    at a time. The same identity as the request limit (key name, else peer address).

    ``total`` ([serve.rate_limit].max_body_bytes_in_flight) caps all clients' claims together
    the same way (503: many keys or addresses with one max-size body each queued as many
    parses ahead of every single row), a request alone again always admitted.
    """

    def __init__(self, cap: int, gauge: Gauge | None = None, *, total: int | None = None) -> None:
        self.cap = cap
        self.total_cap = total
        self.held: Counter[str] = Counter()
        self.total = 0  # all clients' claims together
        self.gauge = gauge  # the same, exported (gates_serve_body_bytes_in_flight)

    def claim(self, client: str, state: MutableMapping[str, Any], size: int) -> Problem | None:
        """Raise this request's claim (``state["body_bytes"]``) to ``size``; None when it fits,
        else the 429 (this client's cap) or 503 (all clients' cap) problem, the claim
        unchanged."""
        mine = int(state.get("body_bytes", 0))
        if size <= mine:
            return None
        everyone = self.total - mine
        others = self.held[client] - mine
        if others > 0 and others + size > self.cap:
            return Problem(
                429,
                "too-many-bytes-in-flight",
                "Too Many Requests",
                f"this client's other requests hold {others} body bytes, and this one's {size} "
                f"would exceed the {self.cap} one client may have in flight at once "
                "([serve.rate_limit].max_body_bytes_in_flight_per_client)",
                headers={"Retry-After": "1"},
                reason="client_bytes_in_flight",
            )
        if self.total_cap is not None and everyone > 0 and everyone + size > self.total_cap:
            # The service's state, not this client's doing: 503 (RFC 9110 15.6.4), as for
            # max_in_flight, not 429 (RFC 6585: one user's requests).
            return Problem(
                503,
                "overloaded",
                "Service Overloaded",
                f"requests in flight hold {everyone} body bytes, and this one's {size} would "
                f"exceed the {self.total_cap} all clients may have in flight at once "
                "([serve.rate_limit].max_body_bytes_in_flight); retry shortly",
                headers={"Retry-After": "1"},
                reason="bytes_in_flight",
            )
        self.held[client] += size - mine
        self.total += size - mine
        state["body_bytes"] = size
        if self.gauge is not None:
            self.gauge.inc(size - mine)
        return None

    def release(self, client: str, state: MutableMapping[str, Any]) -> None:
        """Give back what the request claimed."""
        mine = int(state.get("body_bytes", 0))
        if not mine:
            return
        self.held[client] -= mine
        self.total -= mine
        if self.held[client] <= 0:
            del self.held[client]
        if self.gauge is not None:
            self.gauge.dec(mine)


class Guard:
    """Request id, in-flight caps, identity, rate limit, auth, metrics and the log line."""

    def __init__(
        self,
        app: ASGIApp,
        service: Service,
        limiter: MovingWindowRateLimiter | None = None,
        bodies: BodiesInFlight | None = None,
    ) -> None:
        self.app = app
        self.service = service
        limit = service.policy.rate_limit
        self.item = RateLimitItemPerSecond(limit.requests, limit.window_seconds)
        self.limiter = limiter or MovingWindowRateLimiter(MemoryStorage())
        self.in_flight = 0
        # Requests each client has in flight (the identity the limiter keys on); a client with
        # none is not kept.
        self.holding: Counter[str] = Counter()
        self.bodies = bodies or BodiesInFlight(
            limit.max_body_bytes_in_flight_per_client,
            service.metrics.body_bytes,
            total=limit.max_body_bytes_in_flight,
        )
        self.policy_header = f"{limit.requests};w={limit.window_seconds}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = str(scope.get("path", ""))
        route = _route_label(path, self.service.policy.name)
        status = {"code": 500}
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        client = _peer(scope)
        metrics = self.service.metrics
        self.in_flight += 1
        metrics.in_flight.inc()
        try:
            refusal = None if path in OPEN_PATHS else self._admit(scope, extra)
            if refusal is not None:
                state["reason"] = refusal.reason
                client = state.get("client", client)
                await problem_response(refusal, request_id)(scope, receive, send_wrapped)
            else:
                client = state.get("client", client)
                await self._holding(state.get("client"), scope, receive, send_wrapped)
        finally:
            self.bodies.release(str(state.get("client")), state)
            self.in_flight -= 1
            metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            code = status["code"]
            metrics.requests.labels(route, str(code)).inc()
            metrics.latency.labels(route).observe(elapsed)
            reason = state.get("reason")
            if reason:
                metrics.rejections.labels(str(reason)).inc()
            fields: dict[str, Any] = {
                "request_id": request_id,
                "client": client,
                "method": scope.get("method"),
                "path": path[:200],
                "route": route,
                "status": code,
                "latency_ms": round(elapsed * 1000, 3),
                "model_sha256": self.service.served.sha256,
            }
            if reason:
                fields["reason"] = reason
            if state.get("body_bytes"):
                fields["body_bytes"] = state["body_bytes"]
            if "instances" in state:
                fields["instances"] = state["instances"]
            if "features" in state:
                fields["features"] = state["features"]
            log_event(self.service.logger, **fields)

    async def _holding(
        self, client: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The app, the request counted against ``client``'s in-flight cap while it runs (None:
        a probe, which has no client)."""
        if client is None:
            await self.app(scope, receive, send)
            return
        self.holding[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.holding[client] -= 1
            if not self.holding[client]:
                del self.holding[client]

    def _admit(self, scope: Scope, extra: list[tuple[bytes, bytes]]) -> Problem | None:
        """None when the request may go on; else the problem that refuses it. ``/metrics`` is
        the operator's, not the API clients': it takes no API key, only a metrics token
        (``_metrics_access``), and is rate limited by address."""
        scraping = scope.get("path") == METRICS_PATH
        keyring = None if scraping else self.service.keyring
        presented, problem = _credentials(scope) if keyring is not None else (None, None)
        name = keyring.identify(presented) if keyring is not None and presented else None
        client = f"key:{name}" if name else f"addr:{_peer(scope)}"
        scope["state"]["client"] = client
        busy = self._busy(client)
        if busy is None:
            busy = self._declared(scope, client)
        if busy is not None:
            return busy
        admitted = self.limiter.hit(self.item, client)
        reset, remaining = self.limiter.get_window_stats(self.item, client)
        reset_in = max(0, math.ceil(reset - time.time()))
        extra.extend(
            [
                (b"ratelimit-limit", str(self.item.amount).encode()),
                (b"ratelimit-remaining", str(max(remaining, 0)).encode()),
                (b"ratelimit-reset", str(reset_in).encode()),
                (b"ratelimit-policy", self.policy_header.encode()),
            ]
        )
        if not admitted:
            return Problem(
                429,
                "rate-limited",
                "Too Many Requests",
                f"more than {self.item.amount} requests per {self.item.multiples} s from this "
                "client ([serve.rate_limit])",
                headers={"Retry-After": str(max(reset_in, 1))},
                reason="rate_limit",
            )
        if scraping:
            return _metrics_access(scope, self.service.metrics_keyring)
        return _api_access(keyring, problem, name)

    def _declared(self, scope: Scope, client: str) -> Problem | None:
        """The client's bytes-in-flight problem for the body's Content-Length, claimed before
        the body is read (an absent or malformed one claims nothing here: the body is counted
        as it arrives, and the route refuses a malformed length)."""
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if len(values) != 1 or not values[0].isdigit():
            return None
        # More digits than any body this service reads: over every cap (and int() stays cheap).
        size = int(values[0]) if len(values[0]) <= 18 else 10**18
        return self.bodies.claim(client, scope["state"], size)

    def _busy(self, client: str) -> Problem | None:
        """The problem when all clients together, or ``client`` alone, have too many requests
        in flight; None otherwise."""
        limits = self.service.policy.rate_limit
        if self.in_flight > limits.max_in_flight:
            return Problem(
                503,
                "overloaded",
                "Service Overloaded",
                f"more than {limits.max_in_flight} requests in flight "
                "([serve.rate_limit].max_in_flight); retry shortly",
                headers={"Retry-After": "1"},
                reason="in_flight",
            )
        if self.holding[client] >= limits.max_in_flight_per_client:
            return Problem(
                429,
                "too-many-in-flight",
                "Too Many Requests",
                f"this client has {self.holding[client]} requests in flight, the most one client "
                "may have at once ([serve.rate_limit].max_in_flight_per_client = "
                f"{limits.max_in_flight_per_client})",
                headers={"Retry-After": "1"},
                reason="client_in_flight",
            )
        return None


def _api_access(
    keyring: KeyRing | None, problem: Problem | None, name: str | None
) -> Problem | None:
    """With API keys on, the 401 for no usable key or the 403 for a key not in the ring."""
    if keyring is None:
        return None
    if problem is not None:
        return problem
    if name is None:
        return Problem(403, "forbidden", "Forbidden", "the API key is not valid", reason="auth")
    return None


def _metrics_access(scope: Scope, tokens: KeyRing | None) -> Problem | None:
    """None when this request may read ``/metrics``: with metrics tokens, it presents one
    (a prediction API key is none: 401); without, it comes from a loopback address (the peer,
    or the address a trusted proxy's ``X-Forwarded-For`` names; 403 to any other)."""
    if tokens is None:
        if _loopback(scope):
            return None
        return Problem(
            403,
            "forbidden",
            "Forbidden",
            "/metrics answers only loopback clients unless the operator sets "
            f"${METRICS_ENV} (a metrics-token file; docs/serving.md)",
            reason="metrics_auth",
        )
    presented, _ = _credentials(scope)
    if presented is not None and tokens.identify(presented) is not None:
        return None
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        f"/metrics requires the metrics token (Authorization: Bearer TOKEN, ${METRICS_ENV}); "
        "an API key is not one",
        headers={"WWW-Authenticate": 'Bearer realm="gates-metrics"'},
        reason="metrics_auth",
    )


def _loopback(scope: Scope) -> bool:
    """Whether the client's address (after trusted-proxy handling) is a loopback one, and the
    connection's own too (``PEER``): a host in a trusted network writes any address into
    ``X-Forwarded-For``, and a proxy on another host that names ``127.0.0.1`` names its own
    loopback, not this host's (red team 14)."""
    return _loopback_address(scope.get("client")) and _loopback_address(
        scope.get(PEER, scope.get("client"))
    )


def _loopback_address(client: Any) -> bool:
    """An address is loopback; an IPv4-mapped IPv6 address as its IPv4 address; anything
    unreadable is not."""
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]).partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _credentials(scope: Scope) -> tuple[str | None, Problem | None]:
    """The bearer key presented, or the 401 problem saying why there is none usable."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
    challenge = {"WWW-Authenticate": 'Bearer realm="gates-serve"'}
    if not values:
        return None, Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "an API key is required (Authorization: Bearer KEY)",
            headers=challenge,
            reason="auth",
        )
    if len(values) > 1:
        return None, Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "more than one Authorization header",
            headers=challenge,
            reason="auth",
        )
    text = values[0].decode("latin-1")
    scheme, _, key = text.partition(" ")
    if scheme.lower() != "bearer" or not key:
        return None, Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "expected Authorization: Bearer KEY",
            headers=challenge,
            reason="auth",
        )
    return key, None


def _peer(scope: Scope) -> str:
    """The client's address as the limits key it: an IPv4 address as it is (an IPv6 one that
    wraps an IPv4 host's, mapped, 6to4, Teredo or NAT64, as that IPv4 address), an IPv6
    address by its /64 (the smallest prefix a site is given: a host picks any address in it,
    one per request if it likes), its zone id dropped. The address is the peer's, or the one a trusted proxy's ``X-Forwarded-For``
    names (uvicorn's ProxyHeadersMiddleware, ``gates.service.proxies``); anything that is no
    address is one identity, "unknown": text in a header must not mint identities."""
    client = scope.get("client")
    if not client:
        return "unknown"
    text = str(client[0])
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        wrapped = _wrapped_ipv4(address)
        if wrapped is not None:
            return str(wrapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _wrapped_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host an IPv6 address stands for, or None: IPv4-mapped; 6to4 (the host owns
    ``2002:<IPv4>::/48``, 65,536 /64s: as many identities by /64); Teredo (the client's outside
    address); NAT64's well-known prefix (a translator presents every IPv4 client in one /64:
    one identity for all of them by /64). Red team 11."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _route_label(path: str, name: str) -> str:
    if path == f"/v1/models/{name}:predict":
        return "predict"
    if path == f"/v1/models/{name}":
        return "metadata"
    if path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        return path.lstrip("/")
    return "other"


def openapi_document(policy: ServePolicy, contract: DataPolicy) -> dict[str, Any]:
    """OpenAPI 3.1 of the service, its instance schema generated from the data contract."""
    properties: dict[str, Any] = {}
    for column, rule in contract.columns.items():
        kind = {"float64": "number", "int64": "integer", "bool": "boolean"}.get(
            rule.dtype, "string"
        )
        schema: dict[str, Any] = {"type": [kind, "null"] if rule.nullable else kind}
        if rule.min is not None:
            schema["minimum"] = rule.min
        if rule.max is not None:
            schema["maximum"] = rule.max
        if rule.allowed is not None:
            schema["enum"] = list(rule.allowed)
        properties[column] = schema
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

    def refusals(*codes: int) -> dict[str, Any]:
        return {str(c): {"description": _STATUS_TEXT[c], "content": problem} for c in codes}

    guarded = (401, 403, 404, 405, 429, 503)
    prediction: dict[str, Any] = (
        {
            "type": "object",
            "required": ["label", "probabilities"],
            "properties": {
                "label": {"type": "string"},
                "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        }
        if policy.return_probabilities
        else {"type": "string"}
    )
    json_ok = {"application/json": {"schema": {"type": "object"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "secure-ml-pipeline inference service", "version": "1"},
        "paths": {
            f"/v1/models/{policy.name}:predict": {
                "post": {
                    "operationId": "predict",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "predictions, one per instance",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["predictions"],
                                        "properties": {
                                            "predictions": {"type": "array", "items": prediction}
                                        },
                                    }
                                }
                            },
                        },
                        **refusals(400, 408, 413, 415, 422, *guarded),
                    },
                }
            },
            f"/v1/models/{policy.name}": {
                "get": {
                    "operationId": "metadata",
                    "responses": {
                        "200": {"description": "readiness, run id and digest", "content": json_ok},
                        **refusals(*guarded),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "responses": {
                        "200": {"description": "alive", "content": json_ok},
                        **refusals(404, 405, 503),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "responses": {
                        "200": {"description": "ready", "content": json_ok},
                        **refusals(404, 405, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **refusals(*guarded),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Instance": {
                    "type": "object",
                    "required": list(contract.columns),
                    "additionalProperties": False,
                    "properties": properties,
                },
                "PredictRequest": {
                    "type": "object",
                    "required": ["instances"],
                    "additionalProperties": False,
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": policy.max_instances,
                            "items": {"$ref": "#/components/schemas/Instance"},
                        }
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                        "error_count": {"type": "integer"},
                    },
                },
            }
        },
    }


_STATUS_TEXT = {
    400: "malformed JSON, NaN/Infinity, duplicate keys, too deep, or not a V1 request",
    401: "no API key (auth on)",
    403: "a wrong API key",
    404: "no such route or model",
    405: "method not allowed",
    408: "the body was not complete within [serve].read_timeout_seconds",
    413: "body or instance count over the limits",
    415: "not application/json",
    422: "an instance breaks the data contract",
    429: "over the per-client request or row limit, or too many of the client's requests in flight",
    503: "too many requests, or body bytes, in flight from all clients together",
}
