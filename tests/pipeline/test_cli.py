"""``python -m pipeline train|predict``: real subprocesses, one exit code per outcome."""

from __future__ import annotations

import pytest

from tests.conftest import run_module


def test_train_then_predict(project):
    trained = run_module("pipeline", "train", cwd=project.root)
    assert trained.returncode == 0, trained.stderr
    assert "holdout accuracy" in trained.stdout
    out = project.root / "predictions.csv"
    predicted = run_module(
        "pipeline",
        "predict",
        "--input",
        "data/breast_cancer.csv",
        "--output",
        str(out),
        cwd=project.root,
    )
    assert predicted.returncode == 0, predicted.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "id,prediction,proba_benign,proba_malignant"
    assert len(lines) == 570


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--policy", "missing.toml", "train"), "policy file not found"),
        (("predict", "--input", "data/breast_cancer.csv"), "model manifest not found"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(project, args, fragment):
    result = run_module("pipeline", *args, cwd=project.root)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_refuses_rows_that_break_the_contract(project):
    assert run_module("pipeline", "train", cwd=project.root).returncode == 0
    bad = project.root / "bad.csv"
    text = project.data_path.read_text().splitlines()
    header, row = text[0], text[1].split(",")
    row[1] = "inf"
    bad.write_text(header + "\n" + ",".join(row) + "\n")
    result = run_module("pipeline", "predict", "--input", str(bad), cwd=project.root)
    assert result.returncode == 2
    assert "DATA014" in result.stderr
    assert "mean_radius" in result.stderr


def test_usage_error_exits_2(project):
    assert run_module("pipeline", "fly", cwd=project.root).returncode == 2
