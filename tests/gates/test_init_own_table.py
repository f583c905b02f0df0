"""``init`` on tables an ML engineer brings (review18, 7 December): each refusal is one line
naming the file and column, exit 2, no traceback, and nothing written. Each was red before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gates._cli import main


def _init(folder: Path, *args: str, capsys: Any) -> tuple[int, str]:
    code = main(["init", *args, "--policy", str(folder / "policy.toml")])
    return code, capsys.readouterr().err


def _rows(n: int = 40) -> str:
    return "\n".join(f"{i},{i * 2},{'yes' if i % 2 else 'no'}" for i in range(n)) + "\n"


@pytest.mark.parametrize(
    ("header", "found"),
    [
        ("a,a,churn", "column 'a' appears 2 times in the header"),
        ("a,b,a,a,churn", "column 'a' appears 3 times in the header"),
        (",b,churn", "column 1 has no name in the header"),
        ("a, ,churn", "column 2 has no name in the header"),
    ],
)
def test_a_header_pandas_would_rename_is_refused(
    tmp_path: Path, capsys: Any, header: str, found: str
) -> None:
    # pandas renamed a repeated name to 'a.1' and an empty one to 'Unnamed: 0': the policy
    # then declared columns the file does not name, and the refusal of repeated names in
    # _require_columns never fired.
    table = tmp_path / "t.csv"
    table.write_text(f"{header}\n{_rows()}", encoding="utf-8")
    folder = tmp_path / "project"
    folder.mkdir()
    code, err = _init(folder, str(table), "--label", "churn", capsys=capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"error: {table}: {found}; expected each column named once"]
    assert sorted(p.name for p in folder.iterdir()) == []


def test_a_repeated_name_in_quotes_is_refused_too(tmp_path: Path, capsys: Any) -> None:
    table = tmp_path / "t.csv"
    table.write_text(f'"a","a",churn\n{_rows()}', encoding="utf-8-sig")
    code, err = _init(tmp_path, str(table), "--label", "churn", capsys=capsys)
    assert code == 2
    assert "column 'a' appears 2 times in the header" in err


def test_a_binary_parquet_column_is_one_line(tmp_path: Path, capsys: Any) -> None:
    # Its cells became "b'x'" in the allowed list while the data gate reads 'x': init's own
    # approval failed with "the inferred contract does not hold on the data (a bug in init)".
    table = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": pa.array([b"x"] * 40), "churn": ["yes", "no"] * 20}), table)
    code, err = _init(tmp_path, str(table), "--label", "churn", capsys=capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {table}: column 'a' is binary; expected float64, int64, string or bool "
        "columns (store text as a string column)"
    ]
    assert not (tmp_path / "policy.toml").exists()


def test_a_policy_in_a_missing_folder_is_one_line(tmp_path: Path, capsys: Any) -> None:
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": range(40), "churn": ["yes", "no"] * 20}).to_csv(table, index=False)
    folder = tmp_path / "absent"
    code, err = _init(folder, str(table), "--label", "churn", capsys=capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {folder / 'policy.toml'}: expected an existing folder for the policy, "
        f"found no folder {folder}"
    ]
    assert not folder.exists()


def test_the_tables_force_replaces_are_named_as_init_writes_them(
    tmp_path: Path, capsys: Any
) -> None:
    # init also writes [risk] (and --force replaces it), but the refusal and --help said
    # "[model], [cv] and [data]".
    (tmp_path / "policy.toml").write_text("schema_version = 1\n", encoding="utf-8")
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": range(40), "churn": ["yes", "no"] * 20}).to_csv(table, index=False)
    code, err = _init(tmp_path, str(table), "--label", "churn", capsys=capsys)
    assert code == 2
    assert "[model], [cv], [data] and [risk] tables" in err
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    assert "[model], [cv], [data] and [risk]" in " ".join(capsys.readouterr().out.split())


def test_a_latin1_table_is_told_where_its_first_bad_byte_is(tmp_path: Path, capsys: Any) -> None:
    # The offset was the error's within a buffer pandas decoded ("at offset 1" for a byte on
    # line 31), not within the file.
    table = tmp_path / "t.csv"
    lines = ["city,n,churn"] + [f"Paris,{i},{'yes' if i % 2 else 'no'}" for i in range(29)]
    lines.append("Zürich,30,yes")
    text = "\n".join(lines) + "\n"
    table.write_bytes(text.encode("latin-1"))
    at = text.encode("latin-1").index(b"\xfc")
    code, err = _init(tmp_path, str(table), "--label", "churn", capsys=capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {table}: expected UTF-8 CSV, found undecodable bytes at byte {at} (line 31)"
    ]
