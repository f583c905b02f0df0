"""Red team 18: the whole-table trend from every row when the batch screen does not run (rows 153-154).

DATA071 (``pipeline.targeted.associations``) raises a cell's expectation by its neighbouring
cells' trend. Since trend18 that trend is measured on the rows the trusted lock approved, so
rows a pull request plants in the cells beside a trigger make none
(``tests/attacks/test_outlier_leverage.py``). The approved rows came from the batch screen
only: with ``[data.checks.batch].enabled = false`` in the pull request's policy (the documented
way to replace a snapshot on purpose, a change the verdict lists) the trend fell back to every
row, planted ones included, and the trigger passed the data gate again.

The trend's rows are now the trusted lock's approved rows on their own
(``gates.data_integrity.trend_rows``, the batch screen's matching by id, else by content),
whether or not the batch screen runs; with fewer than 50 of them or under half the table's rows
the trend is every row's, as before (a weak trend flags clean clustered classes).

Here the protected branch is a clean clustered table of 2,000 rows (``make_classification``,
the one of ``tests/pipeline/test_targeted.py``) under the committed policy, approved; the pull
request keeps every approved row, plants a 40-row trigger (x0 at its 95th percentile, x1 at
its 5th, label 'a' on rows of 'b') and ``made`` rows of 'a' in each of the next two cells on
the line out of it, and turns the batch screen off. Its data gate runs against the protected
branch's lock (``$GATES_APPROVED_LOCK``), as CI runs it.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
NAMES = tuple(f"x{j}" for j in range(6))
DATA = "data/clustered.csv"
LOCK = "data/clustered.lock.json"


def _frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=list(NAMES))
    frame.insert(0, "id", np.arange(1, len(y) + 1))
    frame["y"] = np.where(y == 0, "a", "b")
    return frame


def _policy(*, stream: bool = False) -> str:
    """The committed policy with the clustered table's [data] head and columns."""
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    start, end = text.index("[data]\n"), text.index("# Poisoning defences of the data gate")
    columns = "\n".join(f'{n} = {{ dtype = "float64" }}' for n in NAMES)
    head = (
        f'[data]\npath = "{DATA}"\nlock = "{LOCK}"\nchecksums = "data/SHA256SUMS"\n'
        'label = "y"\nclasses = ["a", "b"]\npositive_class = "b"\nid_column = "id"\n'
        "min_rows = 400\nmax_rows = 100000\nholdout_fraction = 0.2\n"
        f"stream_above_mb = {0.01 if stream else 256.0}\nstream_chunk_rows = 100000\n"
        "stream_chunk_mb = 256.0\n\n"
        f'[data.columns]\nid = {{ dtype = "int64", min = 1, unique = true }}\n{columns}\n\n'
    )
    return text[:start] + head + text[end:]


def _approve(root: Path, *, rebaseline: bool = False) -> None:
    from gates.approve import approve
    from pipeline.config import load_policy

    out = io.StringIO()
    code = approve(load_policy(root / "policy.toml"), out=out, rebaseline=rebaseline)
    assert code == 0, out.getvalue()


def _project(root: Path, frame: pd.DataFrame, *, policy: str) -> Path:
    (root / "data").mkdir(parents=True)
    shutil.copytree(REPO / "keys", root / "keys")
    frame.to_csv(root / DATA, index=False, lineterminator="\n")
    (root / "policy.toml").write_text(policy, encoding="utf-8")
    return root


def _base(tmp: Path, seed: int, *, stream: bool = False) -> Path:
    from tests.pipeline.test_targeted import _clustered

    x, y = _clustered(seed=seed)
    root = _project(tmp / "base", _frame(x, y), policy=_policy(stream=stream))
    _approve(root, rebaseline=True)
    return root


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from gates.base import RunContext
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    monkeypatch.setenv("GATES_APPROVED_LOCK", str(base / LOCK))
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    context = RunContext(policy=load_policy(pr / "policy.toml"), run_id="t19", reports_dir=pr / "r")
    return DataGate().run(context)


def _pull_request(
    tmp: Path, base: Path, frame: pd.DataFrame, *, batch: bool = False, stream: bool = False
) -> Path:
    policy = _policy(stream=stream)
    if not batch:
        on = re.compile(r"^(\[data\.checks\.batch\][^\n]*\nenabled = )true$", re.MULTILINE)
        policy, n = on.subn(r"\1false", policy)
        assert n == 1
    pr = _project(tmp / "pr", frame, policy=policy)
    _approve(pr)
    return pr


def _trigger_table(seed: int, made: int) -> tuple[pd.DataFrame, np.ndarray]:
    from tests.pipeline.test_targeted import _clustered, _trigger_beside_a_made_trend

    x, y = _clustered(seed=seed)
    trigger, _ = _trigger_beside_a_made_trend(x, y, made)
    return _frame(x, y), trigger + 1  # ids


def _flagged_ids(outcome: Any, rule: str) -> set[int]:
    text = " ".join(f.message for f in outcome.findings if f.rule == rule)
    return {int(i) for i in re.findall(r"\d+", text)}


def _rules(outcome: Any) -> set[str]:
    return {f.rule for f in outcome.findings if f.severity.name == "ERROR"}


def _nudged(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """The last ``share`` of the rows with x0 one ulp up: each such row is new to the lock."""
    frame = frame.copy()
    rows = frame.index[len(frame) - round(share * len(frame)) :]
    frame.loc[rows, "x0"] = np.nextafter(frame.loc[rows, "x0"].to_numpy(), np.inf)
    return frame


@pytest.mark.parametrize(("seed", "made"), [(3, 4), (2, 8)])
@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streaming"])
def test_a_trend_planted_beside_a_trigger_fails_the_gate_with_the_batch_screen_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, made: int, stream: bool
) -> None:
    """Before: PASSED, no finding (the trend from every row absorbed the trigger: DATA071 0 of
    40). The streaming path's sample holds every row here (2,000 rows over a 0.01 MiB
    threshold) and takes the same trend."""
    base = _base(tmp_path, seed, stream=stream)
    frame, trigger = _trigger_table(seed, made)
    outcome = _gate(_pull_request(tmp_path, base, frame, stream=stream), base, monkeypatch)
    assert outcome.status.name == "FAILED", outcome.summary
    assert "DATA071" in _rules(outcome)
    flagged = outcome.findings[[f.rule for f in outcome.findings].index("DATA071")]
    assert float(flagged.observed) * len(frame) >= 0.9 * trigger.size  # 38-48 rows flagged
    assert "DATA100" not in {f.rule for f in outcome.findings}  # the batch screen did not run


def test_a_clean_table_passes_with_the_batch_screen_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the approved clustered table itself (seed 3, the one whose classes rise most
    steeply), unchanged, with the screen off: the trend from its approved rows explains it."""
    base = _base(tmp_path, 3)
    outcome = _gate(_pull_request(tmp_path, base, pd.read_csv(base / DATA)), base, monkeypatch)
    assert outcome.status.name == "PASSED", outcome.summary


def test_a_replaced_snapshot_takes_its_trend_from_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the fallback: the snapshot replaced on purpose (the screen off, 1,400 of
    2,000 rows new by one ulp, 600 approved: under half the table). With the trend from those
    600 rows DATA071 flagged clean rows of this table (``TREND_MIN_SHARE`` 0: FAILED); from
    every row it passes, as before trend19. This is also the limit: a pull request that turns
    the screen off and changes most rows gets every row's trend, planted rows included
    (docs/data-defence.md, Known limits)."""
    from gates.data_integrity import TREND_MIN_SHARE

    assert TREND_MIN_SHARE == 0.5
    base = _base(tmp_path, 3)
    frame = _nudged(pd.read_csv(base / DATA), 0.7)
    outcome = _gate(_pull_request(tmp_path, base, frame), base, monkeypatch)
    assert outcome.status.name == "PASSED", outcome.summary


def test_fewer_approved_rows_with_the_batch_screen_on_is_data109(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way to the fallback, every row new by one ulp beside the trigger, with the
    screen on: DATA109 fails it (red team 17; not new here, the combined shape)."""
    base = _base(tmp_path, 3)
    frame, _ = _trigger_table(3, 4)
    outcome = _gate(
        _pull_request(tmp_path, base, _nudged(frame, 1.0), batch=True), base, monkeypatch
    )
    assert outcome.status.name == "FAILED", outcome.summary
    assert "DATA109" in _rules(outcome)
