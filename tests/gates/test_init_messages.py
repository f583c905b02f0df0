"""Rough edges of ``init``'s messages met walking README "Your own data" through on wine.

Each is one line naming the file and column, exit 2, no traceback (red before).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from gates._cli import main


def _wine(tmp_path: Path) -> Path:
    from sklearn.datasets import load_wine

    path = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    return path


def _init(folder: Path, *args: str, capsys: Any) -> tuple[int, str]:
    code = main(["init", *args, "--policy", str(folder / "policy.toml")])
    captured = capsys.readouterr()
    return code, captured.err


def test_a_label_spelled_in_another_case_is_named_even_beyond_the_header_shown(
    tmp_path: Path, capsys: Any
) -> None:
    # wine's label is its 14th column: the header quoted stops at 12, so it was not shown.
    code, err = _init(tmp_path, str(_wine(tmp_path)), "--label", "Target", capsys=capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "--label column 'Target' not found" in err
    assert "did you mean 'target'?" in err


def test_a_near_name_is_suggested_for_the_id_too(tmp_path: Path, capsys: Any) -> None:
    table = tmp_path / "t.csv"
    pd.DataFrame({"row_id": [1, 2, 3], "a": [1, 2, 3], "y": ["p", "q", "p"]}).to_csv(
        table, index=False
    )
    code, err = _init(tmp_path, str(table), "--label", "y", "--id", "rowid", capsys=capsys)
    assert code == 2
    assert "did you mean 'row_id'?" in err


def test_a_folder_where_the_data_copy_goes_is_one_line(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "project"
    (folder / "data" / "wine.csv").mkdir(parents=True)
    code, err = _init(folder, str(_wine(tmp_path)), "--label", "target", capsys=capsys)
    assert code == 2
    assert err.strip() == (
        f"error: {folder / 'data' / 'wine.csv'}: expected a file to copy {tmp_path / 'wine.csv'} "
        "over, found a folder"
    )
    assert "Traceback" not in err


def test_a_folder_of_its_own_is_told_the_command_it_has(tmp_path: Path, capsys: Any) -> None:
    # A new folder has no noxfile: "next: nox -s train gate" named a session it cannot run,
    # and "13 columns" counted wine's features, not its 14 columns.
    folder = tmp_path / "project"
    folder.mkdir()
    code = main(
        ["init", str(_wine(tmp_path)), "--label", "target", "--policy", str(folder / "policy.toml")]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert ": 13 columns besides the label, 3 classes" in out
    assert out.rstrip().splitlines()[-1] == "next: python -m gates run"
