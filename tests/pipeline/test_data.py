"""Reading data per its contract: every rule, with the column, rows and policy key named."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from pipeline.data import check_contract, load_dataset, read_table, verify_lock
from pipeline.datasets import breast_cancer_frame
from pipeline.errors import DataError
from tests.conftest import REPO


def test_embedded_csv_is_scikit_learns_breast_cancer_data():
    committed = pd.read_csv(REPO / "data" / "breast_cancer.csv")
    pd.testing.assert_frame_equal(committed, breast_cancer_frame())
    assert committed.shape == (569, 32)


def test_committed_lock_verifies_with_sha256sum():
    result = subprocess.run(
        [shutil.which("sha256sum") or "sha256sum", "-c", "SHA256SUMS"],
        cwd=REPO / "data",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "breast_cancer.csv: OK" in result.stdout


def test_embedded_data_meets_its_contract_and_lock(project):
    policy = project.load()
    assert verify_lock(policy) == []
    dataset = load_dataset(policy)
    assert len(dataset.labels) == 569
    assert set(dataset.labels) == {"benign", "malignant"}
    assert "id" not in dataset.features.columns


def _violations(project, frame):
    return check_contract(frame.astype(str), project.load().policy.data)[1]


def _rules(violations):
    return {v.rule for v in violations}


@pytest.fixture
def frame():
    return breast_cancer_frame()


def test_missing_and_extra_columns(project, frame):
    changed = frame.drop(columns=["mean_area"]).assign(surprise=1)
    found = _violations(project, changed)
    assert _rules(found) == {"DATA010", "DATA011"}
    missing = next(v for v in found if v.rule == "DATA010")
    assert missing.column == "mean_area"
    assert missing.policy_key == "[data.columns].mean_area"


def test_wrong_dtype_names_rows_and_value(project, frame):
    changed = frame.astype(str)
    changed.loc[7, "mean_radius"] = "twelve"
    found = _violations(project, changed)
    (violation,) = found
    assert violation.rule == "DATA012"
    assert violation.rows == (7,)
    assert "'twelve'" in violation.message


@pytest.mark.parametrize(
    ("value", "rule"),
    [("", "DATA013"), ("nan", "DATA013"), ("inf", "DATA014"), ("-inf", "DATA014")],
)
def test_nulls_and_infinities_are_refused(project, frame, value, rule):
    changed = frame.astype(str)
    changed.loc[3, "mean_texture"] = value
    found = _violations(project, changed)
    assert rule in _rules(found)
    assert next(v for v in found if v.rule == rule).rows == (3,)


def test_range_violations_name_the_bound(project, frame):
    changed = frame.copy()
    changed.loc[0, "mean_area"] = 1e9
    changed.loc[1, "mean_area"] = -1.0
    found = _violations(project, changed)
    assert _rules(found) == {"DATA015", "DATA016"}
    above = next(v for v in found if v.rule == "DATA016")
    assert above.policy_key == "[data.columns].mean_area.max"
    assert above.observed == "1e+09"


def test_labels_outside_classes_and_empty_labels(project, frame):
    changed = frame.astype(str)
    changed.loc[4, "diagnosis"] = "maybe"
    changed.loc[5, "diagnosis"] = ""
    found = _violations(project, changed)
    assert [v.rule for v in found] == ["DATA020", "DATA020"]
    assert any("maybe" in v.message for v in found)


def test_a_declared_class_without_rows(project, frame):
    changed = frame[frame.diagnosis == "benign"]
    assert "DATA021" in _rules(_violations(project, changed))


@pytest.mark.parametrize("rows", [1, 2])
def test_a_declared_class_with_too_few_rows_to_fold(project, frame, rows):
    # One malignant row made the label check's out-of-fold fit a traceback (a fold of one class).
    changed = pd.concat(
        [frame[frame.diagnosis == "benign"], frame[frame.diagnosis == "malignant"][:rows]]
    )
    (found,) = [v for v in _violations(project, changed) if v.rule == "DATA021"]
    assert f"'malignant' {rows}" in found.message
    assert found.expected == "at least 3 rows per class"


def test_a_declared_class_with_three_rows_is_enough(project, frame):
    changed = pd.concat(
        [frame[frame.diagnosis == "benign"], frame[frame.diagnosis == "malignant"][:3]]
    )
    assert "DATA021" not in _rules(_violations(project, changed))


def test_duplicate_ids_and_fractional_ids(project, frame):
    changed = frame.copy()
    changed.loc[9, "id"] = 1
    assert "DATA018" in _rules(_violations(project, changed))
    changed = frame.astype(str)
    changed.loc[2, "id"] = "2.5"
    assert "DATA012" in _rules(_violations(project, changed))


def test_row_count_bounds(project, frame):
    project.edit_policy(**{"data.max_rows": 500})
    assert "DATA030" in _rules(_violations(project, frame))


def test_read_table_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_table(tmp_path / "absent.csv", fmt="csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_table(empty, fmt="csv")
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataError, match="no"):
        read_table(header, fmt="csv")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match="malformed CSV"):
        read_table(ragged, fmt="csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="UTF-8"):
        read_table(binary, fmt="csv")
    with pytest.raises(DataError, match="expected a Parquet file"):
        read_table(ragged, fmt="parquet")


def test_parquet_is_read_per_contract(project, frame, tmp_path):
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    loaded = read_table(path, fmt="parquet")
    clean, violations = check_contract(loaded, project.load().policy.data)
    assert violations == []
    assert clean["mean_radius"].dtype == "float64"


def test_parquet_dataset_trains_end_to_end(project, frame):
    frame.to_parquet(project.root / "data" / "bc.parquet")
    project.edit_policy(
        **{"data.path": "data/bc.parquet", "data.checksums": "data/PARQUET.SHA256SUMS"}
    )
    from pipeline.data import write_lock

    policy = project.load()
    write_lock(policy, frame)
    dataset = load_dataset(project.load())
    assert len(dataset.labels) == 569


def test_one_byte_changed_breaks_the_lock(project):
    raw = bytearray(project.data_path.read_bytes())
    raw[-3] = ord("1") if raw[-3] != ord("1") else ord("2")
    project.data_path.write_bytes(bytes(raw))
    found = verify_lock(project.load())
    assert {v.rule for v in found} == {"DATA001", "DATA002"}
    # Each names the command that approves the change.
    assert all("python -m gates data approve" in v.message for v in found), found
    with pytest.raises(DataError, match="refused"):
        load_dataset(project.load())


def test_unlocked_file_and_malformed_lock(project):
    lock = project.root / "data" / "breast_cancer.lock.json"
    lock.write_text('{"schema_version": 1, "files": {}}')
    assert "never approved" in verify_lock(project.load())[0].message
    lock.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        verify_lock(project.load())
    lock.unlink()
    with pytest.raises(DataError, match="data lock not found"):
        verify_lock(project.load())
