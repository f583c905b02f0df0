"""Red team 19: a relabelled row that borrows an approved row's digest by another route.

A row is approved when the digest of its features and label as text is the trusted lock's
(``gates.data_integrity._approved_rows``, ``pipeline.profile.row_digest_list``). Held: the
id respelled (``20.0``), the label padded (``" malignant "``, stripped by the contract for the
digest and the model alike), the same rows as Parquet under the same name (approved as
before, the flips still new) or under another name (an error: the trusted lock has no entry),
and Parquet with float32 columns (every digest moved: DATA109).

Found: a digest equal for two rows the model sees differently. A string column's null is
``pd.NA`` and its text ``<NA>``, the text a cell holding the four characters ``<NA>`` has
too; the model sees a null as ``""`` and the cell as the category ``<NA>``. An approved row
whose blank cell a pull request fills with ``<NA>`` kept its approval while the model's
input changed (not counted against ``max_dropped``, never screened as new). The digest now
writes such a cell (and one holding the separator ``\\x1f`` or ``\\x1b``) escaped, so that
equal digests mean equal rows; a null's text, and so every digest a lock recorded, is
unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.batch_support import DATA, LOCK, approve, gate_against, protected_branch


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protected branch: the committed data approved by this code."""
    return protected_branch(tmp_path_factory, "rt19-approved")


def _flipped(frame: pd.DataFrame) -> pd.Index:
    return frame.index[frame["diagnosis"] == "benign"][::20][:12]


def _set(pr: Path, old: str, new: str) -> None:
    policy = pr / "policy.toml"
    text = policy.read_text("utf-8")
    assert old in text
    policy.write_text(text.replace(old, new, 1), "utf-8")


def _gate(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return gate_against(pr, base, monkeypatch, run_id="rt19")


def _errors(outcome: Any) -> set[str]:
    return {f.rule for f in outcome.findings if f.severity.value == "error"}


def _flips_are_new_and_fail(pr: Path, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Approve the pull request, then its gate: the 12 flips are the new rows, DATA100 fails."""
    from gates.base import Status

    approve(pr)
    outcome = _gate(pr, base, monkeypatch)
    assert outcome.metrics["batch"]["new_rows"] == 12, outcome.metrics["batch"]
    assert outcome.status is Status.FAILED, outcome.summary
    assert "DATA100" in _errors(outcome), _errors(outcome)


def test_respelled_ids_and_padded_labels_do_not_approve_a_relabelled_row(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held: every id written ``N.0`` and the 12 flipped labels ``" malignant "``: the 557
    other rows stay approved, the 12 are new and fail DATA100."""

    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    text = (pr / DATA).read_text("utf-8").splitlines()
    frame = pd.read_csv(pr / DATA)
    flipped = set(_flipped(frame))
    lines = [text[0]]
    for index, line in enumerate(text[1:]):
        first, rest = line.split(",", 1)
        if index in flipped:
            rest = rest.rsplit(",", 1)[0] + ", malignant "
        lines.append(f"{first}.0,{rest}")
    (pr / DATA).write_text("\n".join(lines) + "\n", "utf-8")
    _flips_are_new_and_fail(pr, base, monkeypatch)


def test_parquet_of_the_same_rows_keeps_them_approved_and_the_flips_new(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held: the table as Parquet under the same name (``format = "parquet"``): 557
    approved, the 12 flips new and DATA100."""

    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    frame.loc[_flipped(frame), "diagnosis"] = "malignant"
    frame.to_parquet(pr / DATA, index=False)
    _set(
        pr,
        'path = "data/breast_cancer.csv"\n',
        'path = "data/breast_cancer.csv"\nformat = "parquet"\n',
    )
    _flips_are_new_and_fail(pr, base, monkeypatch)


def test_parquet_in_float32_makes_every_row_new_and_is_data109(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held (fails closed): float32 columns change every value's text, so every digest."""
    from gates.base import Status

    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    frame.loc[_flipped(frame), "diagnosis"] = "malignant"
    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    frame[features] = frame[features].astype("float32")
    frame.to_parquet(pr / DATA, index=False)
    _set(
        pr,
        'path = "data/breast_cancer.csv"\n',
        'path = "data/breast_cancer.csv"\nformat = "parquet"\n',
    )
    approve(pr)
    outcome = _gate(pr, base, monkeypatch)
    assert outcome.status is Status.FAILED, outcome.summary
    assert "DATA109" in _errors(outcome), _errors(outcome)


def test_another_data_file_has_no_approved_entry(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held: the rows moved to ``data/breast_cancer.parquet``: the trusted lock has no entry
    for it, and the gate refuses to run (GateError, ERRORED by the runner) rather than judge
    every row as approved or new."""
    from gates.errors import GateError

    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    frame = pd.read_csv(pr / DATA)
    frame.loc[_flipped(frame), "diagnosis"] = "malignant"
    frame.to_parquet(pr / "data/breast_cancer.parquet", index=False)
    (pr / DATA).unlink()
    _set(pr, 'path = "data/breast_cancer.csv"', 'path = "data/breast_cancer.parquet"')
    approve(pr)
    with pytest.raises(GateError, match=r"has no entry for breast_cancer\.parquet"):
        _gate(pr, base, monkeypatch)
    assert (base / LOCK).is_file()


def _digests(cells: list[str], others: list[str] | None = None) -> list[str]:
    """Each row's digest: nullable string features ``tag`` and ``other`` holding ``cells`` and
    ``others`` (``x`` each by default), parsed by the contract as the gate parses a CSV."""
    from pipeline.config import DataPolicy
    from pipeline.data import check_contract
    from pipeline.profile import row_digest_list

    data = DataPolicy.model_validate(
        {
            "path": "t.csv",
            "lock": "t.lock.json",
            "label": "y",
            "classes": ["a", "b"],
            "id_column": "id",
            "min_rows": 1,
            "columns": {
                "id": {"dtype": "int64"},
                "tag": {"dtype": "string", "nullable": True},
                "other": {"dtype": "string", "nullable": True},
            },
        }
    )
    n = len(cells)
    raw = pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "tag": cells,
            "other": others or ["x"] * n,
            "y": ["a"] * n,
        },
        dtype=str,
    )
    clean, _ = check_contract(raw, data)
    return row_digest_list(clean, data)


def test_a_null_and_the_text_of_a_null_have_different_digests() -> None:
    """Before: a blank cell and a cell holding ``<NA>`` had one digest, and the model saw
    ``""`` and ``<NA>``: an approved row's input changed under its approval."""
    blank, text = _digests(["", "<NA>"])
    assert blank != text


def test_the_separator_inside_a_cell_is_escaped() -> None:
    """A cell holding the digest's separator ``\\x1f`` (or its escape ``\\x1b``) is escaped,
    so that no two tables of different cells join to one text; a cell without them, and a
    null, keep the digest every lock recorded (a control)."""
    one, two = _digests(["a\x1fx", "a"], ["b", "x\x1fb"])
    assert one != two  # before: both 'a', US, 'x', US, 'b', US, 'a'
    assert len(set(_digests(["\x1b", "\x1b\x1b", "\x1f", "\x1b\x1f"]))) == 4
    # The text every lock recorded: 'plain' and a null as before.
    import hashlib

    plain, null = _digests(["plain", ""])
    assert plain == hashlib.sha256(b"plain\x1fx\x1fa").hexdigest()[:16]
    assert null == hashlib.sha256(b"<NA>\x1fx\x1fa").hexdigest()[:16]
