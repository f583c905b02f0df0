"""``python -m gates init``: from a user's own CSV to a green chain with no hand edit.

The walk-through runs on four tables (scikit-learn's wine, iris and digits written to CSV, and a
table with categorical columns, a bool column, missing values and names that need TOML
quoting), each in a throw-away copy of the project: ``init`` as a user types it, then the whole
chain. Wine starts without a policy and runs every gate for real (``python -m gates run``);
the others replace the committed policy (``--force``) and replay lint, sast and audit, which
read nothing init writes (``tests/chain_support.py``). Bad input is one line and exit 2.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates._cli import main
from tests.chain_support import SUPPLY_CHAIN
from tests.conftest import Project
from tests.project_support import copy_project


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame


def _iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(["setosa", "versicolor", "virginica"])))
    return frame


def _digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    return load_digits(as_frame=True).frame


def _mixed() -> pd.DataFrame:
    """Categorical and bool columns, blanks in a numeric and a string column, quoted names."""
    rng = np.random.default_rng(7)
    n = 400
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(10, 3, n)
    weight = rng.normal(50, 10, n)
    score = (colour == "red") * 2.0 + (size - 10) / 3 + (weight - 50) / 10
    frame = pd.DataFrame(
        {
            "row id": np.arange(1, n + 1),
            "colour": colour,
            "size (cm)": size.round(3),
            "weight.kg": weight.round(2),
            "flag": rng.choice(["true", "false"], n),
            "outcome": np.where(score + rng.normal(0, 0.5, n) > 0.7, "yes", "no"),
        }
    )
    frame.loc[rng.choice(n, 30, replace=False), "size (cm)"] = np.nan
    frame.loc[rng.choice(n, 20, replace=False), "colour"] = None
    return frame


# name -> (table, init arguments after the file, replay the supply-chain gates)
DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], tuple[str, ...], bool]] = {
    "wine": (_wine, ("--label", "target"), False),
    "iris": (_iris, ("--label", "target", "--force"), True),
    "digits": (_digits, ("--label", "target", "--force"), True),
    "mixed": (
        _mixed,
        ("--label", "outcome", "--id", "row id", "--positive", "yes", "--force"),
        True,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_init_then_the_whole_chain_is_green_with_no_hand_edit(
    name: str, tmp_path: Path, recorded_chain: tuple[Path, Any], gates_cli: Any
) -> None:
    make, args, replay = DATASETS[name]
    root = copy_project(tmp_path / "project")
    if not replay:
        (root / "policy.toml").unlink()  # a new user's folder: no policy yet
    table = tmp_path / f"{name}.csv"  # outside the project: init copies it into data/
    make().to_csv(table, index=False)

    done = gates_cli(root, "init", str(table), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().splitlines()[-1].startswith("next: nox -s train gate")
    assert (root / "data" / f"{name}.csv").read_bytes() == table.read_bytes()
    policy = tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))
    assert policy["data"]["path"] == f"data/{name}.csv"
    comments = (root / "policy.toml").read_text(encoding="utf-8").replace("\n# ", " ")
    assert "Baseline cross-validation by init (this estimator, this data): accuracy" in comments

    if replay:
        summary = Project(root, recorded=recorded_chain[0]).run(open_run=False, replay=SUPPLY_CHAIN)
        assert summary.exit_code == 0, [
            f"{r.gate} {r.status.value}: {r.summary} {[f.message for f in r.findings][:3]}"
            for r in summary.results
            if r.status.value != "PASSED"
        ]
        assert [r.status.value for r in summary.results].count("PASSED") == len(summary.results)
    else:
        green = gates_cli(root, "run")
        assert green.returncode == 0, green.stdout + green.stderr
        assert "verdict: PASSED" in green.stdout


def test_the_mixed_table_gets_categories_nulls_and_quoted_names(tmp_path: Path) -> None:
    # The contract alone (no chain): what init infers for each kind of column.
    from gates.init import _column_rule

    frame = _mixed().astype(object).where(_mixed().notna(), "").astype(str)
    csv = tmp_path / "t.csv"
    rules = {c: _column_rule(csv, c, frame[c], is_id=c == "row id") for c in frame.columns}
    assert rules["row id"] == {"dtype": "int64", "unique": True}
    assert rules["colour"] == {
        "dtype": "string",
        "allowed": ["blue", "green", "red"],
        "nullable": True,
    }
    assert rules["size (cm)"]["dtype"] == "float64"
    assert rules["size (cm)"]["nullable"] is True
    assert rules["flag"] == {"dtype": "bool"}
    low, high = (
        float(frame["weight.kg"].astype(float).min()),
        float(frame["weight.kg"].astype(float).max()),
    )
    # Widened by its width on each side, but not below 0: no weight was negative.
    assert rules["weight.kg"]["min"] == max(0.0, low - (high - low)) == 0.0
    assert rules["weight.kg"]["max"] >= high + (high - low) - 0.01


# --- bad input: one line naming the file or column, exit 2 ---------------------------------


def _init(tmp_path: Path, *args: str, capsys: Any) -> tuple[int, str]:
    code = main(["init", *args, "--policy", str(tmp_path / "policy.toml")])
    captured = capsys.readouterr()
    return code, captured.err


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# Three rows of each class: the fewest init takes (MIN_CLASS_ROWS).
_THREE_EACH = "a,y\n1,x\n2,z\n3,x\n4,z\n5,x\n6,z\n"

BAD = {
    "missing-file": (None, ("--label", "y"), ["nothing"]),
    "label-absent": ("a,b\n1,x\n2,y\n", ("--label", "y"), ["--label column 'y' not found", "a, b"]),
    # A semicolon-separated file read as one column (user trial, 7 December): say why.
    "semicolon-separated": (
        "a;y\n1;x\n2;z\n",
        ("--label", "y"),
        ["--label column 'y' not found", "';'-separated", "comma-separated"],
    ),
    "id-absent": ("a,y\n1,x\n2,z\n", ("--label", "y", "--id", "key"), ["'key' not found"]),
    "one-class": ("a,y\n1,x\n2,x\n3,x\n", ("--label", "y"), ["one class only", "'y'"]),
    "header-only": ("a,y\n", ("--label", "y"), ["found none"]),
    "empty-file": ("", ("--label", "y"), ["empty"]),
    "blank-label": ("a,y\n1,x\n2,\n3,z\n", ("--label", "y"), ["'y'", "blank label"]),
    "id-repeats": (
        "k,a,y\n1,1,x\n1,2,z\n2,3,x\n3,4,z\n4,5,x\n5,6,z\n",
        ("--label", "y", "--id", "k"),
        ["'k'", "repeats"],
    ),
    "label-is-id": ("k,a,y\n1,1,x\n2,2,z\n", ("--label", "y", "--id", "y"), ["same column"]),
    "only-the-label": ("y\nx\nz\n", ("--label", "y"), ["at least one feature"]),
    # One or two rows of a class were a scikit-learn traceback (user trial, 7 December).
    "class-of-one": ("a,y\n1,x\n2,x\n3,z\n4,x\n", ("--label", "y"), ["1 row(s) of class 'z'"]),
    "class-of-two": (
        "a,y\n1,x\n2,x\n3,z\n4,x\n5,z\n6,x\n",
        ("--label", "y"),
        ["2 row(s) of class 'z'", "at least 3"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_the_file_or_column_and_exit_2(
    case: str, tmp_path: Path, capsys: Any
) -> None:
    text, args, words = BAD[case]
    path = tmp_path / "in" / "absent.csv" if text is None else _csv(tmp_path, text)
    code, err = _init(tmp_path, str(path), *args, capsys=capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in err
    for word in words:
        assert word in err
    assert not (tmp_path / "policy.toml").exists()


@pytest.mark.parametrize(
    ("name", "data", "word"),
    [
        pytest.param("t.xlsx", b"PK\x03\x04\x00\x00", ".parquet", id="other-suffix"),
        pytest.param("t.parquet", b"PAR1\x00\x01", "Parquet", id="not-parquet"),
        pytest.param("t.csv", b"PK\x03\x04\x00\x00binary", "binary", id="binary-named-csv"),
        pytest.param("t.csv", b"a,y\n\xff\xfe,x\n", "UTF-8", id="not-utf8"),
    ],
)
def test_a_file_that_is_not_csv_text_is_refused(
    name: str, data: bytes, word: str, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    code, err = _init(tmp_path, str(path), "--label", "y", capsys=capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in err
    assert word in err


def test_an_existing_policy_is_not_replaced_without_force(tmp_path: Path, capsys: Any) -> None:
    path = _csv(tmp_path, "a,y\n1,x\n2,z\n")
    (tmp_path / "policy.toml").write_text("# mine\n", encoding="utf-8")
    code, err = _init(tmp_path, str(path), "--label", "y", capsys=capsys)
    assert code == 2
    assert err.strip() == (
        f"error: {tmp_path / 'policy.toml'}: exists; pass --force to replace its [model], [cv], "
        "[data] and [risk] tables"
    )
    assert (tmp_path / "policy.toml").read_text(encoding="utf-8") == "# mine\n"


# --- integer classes ----------------------------------------------------------------------


def _data_policy(**changes: Any) -> dict[str, Any]:
    return {
        "path": "d.csv",
        "lock": "d.lock.json",
        "label": "y",
        "columns": {"a": {"dtype": "float64"}},
        **changes,
    }


def test_integer_classes_are_the_label_columns_text() -> None:
    from pipeline.config import DataPolicy

    data = DataPolicy.model_validate(_data_policy(classes=[0, 1, 2], positive_class=2))
    assert data.classes == ("0", "1", "2")
    assert data.positive_class == "2"


@pytest.mark.parametrize(
    ("classes", "word"),
    [
        pytest.param([0.0, 1.0], "float 0.0", id="float"),
        pytest.param([True, False], "boolean True", id="bool"),
    ],
)
def test_a_float_or_bool_class_is_refused_saying_why(classes: list[Any], word: str) -> None:
    from pydantic import ValidationError

    from pipeline.config import DataPolicy

    with pytest.raises(ValidationError, match=word):
        DataPolicy.model_validate(_data_policy(classes=classes))


def test_logistic_regression_on_a_nullable_numeric_column_is_a_policy_error() -> None:
    from pipeline.config import DataPolicy, ModelPolicy
    from pipeline.errors import PolicyError
    from pipeline.model import build_estimator

    data = DataPolicy.model_validate(
        _data_policy(classes=["a", "b"], columns={"x": {"dtype": "float64", "nullable": True}})
    )
    with pytest.raises(PolicyError, match=r"\[data.columns\].x is nullable"):
        build_estimator(ModelPolicy(), seed=0, contract=data)
    assert build_estimator(ModelPolicy(estimator="hist_gradient_boosting"), seed=0, contract=data)


def test_init_refuses_a_positive_class_the_label_does_not_hold(tmp_path: Path, capsys: Any) -> None:
    path = _csv(tmp_path, _THREE_EACH)
    code, err = _init(tmp_path, str(path), "--label", "y", "--positive", "w", capsys=capsys)
    assert code == 2
    assert "--positive 'w'" in err
    assert "expected one of 'x', 'z'" in err  # not a tuple's repr in parentheses
    assert str(path) in err


# --- symlinks in the adopter's folder (red team, 6 December) ------------------------------


@pytest.mark.parametrize("planted", ["file", "folder", "policy"])
def test_init_writes_nothing_through_a_symlink_out_of_the_project(
    planted: str, tmp_path: Path, capsys: Any
) -> None:
    # A contributor committed data/t.csv (or data/ itself, or policy.toml) as a symlink out of
    # the project; init --force copied the user's table through it, over whatever it named
    # (a symlinked policy.toml made its folder the project: the copy went to outside/data/).
    table = _csv(tmp_path, _THREE_EACH)
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    victim = outside / ("data/t.csv" if planted == "policy" else "t.csv")
    victim.parent.mkdir(exist_ok=True)
    victim.write_text("not yours\n", encoding="utf-8")
    if planted == "policy":
        (outside / "policy.toml").write_text("# theirs\n", encoding="utf-8")
        (project / "policy.toml").symlink_to(outside / "policy.toml")
    elif planted == "file":
        (project / "data").mkdir()
        (project / "data" / "t.csv").symlink_to(victim)
    else:
        (project / "data").symlink_to(outside, target_is_directory=True)
    code = main(
        ["init", str(table), "--label", "y", "--force", "--policy", str(project / "policy.toml")]
    )
    err = capsys.readouterr().err
    assert victim.read_text(encoding="utf-8") == "not yours\n"
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "symlink" in err
    assert str(project / ("policy.toml" if planted == "policy" else "data")) in err


# --- no bar below chance -------------------------------------------------------------------


def test_a_baseline_at_chance_gets_bars_at_chance_and_a_warning(
    tmp_path: Path, gates_cli: Any
) -> None:
    # Labels drawn independently of the features (70% "x"): the baseline learns nothing, and
    # bars proposed below its own noise (accuracy >= 0.5x) would pass a model that always
    # answers "x". Each bar is raised to chance, so the chain fails until a model beats it.
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n).round(4),
            "b": rng.normal(0, 1, n).round(4),
            "y": np.where(rng.random(n) < 0.7, "x", "z"),
        }
    )
    root = copy_project(tmp_path / "project")
    table = tmp_path / "noise.csv"
    frame.to_csv(table, index=False)
    done = gates_cli(root, "init", str(table), "--label", "y", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: the baseline does not beat chance by its margin on accuracy" in done.stdout
    cv = tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))["cv"]["thresholds"]
    majority = float((frame["y"] == "x").mean())
    assert cv["accuracy"]["min_mean"] >= round(majority, 2) - 0.01
    assert cv["accuracy"]["min_holdout"] >= round(majority, 2) - 0.01
    assert cv["roc_auc"]["min_mean"] >= 0.5
    assert cv["accuracy"]["min_fold"] <= cv["accuracy"]["min_mean"]
    comments = (root / "policy.toml").read_text(encoding="utf-8").replace("\n# ", " ")
    assert "WARNING: the baseline does not beat chance" in comments


def test_a_table_with_near_copies_gets_its_near_share_raised_and_noted(
    tmp_path: Path, gates_cli: Any
) -> None:
    # 5% of the rows are copies of others with a one-ulp move: the data gate's near-duplicate
    # check (DATA052) would fail the user's own table at the default 0.02; init raises the
    # limit just above what it flagged and says so, as for the other shares.
    rng = np.random.default_rng(3)
    n = 400
    a, b = rng.normal(0, 1, n).round(4), rng.normal(0, 1, n).round(4)
    frame = pd.DataFrame({"a": a, "b": b, "y": np.where(a + b > 0, "x", "z")})
    copies = frame.iloc[:20].copy()
    copies["a"] = np.nextafter(copies["a"].to_numpy(), np.inf)
    frame = pd.concat([frame, copies], ignore_index=True)
    root = copy_project(tmp_path / "project")
    table = tmp_path / "near.csv"
    frame.to_csv(table, index=False)
    done = gates_cli(root, "init", str(table), "--label", "y", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    policy = tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))
    limit = policy["data"]["checks"]["duplicates"]["max_near_share"]
    assert 20 / len(frame) < limit <= 20 / len(frame) + 0.02
    comments = (root / "policy.toml").read_text(encoding="utf-8").replace("\n# ", " ")
    assert "[data.checks.duplicates].max_near_share" in comments


# --- what a user meets (user trial, 7 December) -------------------------------------------


def _separable(n: int = 200, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n).round(4), rng.normal(0, 1, n).round(4)
    return pd.DataFrame({"a": a, "b": b, "y": np.where(a + b > 0, "will go", "will stay")})


def test_the_lock_holds_the_serial_init_printed_and_a_re_init_goes_one_above(
    tmp_path: Path, gates_cli: Any
) -> None:
    # init approves three times as the policy fills in; it printed "(serial 1)" and left a
    # lock of serial 3, so the user's next `data approve` said serial 4.
    root = copy_project(tmp_path / "project")
    table = tmp_path / "t.csv"
    _separable().to_csv(table, index=False)
    lock = root / "data" / "t.lock.json"
    for expected in (1, 2):
        done = gates_cli(root, "init", str(table), "--label", "y", "--force")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"-> t.lock.json (serial {expected})" in done.stdout
        assert json.loads(lock.read_text(encoding="utf-8"))["serial"] == expected
    again = gates_cli(root, "data", "approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(serial 3)" in again.stdout


def test_a_parquet_table_gets_the_contract_its_csv_would_and_keeps_its_text_types(
    tmp_path: Path, gates_cli: Any
) -> None:
    # init read CSV only ("expected a .csv file") though the data gate reads Parquet: a user
    # with a Parquet table had no way in. Typed cells are inferred as their CSV text would be;
    # a Parquet text column stays string even when its values look like numbers ("007").
    frame = _separable()
    frame["code"] = [f"{i % 7:03d}" for i in range(len(frame))]
    frame["n"] = np.arange(len(frame), dtype=np.int64)
    frame["ok"] = frame["a"] > 0
    frame["w"] = frame["b"].where(frame.index % 9 != 0)
    frame["when"] = pd.date_range("2024-01-01", periods=len(frame), freq="D")
    # A bool label: its classes are the text the data gate reads ("True"), not a feature's
    # "true" (which the gate found outside the classes: DATA020, "a bug in init").
    frame["y"] = frame["a"] + frame["b"] > 0
    root = copy_project(tmp_path / "project")
    table = tmp_path / "t.parquet"
    frame.to_parquet(table, index=False)
    done = gates_cli(root, "init", str(table), "--label", "y", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "data" / "t.parquet").read_bytes() == table.read_bytes()
    data = tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))["data"]
    assert data["path"] == "data/t.parquet"
    assert data["classes"] == ["False", "True"]
    columns = data["columns"]
    assert columns["code"]["dtype"] == "string"
    assert columns["code"]["allowed"] == [f"{i:03d}" for i in range(7)]
    assert columns["n"]["dtype"] == "int64"
    assert columns["ok"] == {"dtype": "bool"}
    assert columns["w"]["dtype"] == "float64"
    assert columns["w"]["nullable"] is True
    assert columns["when"] == {"dtype": "string"}
    assert gates_cli(root, "data", "verify").returncode == 0


def test_a_free_text_column_is_named_in_a_warning(tmp_path: Path, gates_cli: Any) -> None:
    # A column of unique notes became 200 one-hot features without a word: init now says so
    # (an id passed as --id, and a category set with an allowed list, are not named).
    frame = _separable()
    frame["note"] = [f"called on day {i}" for i in range(len(frame))]
    frame["colour"] = np.where(frame["a"] > 1, "red", "blue")
    root = copy_project(tmp_path / "project")
    table = tmp_path / "t.csv"
    frame.to_csv(table, index=False)
    done = gates_cli(root, "init", str(table), "--label", "y", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: column")]
    assert warnings == [
        "warning: column 'note' is text with 200 distinct values in 200 rows (more than 50: no "
        "allowed list): each value becomes a one-hot feature and one unseen in training counts "
        "for nothing; if it is a row id, pass --id, else drop or group it"
    ]
