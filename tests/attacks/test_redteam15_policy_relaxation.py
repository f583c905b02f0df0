"""Red team 15, held: a pull request switching ``[data.checks.association].neighbour_trend`` on.

With it on, an in-range trigger at a corner that a class's clean rows rise toward passed
beside far outliers (0 of 24 rows flagged: ``tests/attacks/test_outlier_leverage.py``, the
reason 8c42afd reverted it to opt-in), so switching it on is a relaxation. The verdict lists it
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


def test_switching_neighbour_trend_on_is_a_listed_policy_change(tmp_path: Path) -> None:
    from gates.policy_change import changes, snapshot
    from pipeline.config import load_policy

    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    base = _copy(tmp_path / "base", text)
    on = "neighbour_trend = true "
    assert "neighbour_trend = false " in text
    pr = _copy(tmp_path / "pr", text.replace("neighbour_trend = false ", on))
    found = changes(
        snapshot(load_policy(base / "policy.toml")), snapshot(load_policy(pr / "policy.toml"))
    )
    assert [(c.key, c.base, c.request) for c in found] == [
        ("data.checks.association.neighbour_trend", "false", "true")
    ]
    # A base without the key (the default, off) against a request that adds it on.
    bare = _copy(tmp_path / "bare", text.replace("neighbour_trend = false ", "# "))
    found = changes(
        snapshot(load_policy(bare / "policy.toml")), snapshot(load_policy(pr / "policy.toml"))
    )
    assert [(c.key, c.request) for c in found] == [
        ("data.checks.association.neighbour_trend", "true")
    ]
