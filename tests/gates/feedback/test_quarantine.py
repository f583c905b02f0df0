"""Production feedback waits in quarantine; only an explicit approval brings it into training."""

from __future__ import annotations

import csv
import io
import json

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
    assert "FBQ011" in {p.rule for p in batch.problems}


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
