"""Red team 15: the contract's column order, which no policy comparison sees (row 105).

The verdict compares a pull request's ``policy.toml`` with the base branch's by meaning: parsed
TOML flattened to dotted keys, so the order of the keys is no change (GATE017 lists nothing).
But the data gate read that order in two places. DATA043's class-moments baseline records the
numeric columns as a tuple and skipped the test (a warning) when the contract's tuple differed;
and each approved row's digest joins the features in the contract's order, so after a reorder
no row of the base branch's lock was approved any more and the batch screen (DATA100-DATA108)
did not run (a note). A pull request that shifts a class's mean and swaps two lines of
``[data.columns]`` passed the data gate against the base branch's lock.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = "data/breast_cancer.lock.json"
DATA = "data/breast_cancer.csv"


def _copy(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return root


def _approve(root: Path, *, rebaseline: bool = False) -> str:
    from gates.approve import approve
    from pipeline.config import load_policy

    out = io.StringIO()
    code = approve(load_policy(root / "policy.toml"), out=out, rebaseline=rebaseline)
    assert code == 0, out.getvalue()
    return out.getvalue()


def _reorder(root: Path) -> None:
    """Swap the ``mean_radius`` and ``mean_texture`` lines of ``[data.columns]``: the same
    contract by meaning."""
    path = root / "policy.toml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("mean_radius = "))
    second = next(i for i, line in enumerate(lines) if line.startswith("mean_texture = "))
    lines[first], lines[second] = lines[second], lines[first]
    path.write_text("".join(lines), encoding="utf-8")


def _shift(root: Path) -> None:
    """40 benign rows: mean_radius up and mean_perimeter down, 0.4 SD each (correlated 0.998,
    each marginal barely moves): the shift DATA043 exists for (tests/attacks/test_poisoning.py)."""
    path = root / DATA
    frame = pd.read_csv(path)
    rows = frame.index[frame["diagnosis"] == "benign"][:40]
    for name, sign in (("mean_radius", 1.0), ("mean_perimeter", -1.0)):
        frame.loc[rows, name] = (frame.loc[rows, name] + sign * 0.4 * frame[name].std()).round(5)
    frame.to_csv(path, index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code (class moments recorded)."""
    root = _copy(tmp_path_factory.mktemp("rt15-order") / "base")
    _approve(root, rebaseline=True)
    return root


def _pull_request(base: Path, tmp_path: Path, *, reorder: bool) -> Path:
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    _shift(pr)
    if reorder:
        _reorder(pr)
    _approve(pr)  # the author re-approves: the lock matches the data
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from gates.base import RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    monkeypatch.setenv("GATES_APPROVED_LOCK", str(base / LOCK))
    context = RunContext(
        policy=load_policy(pr / "policy.toml"), run_id="rt15", reports_dir=pr / "r"
    )
    return DataGate().run(context)


def _errors(outcome: Any) -> dict[str, str]:
    return {f.rule: f.message for f in outcome.findings if f.severity.value == "error"}


def test_the_reorder_is_no_policy_change(base: Path, tmp_path: Path) -> None:
    """Why the attack is silent: the verdict's comparison lists nothing for it."""
    from gates.policy_change import changes, snapshot
    from pipeline.config import load_policy

    before = _copy(tmp_path / "base")
    pr = _copy(tmp_path / "pr")
    _reorder(pr)
    assert (pr / "policy.toml").read_bytes() != (before / "policy.toml").read_bytes()
    found = changes(
        snapshot(load_policy(before / "policy.toml")), snapshot(load_policy(pr / "policy.toml"))
    )
    assert found == []


def test_control_the_class_shift_fails_data043(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _gate(_pull_request(base, tmp_path, reorder=False), base, monkeypatch)
    assert "DATA043" in _errors(outcome), _errors(outcome)


def test_a_reordered_contract_still_runs_the_class_mean_test(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _gate(_pull_request(base, tmp_path, reorder=True), base, monkeypatch)
    errors = _errors(outcome)
    assert outcome.status.value == "FAILED"
    assert "DATA043" in errors, [f"{f.rule} {f.message}" for f in outcome.findings]
    assert "Hotelling" in errors["DATA043"]


def test_a_reordered_contract_keeps_the_approved_rows_approved(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch screen still knows which rows the base branch approved: only the 40 shifted
    rows are new."""
    outcome = _gate(_pull_request(base, tmp_path, reorder=True), base, monkeypatch)
    batch = outcome.metrics.get("batch", {})
    assert "skipped" not in batch, batch
    assert batch.get("new_rows") == 40, batch


def test_a_changed_numeric_column_set_tests_the_columns_both_record(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contract that drops a numeric column (a visible policy change) still tests the class
    means on the columns the approved moments and the contract share: the marginal of the
    recorded mean and covariance."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    _shift(pr)
    path = pr / "policy.toml"
    text = path.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines(keepends=True) if x.startswith("worst_symmetry = "))
    path.write_text(text.replace(line, ""), encoding="utf-8")
    frame = pd.read_csv(pr / DATA).drop(columns=["worst_symmetry"])
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    _approve(pr)
    outcome = _gate(pr, base, monkeypatch)
    errors = _errors(outcome)
    assert "DATA043" in errors, [f"{f.rule} {f.message}" for f in outcome.findings]
    assert np.isfinite(outcome.metrics["rows"])


@pytest.mark.parametrize("value", ["id", ["a", 1], ["a", "a"], {"a": 1}])
def test_a_malformed_digest_order_makes_the_lock_malformed(value: Any) -> None:
    from pipeline.profile import DataProfile

    document = DataProfile(rows=1, columns={}, class_balance={}, row_digests={"1": "0" * 16})
    data = {**document.to_dict(), "digest_columns": value}
    with pytest.raises(ValueError, match="digest_columns"):
        DataProfile.from_dict(data)
