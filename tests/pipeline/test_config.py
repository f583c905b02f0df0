"""policy.toml is parsed strictly; every error names the file, the key, expected and found."""

from __future__ import annotations

import pytest

from pipeline.config import load_policy, render_policy_schema
from pipeline.errors import PolicyError
from tests.conftest import REPO


def test_committed_policy_is_valid():
    loaded = load_policy(REPO / "policy.toml")
    assert loaded.policy.data.label == "diagnosis"
    assert len(loaded.sha256) == 64


def test_committed_schema_matches_the_models():
    committed = (REPO / "policy.schema.json").read_text(encoding="utf-8")
    assert committed == render_policy_schema(), (
        "policy.schema.json drifted: run python -m gates policy schema --write policy.schema.json"
    )


def _error(project, **changes) -> str:
    project.edit_policy(**changes)
    with pytest.raises(PolicyError) as info:
        load_policy(project.policy_path)
    return str(info.value)


def test_unknown_key_names_the_key_and_the_allowed_ones(project):
    message = _error(project, **{"cv.thresholds.accuracy.min_meen": 0.9})
    assert "policy.toml" in message
    assert "cv.thresholds.accuracy.min_meen: unknown key" in message
    assert "min_mean" in message
    assert "max_std" in message


def test_wrong_type_says_expected_and_found(project):
    message = _error(project, **{"cv.folds": "five"})
    assert "cv.folds" in message
    assert "expected" in message
    assert "'five'" in message


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"data.holdout_fraction": 1.5}, "data.holdout_fraction", "less than 1"),
        ({"cv.thresholds.accuracy.min_mean": 1.2}, "min_mean", "less than or equal to 1"),
        ({"data.positive_class": "unknown"}, "data", "positive_class 'unknown'"),
        (
            {"data.columns.mean_radius.min": 10.0, "data.columns.mean_radius.max": 1.0},
            "mean_radius",
            "min (10.0)",
        ),
        ({"data.min_rows": 500, "data.max_rows": 10}, "data", "min_rows (500)"),
        ({"cv.folds": 1}, "cv.folds", "greater than or equal to 2"),
        ({"model.estimator": "svm"}, "model.estimator", "'svm'"),
        ({"data.id_column": "nope"}, "data", "id_column 'nope'"),
        ({"serve.rate_limit.rows": 0}, "serve.rate_limit.rows", "greater than or equal to 1"),
        ({"serve.rate_limit.rows": -1000}, "serve.rate_limit.rows", "greater than or equal to 1"),
        ({"serve.rate_limit.rows": 1.5}, "serve.rate_limit.rows", "1.5"),
        ({"serve.rate_limit.rows": 999}, "serve", "rows (999) is below serve.max_instances (1000)"),
    ],
)
def test_impossible_values_are_rejected(project, changes, key, fragment):
    message = _error(project, **changes)
    assert key in message
    assert fragment in message


def test_missing_required_key(project):
    document = project.policy_document()
    del document["data"]["label"]
    from tests.conftest import write_toml

    write_toml(project.policy_path, document)
    with pytest.raises(PolicyError, match=r"data\.label: required key is missing"):
        load_policy(project.policy_path)


def test_toml_syntax_error_names_line(project):
    project.policy_path.write_text("schema_version = 1\n[cv\nfolds = 5\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"not valid TOML.*line 2"):
        load_policy(project.policy_path)


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "policy.toml")


def test_non_utf8_policy(project):
    project.policy_path.write_bytes(b"schema_version = 1\n\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(project.policy_path)


def test_relative_paths_resolve_against_the_policy_folder(project):
    loaded = project.load()
    assert loaded.resolve("data/x.csv") == project.root / "data" / "x.csv"
