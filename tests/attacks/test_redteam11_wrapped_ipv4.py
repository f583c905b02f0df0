"""Red team 11: IPv6 addresses that wrap an IPv4 host's, as the limits key them.

Row 59 refuses Teredo, 6to4 and NAT64 networks as trusted proxies; the client identity the
limits key on (``gates.service.app._peer``) still read any such address as an IPv6 host's, by
its /64, so (checked through the real service on loopback, 127.0.0.1 playing the trusted proxy
that appends the connection's address, as ``test_trusted_proxy`` does):

- a 6to4 host owns the whole ``2002:<its IPv4>::/48``, 65,536 /64s: as many identities, so as
  many request limits, row budgets and in-flight caps (row 36's attack, 256 times wider);
- every IPv4 client a translator presents under NAT64's ``64:ff9b::/96`` (SIIT-DC in front of
  an IPv6-only service) fell in one /64, ``64:ff9b::/64``: one identity for all of them, so one
  greedy IPv4 client spent every other's limits (row 46's attack);
- every Teredo client of one Teredo server (``2001:0:<server>::/64``) was one identity too.

Each is now keyed by the IPv4 address it wraps (the 6to4 host's, the translated client's, the
Teredo client's outside address), as an IPv4-mapped address already was. Red before: the five
wrapped cases below were keyed by their /64.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attacks.test_trusted_proxy import LOOPBACK, identity, xff
from tests.release_support import copy_project
from tests.serve_support import in_process


@pytest.fixture(scope="module")
def behind_proxy(
    passed_chain: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Any, Any]]:
    root = copy_project(passed_chain, tmp_path_factory.mktemp("wrapped") / "project")
    with in_process(root, proxies=LOOPBACK, **{"rate_limit.requests": 10_000}) as running:
        yield running


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        # 192.0.2.4's 6to4 /48: two of its 65,536 /64s, one host.
        pytest.param("2002:c000:204:1::1", "addr:192.0.2.4", id="6to4-one-subnet"),
        pytest.param("2002:c000:204:ffff::9", "addr:192.0.2.4", id="6to4-another-subnet"),
        # Two IPv4 clients behind a NAT64/SIIT translator: two identities, not one /64.
        pytest.param("64:ff9b::c000:204", "addr:192.0.2.4", id="nat64-one-client"),
        pytest.param("64:ff9b::c633:6407", "addr:198.51.100.7", id="nat64-another-client"),
        # RFC 4380's example: server 65.54.227.120, client 192.0.2.45 behind its NAT.
        pytest.param("2001:0:4136:e378:8000:63bf:3fff:fdd2", "addr:192.0.2.45", id="teredo-client"),
        # Controls: an ordinary IPv6 host by its /64, a mapped IPv4 address as IPv4.
        pytest.param("2001:db8:1:2::1", "addr:2001:db8:1:2::/64", id="plain-ipv6"),
        pytest.param("::ffff:192.0.2.4", "addr:192.0.2.4", id="ipv4-mapped"),
    ],
)
def test_an_address_wrapping_an_ipv4_host_is_that_host(
    behind_proxy: tuple[str, Any, Any], client: str, expected: str
) -> None:
    assert identity(behind_proxy, xff(client)) == expected
