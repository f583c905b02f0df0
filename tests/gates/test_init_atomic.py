"""``init --force`` keeps the comments of the tables it keeps, and is all-or-nothing.

User trial, 7 December: ``init --force`` rewrote the tables it keeps ([run], [release],
[feedback], [serve], ...) through tomli-w, dropping every comment the user had written there
(the committed policy's inline comments included); and a failure after its first write (the
data copy, the policy, the data lock) left the project half rewritten: a new policy.toml with
provisional thresholds of 0.0 beside the old lock, which the chain would have judged by.

Each failure is planted at each step: in process (the later step raises, ``KeyboardInterrupt``
included), and with a real SIGKILL of a child ``python -m gates init`` mid-run, after which
the next ``init`` puts back what the interrupted one changed. After each, every byte of the
project is what it was.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gates.init as init_module
from gates._cli import main
from gates.init import JOURNAL, init
from tests.project_support import copy_project

OWNED = ("model", "cv", "data", "risk")


def _separable(n: int = 120, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n).round(4), rng.normal(0, 1, n).round(4)
    return pd.DataFrame({"a": a, "b": b, "y": np.where(a + b > 0, "will go", "will stay")})


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = copy_project(tmp_path / "project", keys=False)
    table = tmp_path / "t.csv"
    _separable().to_csv(table, index=False)
    return root, table


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A project after one ``init --force`` of ``t.csv``, whose table then changed: a re-init
    writes over every file init writes (the data copy, lock, checksums, policy)."""
    root, table = _project(tmp_path_factory.mktemp("initialised"))
    init(table, label="y", force=True, policy_path=root / "policy.toml", out=io.StringIO())
    _separable(seed=5).to_csv(table, index=False)
    return root, table


def _copy(initialised: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    root, table = initialised
    shutil.copytree(root, tmp_path / "project", symlinks=True)
    shutil.copy2(table, tmp_path / table.name)
    return tmp_path / "project", tmp_path / table.name


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the project (bytes), but Python's byte-code caches."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


def _kept_lines(text: str) -> list[str]:
    """The lines of the tables init does not own (comments included), header by header."""
    kept, keep = [], False
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("["):
            top = next(iter(tomllib.loads(stripped.split("#")[0].strip() + "\n")))
            keep = top not in OWNED
        if keep and line.strip():
            kept.append(line)
    return kept


# --- comments ------------------------------------------------------------------------------


def test_force_keeps_every_line_and_comment_of_the_tables_it_does_not_write(
    tmp_path: Path,
) -> None:
    root, table = _project(tmp_path)
    policy = root / "policy.toml"
    before = policy.read_text(encoding="utf-8")
    before_doc = tomllib.loads(before)
    init(table, label="y", force=True, policy_path=policy, out=io.StringIO())
    after = policy.read_text(encoding="utf-8")
    lines = after.splitlines()
    missing = [line for line in _kept_lines(before) if line not in lines]
    assert not missing, missing[:5]
    # The committed policy's own comments, inline and above a table, one of each kind.
    assert (
        "seed = 42                    # every split, fold and estimator is seeded from this"
        in lines
    )
    assert any(line.startswith("# Per metric, how far the candidate's holdout") for line in lines)
    document = tomllib.loads(after)
    for name, value in before_doc.items():
        if name not in OWNED:
            assert document[name] == value, name
    assert document["data"]["path"] == "data/t.csv"


def test_tables_it_cannot_cut_out_whole_are_kept_as_values() -> None:
    """A multi-line string holding a line that looks like a table header: the cut would not
    give back the same tables, so none is kept as text (they are written from their values,
    without their comments), never a policy with other values."""
    from gates.init import _kept_text

    text = (
        "# top\nschema_version = 1\n[run]\nseed = 1  # mine\n"
        '[feedback]\nmlflow_experiment = """x\n[model]\n"""\n[model]\nestimator = "a"\n'
    )
    document = tomllib.loads(text)
    kept = {k: v for k, v in document.items() if k not in OWNED and k != "schema_version"}
    assert _kept_text(text, kept) is None
    plain = text.replace('"""x\n[model]\n"""', '"x"')
    document = tomllib.loads(plain)
    kept = {k: v for k, v in document.items() if k not in OWNED and k != "schema_version"}
    cut = _kept_text(plain, kept)
    assert cut is not None
    assert "seed = 1  # mine" in cut
    assert "[model]" not in cut
    assert "# top" in cut


# --- all or nothing: a failure planted after each write -----------------------------------


class Planted(Exception):
    """The failure a test plants."""


def _fail_on(
    name: str, call: int = 1, *, error: type[BaseException] = Planted
) -> Callable[..., Any]:
    real = getattr(init_module, name)
    calls = {"n": 0}

    def planted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            if name == "_publish":  # fail after the write itself
                real(*args, **kwargs)
            raise error(f"planted in {name} (call {call})")
        return real(*args, **kwargs)

    return planted


STEPS = {
    # after the data copy and the first (staged) policy, before any lock is written
    "first-approval": ("_approve", 1, Planted),
    # after the first approval rewrote the lock and the checksums
    "screen": ("_screen", 1, Planted),
    "second-approval": ("_approve", 2, Planted),
    "baseline": ("_baseline", 1, KeyboardInterrupt),
    "risk": ("_risk_table", 1, Planted),
    "last-approval": ("_approve", 3, Planted),
    # the final policy is in place (policy.toml replaced), then something fails
    "publish": ("_publish", 1, Planted),
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_failure_after_any_write_leaves_the_project_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, initialised: tuple[Path, Path]
) -> None:
    root, table = _copy(initialised, tmp_path)
    before = _snapshot(root)
    name, call, error = STEPS[step]
    monkeypatch.setattr(init_module, name, _fail_on(name, call, error=error))
    with pytest.raises(error, match="planted"):
        init(table, label="y", force=True, policy_path=root / "policy.toml", out=io.StringIO())
    assert _changed(before, _snapshot(root)) == []


def test_a_failure_on_a_first_init_removes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, table = _project(tmp_path)
    before = _snapshot(root)
    monkeypatch.setattr(init_module, "_baseline", _fail_on("_baseline"))
    with pytest.raises(Planted):
        init(table, label="y", force=True, policy_path=root / "policy.toml", out=io.StringIO())
    assert _changed(before, _snapshot(root)) == []
    assert not (root / JOURNAL).exists()


# --- all or nothing: a real SIGKILL mid-init -------------------------------------------------


def _start(root: Path, table: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gates", "init", str(table), "--label", "y", "--force"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _wait_for(
    check: Callable[[], bool], child: subprocess.Popen[bytes], limit: float = 120
) -> None:
    end = time.monotonic() + limit
    while not check():
        assert child.poll() is None, "init ended before the kill"
        assert time.monotonic() < end, "init never reached the step"
        time.sleep(0.01)


def _staged_holds(root: Path, text: str) -> Callable[[], bool]:
    staged = root / ".policy.toml.init"

    def check() -> bool:
        try:
            return text in staged.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False

    return check


# When the child is killed: as soon as its journal is armed (the data copy may be under way),
# once the first approval rewrote the lock, once the final policy (with its [risk] bars) is
# staged, before the last approval and the rename over policy.toml.
MOMENTS = {
    "journal-armed": lambda root, before: (root / JOURNAL / "journal.json").exists,
    "lock-written": lambda root, before: (
        lambda: (root / "data" / "t.lock.json").read_bytes() != before["data/t.lock.json"]
    ),
    "final-policy-staged": lambda root, before: _staged_holds(root, "[risk.privacy]"),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_a_sigkill_mid_init_is_undone_by_the_next_init(
    tmp_path: Path, moment: str, initialised: tuple[Path, Path]
) -> None:
    root, table = _copy(initialised, tmp_path)
    before = _snapshot(root)
    child = _start(root, table)
    try:
        _wait_for(MOMENTS[moment](root, before), child)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (root / JOURNAL / "journal.json").exists()  # the kill left an armed journal
    # The next init (here one that then refuses its input) first puts everything back.
    code = main(
        [
            "init",
            str(tmp_path / "absent.csv"),
            "--label",
            "y",
            "--policy",
            str(root / "policy.toml"),
            "--force",
        ]
    )
    assert code == 2
    assert _changed(before, _snapshot(root)) == []


def test_a_command_in_the_policys_comments_is_never_split_over_two_lines() -> None:
    """User trial: the policy's first comment broke `python -m gates policy check` after
    `python -m`, so it could not be copied from the file whole."""
    from gates.init import _comment

    text = (
        "Written by `python -m gates init wine.csv`: 178 rows, classes ['barbera', 'barolo', "
        "'grignolino']. Every inferred value below says where it came from; edit freely, "
        "then `python -m gates policy check`."
    )
    lines = _comment(text).splitlines()
    assert all(len(line) <= 98 for line in lines)
    assert any("`python -m gates policy check`." in line for line in lines)
    assert " ".join(line.removeprefix("# ") for line in lines) == text


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ({"path": "../outside.txt", "backup": None}, "not a file inside"),
        ({"path": "/etc/hostname", "backup": None}, "not a file inside"),
        ({"path": "policy.toml", "backup": "../../policy.toml"}, "names no backup"),
    ],
)
def test_a_journal_committed_to_the_project_restores_nothing_outside_it(
    tmp_path: Path, entry: dict[str, Any], why: str
) -> None:
    """A pull request can commit ``.gates-init/journal.json``: the next init must not delete
    or overwrite a file outside the project through it (nor take a backup from elsewhere)."""
    import json

    from gates.init import InitError

    root, table = _project(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n", encoding="utf-8")
    journal = root / JOURNAL
    journal.mkdir()
    (journal / "journal.json").write_text(json.dumps({"files": [entry]}), encoding="utf-8")
    before = _snapshot(root)
    with pytest.raises(InitError, match=why):
        init(table, label="y", force=True, policy_path=root / "policy.toml", out=io.StringIO())
    assert outside.read_text(encoding="utf-8") == "mine\n"
    assert _changed(before, _snapshot(root)) == []


def test_a_failure_in_an_empty_folder_leaves_it_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No policy and no data/ yet: a failed init removes the data/ folder it made too."""
    folder = tmp_path / "empty"
    folder.mkdir()
    table = tmp_path / "t.csv"
    _separable().to_csv(table, index=False)
    monkeypatch.setattr(init_module, "_risk_table", _fail_on("_risk_table"))
    with pytest.raises(Planted):
        init(table, label="y", policy_path=folder / "policy.toml", out=io.StringIO())
    assert sorted(folder.iterdir()) == []
