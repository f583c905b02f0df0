"""Red team 15, held: a pull request switching ``[data.checks.association].neighbour_trend``.

With it on, an in-range trigger at a corner that a class's clean rows rise toward passed
beside far outliers (0 of 24 rows flagged: ``tests/attacks/test_outlier_leverage.py``, the
reason 8c42afd reverted it to opt-in; trendsafe bounded the trend and made it the default,
and an attacker who plants rows beside a trigger can still make it absorb one), so switching
it is a relaxation one way and loud false failures the other. The verdict lists it
as any other changed key (GATE017, both values), so it is held the way other relaxations are:
a warning without ``[roles].approvers``, an approver's signature with them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _copy(root: Path, text: str) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    (root / "policy.toml").write_text(text, encoding="utf-8")
    return root


def test_switching_neighbour_trend_is_a_listed_policy_change(tmp_path: Path) -> None:
    # On by default since trendsafe (its trend held to what the neighbouring cells' rows
    # support); either way, a pull request that flips it is listed, from a base that sets it or
    # one that leaves it at the default.
    from gates.policy_change import changes, snapshot
    from pipeline.config import load_policy

    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    committed = "neighbour_trend = true "
    assert committed in text
    base = _copy(tmp_path / "base", text)
    for value, other in (("false", "true"), ("true", "false")):
        pr = _copy(tmp_path / f"pr-{value}", text.replace(committed, f"neighbour_trend = {value} "))
        found = changes(
            snapshot(load_policy(base / "policy.toml")), snapshot(load_policy(pr / "policy.toml"))
        )
        expected = (
            [] if value == "true" else [("data.checks.association.neighbour_trend", other, value)]
        )
        assert [(c.key, c.base, c.request) for c in found] == expected
    # A base without the key (the default, on) against a request that switches it off.
    bare = _copy(tmp_path / "bare", text.replace(committed, "# "))
    off = _copy(tmp_path / "off", text.replace(committed, "neighbour_trend = false "))
    found = changes(
        snapshot(load_policy(bare / "policy.toml")), snapshot(load_policy(off / "policy.toml"))
    )
    assert [(c.key, c.request) for c in found] == [
        ("data.checks.association.neighbour_trend", "false")
    ]
    # And a base that had it off against a request that switches it on.
    found = changes(
        snapshot(load_policy(off / "policy.toml")), snapshot(load_policy(base / "policy.toml"))
    )
    assert [(c.key, c.base, c.request) for c in found] == [
        ("data.checks.association.neighbour_trend", "false", "true")
    ]
