"""``python -m pipeline train|predict``: real subprocesses, one exit code per outcome."""

from __future__ import annotations

import pytest

from tests.conftest import run_module


def test_train_saves_a_model_but_predict_refuses_it_unsigned(project):
    trained = run_module("pipeline", "train", cwd=project.root)
    assert trained.returncode == 0, trained.stderr
    assert "holdout accuracy" in trained.stdout
    predicted = run_module(
        "pipeline", "predict", "--input", "data/breast_cancer.csv", cwd=project.root
    )
    assert predicted.returncode == 2
    assert "attestation" in predicted.stderr
    assert "Traceback" not in predicted.stderr


@pytest.fixture(scope="module")
def signed_run(passed_chain, tmp_path_factory):
    """A copy of a project the chain passed on (its gate cache kept), on which ``python -m gates
    run`` then PASSED once (it reuses that cache): its model is signed with the development key.
    Read-only: each test gets a copy (``signed``)."""
    from tests.chain_support import copy_run

    root = copy_run(passed_chain, tmp_path_factory.mktemp("cli-signed") / "project")
    ran = run_module("gates", "run", cwd=root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return root


@pytest.fixture
def signed(signed_run, passed_chain, tmp_path):
    from tests.chain_support import copy_run
    from tests.conftest import Project

    return Project(copy_run(signed_run, tmp_path / "project"), recorded=passed_chain)


@pytest.mark.slow
def test_predict_loads_only_a_signed_model_with_a_trusted_key(signed):
    # ``python -m gates run`` PASSED on this project (``signed_run``).
    project = signed
    args = ("predict", "--input", "data/breast_cancer.csv")
    # A local run is signed with the development key: the committed release key refuses it.
    refused = run_module("pipeline", *args, cwd=project.root)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    out = project.root / "predictions.csv"
    accepted = run_module(
        "pipeline", *args, "--key", ".keys/dev-signing.pub", "--output", str(out), cwd=project.root
    )
    assert accepted.returncode == 0, accepted.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "id,prediction,proba_benign,proba_malignant"
    assert len(lines) == 570
    # One byte of the signed model changed: refused, naming the file.
    model = project.root / "artifacts" / "model.skops"
    raw = bytearray(model.read_bytes())
    raw[100] ^= 1
    model.write_bytes(bytes(raw))
    tampered = run_module("pipeline", *args, "--key", ".keys/dev-signing.pub", cwd=project.root)
    assert tampered.returncode == 2
    assert "model.skops" in tampered.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--policy", "missing.toml", "train"), "policy file not found"),
        (("predict", "--input", "data/breast_cancer.csv"), "attestation"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(project, args, fragment):
    result = run_module("pipeline", *args, cwd=project.root)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_predict_refuses_rows_that_break_the_contract(signed):
    # ``python -m gates run`` PASSED on this project (``signed_run``).
    project = signed
    bad = project.root / "bad.csv"
    text = project.data_path.read_text().splitlines()
    header, row = text[0], text[1].split(",")
    row[1] = "inf"
    bad.write_text(header + "\n" + ",".join(row) + "\n")
    result = run_module(
        "pipeline",
        "predict",
        "--input",
        str(bad),
        "--key",
        ".keys/dev-signing.pub",
        cwd=project.root,
    )
    assert result.returncode == 2
    assert "DATA014" in result.stderr
    assert "mean_radius" in result.stderr


def test_predict_refuses_a_parquet_input_that_decodes_past_max_file_mb(signed):
    """A few KB of Parquet holding 3,000 copies of one 1 MiB text value (3 GiB once decoded):
    refused by its measured decoded size against ``[data.checks].max_file_mb`` (2048 MiB),
    as the data gate refuses it, before a value is decoded."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    project = signed
    frame = pd.read_csv(project.data_path).head(1)
    frame = frame.loc[frame.index.repeat(3000)].reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    note = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(len(frame), dtype=np.int32)), pa.array(["n" * 2**20])
    )
    bomb = project.root / "bomb.parquet"
    pq.write_table(table.append_column("note", note), bomb, store_schema=False)
    assert bomb.stat().st_size < 2**20
    result = run_module(
        "pipeline",
        "predict",
        "--input",
        str(bomb),
        "--key",
        ".keys/dev-signing.pub",
        cwd=project.root,
    )
    assert result.returncode == 2, result.stderr
    assert "bomb.parquet" in result.stderr
    assert "[data.checks].max_file_mb" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2(project):
    assert run_module("pipeline", "fly", cwd=project.root).returncode == 2


def _corrupt(project, column, value, row=3):
    import pandas as pd

    frame = pd.read_csv(project.data_path, dtype=str, keep_default_na=False)
    if column is None:
        project.data_path.write_bytes(b"")
        return
    if value is None:
        frame = frame.drop(columns=[column])
    else:
        frame.loc[row, column] = value
    frame.to_csv(project.data_path, index=False)
    project.approve()  # approved or not, the contract still has to hold


@pytest.mark.parametrize(
    ("column", "value", "fragments"),
    [
        ("mean_area", None, ["DATA010", "column 'mean_area' is missing"]),
        ("mean_area", "big", ["DATA012", "mean_area", "'big'", "float64"]),
        ("mean_area", "nan", ["DATA013", "mean_area", "row 3"]),
        ("mean_area", "inf", ["DATA014", "mean_area", "row 3"]),
        ("diagnosis", "cancer?", ["DATA020", "outside the declared classes", "cancer?"]),
        (None, None, ["data file is empty"]),
    ],
)
def test_bad_data_is_one_clear_message_and_no_model(project, column, value, fragments):
    _corrupt(project, column, value)
    result = run_module("pipeline", "train", cwd=project.root)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "breast_cancer.csv" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert not (project.root / "artifacts").exists()
