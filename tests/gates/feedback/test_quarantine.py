"""Production feedback waits in quarantine; only an explicit approval brings it into training."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from gates.base import Status
from gates.feedback import quarantine
from pipeline.data import read_lock
from pipeline.errors import DataError
from pipeline.fsio import sha256_file


def _rows(project, n: int = 10, *, start_id: int = 10_000_000) -> list[dict[str, str]]:
    with project.data_path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    # Rows spread evenly over the table, as outcomes arrive: the data gate's batch
    # screen (DATA107, a joint test per class against the approved rows) rightly fails a batch
    # of the file's first rows, all nudged the same way, as a shifted class.
    rows = table[:: len(table) // n][:n]
    out = []
    for i, source in enumerate(rows):
        row = dict(source)
        row["id"] = str(start_id + i)
        # Move every feature 5% (alternating up and down) so the row is new data, not a copy of
        # a training row: one feature 1% off was a near copy (DATA052/DATA108 fail those).
        for j, column in enumerate(c for c in row if c not in ("id", "diagnosis")):
            factor = 1.05 if (i + j) % 2 else 0.95
            row[column] = f"{float(row[column]) * factor:.6g}"
        row["prediction"] = row["diagnosis"]
        out.append(row)
    return out


def _write(path, rows) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def test_a_clean_batch_is_quarantined_and_training_data_is_untouched(project, tmp_path):
    before = sha256_file(project.data_path)
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project))
    batch = quarantine.ingest(project.load(), source)
    assert batch.status == quarantine.QUARANTINED
    assert batch.problems == ()
    folder = project.root / "data" / "quarantine" / batch.batch_id
    assert sha256_file(folder / "rows.csv") == sha256_file(source)
    assert sha256_file(project.data_path) == before
    assert project.run("data").results[0].status is Status.PASSED


def test_approval_appends_the_batch_relocks_and_the_data_gate_passes(project, tmp_path):
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project, 12))
    original = project.data_path.read_bytes()
    batch = quarantine.ingest(project.load(), source)
    approved, problems = quarantine.approve(project.load(), batch.batch_id, by="alice")
    assert problems == []
    assert approved.status == quarantine.APPROVED
    assert approved.approved_by == "alice"
    grown = project.data_path.read_bytes()
    assert grown.startswith(original)  # approved rows are appended, history untouched
    assert grown.count(b"\n") == original.count(b"\n") + 12
    lock = read_lock(project.root / "data" / "breast_cancer.lock.json")
    assert next(iter(lock.files.values())).rows == 569 + 12
    assert approved.data_sha256_after == sha256_file(project.data_path)
    assert project.run("data").results[0].status is Status.PASSED
    _, problems = quarantine.approve(project.load(), batch.batch_id, by="alice")
    assert problems[0].rule == "FBQ020"


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda rows: rows[0].update(prediction="maybe"), "FBQ001"),
        (lambda rows: rows[1].update(mean_radius="-3"), "DATA015"),
        (lambda rows: rows[2].update(id="7"), "FBQ010"),
        (lambda rows: rows[3].update(mean_area="1e6"), "DATA016"),
        (lambda rows: rows[4].update(mean_texture="75"), "FBQ013"),
    ],
)
def test_contract_and_screening_problems_reject_the_batch(project, tmp_path, change, rule):
    rows = _rows(project)
    change(rows)
    source = tmp_path / "outcomes.csv"
    _write(source, rows)
    batch = quarantine.ingest(project.load(), source)
    assert batch.status == quarantine.REJECTED
    assert rule in {p.rule for p in batch.problems}
    _, problems = quarantine.approve(project.load(), batch.batch_id, by="alice")
    assert problems[0].rule == "FBQ020"


def test_a_label_flip_of_a_training_row_is_caught(project, tmp_path):
    with project.data_path.open(encoding="utf-8", newline="") as handle:
        row = dict(next(csv.DictReader(handle)))
    flipped = "benign" if row["diagnosis"] == "malignant" else "malignant"
    row.update(id="20000000", diagnosis=flipped, prediction=flipped)
    source = tmp_path / "flip.csv"
    _write(source, [row])
    batch = quarantine.ingest(project.load(), source)
    (problem,) = [p for p in batch.problems if p.rule == "FBQ011"]
    assert problem.rows == (0,)
    assert "row 0 ~ training row 0 at distance 0" in problem.message


def _training_rows(project) -> list[dict[str, str]]:
    with project.data_path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _copies(table, picks, *, move, columns, flip: bool, start_id: int = 30_000_000):
    """Rows ``picks`` of the training table with a new id, ``columns`` moved by ``move``, and
    the label flipped (or kept); the prediction column says the training label."""
    out = []
    for i, pick in enumerate(picks):
        row = dict(table[pick])
        truth = row["diagnosis"]
        for column in columns:
            row[column] = repr(float(move(float(row[column]))))
        if flip:
            row["diagnosis"] = "benign" if truth == "malignant" else "malignant"
        row.update(id=str(start_id + i), prediction=truth)
        out.append(row)
    return out


def _one_ulp(value: float) -> float:
    return float(np.nextafter(value, np.inf))


def test_one_ulp_flipped_copies_among_honest_rows_are_rejected_naming_their_twins(
    project, tmp_path
):
    # Red team, 6 December: 8 training rows with flipped labels and mean_radius one ulp up,
    # among 10 honest rows (44% disagreement, under max_label_disagreement 0.5), were
    # quarantined clean and approved; only the next data gate failed the grown data.
    table = _training_rows(project)
    picks = [3, 40, 97, 150, 222, 301, 404, 512]
    copies = _copies(table, picks, move=_one_ulp, columns=["mean_radius"], flip=True)
    assert all(
        c["mean_radius"] != table[p]["mean_radius"] for c, p in zip(copies, picks, strict=True)
    )
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project) + copies)
    batch = quarantine.ingest(project.load(), source)
    assert batch.status == quarantine.REJECTED
    (problem,) = [p for p in batch.problems if p.rule == "FBQ011"]
    assert problem.count == 8
    assert problem.rows == tuple(range(10, 15))  # the copies only, never an honest row
    for row, pick in zip(range(10, 15), picks[:5], strict=True):
        assert f"row {row} ~ training row {pick} at distance " in problem.message
    assert "radius" in problem.message
    assert problem.policy_key == "[data.checks.bursts].radius"


def test_flipped_copies_moved_1e9_relative_on_several_features_are_rejected(project, tmp_path):
    table = _training_rows(project)
    picks = [5, 60, 260, 480]
    copies = _copies(
        table,
        picks,
        move=lambda v: v * (1 + 1e-9),
        columns=["mean_radius", "mean_texture", "mean_area", "worst_smoothness"],
        flip=True,
    )
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project) + copies)
    batch = quarantine.ingest(project.load(), source)
    (problem,) = [p for p in batch.problems if p.rule == "FBQ011"]
    assert problem.rows == (10, 11, 12, 13)
    for row, pick in zip(range(10, 14), picks, strict=True):
        assert f"row {row} ~ training row {pick}" in problem.message


def test_a_flipped_row_sent_twice_is_not_hidden_behind_its_own_copy(project, tmp_path):
    # Bypass attempt: two copies of one training row, 1e-6 and 2e-6 relative up. The second
    # copy's nearest row is the first copy, not the training row; it is caught through it.
    table = _training_rows(project)
    once, twice = (
        _copies(
            table,
            [77],
            move=lambda v, k=k: v * (1 + k * 1e-6),
            columns=["mean_radius"],
            flip=True,
            start_id=30_000_000 + k,
        )[0]
        for k in (1, 2)
    )
    source = tmp_path / "outcomes.csv"
    _write(source, [*_rows(project), once, twice])
    batch = quarantine.ingest(project.load(), source)
    (problem,) = [p for p in batch.problems if p.rule == "FBQ011"]
    assert problem.rows == (10, 11)
    assert "row 10 ~ training row 77" in problem.message
    assert "row 11 ~ training row 77" in problem.message


def test_near_copies_with_the_training_label_are_rejected_too(project, tmp_path):
    # Feedback that repeats training rows (labels unchanged) would put twins of training rows
    # into the data, some of them into the holdout: FBQ014 above max_near_share of the batch.
    table = _training_rows(project)
    copies = _copies(table, [8, 300], move=_one_ulp, columns=["mean_texture"], flip=False)
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project) + copies)
    batch = quarantine.ingest(project.load(), source)
    assert batch.status == quarantine.REJECTED
    assert "FBQ011" not in {p.rule for p in batch.problems}
    (problem,) = [p for p in batch.problems if p.rule == "FBQ014"]
    assert problem.rows == (10, 11)
    assert "row 10 ~ training row 8" in problem.message
    assert problem.policy_key == "[data.checks.duplicates].max_near_share"


def test_labels_that_mostly_contradict_predictions_are_suspicious(project, tmp_path):
    rows = _rows(project)
    for row in rows:
        row["prediction"] = "benign" if row["diagnosis"] == "malignant" else "malignant"
    source = tmp_path / "outcomes.csv"
    _write(source, rows)
    batch = quarantine.ingest(project.load(), source)
    assert batch.disagreement_rate == 1.0
    assert "FBQ012" in {p.rule for p in batch.problems}


def test_rows_changed_in_quarantine_are_refused(project, tmp_path):
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project))
    batch = quarantine.ingest(project.load(), source)
    stored = project.root / "data" / "quarantine" / batch.batch_id / "rows.csv"
    stored.write_text(stored.read_text().replace("malignant", "benign", 1))
    before = sha256_file(project.data_path)
    _, problems = quarantine.approve(project.load(), batch.batch_id, by="mallory")
    assert problems[0].rule == "FBQ021"
    assert sha256_file(project.data_path) == before


def test_the_same_file_is_ingested_once_and_bad_input_is_one_clear_error(project, tmp_path):
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project))
    quarantine.ingest(project.load(), source)
    with pytest.raises(DataError, match="already ingested"):
        quarantine.ingest(project.load(), source)
    rows = _rows(project, start_id=30_000_000)
    for row in rows:
        del row["prediction"]
    _write(source, rows)
    with pytest.raises(DataError, match="expected a column 'prediction'"):
        quarantine.ingest(project.load(), source)
    assert len(list((project.root / "data" / "quarantine").iterdir())) == 1  # none left behind
    with pytest.raises(DataError, match="not a batch id"):
        quarantine.read_batch(project.load(), "../etc")


def test_the_cli_ingests_lists_and_approves_with_documented_exit_codes(
    project, tmp_path, gates_cli
):
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project))
    ingest = gates_cli(project.root, "feedback", "ingest", str(source))
    assert ingest.returncode == 0, ingest.stderr
    assert "quarantined" in ingest.stdout
    batch_id = ingest.stdout.split("batch ")[1].split(",")[0]
    listed = gates_cli(project.root, "feedback", "list")
    assert batch_id in listed.stdout
    assert "quarantined" in listed.stdout
    approved = gates_cli(project.root, "feedback", "approve", batch_id, "--by", "bob")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    record = json.loads(
        (project.root / "data" / "quarantine" / batch_id / "batch.json").read_text()
    )
    assert record["approved_by"] == "bob"
    rows = _rows(project, start_id=40_000_000)
    rows[0]["prediction"] = "maybe"
    _write(source, rows)
    rejected = gates_cli(project.root, "feedback", "ingest", str(source))
    assert rejected.returncode == 1
    assert "FBQ001" in rejected.stdout
    missing = gates_cli(project.root, "feedback", "ingest", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2
    assert "not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_training_table_is_read_within_max_file_mb(project, tmp_path):
    # Feedback screens a batch against the training table: it read that table with no bound,
    # where the data gate refuses one larger than [data.checks].max_file_mb (red team,
    # 6 December: a Parquet file of a few KB decodes to gigabytes).
    source = tmp_path / "outcomes.csv"
    _write(source, _rows(project))
    size = project.data_path.stat().st_size
    project.edit_policy(**{"data.checks.max_file_mb": size / 2 / 2**20})
    with pytest.raises(DataError, match=r"breast_cancer\.csv: .*max_file_mb"):
        quarantine.ingest(project.load(), source)
