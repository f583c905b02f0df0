"""Red team 14: ``/metrics`` served to a host that names itself loopback (row 88).

Without a metrics token ``/metrics`` answers loopback clients only (row 86), the address read
after the trusted proxies' ``X-Forwarded-For``. A trusted network is up to a /8 (the
deployment's proxies, often the cluster's pod range), and any host in it may write the header:
one that sent ``X-Forwarded-For: 127.0.0.1`` itself was taken for a loopback client and read
every client's figures. And a proxy on another host that names ``127.0.0.1`` names its own
host's loopback, not this one's. Now a loopback client counts only when the connection itself
comes from loopback too (a sidecar, ``kubectl port-forward``, a proxy on this host).

The real service (uvicorn) listening on every address; the test reaches it through this
machine's own non-loopback address, so the connection's peer is that address, named as the
trusted proxy.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from gates.service.auth import METRICS_ENV
from gates.service.proxies import trusted_proxies
from tests.release_support import copy_project
from tests.serve_support import in_process

FIGURE = "gates_serve_predictions_total"  # a family only the figures hold
WIDE = {"rate_limit.requests": 10_000}


@pytest.fixture(scope="module")
def root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("rt14-metrics") / "project")


def _own_address() -> str:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        address = str(probe.getsockname()[0])
    except OSError as err:
        pytest.skip(f"no non-loopback IPv4 address to connect from: {err}")
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip(f"the default route's address is loopback ({address})")
    return address


def test_a_trusted_host_writing_loopback_into_the_header_gets_no_figures(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth off, no token; this machine's own address is the trusted proxy. A request from it
    naming ``127.0.0.1`` (or ``::1``) in ``X-Forwarded-For`` is 403 without figures (200 with
    them before); from it with no header (the proxy's own address, not loopback) 403 as
    before; a connection on loopback is served, also when a proxy there names a loopback
    client (row 86's case)."""
    monkeypatch.delenv(METRICS_ENV, raising=False)
    address = _own_address()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", 0))  # noqa: S104 - reached through both addresses on purpose
    port = int(sock.getsockname()[1])
    proxies = trusted_proxies([f"{address}/32", "127.0.0.1/32"], None)
    with (
        in_process(root, proxies=proxies, sock=sock, **WIDE),
        httpx.Client(base_url=f"http://{address}:{port}", timeout=30) as elsewhere,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as local,
    ):
        forged = [
            elsewhere.get("/metrics", headers={"X-Forwarded-For": name})
            for name in ("127.0.0.1", "::1", "::ffff:127.0.0.1")
        ]
        plain = elsewhere.get("/metrics")
        served = [
            local.get("/metrics"),
            local.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}),
        ]
    for response in (*forged, plain):
        assert response.status_code == 403, response.text[:300]
        assert FIGURE not in response.text
        assert METRICS_ENV in response.json()["detail"]
    assert [r.status_code for r in served] == [200, 200]
    assert all(FIGURE in r.text for r in served)
