"""Red team 11: a trusted proxy range in NAT64's local-use prefix, ``64:ff9b:1::/48``.

Row 59 holds NAT64's well-known prefix ``64:ff9b::/96`` to IPv4's /8 (at least /104) and named
the local-use prefix (RFC 8215) as not covered: ``serve --trusted-proxy 64:ff9b:1::/48`` or
``64:ff9b:1::/96`` was accepted, and an operator's translator presents IPv4 clients anywhere in
it (RFC 6052's /32 to /96 layouts), so every IPv4 host on the internet could connect from a
trusted address and pick the identity the limits key on. Any network overlapping it must now
be /104 or narrower, which is at most an IPv4 /8 whatever the layout. Run through the real
command in a folder holding only the policy: the refusal comes before anything is verified.
Red before: each of the three was accepted (the command went on to the release key: exit 2
``keys/release.pub: public key not found``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.serve_support import run_serve


@pytest.mark.parametrize("value", ["64:ff9b:1::/48", "64:ff9b:1::/96", "64:ff9b:1:a00::/56"])
def test_a_local_use_nat64_range_is_refused(tmp_path: Path, value: str) -> None:
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    done = run_serve(tmp_path, "--trusted-proxy", value)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: --trusted-proxy {value!r}: refused: a /"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_a_narrow_local_use_nat64_range_is_accepted(tmp_path: Path) -> None:
    """Control: a /104 (an IPv4 /8 at most) passes the setting; the command stops later, at
    the release key this folder does not hold."""
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    done = run_serve(tmp_path, "--trusted-proxy", "64:ff9b:1::a00:0/104")
    assert done.returncode == 2, done.stderr
    assert "--trusted-proxy" not in done.stderr, done.stderr
    assert "keys/release.pub" in done.stderr, done.stderr
