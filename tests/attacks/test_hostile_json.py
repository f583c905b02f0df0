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

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = "data/breast_cancer.lock.json"
APPROVAL = "data/breast_cancer.lock.approval.json"
BASELINE = "bandit-baseline.json"
ENVELOPE = "artifacts/attestation.intoto.json"
BATCH = "data/quarantine/b1/batch.json"
JOURNAL = "data/quarantine/b1/approving.json"
_TIMEOUT = 120
_ADDRESS_SPACE = 3 << 30

# argv: the code's folder, the project, then the CLI's arguments. For 'run GATE', the gates
# before GATE are recorded as PASSED in run 'r' (this test is about GATE's own reads).
_CHILD = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(os.environ["HOSTILE_AS"]),) * 2)
sys.path.insert(0, sys.argv[1])
from pathlib import Path
root = Path(sys.argv[2])
os.chdir(root)
args = sys.argv[3:]
if args[0] == "run":
    from gates.base import GateResult, Status
    from gates.inputs import input_digests
    from gates.registry import GATES
    from pipeline.config import load_policy

    from pipeline.errors import PipelineError

    try:  # a policy refused at load is the CLI's to report
        inputs = input_digests(load_policy(root / "policy.toml"))
    except PipelineError:
        inputs = {}
    (root / "reports").mkdir(exist_ok=True)
    for spec in GATES:
        if spec.name == args[1]:
            break
        passed = GateResult(spec.name, Status.PASSED, "ok", "r", inputs=inputs)
        (root / "reports" / f"{spec.name}.json").write_text(passed.to_json(), encoding="utf-8")
    os.environ["GATES_RUN_ID"] = "r"
from gates._cli import main
sys.exit(main(args))
"""


def _nested(path: Path, tmp: Path) -> None:
    path.write_text("[" * 200_000, encoding="utf-8")


def _huge_integer(path: Path, tmp: Path) -> None:
    path.write_text('{"schema_version": 1' + "0" * 100_000 + "}", encoding="utf-8")


def _not_utf8(path: Path, tmp: Path) -> None:
    path.write_bytes(b'{"schema_version": "\xff\xfe"}')


def _fifo(path: Path, tmp: Path) -> None:
    os.mkfifo(tmp / "fifo")
    path.symlink_to(tmp / "fifo")


def _dev_zero(path: Path, tmp: Path) -> None:
    path.symlink_to("/dev/zero")


def _sparse(path: Path, tmp: Path) -> None:
    path.write_text("[", encoding="utf-8")
    os.truncate(path, 3 << 30)


FORMS: dict[str, Callable[[Path, Path], None]] = {
    "nested 200,000 deep": _nested,
    "a 100,001-digit number": _huge_integer,
    "invalid UTF-8": _not_utf8,
    "a symlink to a FIFO": _fifo,
    "a symlink to /dev/zero": _dev_zero,
    "a 3 GiB sparse file": _sparse,
}


def _project(root: Path) -> Path:
    """policy.toml, data/ and keys/ of the repository; the sast gate scans one small module
    with a baseline."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    for old, new in [
        ('paths = ["pipeline", "gates", "noxfile.py"]', 'paths = ["src"]'),
        ('# baseline = "bandit-baseline.json"', f'baseline = "{BASELINE}"'),
        ('loaders = ["pipeline/persist.py"]', "loaders = []"),
    ]:
        assert old in text, old
        text = text.replace(old, new, 1)
    (root / "policy.toml").write_text(text, encoding="utf-8")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('hello')\n", encoding="utf-8")
    (root / BASELINE).write_text('{"results": []}\n', encoding="utf-8")
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOSTILE_AS": str(_ADDRESS_SPACE)}
    env.pop("GATES_RUN_ID", None)
    try:
        return subprocess.run(
            [sys.executable, "-c", _CHILD, str(REPO), str(root), *args],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
            cwd=root,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"'python -m gates {' '.join(args)}' did not answer within {_TIMEOUT} s")


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with ``[roles].approvers`` and the lock approved by carol (a real approve)."""
    from gates.approve import approve
    from pipeline.config import load_policy
    from tests.keys_support import new_pem_pair

    base = tmp_path_factory.mktemp("hostile")
    root = _project(base / "approved")
    (base / "secret").mkdir()
    pem = new_pem_pair(root, base / "secret", "carol", "ed25519")
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[roles]\napprovers = {carol = "keys/carol.pub"}\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_APPROVER_KEY", pem)
        assert approve(load_policy(root / "policy.toml"), out=io.StringIO()) == 0
    return root


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
    if CASES[case][1]:
        return Path(shutil.copytree(approved, tmp_path / "project", symlinks=True))
    return _project(tmp_path / "project")


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
    done = _run(root, *args)
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
    done = _run(_copy(case, approved, tmp_path), *CASES[case][2])
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


_READ_CHAMPION = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(os.environ["HOSTILE_AS"]),) * 2)
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gates.feedback.trends import read_champion

champion, findings = read_champion(Path(sys.argv[2]), history=[])
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
    env = {**os.environ, "HOSTILE_AS": str(_ADDRESS_SPACE)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _READ_CHAMPION, str(REPO), str(path)],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"read_champion did not answer within {_TIMEOUT} s")
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
