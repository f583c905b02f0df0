"""The operator's trusted proxies: whose ``X-Forwarded-For`` names the client.

The service keys its rate limits and in-flight caps on the client's address (auth off). Behind
a load balancer every connection comes from the balancer, so the operator names the proxies'
addresses, with ``serve --trusted-proxy CIDR`` (repeatable) or ``GATES_TRUSTED_PROXIES``
(comma-separated); any ``--trusted-proxy`` replaces the variable. Never from ``policy.toml``:
a pull request writes that file, and the proxy's address is a fact of the deployment that a
change must not be able to widen.

Only a connection from one of these addresses has its ``X-Forwarded-For`` read, by uvicorn's
``ProxyHeadersMiddleware`` (the combined header's right-most address not in the trusted set);
every other connection is its peer address, as without the setting. A value that is not an
address or network, a network with host bits set, ``*``, and networks wide enough to take in
the open internet are refused: shorter than /8 for IPv4 (also as IPv4-mapped or NAT64
``64:ff9b::/96`` addresses; a network in NAT64's local-use ``64:ff9b:1::/48`` wider than
/104), shorter than /32 for IPv6 outside fc00::/7 (a provider's whole
allocation at its widest), and any part of Teredo ``2001::/32`` or 6to4 ``2002::/16``, whose
addresses wrap an IPv4 host's, so any host on the IPv4 internet can send from one (red team
10: ``2001::/16`` and ``2002::/16`` were accepted). Any host in a trusted network can pick the
identity the limits key on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass

from gates.errors import GatesError

ENV = "GATES_TRUSTED_PROXIES"
FLAG = "--trusted-proxy"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")  # IPv4-mapped IPv6 addresses
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # IPv4 hosts behind a NAT64 gateway (RFC 6052)
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
# NAT64's local-use prefix (RFC 8215): an operator's translator puts IPv4 hosts anywhere in
# it (RFC 6052's /32 to /96 layouts), so a trusted network in it must be /104 or narrower: at
# most an IPv4 /8 whatever the layout (red team 11; row 59 left it open).
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_NARROWEST_LOCAL_NAT64 = 104
# Tunnels whose addresses embed any IPv4 host's: refused whatever their width.
_TUNNELS = {
    "Teredo": ipaddress.IPv6Network("2001::/32"),
    "6to4": ipaddress.IPv6Network("2002::/16"),
}
_WIDEST_V4 = 8
_WIDEST_V6 = 32


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose forwarded header is read, and where the operator set them."""

    networks: tuple[_Network, ...] = ()
    source: str = "none"

    def allow_ips(self) -> list[str]:
        """uvicorn's ``forwarded_allow_ips``: every network, an IPv4 one also in its
        IPv4-mapped IPv6 form (the peer a dual-stack socket reports for an IPv4 client, and
        how a proxy on one may write it in the header)."""
        allowed: list[str] = []
        for network in self.networks:
            allowed.append(str(network))
            if isinstance(network, ipaddress.IPv4Network):
                mapped = int(_MAPPED.network_address) | int(network.network_address)
                allowed.append(f"{ipaddress.IPv6Address(mapped)}/{96 + network.prefixlen}")
            elif network.subnet_of(_MAPPED):
                plain = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
                allowed.append(f"{plain}/{network.prefixlen - 96}")
        return allowed


def from_operator(flags: Sequence[str] | None) -> TrustedProxies:
    """The setting from the command line's ``--trusted-proxy`` values, else the environment."""
    return trusted_proxies(flags, os.environ.get(ENV))


def trusted_proxies(flags: Sequence[str] | None, env: str | None) -> TrustedProxies:
    """The setting from the ``--trusted-proxy`` values (which win) or ``GATES_TRUSTED_PROXIES``
    (unset or empty: none); GatesError naming the flag or variable, the value and what was
    expected, for the first value that is not one."""
    if flags:
        return TrustedProxies(tuple(_network(v, FLAG) for v in flags), FLAG)
    if env is None or not env.strip():
        return TrustedProxies()
    values = [v.strip() for v in env.split(",")]
    where = [f"{ENV}={env[:200]!r}, item {n}," for n in range(1, len(values) + 1)]
    return TrustedProxies(tuple(_network(v, w) for v, w in zip(values, where, strict=True)), ENV)


def _network(value: str, where: str) -> _Network:
    expected = (
        "an IP address or a network in CIDR form with its host bits zero "
        "(e.g. 10.0.0.0/8, 192.0.2.10, fd00::/8)"
    )
    shown = repr(value[:100])
    if value.strip() == "*":
        msg = (
            f"{where} {shown}: refused: trusting every address lets any client on the "
            f"internet pick the identity the rate limits key on; expected {expected} of the "
            "proxies in front of the service"
        )
        raise GatesError(msg)
    if not value or "%" in value:
        msg = f"{where} {shown}: expected {expected}" + (
            ", without a zone id" if "%" in value else ""
        )
        raise GatesError(msg)
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        hint = ""
        if "host bits set" in str(err):
            hint = f" (did you mean {ipaddress.ip_network(value, strict=False)}?)"
        msg = f"{where} {shown}: expected {expected}{hint}"
        raise GatesError(msg) from None
    if _too_wide(network):
        msg = (
            f"{where} {shown}: refused: a /{network.prefixlen} network, wider than /"
            f"{_WIDEST_V4} (IPv4) or /{_WIDEST_V6} (IPv6, fc00::/7 aside): every host in it "
            "could pick the identity the rate limits key on; expected the proxies' own "
            "addresses"
        )
        raise GatesError(msg)
    tunnel = next((n for n, t in _TUNNELS.items() if network.overlaps(t)), None)
    if tunnel is not None:
        msg = (
            f"{where} {shown}: refused: it overlaps {tunnel} ({_TUNNELS[tunnel]}), whose "
            "addresses wrap an IPv4 host's: any host on the internet could send from one and "
            "pick the identity the rate limits key on; expected the proxies' own addresses"
        )
        raise GatesError(msg)
    return network


def _too_wide(network: _Network) -> bool:
    if isinstance(network, ipaddress.IPv4Network):
        return network.prefixlen < _WIDEST_V4
    if network.overlaps(_LOCAL_NAT64):
        return network.prefixlen < _NARROWEST_LOCAL_NAT64
    # IPv4 clients, as a dual-stack socket or a NAT64 gateway presents them.
    for wrapped in (_MAPPED, _NAT64):
        if network.overlaps(wrapped):
            if not network.subnet_of(wrapped):
                return True  # every IPv4 address and more
            return network.prefixlen - wrapped.prefixlen < _WIDEST_V4
    return network.prefixlen < _WIDEST_V6 and not network.subnet_of(_UNIQUE_LOCAL)
