"""Hostile JSON in the files a pull request commits and the gates parse (jsonsweep, 6 December).

A pull request controls every committed byte of the data lock (``data/<name>.lock.json``) and
of the bandit baseline (``[sast].baseline``). Each is planted here in six hostile forms: nesting
200,000 deep (Python's decoder raises RecursionError, not JSONDecodeError), a 100,000-digit
number (ValueError past 4,300 digits), bytes that are not UTF-8, a symlink to a FIFO and to
``/dev/zero`` (a read that never ends), and a 3 GiB sparse file (read whole into memory). Each
must fail the real command or gate with one message naming the file, no traceback, in bounded
time: each run is a child process with a timeout and a 3 GiB address-space limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile_support import (
    APPROVAL,
    BASELINE,
    BATCH,
    FORMS,
    LOCK,
    approved,
    project_copy,
    run_child,
    run_gates,
)

__all__ = ["approved"]  # the module fixture: the project with carol's real data approval
ENVELOPE = "artifacts/attestation.intoto.json"
JOURNAL = "data/quarantine/b1/approving.json"


# (file planted, with approvers, command, exit code expected, the words every refusal holds)
CASES = {
    "data verify": (LOCK, False, ("data", "verify"), 2, "data lock"),
    "data gate": (LOCK, False, ("run", "data", "--no-cache"), 1, "data lock"),
    "sast gate": (BASELINE, False, ("run", "sast", "--no-cache"), 2, "bandit baseline"),
    "data verify, approvers": (LOCK, True, ("data", "verify"), 2, "data lock"),
    "approval, data verify": (APPROVAL, True, ("data", "verify"), 1, "approval"),
    "approval, data gate": (APPROVAL, True, ("run", "data", "--no-cache"), 1, "approval"),
    "attestation, verify": (ENVELOPE, False, ("verify",), 1, "refused"),
    "batch, feedback list": (BATCH, False, ("feedback", "list"), 2, "batch record"),
    "journal, feedback approve": (JOURNAL, False, ("feedback", "approve", "b1"), 2, "approval"),
}


# No file to leave as written: verify needs a chain run; an approval journal, a killed approve.
_NO_CONTROL = (ENVELOPE, JOURNAL)


def _copy(case: str, approved: Path, tmp_path: Path) -> Path:
    return project_copy(CASES[case][1], approved, tmp_path)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_json_file_is_refused_naming_it(
    approved: Path, tmp_path: Path, case: str, form: str
) -> None:
    planted, _, args, code, words = CASES[case]
    root = _copy(case, approved, tmp_path)
    target = root / planted
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)  # not there before the gates or feedback wrote it
    FORMS[form](target, tmp_path)
    done = run_gates(root, *args)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    # A symlink out of the project is the policy's path rule's to refuse at load (exit 2)
    # where the file is a policy key (the lock, the baseline); the approval is not one (row 38).
    by_path_rule = "symlink" in form and planted in (LOCK, BASELINE)
    assert done.returncode == (2 if by_path_rule else code), output[-3000:]
    said = "expected a file inside the project folder" if by_path_rule else words
    named = [line for line in output.splitlines() if planted in line and said in line]
    assert named, output[-3000:]
    if args[0] == "run" and not by_path_rule:
        assert "ERRORED" in output or "FAILED" in output, output[-3000:]


@pytest.mark.parametrize("case", [case for case in CASES if CASES[case][0] not in _NO_CONTROL])
def test_the_committed_file_as_written_passes(approved: Path, tmp_path: Path, case: str) -> None:
    """The control: the same commands on the untouched files succeed."""
    done = run_gates(_copy(case, approved, tmp_path), *CASES[case][2])
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


_READ_CHAMPION = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(os.environ["HOSTILE_AS"]),) * 2)
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gates.feedback.trends import read_champion

champion, findings = read_champion(Path(sys.argv[3]), history=[])
print(champion)
for finding in findings:
    print(finding.rule, finding.severity.value, finding.message)
"""


@pytest.mark.parametrize("form", list(FORMS))
def test_a_hostile_champion_record_is_a_warning_naming_it(tmp_path: Path, form: str) -> None:
    """``[feedback].champion`` may name a record kept by hand in the tree (not the registry's
    pointer): the feedback stage's trends read it. Unreadable, it is FB110 and no champion."""
    path = tmp_path / "champion.json"
    FORMS[form](path, tmp_path)
    done = run_child(_READ_CHAMPION, tmp_path, str(path), what="read_champion")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "None", done.stdout
    assert len(lines) == 2, done.stdout
    assert lines[1].startswith("FB110 warning champion record champion.json is unreadable"), lines


@pytest.mark.parametrize("form", ["nested 200,000 deep", "a 100,001-digit number", "invalid UTF-8"])
def test_a_hostile_model_manifest_is_a_model_error_naming_it(tmp_path: Path, form: str) -> None:
    """The manifest beside a model (read in process: FIFOs and symlinks were refused already)
    to a RecursionError or ValueError crash, not the ModelError naming it."""
    from pipeline.errors import ModelError
    from pipeline.persist import read_manifest

    path = tmp_path / "model.manifest.json"
    FORMS[form](path, tmp_path)
    with pytest.raises(ModelError, match=r"model.manifest.json: model manifest is malformed"):
        read_manifest(path)


# Within the pointer's 64 KiB bound (the forms above are refused by their size there).
_SMALL = {"nested 50,000 deep": b"[" * 50_000, "a 5,001-digit number": b"1" + b"0" * 5_000}


@pytest.mark.parametrize("form", list(_SMALL))
@pytest.mark.parametrize("name", ["promotions.jsonl", "champion"])
def test_a_hostile_registry_line_or_pointer_is_refused_naming_it(
    tmp_path: Path, name: str, form: str
) -> None:
    """The audit log's lines and the champion pointer (a registry a checkout brings outside a
    git work tree, where row 44 cannot tell it was committed): a RecursionError or ValueError
    crash, not the refusal naming the file."""
    from pipeline.champion import ModelRegistry, RegistryError
    from pipeline.promotion import PromotionError, read_events

    registry = tmp_path / "registry"
    registry.mkdir()
    path = registry / name
    path.write_bytes(_SMALL[form] + b"\n")  # a line the log acknowledged
    if name == "champion":
        with pytest.raises(RegistryError, match=r"registry/champion: champion pointer unreadable"):
            ModelRegistry(registry, trusted=None).current_version()  # type: ignore[arg-type]
    else:
        with pytest.raises(PromotionError, match=r"promotions.jsonl:1: refused: not a JSON object"):
            read_events(registry)
