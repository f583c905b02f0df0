"""Planted attacks on the inference service: requests that must never reach the model, keys that
must not open it, and projects whose model must never be served.

One real ``python -m gates serve`` per module for the request attacks (the policy as signed),
one in-process server with auth on for the key attacks, and one CLI start per tampered project.
Each request case asserts the status, a problem document, and that it names what it refused
(instance, column or limit).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.release_support import copy_project
from tests.serve_support import (
    KEYS,
    KEYS_ENV,
    cli_server,
    feature_rows,
    in_process,
    run_serve,
    write_keys,
)

PREDICT = "/v1/models/model:predict"


@pytest.fixture(scope="module")
def root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("serve-attacks") / "project")


@pytest.fixture(scope="module")
def url(root: Path) -> Iterator[str]:
    with cli_server(root, "--key", ".keys/dev-signing.pub") as server:
        yield server.url


@pytest.fixture(scope="module")
def row(root: Path) -> dict[str, Any]:
    return feature_rows(root, 1)[0]


def doc(*instances: Any) -> bytes:
    return json.dumps({"instances": list(instances)}).encode()


def with_row(template: str) -> Any:
    """A body built from the valid row: ``template`` is the JSON around ``ROW``."""
    return lambda row: template.replace("ROW", json.dumps(row)).encode()


# name -> (body builder, status, text the problem must contain, content type)
CASES: dict[str, tuple[Any, int, str, str]] = {
    "nan-token": (
        with_row('{"instances": [ROW, {"mean_radius": NaN}]}'),
        400,
        "NaN",
        "application/json",
    ),
    "infinity-token": (
        with_row('{"instances": [ROW, {"a": Infinity}]}'),
        400,
        "Infinity",
        "application/json",
    ),
    "negative-infinity": (
        with_row('{"instances": [ROW, {"a": -Infinity}]}'),
        400,
        "Infinity",
        "application/json",
    ),
    "number-1e999": (
        lambda r: doc(r).replace(
            b'"mean_radius": ' + json.dumps(r["mean_radius"]).encode(), b'"mean_radius": 1e999'
        ),
        400,
        "1e999",
        "application/json",
    ),
    "huge-integer-digits": (
        lambda r: doc(r).replace(
            b'"mean_radius": ' + json.dumps(r["mean_radius"]).encode(),
            b'"mean_radius": ' + b"9" * 5000,
        ),
        400,
        "19 digits",
        "application/json",
    ),
    "duplicate-column-key": (
        lambda r: doc(r).replace(b'{"mean_radius"', b'{"mean_radius": 1.0, "mean_radius"'),
        400,
        "mean_radius",
        "application/json",
    ),
    "duplicate-instances-key": (
        lambda r: b'{"instances": [], ' + doc(r)[1:],
        400,
        "instances",
        "application/json",
    ),
    "malformed-json": (lambda r: doc(r)[:-3], 400, "malformed JSON", "application/json"),
    "trailing-garbage": (lambda r: doc(r) + b"{}", 400, "malformed JSON", "application/json"),
    "byte-order-mark": (
        lambda r: b"\xef\xbb\xbf" + doc(r),
        400,
        "byte-order mark",
        "application/json",
    ),
    "not-utf8": (
        lambda r: doc(r).replace(b'"instances"', b'"instances\xff"'),
        400,
        "not UTF-8",
        "application/json",
    ),
    "utf16-body": (
        lambda r: json.dumps({"instances": [r]}).encode("utf-16"),
        400,
        "",
        "application/json",
    ),
    "deep-json": (
        lambda r: b'{"instances": [' + b"[" * 50 + b"]" * 50 + b"]}",
        400,
        "max_json_depth",
        "application/json",
    ),
    "very-deep-json": (
        lambda r: b'{"instances": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        400,
        "max_json_depth",
        "application/json",
    ),
    "top-level-array": (lambda r: json.dumps([r]).encode(), 400, "instances", "application/json"),
    "extra-top-level-key": (
        lambda r: json.dumps({"instances": [r], "signature_name": "x"}).encode(),
        400,
        "signature_name",
        "application/json",
    ),
    "inputs-not-instances": (
        lambda r: json.dumps({"inputs": [r]}).encode(),
        400,
        "inputs",
        "application/json",
    ),
    "instances-not-array": (
        lambda r: json.dumps({"instances": r}).encode(),
        400,
        "non-empty array",
        "application/json",
    ),
    "empty-instances": (lambda r: doc(), 400, "non-empty array", "application/json"),
    "huge-instance-count": (
        lambda r: doc(*([{}] * 1001)),
        413,
        "max_instances",
        "application/json",
    ),
    "oversized-body": (
        lambda r: b" " * (2**20 + 1) + doc(r),
        413,
        "max_body_bytes",
        "application/json",
    ),
    "text-plain": (doc, 415, "text/plain", "text/plain"),
    "form-encoded": (lambda r: b"instances=1", 415, "form", "application/x-www-form-urlencoded"),
    "json-utf16-charset": (doc, 415, "utf-16", "application/json; charset=utf-16"),
    "json-suffix-type": (doc, 415, "problem", "application/problem+json"),
    "no-content-type": (doc, 415, "none", ""),
    "missing-column": (
        lambda r: doc({k: v for k, v in r.items() if k != "worst_area"}),
        422,
        "worst_area",
        "application/json",
    ),
    "extra-column": (lambda r: doc({**r, "backdoor": 1.0}), 422, "backdoor", "application/json"),
    "label-column": (
        lambda r: doc({**r, "diagnosis": "benign"}),
        422,
        "diagnosis",
        "application/json",
    ),
    "id-column": (lambda r: doc({**r, "id": 7}), 422, "'id'", "application/json"),
    "out-of-range-high": (
        lambda r: doc(r, {**r, "mean_area": 1e9}),
        422,
        "mean_area",
        "application/json",
    ),
    "out-of-range-negative": (
        lambda r: doc({**r, "mean_radius": -0.5}),
        422,
        "mean_radius",
        "application/json",
    ),
    "string-for-number": (
        lambda r: doc({**r, "mean_radius": "14.1"}),
        422,
        "mean_radius",
        "application/json",
    ),
    "string-1e999": (
        lambda r: doc({**r, "mean_radius": "1e999"}),
        422,
        "1e999",
        "application/json",
    ),
    "string-nan": (
        lambda r: doc({**r, "mean_radius": "NaN"}),
        422,
        "mean_radius",
        "application/json",
    ),
    "boolean-for-number": (
        lambda r: doc({**r, "mean_radius": True}),
        422,
        "True",
        "application/json",
    ),
    "null-for-number": (
        lambda r: doc({**r, "mean_radius": None}),
        422,
        "DATA013",
        "application/json",
    ),
    "object-for-number": (
        lambda r: doc({**r, "mean_radius": {"$gt": 0}}),
        422,
        "mean_radius",
        "application/json",
    ),
    "array-for-number": (
        lambda r: doc({**r, "mean_radius": [1.0]}),
        422,
        "mean_radius",
        "application/json",
    ),
    "instance-not-object": (lambda r: doc(r, [1, 2]), 422, "SERVE010", "application/json"),
    "cyrillic-lookalike-column": (
        lambda r: doc(
            {**{k: v for k, v in r.items() if k != "mean_area"}, "me\u0430n_area": r["mean_area"]}
        ),
        422,
        "\\u0430",
        "application/json",
    ),
    "zero-width-column": (
        lambda r: doc(
            {**{k: v for k, v in r.items() if k != "mean_area"}, "mean_area\u200b": r["mean_area"]}
        ),
        422,
        "\\u200b",
        "application/json",
    ),
    "fullwidth-column": (
        lambda r: doc(
            {**{k: v for k, v in r.items() if k != "mean_area"}, "\uff4dean_area": r["mean_area"]}
        ),
        422,
        "\\uff4d",
        "application/json",
    ),
    "case-changed-column": (
        lambda r: doc(
            {**{k: v for k, v in r.items() if k != "mean_area"}, "Mean_Area": r["mean_area"]}
        ),
        422,
        "Mean_Area",
        "application/json",
    ),
    "padded-column": (
        lambda r: doc(
            {**{k: v for k, v in r.items() if k != "mean_area"}, " mean_area": r["mean_area"]}
        ),
        422,
        "' mean_area'",
        "application/json",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_the_model(url: str, row: dict[str, Any], case: str) -> None:
    build, status, named, content_type = CASES[case]
    headers = {"Content-Type": content_type} if content_type else {}
    request = httpx.Request("POST", url + PREDICT, content=build(row), headers=headers)
    if not content_type:
        request.headers.pop("Content-Type", None)
    with httpx.Client(timeout=60) as client:
        response = client.send(request)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].endswith(problem["type"].rsplit("/", 1)[1])
    assert named in json.dumps(problem, ensure_ascii=True) or named in json.dumps(
        problem, ensure_ascii=False
    ), problem
    if status == 422:
        assert all(
            "instance" in error and "rule" in error and "expected" in error and "found" in error
            for error in problem["errors"]
        )


def test_a_422_names_instance_column_rule_expected_and_found(url: str, row: dict[str, Any]) -> None:
    body = doc(row, row, {**row, "mean_area": 1e9})
    problem = httpx.post(
        url + PREDICT, content=body, headers={"Content-Type": "application/json"}, timeout=30
    ).json()
    assert problem["errors"] == [
        {
            "instance": 2,
            "column": "mean_area",
            "rule": "DATA016",
            "expected": "<= 5002",
            "found": "1000000000.0",
            "policy_key": "[data.columns].mean_area.max",
        }
    ]


def test_values_on_the_bounds_are_served(url: str, row: dict[str, Any]) -> None:
    """The control: the contract's own bounds are accepted (a refusal above is the rule, not a typo)."""
    body = doc({**row, "mean_area": 5002, "mean_radius": 0})
    response = httpx.post(
        url + PREDICT, content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 200, response.text


def test_chunked_body_over_the_limit_is_cut_off(url: str) -> None:
    """No Content-Length (chunked): the body is counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(300):
            yield b" " * 4096

    response = httpx.post(
        url + PREDICT, content=chunks(), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 413
    assert "max_body_bytes" in response.json()["detail"]


def test_a_lying_content_length_is_refused(url: str, row: dict[str, Any]) -> None:
    port = int(url.rsplit(":", 1)[1])
    body = doc(row)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {2**31}\r\n\r\n".encode()
            + body
        )
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")


# --- one client holding every slot ----------------------------------------------------------------


def _settled(service: Any, sent: int) -> None:
    """Wait until the service has taken in every one of ``sent`` requests: each either answered
    (counted) or still in flight."""
    registry = service.metrics.registry
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answered = sum(
            sample.value
            for metric in registry.collect()
            if metric.name == "gates_serve_requests"
            for sample in metric.samples
            if sample.name == "gates_serve_requests_total"
        )
        if answered + (registry.get_sample_value("gates_serve_in_flight") or 0) >= sent:
            return
        time.sleep(0.05)
    pytest.fail(f"the service did not take in {sent} requests within 30 s")


def test_one_client_cannot_hold_every_in_flight_slot(root: Path, row: dict[str, Any]) -> None:
    """Bodies that never finish, one per slot, from one address (within its rate limit) held the
    whole in-flight cap for read_timeout_seconds, again and again: every other client got 503.
    Now a client holds at most [serve.rate_limit].max_in_flight_per_client at once (429 above),
    and a client at another address is served."""
    body = doc(row)
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with in_process(root) as (base, service, _):
        limits = service.policy.rate_limit
        port = int(base.rsplit(":", 1)[1])
        held: list[socket.socket] = []
        try:
            for _ in range(limits.max_in_flight):
                slow = socket.create_connection(("127.0.0.1", port), timeout=30)
                slow.sendall(head + body[:10])
                held.append(slow)
            _settled(service, limits.max_in_flight)
            transport = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(transport=transport, timeout=30) as other:
                response = other.post(
                    base + PREDICT,
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
            assert response.status_code == 200, response.text[:300]
            cap = limits.max_in_flight_per_client
            refused = [slow.recv(4096).decode("latin-1") for slow in held[cap:]]
        finally:
            for slow in held:
                slow.close()
    assert all(answer.startswith("HTTP/1.1 429") for answer in refused), refused[:1]
    assert "max_in_flight_per_client" in refused[0]
    assert "Traceback" not in refused[0]


def _metric(base: str, name: str, **labels: str) -> float:
    """A sample of the service's /metrics, asked from 127.0.0.3 (no client under test; with
    auth on, as alice, no key under test either)."""
    from prometheus_client.parser import text_string_to_metric_families

    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    alice = {"Authorization": f"Bearer {KEYS['alice']}"}
    with httpx.Client(transport=transport, timeout=30, headers=alice) as probe:
        text = probe.get(base + "/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def _body_bytes_reach(base: str, expected: float) -> None:
    """Wait until the requests in flight claim ``expected`` body bytes together."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _metric(base, "gates_serve_body_bytes_in_flight") == expected:
            return
        time.sleep(0.05)
    pytest.fail(f"the service never held {expected} body bytes in flight")


def _held(port: int, head: str, sent: bytes) -> socket.socket:
    """A request from 127.0.0.1 whose body never finishes: ``head`` then ``sent``."""
    held = socket.create_connection(("127.0.0.1", port), timeout=30)
    held.sendall(head.encode() + sent)
    return held


def _answer(connection: socket.socket) -> str:
    """The whole answer on ``connection``: its head and Content-Length bytes of body."""
    answer = b""
    while b"\r\n\r\n" not in answer and (more := connection.recv(4096)):
        answer += more
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length and (more := connection.recv(4096)):
        body += more
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def _declared(length: int) -> str:
    return (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )


BODY_CAP = {"max_body_bytes": 4096, "rate_limit.max_body_bytes_in_flight_per_client": 4096}


def test_one_client_cannot_queue_large_bodies_ahead_of_every_other_client(
    root: Path, row: dict[str, Any]
) -> None:
    """Eight allowed 1000-row bodies of one client in flight queued eight parses ahead of every
    other client's single row on the one event loop (calm p99 265-393 ms). Now one client's
    requests claim at most [serve.rate_limit].max_body_bytes_in_flight_per_client body bytes
    together (4096 here), by Content-Length before the body is read: its small request beside
    its large one is served; split into small requests (3 in flight, under the request cap
    of 8) one byte over is refused, as is a forwarded header claiming another client; another
    address is served; once the large body ends, the bytes are free again."""
    body = doc(row)
    assert len(body) < 2048
    with in_process(root, read_timeout_seconds=60.0, **BODY_CAP) as (base, _, capture):
        port = int(base.rsplit(":", 1)[1])

        def send(address: str, headers: dict[str, str] | None = None) -> httpx.Response:
            transport = httpx.HTTPTransport(local_address=address)
            with httpx.Client(transport=transport, timeout=30) as client:
                return client.post(
                    base + PREDICT,
                    content=body,
                    headers={"Content-Type": "application/json", **(headers or {})},
                )

        large = _held(port, _declared(2048), b"{")
        held = [large]
        try:
            _body_bytes_reach(base, 2048)
            beside = send("127.0.0.1")
            for _ in range(2):  # the same bytes again, split into two small requests
                held.append(_held(port, _declared(1024), b"{"))
                _body_bytes_reach(base, 2048 + 1024 * (len(held) - 1))
            over = _held(port, _declared(1), b"{")
            held.append(over)
            refused = _answer(over)
            forged = {"X-Forwarded-For": "10.0.0.9", "X-Real-IP": "10.1.0.9"}
            forwarded = send("127.0.0.1", forged)
            other = send("127.0.0.2")
            large.close()
            _body_bytes_reach(base, 2048)
            freed = send("127.0.0.1")
            rejected = _metric(
                base, "gates_serve_rejections_total", reason="client_bytes_in_flight"
            )
        finally:
            for connection in held:
                connection.close()
    assert beside.status_code == 200, beside.text
    assert refused.startswith("HTTP/1.1 429"), refused[:300]
    assert "retry-after: 1" in refused.lower()
    assert "other requests hold 4096 body bytes, and this one's 1 would exceed the 4096" in refused
    assert "max_body_bytes_in_flight_per_client" in refused
    assert "Traceback" not in refused
    assert forwarded.status_code == 429, forwarded.text
    assert forwarded.headers["content-type"].startswith("application/problem+json")
    assert forwarded.json()["type"].endswith("too-many-bytes-in-flight")
    assert other.status_code == 200, other.text
    assert freed.status_code == 200, freed.text
    assert rejected == 2
    refusals = [r for r in capture.records() if r.get("reason") == "client_bytes_in_flight"]
    assert [r["client"] for r in refusals] == ["addr:127.0.0.1"] * 2


def test_with_keys_the_bytes_cap_follows_the_key_not_the_address(
    root: Path, row: dict[str, Any], tmp_path: Path
) -> None:
    """Auth on: the claim is the key's. A key holding 4096 bytes from 127.0.0.1 is refused
    from 127.0.0.2 too (another address is no new client); another key at 127.0.0.1 is served."""
    keys = write_keys(tmp_path)
    head = _declared(4096).replace("\r\n\r\n", f"\r\nAuthorization: Bearer {KEYS['flood']}\r\n\r\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEYS_ENV, str(keys))
        with in_process(root, require_api_key=True, read_timeout_seconds=60.0, **BODY_CAP) as (
            base,
            _,
            _,
        ):
            port = int(base.rsplit(":", 1)[1])

            def send(address: str, key: str) -> httpx.Response:
                transport = httpx.HTTPTransport(local_address=address)
                with httpx.Client(transport=transport, timeout=30) as client:
                    return client.post(
                        base + PREDICT,
                        content=doc(row),
                        headers={
                            "Content-Type": "application/json",
                            "Authorization": f"Bearer {KEYS[key]}",
                        },
                    )

            with _held(port, head, b"{"):
                _body_bytes_reach(base, 4096)
                moved = send("127.0.0.2", "flood")
                other = send("127.0.0.1", "calm")
    assert moved.status_code == 429, moved.text
    assert moved.json()["type"].endswith("too-many-bytes-in-flight")
    assert other.status_code == 200, other.text


def test_many_clients_cannot_queue_large_bodies_ahead_of_every_other_client(
    root: Path, row: dict[str, Any]
) -> None:
    """The bytes cap was per client only: one max-size body from each of many addresses (or
    keys) queued that many parses ahead of every single row. Now all clients' bodies together
    claim at most [serve.rate_limit].max_body_bytes_in_flight (6144 here, per client 4096):
    127.0.0.1 holds 4096 and 127.0.0.2 holds 2048 (each within its own cap), so a single row
    from 127.0.0.4 is refused (503, Retry-After, the service's state, not its doing); once
    127.0.0.1's body ends, it is served."""
    body = doc(row)
    assert len(body) < 2048
    with in_process(
        root,
        read_timeout_seconds=60.0,
        **BODY_CAP,
        **{"rate_limit.max_body_bytes_in_flight": 6144},
    ) as (base, _, capture):
        port = int(base.rsplit(":", 1)[1])

        def send(address: str) -> httpx.Response:
            transport = httpx.HTTPTransport(local_address=address)
            with httpx.Client(transport=transport, timeout=30) as client:
                return client.post(
                    base + PREDICT, content=body, headers={"Content-Type": "application/json"}
                )

        first = _held(port, _declared(4096), b"{")
        second = socket.create_connection(
            ("127.0.0.1", port), timeout=30, source_address=("127.0.0.2", 0)
        )
        try:
            second.sendall(_declared(2048).encode() + b"{")
            _body_bytes_reach(base, 6144)
            refused = send("127.0.0.4")
            first.close()
            _body_bytes_reach(base, 2048)
            served = send("127.0.0.4")
            rejected = _metric(base, "gates_serve_rejections_total", reason="bytes_in_flight")
        finally:
            first.close()
            second.close()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "1"
    problem = refused.json()
    assert problem["type"].endswith("overloaded")
    assert (
        f"hold 6144 body bytes, and this one's {len(body)} would exceed the 6144"
        in (problem["detail"])
    )
    assert "[serve.rate_limit].max_body_bytes_in_flight)" in problem["detail"]
    assert served.status_code == 200, served.text
    assert rejected == 1
    logged = [r for r in capture.records() if r.get("reason") == "bytes_in_flight"]
    assert [r["client"] for r in logged] == ["addr:127.0.0.4"]


def test_a_body_alone_is_admitted_whatever_the_total_bytes_cap(
    root: Path, row: dict[str, Any]
) -> None:
    """A request with nothing else in flight is served even when its body is over
    max_body_bytes_in_flight (1024 here, the least the policy allows): the cap bounds a queue,
    and a cap below one request would otherwise refuse every large request for good."""
    body = doc(row, row, row)
    assert len(body) > 1024
    with in_process(root, **{"rate_limit.max_body_bytes_in_flight": 1024}) as (base, _, _):
        alone = httpx.post(
            base + PREDICT, content=body, headers={"Content-Type": "application/json"}, timeout=30
        )
    assert alone.status_code == 200, alone.text


def test_a_chunked_body_is_counted_as_it_arrives(root: Path, row: dict[str, Any]) -> None:
    """A body without a Content-Length claims nothing up front: its bytes are claimed chunk by
    chunk. One chunked body of 2048 bytes held open; a second chunked body of the same client
    that would put it over 4096 is refused once its bytes arrive, not parsed (spaces alone
    would be malformed JSON, 400); a chunked single row beside it is served."""
    chunked = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    with in_process(root, read_timeout_seconds=60.0, **BODY_CAP) as (base, _, _):
        port = int(base.rsplit(":", 1)[1])
        large = _held(port, chunked, b"800\r\n" + b" " * 2048 + b"\r\n")
        try:
            _body_bytes_reach(base, 2048)
            with _held(port, chunked, b"834\r\n" + b" " * 2100 + b"\r\n0\r\n\r\n") as over:
                refused = _answer(over)
            with httpx.Client(timeout=30) as client:
                beside = client.post(
                    base + PREDICT,
                    content=iter([doc(row)]),  # an iterator: httpx sends it chunked
                    headers={"Content-Type": "application/json"},
                )
        finally:
            large.close()
    assert refused.startswith("HTTP/1.1 429"), refused[:300]
    assert "other requests hold 2048 body bytes, and this one's 2100 would" in refused
    assert beside.status_code == 200, beside.text
    assert "content-length" not in beside.request.headers


# --- another identity for the same client ------------------------------------------------------


def test_an_ipv6_client_cannot_get_a_new_budget_from_each_address_of_its_64(root: Path) -> None:
    """Auth off, the identity is the peer address; an IPv6 host is given a whole /64 and picks
    any address in it (privacy addresses rotate by themselves), so keyed by the full address it
    had 2^64 request limits, row budgets and bytes caps. Now an IPv6 address counts as its /64
    (a zone index ignored) and an IPv4-mapped one as its IPv4 address: 2 requests per 30 s,
    spent from 2001:db8:1:2::1, are spent for every other address of 2001:db8:1:2::/64; the
    next /64 is another client. Loopback holds one IPv6 address (::1) and adding others needs
    root, so the real app is called through httpx's ASGI transport with each peer address."""
    import asyncio
    import logging

    from gates.service.app import create_app
    from gates.service.server import build_service, verified_model
    from pipeline.config import load_policy
    from tests.serve_support import with_serve

    loaded = load_policy(root / "policy.toml")
    served = verified_model(loaded, champion=False, key=root / ".keys" / "dev-signing.pub")
    limited = with_serve(loaded, **{"rate_limit.requests": 2, "rate_limit.window_seconds": 30})
    logger = logging.getLogger("gates.serve.test.ipv6")
    logger.propagate = False
    app = create_app(build_service(limited, served, logger=logger))
    peers = [
        "2001:db8:1:2::1",
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:ffff:ffff:ffff:fffe",
        "2001:db8:1:2::3%eth0",
        "2001:db8:1:3::1",
        "10.0.0.7",
        "10.0.0.7",
        "::ffff:10.0.0.7",
    ]

    async def ask(peer: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            return (await client.get("/v1/models/model")).status_code

    async def every() -> list[int]:
        return [await ask(peer) for peer in peers]

    statuses = asyncio.run(every())
    assert statuses == [200, 200, 429, 429, 429, 200, 200, 200, 429]


SPOOFED = {
    "x-forwarded-for": {"X-Forwarded-For": "10.9.0.1"},
    "forwarded": {"Forwarded": "for=10.9.0.2"},
    "x-real-ip": {"X-Real-IP": "10.9.0.3"},
    "x-client-ip": {"X-Client-IP": "10.9.0.4"},
    "true-client-ip": {"True-Client-IP": "10.9.0.5"},
    "cf-connecting-ip": {"CF-Connecting-IP": "10.9.0.6"},
    "x-cluster-client-ip": {"X-Cluster-Client-IP": "10.9.0.7"},
    "x-original-forwarded-for": {"X-Original-Forwarded-For": "10.9.0.8"},
}
RESPELLED = {
    "scheme-lower-case": "bearer {key}",
    "scheme-upper-case": "BEARER {key}",
    "trailing-space": "Bearer {key} ",
    "trailing-tab": "Bearer {key}\t",
    "two-spaces": "Bearer  {key}",
    "key-upper-cased": "Bearer {upper}",
    "key-with-newline-escape": "Bearer {key}%0a",
}


def test_a_client_over_its_limit_gets_no_new_identity_from_headers_or_key_spelling(
    root: Path, row: dict[str, Any], tmp_path: Path
) -> None:
    """A client whose request limit is spent (2 per 30 s) tries each header a proxy might set
    (no trusted proxy is configured: the peer address alone counts) and, with auth on, each
    other spelling of its key (the identity is the key's name: a spelling that still opens
    it is the same client, one that does not is refused): never served. The key's spellings
    go out on a raw socket, as sent (httpx refuses a header value with trailing whitespace)."""
    body = doc(row)
    keys = write_keys(tmp_path)
    limit = {"rate_limit.requests": 2, "rate_limit.window_seconds": 30}
    json_type = [(b"content-type", b"application/json")]

    def post(base: str, headers: list[tuple[bytes, bytes]]) -> int:
        with httpx.Client(timeout=30) as client:
            request = httpx.Request("POST", base + PREDICT, content=body, headers=headers)
            return client.send(request).status_code

    with in_process(root, **limit) as (base, _, _):
        spent = [post(base, json_type) for _ in range(2)]
        spoofed = {
            case: post(base, [*json_type, *((k.encode(), v.encode()) for k, v in h.items())])
            for case, h in SPOOFED.items()
        }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEYS_ENV, str(keys))
        with in_process(root, require_api_key=True, **limit) as (base, _, _):
            key = KEYS["flood"]
            own = [(b"authorization", f"Bearer {key}".encode()), *json_type]
            key_spent = [post(base, own) for _ in range(2)]
            port = int(base.rsplit(":", 1)[1])
            respelled = {}
            for case, text in RESPELLED.items():
                value = text.format(key=key, upper=key.upper())
                head = _declared(len(body)).replace(
                    "\r\n\r\n", f"\r\nAuthorization: {value}\r\n\r\n"
                )
                with _held(port, head, body) as connection:
                    respelled[case] = int(_answer(connection)[9:12])
            other = post(base, [(b"authorization", f"Bearer {KEYS['calm']}".encode()), *json_type])
    assert spent == [200, 200]
    assert spoofed == dict.fromkeys(SPOOFED, 429)
    assert key_spent == [200, 200]
    # Spellings that open the key are its client (429); the others are no key, so their
    # address's client, refused 403 until that address's own 2 requests are spent (429).
    opening = ("scheme-lower-case", "scheme-upper-case", "trailing-space", "trailing-tab")
    assert {case: respelled[case] for case in opening} == dict.fromkeys(opening, 429)
    assert [respelled[case] for case in RESPELLED if case not in opening] == [403, 403, 429]
    assert other == 200


# --- auth bypass attempts --------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = write_keys(tmp_path_factory.mktemp("keys"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEYS_ENV, str(keys))
        with in_process(root, require_api_key=True) as (base, _, _):
            yield base


def _stored_hash() -> str:
    from gates.service.auth import hash_line

    return hash_line("alice", KEYS["alice"]).partition(":")[2]


AUTH_CASES: dict[str, tuple[list[tuple[str, str]], str, int]] = {
    "no-header": ([], PREDICT, 401),
    "empty-bearer": ([("Authorization", "Bearer")], PREDICT, 401),
    "basic-scheme": ([("Authorization", "Basic YWxpY2U6eA==")], PREDICT, 401),
    "key-without-scheme": ([("Authorization", KEYS["alice"])], PREDICT, 401),
    "two-authorization-headers": (
        [("Authorization", f"Bearer {KEYS['alice']}"), ("Authorization", "Bearer x")],
        PREDICT,
        401,
    ),
    "wrong-key": ([("Authorization", "Bearer " + "w" * 40)], PREDICT, 403),
    "key-after-two-spaces": ([("Authorization", f"Bearer  {KEYS['alice']}")], PREDICT, 403),
    "key-with-suffix": ([("Authorization", f"Bearer {KEYS['alice']}.")], PREDICT, 403),
    "key-upper-cased": ([("Authorization", f"Bearer {KEYS['alice'].upper()}")], PREDICT, 403),
    "key-prefix": ([("Authorization", f"Bearer {KEYS['alice'][:-1]}")], PREDICT, 403),
    "stored-hash-as-key": ([("Authorization", f"Bearer {_stored_hash()}")], PREDICT, 403),
    "api-key-header-instead": ([("X-API-Key", KEYS["alice"])], PREDICT, 401),
    "key-in-query-string": ([], f"{PREDICT}?api_key={KEYS['alice']}", 401),
    "trailing-slash-path": ([], PREDICT + "/", 401),
    "double-slash-path": ([], "/" + PREDICT, 401),
    "encoded-path": ([], "/v1/models/model%3Apredict", 401),
    "dot-segment-via-probe": ([], "/healthz/..%2F" + PREDICT.lstrip("/"), 401),
    "uppercase-probe-path": ([], "/HEALTHZ", 401),
    "openapi-without-key": ([], "/openapi.json", 401),
    "metadata-without-key": ([], "/v1/models/model", 401),
    "forwarded-user-header": (
        [("X-Forwarded-User", "alice"), ("X-Remote-User", "alice")],
        PREDICT,
        401,
    ),
}


@pytest.mark.parametrize("case", sorted(AUTH_CASES))
def test_auth_bypass_is_refused(guarded: str, root: Path, case: str) -> None:
    headers, path, status = AUTH_CASES[case]
    body = doc(feature_rows(root, 1)[0])
    method = (
        "GET" if path in ("/metrics", "/openapi.json", "/v1/models/model", "/HEALTHZ") else "POST"
    )
    raw = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in headers)]
    content = body if method == "POST" else None
    request = httpx.Request(method, guarded + path, content=content, headers=raw)
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
    assert response.status_code == status, response.text[:300]
    assert response.json()["status"] == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_right_key_opens_it(guarded: str, root: Path) -> None:
    """The control for the cases above."""
    body = doc(feature_rows(root, 1)[0])
    headers = {"Authorization": f"Bearer {KEYS['alice']}", "Content-Type": "application/json"}
    assert (
        httpx.post(guarded + PREDICT, content=body, headers=headers, timeout=30).status_code == 200
    )


# --- a model that must never be served ----------------------------------------------------------


def _flip_model_byte(project: Path) -> None:
    model = project / "artifacts" / "model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))


def _edit_serve_policy(project: Path) -> None:
    policy = project / "policy.toml"
    policy.write_text(
        policy.read_text(encoding="utf-8").replace(
            "max_instances = 1000", "max_instances = 100000"
        ),
        encoding="utf-8",
    )


def _drop_attestation(project: Path) -> None:
    (project / "artifacts" / "attestation.intoto.json").unlink()


def _swap_model(project: Path) -> None:
    from sklearn.dummy import DummyClassifier

    from pipeline.persist import MODEL_FILE, save_model

    x = [[0.0] * 30, [1.0] * 30]
    save_model(
        DummyClassifier().fit(x, ["benign", "malignant"]),
        project / "artifacts" / MODEL_FILE,
        estimator="logistic_regression",
    )


def _failed_verdict(project: Path) -> None:
    report = project / "reports" / "cv.json"
    report.write_text(
        report.read_text(encoding="utf-8").replace('"PASSED"', '"FAILED"'), encoding="utf-8"
    )
    statement = project / "artifacts" / "attestation.statement.json"
    statement.write_text(
        statement.read_text(encoding="utf-8").replace('"PASSED"', '"FAILED"', 1), encoding="utf-8"
    )


TAMPERED = {
    "model-byte-flipped": (_flip_model_byte, [], "model.skops"),
    "model-swapped-with-manifest": (_swap_model, [], "model"),
    "policy-edited-after-signing": (_edit_serve_policy, [], "policy.toml"),
    "attestation-missing": (_drop_attestation, [], "attestation"),
    "statement-verdict-edited": (_failed_verdict, [], "attestation.statement.json"),
    "no-champion": (lambda p: None, ["--champion"], "champion"),
    "untrusted-key": (lambda p: None, [], "signed by the local development key"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_model_that_does_not_verify_never_starts(
    passed_chain: Path, tmp_path: Path, case: str
) -> None:
    tamper, args, named = TAMPERED[case]
    project = copy_project(passed_chain, tmp_path / "project")
    tamper(project)
    key = [] if case == "untrusted-key" else ["--key", ".keys/dev-signing.pub"]
    done = run_serve(project, *key, *args)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: "), done.stderr[-2000:]
    assert named in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "serving" not in done.stderr  # nothing listened


def test_auth_on_without_a_key_file_never_starts(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gates.service.auth import KeyFileError

    monkeypatch.delenv(KEYS_ENV, raising=False)
    with pytest.raises(KeyFileError, match=KEYS_ENV), in_process(root, require_api_key=True):
        pass


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("alice:" + "0" * 63 + "\n", ":1:"),
        ("alice:" + "G" * 64 + "\n", ":1:"),
        ("# only a comment\n", "no keys"),
        ("a:" + "0" * 64 + "\na:" + "1" * 64 + "\n", "appears twice"),
        ("alice " + "0" * 64 + "\n", ":1:"),
    ],
    ids=["short-hash", "upper-hex", "empty", "duplicate-name", "no-colon"],
)
def test_a_malformed_key_file_never_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, named: str
) -> None:
    from gates.service.auth import KeyFileError, load_keyring

    path = tmp_path / "keys.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(KEYS_ENV, str(path))
    with pytest.raises(KeyFileError, match=named):
        load_keyring(KEYS_ENV)


def test_a_key_file_that_is_a_folder_never_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gates.service.auth import KeyFileError, load_keyring

    monkeypatch.setenv(KEYS_ENV, str(tmp_path))
    with pytest.raises(KeyFileError, match="regular file"):
        load_keyring(KEYS_ENV)


def test_a_client_that_hangs_up_mid_body_leaves_one_log_line_not_a_traceback(
    root: Path, row: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A body cut off by the client's hang-up raised ClientDisconnect out of the app: uvicorn
    logged "Exception in ASGI application" and a 30-line traceback for every such request, a
    log any anonymous client could flood. Now it is the request's one JSON line (400,
    client-disconnected)."""
    body = doc(row)
    with in_process(root) as (base, service, capture):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as hang_up:
            hang_up.sendall(
                f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            _settled(service, 1)
        deadline = time.monotonic() + 30
        while not capture.records() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [r.get("reason") for r in capture.records()] == ["client-disconnected"]
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
