"""Red team 15: a table padded past ``[data].stream_above_mb`` to leave DATA043 behind (row 106).

Which path the data gate takes is decided by the data file's size, and the pull request writes
the file. The streaming path (above ``stream_above_mb``) ran no class-mean test (DATA043), and
said nothing about it when the approved lock records class moments: the DATA043 warning is
given only for a lock without them. A table of a few hundred rows whose numbers carry leading
zeros (``0000...0012.5`` is 12.5 to the contract) crosses the threshold with the same values:
the class-conditional shift DATA043 fails in memory passed.

Here the project's threshold is 0.5 MiB (base branch and pull request alike: no policy change)
and the committed 127 KB table is padded to about 0.9 MiB; with the default 256 MiB the same
padding is 2 KB... per cell, within ``max_file_mb``.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = "data/breast_cancer.lock.json"
DATA = "data/breast_cancer.csv"
THRESHOLD = "stream_above_mb = 0.5"


def _copy(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    assert "stream_above_mb = 256.0" in text
    (root / "policy.toml").write_text(
        text.replace("stream_above_mb = 256.0", THRESHOLD), encoding="utf-8"
    )
    return root


def _approve(root: Path, *, rebaseline: bool = False) -> str:
    from gates.approve import approve
    from pipeline.config import load_policy

    out = io.StringIO()
    code = approve(load_policy(root / "policy.toml"), out=out, rebaseline=rebaseline)
    assert code == 0, out.getvalue()
    return out.getvalue()


def _shift(frame: pd.DataFrame) -> pd.DataFrame:
    """40 benign rows: mean_radius up and mean_perimeter down, 0.4 SD each (correlated 0.998):
    the shift DATA043 exists for (tests/attacks/test_poisoning.py)."""
    rows = frame.index[frame["diagnosis"] == "benign"][:40]
    for name, sign in (("mean_radius", 1.0), ("mean_perimeter", -1.0)):
        frame.loc[rows, name] = (frame.loc[rows, name] + sign * 0.4 * frame[name].std()).round(5)
    return frame


def _write(frame: pd.DataFrame, path: Path, *, pad: int) -> None:
    """The table as CSV, every feature cell after ``pad`` leading zeros (the same number)."""
    text = frame.astype(str)
    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    text[features] = ("0" * pad) + text[features]
    text.to_csv(path, index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed table (in memory: 127 KB) approved by this code."""
    root = _copy(tmp_path_factory.mktemp("rt15-stream") / "base")
    _approve(root, rebaseline=True)
    return root


def _pull_request(base: Path, tmp_path: Path, *, pad: int) -> Path:
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = _shift(pd.read_csv(pr / DATA))
    _write(frame, pr / DATA, pad=pad)
    _approve(pr)  # the author re-approves: the lock matches the data
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from gates.base import RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    monkeypatch.setenv("GATES_APPROVED_LOCK", str(base / LOCK))
    context = RunContext(
        policy=load_policy(pr / "policy.toml"), run_id="rt15", reports_dir=pr / "reports"
    )
    return DataGate().run(context)


def _errors(outcome: Any) -> dict[str, str]:
    return {f.rule: f.message for f in outcome.findings if f.severity.value == "error"}


def test_control_in_memory_the_shift_fails_data043(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pr = _pull_request(base, tmp_path, pad=0)
    assert (pr / DATA).stat().st_size < 0.5 * 2**20
    outcome = _gate(pr, base, monkeypatch)
    assert "DATA043" in _errors(outcome), [f"{f.rule} {f.message}" for f in outcome.findings]


def test_padded_past_the_threshold_the_shift_still_fails_data043(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pr = _pull_request(base, tmp_path, pad=40)
    assert (pr / DATA).stat().st_size > 0.5 * 2**20  # the streaming path
    outcome = _gate(pr, base, monkeypatch)
    assert outcome.metrics.get("streaming"), outcome.metrics
    errors = _errors(outcome)
    assert outcome.status.value == "FAILED", [f"{f.rule} {f.message}" for f in outcome.findings]
    assert "DATA043" in errors, [f"{f.rule} {f.message}" for f in outcome.findings]
    assert "Hotelling" in errors["DATA043"]


def test_padded_past_the_threshold_the_new_rows_are_still_screened(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch screen (DATA100-DATA108) needs the rows in memory; the sample holds every row
    of this table, so it runs: the 40 changed rows are screened against the 529 approved
    ones (before: no batch screen, no note)."""
    pr = _pull_request(base, tmp_path, pad=40)
    outcome = _gate(pr, base, monkeypatch)
    batch = outcome.metrics.get("batch", {})
    assert batch.get("new_rows") == 40, batch
    assert batch.get("approved_rows") == 529, batch
    assert batch.get("trusted") is True, batch
