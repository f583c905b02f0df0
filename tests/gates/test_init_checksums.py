"""``init`` (and every approval) keeps the other tables' lines of ``data/SHA256SUMS``.

Before (adoption trial, 7 December): ``pipeline.data.write_checksums`` rewrote the whole file
with the new table's one line, so ``init`` of a second table in ``data/`` dropped the first
table's checksum, and a policy still naming the first table then failed DATA002 ("absent"). Now
the table's own line is replaced or appended, every other line kept in place; a file that is not
in sha256sum format is refused with one line naming it, and nothing changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.gates.test_init import _separable
from tests.project_support import copy_project

OTHER = "0123456789abcdef" * 4


def _table(tmp_path: Path) -> Path:
    table = tmp_path / "t.csv"
    _separable().to_csv(table, index=False)
    return table


def test_init_keeps_every_other_line_of_the_checksums_file(tmp_path: Path, gates_cli: Any) -> None:
    root = copy_project(tmp_path / "project")
    sums = root / "data" / "SHA256SUMS"
    before = sums.read_text(encoding="utf-8")
    assert before.endswith("  breast_cancer.csv\n")
    sums.write_text(f"{before}{OTHER}  *other table.parquet\n", encoding="utf-8")
    table = _table(tmp_path)
    for _ in range(2):  # a second init replaces its own line, never adds another
        done = gates_cli(root, "init", str(table), "--label", "y", "--force")
        assert done.returncode == 0, done.stdout + done.stderr
        digest = hashlib.sha256((root / "data" / "t.csv").read_bytes()).hexdigest()
        assert sums.read_text(encoding="utf-8") == (
            f"{before}{OTHER}  *other table.parquet\n{digest}  t.csv\n"
        )


def test_a_checksums_file_init_cannot_parse_is_refused_and_left_as_it_was(
    tmp_path: Path, gates_cli: Any
) -> None:
    root = copy_project(tmp_path / "project")
    sums = root / "data" / "SHA256SUMS"
    bad = "not a checksum line\n"
    sums.write_text(sums.read_text(encoding="utf-8") + bad, encoding="utf-8")
    planted = sums.read_bytes()
    policy = (root / "policy.toml").read_bytes()
    done = gates_cli(root, "init", str(_table(tmp_path)), "--label", "y", "--force")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error == [
        f"error: {sums}:2: expected '<sha256>  <file>' (sha256sum format), found "
        "'not a checksum line'"
    ], done.stderr
    assert sums.read_bytes() == planted
    assert (root / "policy.toml").read_bytes() == policy
    assert not (root / "data" / "t.csv").exists()
    assert not (root / ".gates-init").exists()
