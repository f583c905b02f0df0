"""The CLI in a child process, and the projects hostile files are planted in, for attack tests.

A planted file may hang a read or allocate without end: the real command runs in a child with a
timeout and (unless told otherwise) a 3 GiB address space, so that the test fails, not the
session. ``GATE_CHILD`` runs ``python -m gates ARGS``; for ``run GATE`` the gates before GATE
are first recorded as PASSED in run ``r`` (the test is about GATE's own reads).
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

from tests.project_support import REPO

TIMEOUT = 120
ADDRESS_SPACE = 3 << 30
LOCK = "data/breast_cancer.lock.json"
APPROVAL = "data/breast_cancer.lock.approval.json"
BASELINE = "bandit-baseline.json"
BATCH = "data/quarantine/b1/batch.json"

# argv: the code's folder, the project, then the CLI's arguments.
GATE_CHILD = """
import os, resource, sys
if "HOSTILE_AS" in os.environ:
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


def run_child(
    script: str,
    root: Path,
    *args: str,
    timeout: float = TIMEOUT,
    address_space: int | None = ADDRESS_SPACE,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -c script REPO root ARGS`` in ``root``, bounded; the test fails past ``timeout``
    naming ``what`` (default: the arguments)."""
    env = dict(os.environ)
    env.pop("GATES_RUN_ID", None)
    env.pop("HOSTILE_AS", None)
    if address_space is not None:
        env["HOSTILE_AS"] = str(address_space)
    try:
        return subprocess.run(
            [sys.executable, "-c", script, str(REPO), str(root), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=root,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what or ' '.join(args)} did not answer within {timeout} s")


def run_gates(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m gates ARGS`` in ``root`` through ``GATE_CHILD``, bounded."""
    return run_child(GATE_CHILD, root, *args, what=f"'python -m gates {' '.join(args)}'")


# --- six hostile forms of a JSON file ----------------------------------------------------------


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


# --- the projects they are planted in ----------------------------------------------------------


def scanned_project(root: Path, *, baseline: bool = False) -> Path:
    """policy.toml, data/ and keys/ of the repository; the sast gate scans ``src/`` (empty)
    with no loader module, and with a bandit baseline holding no result (``baseline``)."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    edits = [
        ('paths = ["pipeline", "gates", "noxfile.py"]', 'paths = ["src"]'),
        ('loaders = ["pipeline/persist.py"]', "loaders = []"),
    ]
    if baseline:
        edits.append(('# baseline = "bandit-baseline.json"', f'baseline = "{BASELINE}"'))
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    (root / "policy.toml").write_text(text, encoding="utf-8")
    (root / "src").mkdir()
    if baseline:
        (root / BASELINE).write_text('{"results": []}\n', encoding="utf-8")
    return root


def hostile_project(root: Path) -> Path:
    """``scanned_project`` with a baseline, the sast gate scanning one small module."""
    scanned_project(root, baseline=True)
    (root / "src" / "app.py").write_text("print('hello')\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with ``[roles].approvers`` and the lock approved by carol (a real approve)."""
    from gates.approve import approve
    from pipeline.config import load_policy
    from tests.keys_support import new_pem_pair

    base = tmp_path_factory.mktemp("hostile")
    root = hostile_project(base / "approved")
    (base / "secret").mkdir()
    pem = new_pem_pair(root, base / "secret", "carol", "ed25519")
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[roles]\napprovers = {carol = "keys/carol.pub"}\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_APPROVER_KEY", pem)
        assert approve(load_policy(root / "policy.toml"), out=io.StringIO()) == 0
    return root


def project_copy(approvers: bool, approved: Path, tmp_path: Path) -> Path:
    """A copy of ``approved`` (``approvers``) or a fresh project without approvers."""
    if approvers:
        return Path(shutil.copytree(approved, tmp_path / "project", symlinks=True))
    return hostile_project(tmp_path / "project")
