"""Child processes for the crash tests: each loops over one write path until the test kills it.

``python -m tests.crash_support <loop> ARGS`` prints ``ready`` once its imports are done, then
repeats its write for ever; the test sends SIGKILL at a random moment (no cleanup, no finally
blocks run) and checks what is left. Nothing here is a hook in the code under test: the children
call the same functions a run calls.

- ``append PATH TAG``: ``history.append`` of records ``TAG-0``, ``TAG-1``, ... of varying size;
- ``stage ROOT TAG``: the feedback stage (``run_chain(["feedback"])``) for runs ``TAG-0``, ...,
  on a slow disk: every ``os.fsync`` of this child takes 10 ms longer, that of the history
  itself 200 ms, so that a kill at a random moment often lands inside a write, and between the
  record and its ``.head`` in particular (the append is a few ms of a 200 ms stage). It prints
  ``append`` as each append starts, so that a test may also kill it just after one;
- ``promote REGISTRY WORK KEYFILE MODEL TAG``: sign a new bundle ``TAG-i`` and promote it;
- ``sealed-append PATH TAG NAME``: ``history.append`` to an encrypted history (records sealed
  for the file ``NAME``, key-encryption key in ``$GATES_DATA_KEY``).

A loop prints ``ready PID`` (its process id) when it starts. ``serve MODULE...`` is a fork
server for a kill loop: it imports the modules named (what the loops import: the interpreter
start and these imports are most of a child's cost, and a loop kills 100 children), prints
``ready``, then reads one JSON list ``[loop, *args]`` per line from stdin and forks a child
that runs that loop. Each child is a real process of its own, killed with a real SIGKILL at a
random moment exactly as a freshly started one; the server reaps it and prints
``ended EXITCODE`` (``-9`` for SIGKILL), so that the test reads the files only once the child
is gone. ``ForkServer`` below is the tests' side of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

# The gates the registry's champion must have passed (as in tests/pipeline/test_champion.py).
REQUIRED = ("data", "train", "cv")
MODEL = "artifacts/model.skops"
MANIFEST = "artifacts/model.manifest.json"


def make_bundle(root: Path, *, run_id: str, key: object, model: Path) -> Path:
    """A signed bundle under ``root`` holding the real skops ``model`` (and its manifest).

    Returns the envelope. ``key`` is a ``pipeline.signing.SigningKey``.
    """
    from pipeline.attestation import Subject, build_statement, sign_and_write
    from pipeline.signing import SigningKey

    assert isinstance(key, SigningKey)
    subjects = []
    for name, source in ((MODEL, model), (MANIFEST, model.with_name("model.manifest.json"))):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        subjects.append(Subject(name, hashlib.sha256(target.read_bytes()).hexdigest()))
    predicate = {
        "bundle": "artifacts",
        "run_id": run_id,
        "gates": {name: {"status": "PASSED"} for name in REQUIRED},
        # As the artifacts gate writes it: the registry audits the model file it names.
        "model": {
            "file": MODEL,
            "manifest": MANIFEST,
            "sha256": subjects[0].sha256,
            "estimator": "logistic_regression",
        },
    }
    envelope, _ = sign_and_write(
        build_statement(subjects, predicate), key=key, bundle_dir=root / "artifacts"
    )
    return envelope


def _append(path: str, tag: str) -> None:
    from gates.feedback import history

    _ready()
    i = 0
    while True:
        # Sizes from a few hundred bytes to a few KiB, so lines cross page boundaries.
        history.append(Path(path), {"run_id": f"{tag}-{i}", "pad": "x" * (97 * (i % 41))})
        i += 1


def _stage(root: str, tag: str) -> None:
    from gates.feedback import history
    from gates.runner import run_chain
    from pipeline.config import load_policy

    project = Path(root)
    real_fsync, real_append = os.fsync, history.append

    def slow_fsync(fd: int) -> None:
        real_fsync(fd)
        log = os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl")
        time.sleep(0.2 if log else 0.01)

    def announced_append(
        path: Path, payload: dict[str, object], **options: object
    ) -> dict[str, object]:
        sys.stdout.write("append\n")
        sys.stdout.flush()
        return real_append(path, payload, **options)  # type: ignore[arg-type]

    os.fsync = slow_fsync
    history.append = announced_append
    _ready()
    i = 0
    while True:
        os.environ["GATES_RUN_ID"] = f"{tag}-{i}"
        summary = run_chain(
            ["feedback"],
            policy=load_policy(project / "policy.toml"),
            reports_dir=project / "reports",
            out=io.StringIO(),
        )
        if summary.exit_code != 0:
            sys.stderr.write(f"run {tag}-{i}: {[r.summary for r in summary.results]}\n")
            sys.exit(3)
        i += 1


def _promote(registry_dir: str, work: str, keyfile: str, model: str, tag: str) -> None:
    from pipeline.attestation import verify_bundle
    from pipeline.champion import ModelRegistry
    from pipeline.signing import read_private_key

    key = read_private_key(Path(keyfile), release=True)
    registry = ModelRegistry(Path(registry_dir), trusted=key.public, required_gates=REQUIRED)
    _ready()
    i = 0
    while True:
        root = Path(work) / f"{tag}-{i}"
        envelope = make_bundle(root, run_id=f"{tag}-{i}", key=key, model=Path(model))
        source = verify_bundle(envelope, root=root, trusted=key.public, required_gates=REQUIRED)
        registry.promote(source)
        i += 1


def _sealed_append(path: str, tag: str, name: str) -> None:
    from gates.feedback import history
    from pipeline.keys.local import LocalProvider

    cipher = history.RecordCipher(
        name=name,
        provider=LocalProvider(env="X", key_file=None, kek_env="GATES_DATA_KEY", kek_file=None),
    )
    _ready()
    i = 0
    while True:
        history.append(
            Path(path), {"run_id": f"{tag}-{i}", "pad": "x" * (i * 37 % 3000)}, cipher=cipher
        )
        i += 1


def _ready() -> None:
    sys.stdout.write(f"ready {os.getpid()}\n")
    sys.stdout.flush()


LOOPS = {"append": _append, "stage": _stage, "promote": _promote, "sealed-append": _sealed_append}


def _serve(*modules: str) -> None:
    """The fork server (see the module): one child per command line, reaped and reported."""
    import importlib
    import json
    import traceback

    for module in modules:
        importlib.import_module(module)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        loop, *args = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: run the loop until killed; never return into this loop
            try:
                LOOPS[loop](*args)
            except BaseException:  # reported on stderr, then exit code 3
                traceback.print_exc()
                sys.stderr.flush()
            os._exit(3)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"ended {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()


class ForkServer:
    """The test's side of ``serve``: ``kill(loop, *args, delay=...)`` forks a child running
    ``loop``, waits for its ``ready`` (and, given, its line ``after``), sleeps ``delay`` seconds
    and sends it SIGKILL; it returns once the server has reaped the child."""

    def __init__(self, process: subprocess.Popen[str], stderr: Path) -> None:
        self.process = process
        self.stderr = stderr

    def _fail(self, why: str) -> NoReturn:
        import pytest

        tail = self.stderr.read_text(encoding="utf-8", errors="replace")[-2000:]
        pytest.fail(f"{why}: {tail}")

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self._fail(f"the fork server stopped ({self.process.poll()})")
        return line.rstrip("\n")

    def kill(self, loop: str, *args: str, delay: float, after: str = "") -> None:
        import json
        import signal

        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps([loop, *args]) + "\n")
        self.process.stdin.flush()
        line = self._line()
        if not line.startswith("ready "):
            self._fail(f"the child did not print 'ready PID': {line!r}")
        pid = int(line.split()[1])
        if after and (line := self._line()) != after:
            self._fail(f"the child did not print {after!r}: {line!r}")
        time.sleep(delay)
        # Already gone (and reaped)? The exit code below says how it ended.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while not (line := self._line()).startswith("ended "):
            pass  # what the child printed after the lines read above (``append`` ...)
        code = int(line.split()[1])
        if code != -signal.SIGKILL:
            self._fail(f"the child stopped before it was killed ({code})")

    @classmethod
    @contextlib.contextmanager
    def started(
        cls, *modules: str, env: dict[str, str], cwd: Path, stderr: Path
    ) -> Iterator[ForkServer]:
        """A fork server that imported ``modules``, in ``cwd`` with ``env``; stopped after."""
        with stderr.open("w", encoding="utf-8") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.crash_support", "serve", *modules],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        server = cls(process, stderr)
        try:
            if (line := server._line()) != "ready":
                server._fail(f"the fork server did not start: {line!r}")
            yield server
        finally:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
                assert process.stdout is not None
                process.stdout.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        _serve(*sys.argv[2:])
    else:
        LOOPS[sys.argv[1]](*sys.argv[2:])
