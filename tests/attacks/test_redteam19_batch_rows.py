"""Red team 19: DATA109's ``max_dropped`` and the batch screen's rate test, attacked.

DATA109 (red team 17) bounds the approved rows a pull request may change: more than
``[data.checks.batch].max_dropped`` (0.2) of the trusted lock's rows gone beside new rows fails
the gate, so that nudged copies cannot dilute the relabelled rows below DATA100's rate test.
Held: exactly at the bound (12 relabelled rows and 101 nudged ones, 113 of 569 gone) the 113
new rows still fail DATA100; one more nudged row is DATA109.

Fixed by DATA100's tail scan (was a strict xfail): rows *added* are not bounded, and the pull
request can make them. 400 rows interpolated between an approved row and one of its 7 nearest
approved neighbours of the same class (a quarter to three quarters of the way), each kept only
when it lies at least 0.5 standardized units from every row so far (DATA108's near-copy radius
is about 0.22), dilute 12 benign rows relabelled malignant: DATA100 counts 15 of 412 new rows
against 2.15% of the approved ones (Fisher p=0.12, doubt mass z=1.5), and the gate PASSED with
every flipped row trained on. Now DATA100 fails on the tail (``pipeline.targeted._tail_verdict``).
Its limits, strict xfails: 800 made rows, or the 12 flips taken nearest the boundary, still
PASS. docs/data-defence.md calls rows "truly new, added in numbers" the rate test's own limit;
these are not new, and they cost nothing to make. With ``[data.checks].quarantine = true``
every row DATA100 flags is dropped (red team 18's row
150): the 12 flipped rows are all among the 15 quarantined (held).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.batch_support import DATA, approve, gate_against, protected_branch

FLIPS = 12


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code."""
    return protected_branch(tmp_path_factory, "rt19-rows")


def _flipped(frame: pd.DataFrame) -> pd.Index:
    """Every 20th benign row (12), to be relabelled malignant under its own id."""
    return frame.index[frame["diagnosis"] == "benign"][::20][:FLIPS]


def _nudged(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The 12 flips, and one ulp on ``mean_area`` of ``count`` other seeded rows."""
    out = frame.copy()
    flipped = _flipped(out)
    out.loc[flipped, "diagnosis"] = "malignant"
    rest = np.setdiff1d(np.arange(len(out)), flipped)
    picked = np.random.default_rng(3).permutation(rest)[:count]
    column = out.columns.get_loc("mean_area")
    out.iloc[picked, column] = np.nextafter(out.iloc[picked, column].to_numpy(), np.inf)
    return out


def _boundary(frame: pd.DataFrame) -> pd.Index:
    """The 12 benign rows a logistic regression on every approved row finds nearest the
    malignant side (still benign by it): flips a rate or tail test sees least."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(frame[features], frame["diagnosis"])
    malignant = list(model.classes_).index("malignant")
    p = model.predict_proba(frame[features])[:, malignant]
    benign = np.flatnonzero((frame["diagnosis"] == "benign").to_numpy() & (p < 0.5))
    return frame.index[benign[np.argsort(-p[benign])][:FLIPS]]


def _fabricated(frame: pd.DataFrame, count: int, flips: Any = _flipped) -> pd.DataFrame:
    """The 12 flips (``flips``), and ``count`` rows interpolated between approved neighbours
    of one class, each at least 0.5 standardized units from every row before it (no near
    copy)."""
    rng = np.random.default_rng(2)
    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    x = frame[features].to_numpy()
    mean, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / sd
    labels = frame["diagnosis"].to_numpy()
    placed = list(z)
    rows: list[list[Any]] = []
    while len(rows) < count:
        i = rng.integers(len(frame))
        same = np.flatnonzero(labels == labels[i])
        near = same[np.argsort(((z[same] - z[i]) ** 2).sum(axis=1))[1:8]]
        j = rng.choice(near)
        made = z[i] + rng.uniform(0.25, 0.75) * (z[j] - z[i])
        if np.sqrt(((np.asarray(placed) - made) ** 2).sum(axis=1)).min() < 0.5:
            continue
        placed.append(made)
        rows.append([*np.round(made * sd + mean, 6), labels[i]])
    made_rows = pd.DataFrame(rows, columns=[*features, "diagnosis"])
    made_rows.insert(0, "id", np.arange(count) + int(frame["id"].max()) + 1)
    out = frame.copy()
    out.loc[flips(out), "diagnosis"] = "malignant"
    return pd.concat([out, made_rows], ignore_index=True)


def _pull_request(base: Path, tmp_path: Path, change: Any, *, quarantine: bool = False) -> Path:
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = change(pd.read_csv(pr / DATA))
    frame.to_csv(pr / DATA, index=False, lineterminator="\n")
    if quarantine:
        policy = pr / "policy.toml"
        text, count = re.subn(
            r"(?m)^quarantine = false\b", "quarantine = true", policy.read_text("utf-8")
        )
        assert count == 1
        policy.write_text(text, "utf-8")
    approve(pr)
    return pr


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return gate_against(pr, base, monkeypatch, run_id="rt19")


def test_rows_nudged_up_to_max_dropped_still_fail_the_batch_screen(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held: 12 flips and 101 nudged rows, 113 of 569 approved rows gone (0.2 x 569 = 113.8):
    no DATA109, and DATA100 fails the 113 new rows (seen: 12 flagged, Fisher p=0.0026)."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, lambda f: _nudged(f, 101)), base, monkeypatch)
    rules = {f.rule for f in outcome.findings if f.severity.value == "error"}
    assert outcome.metrics["batch"]["new_rows"] == 113, outcome.metrics["batch"]
    assert "DATA109" not in rules, rules
    assert outcome.status is Status.FAILED, outcome.summary
    assert "DATA100" in rules, rules


def test_one_more_nudged_row_is_data109(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held: 102 nudged rows, 114 gone, more than 0.2 of 569: DATA109 naming max_dropped."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, lambda f: _nudged(f, 102)), base, monkeypatch)
    assert outcome.status is Status.FAILED, outcome.summary
    refused = [f for f in outcome.findings if f.rule == "DATA109"]
    assert len(refused) == 1, [f.rule for f in outcome.findings]
    assert refused[0].policy_key == "[data.checks.batch].max_dropped"
    assert refused[0].observed == "114", refused[0].observed


def test_fabricated_new_rows_do_not_dilute_relabelled_ones(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 flips beside 400 interpolated rows: seen PASSED, no DATA code, 0 rows reported (a
    strict xfail before the tail scan); now DATA100 fails on the tail: 12 new rows doubted
    beyond the 2nd most doubted of 557 approved rows vs 1.5 expected (beta-binomial p=2.5e-4,
    7.6e-4 Bonferroni over 3 levels), the count and mass as before."""
    from gates.base import Status

    pr = _pull_request(base, tmp_path, lambda f: _fabricated(f, 400))
    outcome = _gate(pr, base, monkeypatch)
    assert outcome.metrics["batch"]["new_rows"] == 412, outcome.metrics["batch"]
    assert "DATA109" not in {f.rule for f in outcome.findings}
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics["batch"])
    data100 = [f for f in outcome.findings if f.rule == "DATA100"]
    assert [f.severity.value for f in data100] == ["error"], data100
    assert "the tail fails the rule: 12 of them doubted beyond" in data100[0].message
    # Every relabelled row is reported (the tail's rows), as the finding's rows.
    flipped = pd.read_csv(base / DATA).loc[_flipped(pd.read_csv(base / DATA)), "id"]
    flagged = pd.read_csv(pr / "r" / "data.flagged.csv", dtype=str)
    assert {str(i) for i in flipped} <= set(flagged["id"]), flagged


def test_fabricated_new_rows_under_quarantine_drop_every_flip(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held with ``quarantine = true``: the gate passes (the same dilution), but every row
    DATA100 flags is quarantined, the 12 relabelled rows among them, so none is trained on."""
    pr = _pull_request(base, tmp_path, lambda f: _fabricated(f, 400), quarantine=True)
    flipped = pd.read_csv(base / DATA).loc[_flipped(pd.read_csv(base / DATA)), "id"]
    outcome = _gate(pr, base, monkeypatch)
    quarantined = json.loads((pr / "r" / "data.quarantine.json").read_text("utf-8"))
    assert {str(i) for i in flipped} <= set(quarantined["ids"]), (quarantined, outcome.summary)


@pytest.mark.xfail(
    strict=True,
    reason="the tail scan's limit: against 557 approved rows the deep tail's share is known to "
    "about 1/557, and 800 made rows make 12 flips beyond the 2nd most doubted approved row (2.9 "
    "expected) as likely as p=0.011 (0.033 Bonferroni) under exchangeability: PASSED",
)
def test_twice_the_fabricated_rows_do_not_dilute_relabelled_ones(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 flips beside 800 interpolated rows."""
    from gates.base import Status

    outcome = _gate(_pull_request(base, tmp_path, lambda f: _fabricated(f, 800)), base, monkeypatch)
    assert outcome.metrics["batch"]["new_rows"] == 812, outcome.metrics["batch"]
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics["batch"])


@pytest.mark.xfail(
    strict=True,
    reason="the tail scan's limit: boundary flips are doubted less than the approved rows' top "
    "3 (none of the 12 beyond), and the count (12 of 412 vs 2.15%, Fisher p=0.23) is diluted: "
    "PASSED",
)
def test_fabricated_rows_beside_boundary_flips(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 benign rows nearest the malignant side relabelled, beside 400 interpolated rows."""
    from gates.base import Status

    pr = _pull_request(base, tmp_path, lambda f: _fabricated(f, 400, _boundary))
    outcome = _gate(pr, base, monkeypatch)
    assert outcome.metrics["batch"]["new_rows"] == 412, outcome.metrics["batch"]
    assert outcome.status is Status.FAILED, (outcome.summary, outcome.metrics["batch"])
