"""The service behind a reverse proxy: the operator's trusted proxies, and forged headers.

The real service on uvicorn on loopback, the client's identity read from the guard's JSON log
line for the request (``client``), and the budgets it keys. 127.0.0.1 plays the trusted proxy
(``--trusted-proxy 127.0.0.1/32``), its header written by the test as a proxy appending the
connection's address would write it: an attacker controls every byte left of that address,
and every byte of the header when the connection is not from a trusted proxy (127.0.0.2,
another loopback address, plays such a client). The setting's refusals of bad values and its
command line (the flag beats ``GATES_TRUSTED_PROXIES``) are at the end.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gates.errors import GatesError
from gates.service.proxies import ENV, TrustedProxies, trusted_proxies
from tests.release_support import copy_project
from tests.serve_support import cli_server, feature_rows, in_process, run_serve

METADATA = "/v1/models/model"
PREDICT = "/v1/models/model:predict"
LOOPBACK = trusted_proxies(["127.0.0.1/32"], None)
CLIENT = "203.0.113.7"  # the address the (played) proxy appends: the real client


@pytest.fixture(scope="module")
def served_root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("proxy") / "project")


@pytest.fixture(scope="module")
def behind_proxy(served_root: Path) -> Iterator[tuple[str, Any, Any]]:
    """127.0.0.1/32 trusted; limits wide enough that identity is all these requests test."""
    with in_process(served_root, proxies=LOOPBACK, **{"rate_limit.requests": 10_000}) as running:
        yield running


def identity(
    running: tuple[str, Any, Any],
    headers: list[tuple[str, str]],
    *,
    local: str = "127.0.0.1",
) -> str:
    """The identity the guard keyed a metadata request on (its log line's ``client``)."""
    url, _, capture = running
    transport = httpx.HTTPTransport(local_address=local)
    with httpx.Client(transport=transport, timeout=30) as client:
        response = client.get(url + METADATA, headers=headers)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    # The guard logs once the response is sent: wait for the line.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [r for r in capture.records() if r.get("request_id") == request_id]
        if lines:
            return str(lines[0]["client"])
        time.sleep(0.01)
    raise AssertionError(f"no log line for request {request_id}")


def xff(*values: str) -> list[tuple[str, str]]:
    return [("X-Forwarded-For", v) for v in values]


# (b) two clients behind the trusted proxy get separate budgets


def test_clients_behind_a_trusted_proxy_get_their_own_budgets(served_root: Path) -> None:
    """Three requests per 30 s per client: the proxy's connections carry two clients; the
    first's fourth request is refused (also when it forges a left-most address), the second's
    are served. Without the setting all six would be one client's (three 429s)."""
    body = {"instances": feature_rows(served_root, 1)}
    limits = {"rate_limit.requests": 3, "rate_limit.window_seconds": 30}
    with in_process(served_root, proxies=LOOPBACK, **limits) as (url, _, _):

        def send(forwarded: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            return httpx.post(url + PREDICT, json=body, headers=headers, timeout=30).status_code

        first = [send("198.51.100.1") for _ in range(3)]
        second = [send("198.51.100.2") for _ in range(3)]
        forged = send("192.0.2.99, 198.51.100.1")
        again = send("198.51.100.1")
    assert first == [200, 200, 200]
    assert second == [200, 200, 200]
    assert (forged, again) == (429, 429)


# (c) what a client behind the proxy controls: every byte left of the appended address


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(xff(CLIENT), f"addr:{CLIENT}", id="plain"),
        pytest.param(xff(f"192.0.2.1, 192.0.2.2, {CLIENT}"), f"addr:{CLIENT}", id="forged-left"),
        pytest.param(xff("192.0.2.1", "192.0.2.2", CLIENT), f"addr:{CLIENT}", id="three-headers"),
        pytest.param(
            xff(*[f"192.0.2.{i}" for i in range(200)], CLIENT), f"addr:{CLIENT}", id="200-headers"
        ),
        pytest.param(xff(f"127.0.0.1, {CLIENT}"), f"addr:{CLIENT}", id="forged-trusted-left"),
        pytest.param(xff(f"{CLIENT}, 127.0.0.1"), f"addr:{CLIENT}", id="trusted-hop-skipped"),
        pytest.param(xff(f"not-an-address, {CLIENT}"), f"addr:{CLIENT}", id="garbage-left"),
        pytest.param(xff(f"{CLIENT}:4711"), f"addr:{CLIENT}", id="port"),
        pytest.param(xff(f"::ffff:{CLIENT}"), f"addr:{CLIENT}", id="ipv4-mapped"),
        pytest.param(xff("2001:db8:1:2::1"), "addr:2001:db8:1:2::/64", id="ipv6-by-64"),
        pytest.param(xff("2001:db8:1:2:ffff::9"), "addr:2001:db8:1:2::/64", id="same-64"),
        pytest.param(xff("[2001:db8:1:2::1]:443"), "addr:2001:db8:1:2::/64", id="ipv6-port"),
        pytest.param(xff("2001:db8:1:2::1%eth0"), "addr:2001:db8:1:2::/64", id="zone-id"),
        pytest.param(xff("fe80::1%2"), "addr:fe80::/64", id="link-local-zone"),
        pytest.param(xff("192.0.2.1, 198.51.100.4%x"), "addr:198.51.100.4", id="ipv4-zone"),
        # What the proxy appended is no address: one shared identity, never the text.
        pytest.param(xff(f"{CLIENT}, not-an-address"), "addr:unknown", id="garbage-right"),
        pytest.param(xff("x" * 200), "addr:unknown", id="long-garbage"),
        # No usable header: the proxy's own address, as without the setting.
        pytest.param(xff(""), "addr:127.0.0.1", id="empty"),
        pytest.param([("Forwarded", f"for={CLIENT}")], "addr:127.0.0.1", id="forwarded-ignored"),
        pytest.param([("X-Real-IP", CLIENT)], "addr:127.0.0.1", id="x-real-ip-ignored"),
        pytest.param([], "addr:127.0.0.1", id="no-header"),
    ],
)
def test_the_right_most_untrusted_address_is_the_client(
    behind_proxy: tuple[str, Any, Any], headers: list[tuple[str, str]], expected: str
) -> None:
    assert identity(behind_proxy, headers) == expected


def test_a_huge_header_names_its_right_most_address(behind_proxy: tuple[str, Any, Any]) -> None:
    """4,000 forged addresses (about 60 KB: h11 caps only a head that arrives incomplete at
    16 KiB, so one read of it is parsed whole): the client is still the right-most. A 4 MB
    header is refused before the app (400, or the connection reset while it is still being
    sent), and the service answers the next request."""
    forged = ", ".join(str(ipaddress.IPv4Address(0xC6336400 + i)) for i in range(4000))
    assert len(forged) > 55_000
    assert identity(behind_proxy, xff(f"{forged}, {CLIENT}")) == f"addr:{CLIENT}"
    url, _, _ = behind_proxy
    huge = {"X-Forwarded-For": forged * 70}
    try:
        status = httpx.get(url + METADATA, headers=huge, timeout=30).status_code
    except httpx.HTTPError:
        status = 400
    assert status == 400
    assert identity(behind_proxy, xff(CLIENT)) == f"addr:{CLIENT}"


# (d) a connection not from a trusted proxy: its header is the attacker's, and ignored


@pytest.mark.parametrize(
    "headers",
    [
        xff(CLIENT),
        xff(f"{CLIENT}, 127.0.0.1"),
        xff("127.0.0.1"),
        xff("2001:db8::1"),
        [("Forwarded", f"for={CLIENT}"), ("X-Real-IP", CLIENT)],
    ],
    ids=["plain", "names-the-proxy-right", "claims-the-proxy", "ipv6", "other-headers"],
)
def test_an_untrusted_peers_forwarded_header_is_ignored(
    behind_proxy: tuple[str, Any, Any], headers: list[tuple[str, str]]
) -> None:
    assert identity(behind_proxy, headers, local="127.0.0.2") == "addr:127.0.0.2"


def test_an_ipv4_proxy_on_a_dual_stack_socket_is_trusted(served_root: Path) -> None:
    """With ``--host ::`` an IPv4 connection's peer is ``::ffff:a.b.c.d``: 127.0.0.1/32 must
    trust ``::ffff:127.0.0.1``, and 127.0.0.2 stays an untrusted client (counted as IPv4)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::ffff:127.0.0.1", 0))
    limits = {"rate_limit.requests": 10_000}
    with in_process(served_root, proxies=LOOPBACK, sock=sock, **limits) as running:
        assert identity(running, xff(CLIENT)) == f"addr:{CLIENT}"
        assert identity(running, xff(CLIENT), local="127.0.0.2") == "addr:127.0.0.2"


# (a) no setting: no forwarded header counts, whatever uvicorn's own variable says


def test_without_the_setting_no_header_counts_even_with_uvicorns_variable(
    served_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn trusts ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1) when no list is given:
    set to ``*`` in the service's environment, it must not make the header count."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    with in_process(served_root, **{"rate_limit.requests": 10_000}) as running:
        assert identity(running, xff(CLIENT)) == "addr:127.0.0.1"
        assert identity(running, xff(CLIENT), local="127.0.0.2") == "addr:127.0.0.2"


# The setting: strict values, which source wins


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("*", "refused: trusting every address"),
        ("0.0.0.0/0", "refused: a /0 network"),
        ("::/0", "refused: a /0 network"),
        ("0.0.0.0/1", "refused: a /1 network"),
        ("::ffff:0:0/96", "refused: a /96 network"),
        ("::/64", "refused: a /64 network"),
        ("2000::/3", "refused: a /3 network"),
        # Red team 10: wide global ranges, and tunnels any IPv4 host can send from.
        ("2001::/16", "refused: a /16 network, wider than /8 (IPv4) or /32"),
        ("2002::/16", "refused: a /16 network"),
        ("2a00::/24", "refused: a /24 network"),
        ("2001::/32", "refused: it overlaps Teredo (2001::/32)"),
        ("2001:0:4136:e378::/64", "refused: it overlaps Teredo"),
        ("2002:c000:204::/48", "refused: it overlaps 6to4 (2002::/16)"),
        ("2002:c000:204::1", "refused: it overlaps 6to4"),
        ("64:ff9b::/96", "refused: a /96 network"),
        ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
        ("proxy.internal", "expected an IP address or a network in CIDR form"),
        ("10.0.0.0/33", "expected an IP address or a network in CIDR form"),
        ("fe80::1%eth0", "without a zone id"),
        ("", "expected an IP address"),
    ],
)
def test_a_bad_value_is_refused_naming_the_flag_and_value(value: str, words: str) -> None:
    with pytest.raises(GatesError) as caught:
        trusted_proxies([value], None)
    message = str(caught.value)
    assert message.startswith(f"--trusted-proxy {value!r}: ")
    assert words in message


def test_the_variable_is_comma_separated_and_a_bad_item_is_named() -> None:
    parsed = trusted_proxies(None, " 10.0.0.0/8, 192.0.2.10 ,fd00::/8")
    assert [str(n) for n in parsed.networks] == ["10.0.0.0/8", "192.0.2.10/32", "fd00::/8"]
    assert parsed.source == ENV
    with pytest.raises(GatesError, match=rf"^{ENV}='10.0.0.0/8,', item 2, '': expected"):
        trusted_proxies(None, "10.0.0.0/8,")
    with pytest.raises(GatesError, match=r"item 2, '::/0': refused"):
        trusted_proxies(None, "10.0.0.0/8,::/0")
    assert trusted_proxies(None, "") == trusted_proxies(None, None) == TrustedProxies()


def test_a_provider_allocation_and_narrower_are_accepted() -> None:
    """Control for the /32 rule: a whole /32 (a provider's allocation), the documentation /32
    beside Teredo's, a NAT64 /104 (IPv4 /8), unique-local /7."""
    values = ["2a00:1450::/32", "2001:db8::/32", "2001:1::/32", "64:ff9b::a00:0/104", "fc00::/7"]
    assert [str(n) for n in trusted_proxies(values, None).networks] == values


def test_the_flag_replaces_the_variable() -> None:
    parsed = trusted_proxies(["192.0.2.10", "fc00::/7"], "garbage, ::/0")
    assert [str(n) for n in parsed.networks] == ["192.0.2.10/32", "fc00::/7"]
    assert parsed.source == "--trusted-proxy"


def test_an_ipv4_network_is_trusted_in_its_ipv4_mapped_form_too() -> None:
    """A dual-stack socket reports an IPv4 proxy as ::ffff:a.b.c.d: trusting 10.0.0.0/8 must
    trust it so, and a mapped network the plain one."""
    parsed = trusted_proxies(["10.0.0.0/8", "::ffff:192.0.2.0/120", "fd00::/8"], None)
    assert parsed.allow_ips() == [
        "10.0.0.0/8",
        "::ffff:a00:0/104",
        "::ffff:c000:200/120",
        "192.0.2.0/24",
        "fd00::/8",
    ]


def test_the_command_refuses_a_bad_value_before_it_verifies(served_root: Path) -> None:
    flag = run_serve(served_root, "--key", ".keys/dev-signing.pub", "--trusted-proxy", "*")
    assert flag.returncode == 2
    assert flag.stderr.startswith("error: --trusted-proxy '*': refused")
    assert flag.stderr.count("\n") == 1
    assert "Traceback" not in flag.stderr


def test_the_command_refuses_a_bad_variable(
    served_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "10.0.0.1/8")
    refused = run_serve(served_root, "--key", ".keys/dev-signing.pub")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: {ENV}='10.0.0.1/8', item 1, '10.0.0.1/8': expected an IP address or a "
        "network in CIDR form with its host bits zero (e.g. 10.0.0.0/8, 192.0.2.10, fd00::/8) "
        "(did you mean 10.0.0.0/8?)\n"
    )


def test_the_command_serves_behind_the_flags_proxy_over_the_variable(
    served_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --trusted-proxy 127.0.0.1/32`` with a variable that would be refused: the flag
    wins, the start is logged with the setting, and the header names the client."""
    import json

    monkeypatch.setenv(ENV, "::/0")
    args = ("--key", ".keys/dev-signing.pub", "--trusted-proxy", "127.0.0.1/32")
    with cli_server(served_root, *args) as server:
        forwarded = httpx.get(server.url + METADATA, headers=dict(xff(CLIENT)), timeout=30)
        assert forwarded.status_code == 200
        request_id = forwarded.headers["x-request-id"]
        log = server.stop()
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    [start] = [x for x in lines if x.get("event") == "serving"]
    assert start["trusted_proxies"] == ["127.0.0.1/32"]
    assert start["trusted_proxies_from"] == "--trusted-proxy"
    [line] = [x for x in lines if x.get("request_id") == request_id]
    assert line["client"] == f"addr:{CLIENT}"
