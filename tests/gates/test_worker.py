"""The warm gate worker: a real worker process answers, and every way it can fail is a failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest

from gates import worker as gate_worker
from gates.worker import GateWorker, WorkerError
from tests.conftest import REPO


@pytest.fixture
def started(tmp_path):
    """A real worker of this interpreter, serving from the repository's code."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GATES_RUN_ID", None)
    client = GateWorker(sys.executable, env=env, cwd=REPO)
    yield client
    client.close()


def test_the_worker_runs_cli_commands_and_returns_their_exit_codes(started, capfd):
    assert started.run(["list"]) == 0
    listed = capfd.readouterr().out
    assert "1. lint" in listed
    assert "9. feedback" in listed
    first = started.pid
    # A usage error is the CLI's own exit code (2) with its message, not a traceback.
    assert started.run(["run", "--rerun-from", "nope", "lint"]) == 2
    err = capfd.readouterr().err
    assert "--rerun-from: unknown gate 'nope'" in err
    assert "Traceback" not in err
    # argparse's own exit (an unknown subcommand) comes back as its exit code too.
    assert started.run(["no-such-command"]) == 2
    # One process served every request.
    assert started.pid == first


def test_a_worker_killed_between_commands_fails_the_next_one(started):
    assert started.run(["list"]) == 0
    os.kill(started.pid, signal.SIGKILL)
    with pytest.raises(WorkerError, match=r"died while running 'gates list'.*exit status -9"):
        started.run(["list"])
    # The client forgot the dead worker: the next command starts a fresh one.
    assert started.run(["list"]) == 0


def test_the_worker_exits_when_nox_closes_the_channel(started):
    assert started.run(["list"]) == 0
    process = started._process
    started.close()
    assert process.returncode == 0
    assert started.pid is None


def _serve_in_thread(**kwargs):
    ours, theirs = socket.socketpair()
    outcome: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("code", gate_worker.serve(theirs, **kwargs))
    )
    thread.start()
    return ours, theirs, thread, outcome


def _ask(channel, request):
    channel.sendall(json.dumps(request).encode() + b"\n")
    return json.loads(channel.makefile("rb").readline())


def test_a_crash_inside_a_command_is_exit_2_and_the_worker_keeps_serving(tmp_path, capsys):
    def run(argv):
        if argv == ["boom"]:
            raise RuntimeError("kaboom")
        return 0

    ours, theirs, thread, outcome = _serve_in_thread(run=run)
    try:
        assert _ask(ours, {"argv": ["boom"], "cwd": str(tmp_path)}) == {"exit": 2}
        assert "RuntimeError: kaboom" in capsys.readouterr().err
        assert _ask(ours, {"argv": ["fine"], "cwd": str(tmp_path)}) == {"exit": 0}
    finally:
        ours.close()
        thread.join(timeout=10)
        theirs.close()
    assert outcome["code"] == 0


def test_changed_code_on_disk_makes_the_worker_ask_for_a_restart(tmp_path, monkeypatch):
    # Request one: sizes and mtimes as at start. Request two: one moved, but the bytes are the
    # same (a touch): still served. Request three: moved and different bytes: restart.
    signatures = iter([("start",), ("start",), ("touched",), ("edited",)])
    digests = iter(["loaded", "loaded", "edited"])
    monkeypatch.setattr(gate_worker, "_source_signature", lambda: next(signatures))
    monkeypatch.setattr(gate_worker, "_source_digest", lambda **_: next(digests))
    ran = []
    ours, theirs, thread, outcome = _serve_in_thread(run=lambda argv: ran.append(argv) or 0)
    try:
        assert _ask(ours, {"argv": ["one"], "cwd": str(tmp_path)}) == {"exit": 0}
        assert _ask(ours, {"argv": ["two"], "cwd": str(tmp_path)}) == {"exit": 0}
        # The code changed: nothing runs, the client is told to start a fresh worker.
        assert _ask(ours, {"argv": ["three"], "cwd": str(tmp_path)}) == {"restart": True}
    finally:
        thread.join(timeout=10)
        ours.close()
        theirs.close()
    assert ran == [["one"], ["two"]]
    assert outcome["code"] == 0


def test_a_malformed_request_is_answered_and_stops_the_worker_instead_of_guessing():
    ours, theirs, thread, outcome = _serve_in_thread(run=lambda argv: 0)
    try:
        reply = _ask(ours, {"argv": "list", "cwd": 3})
    finally:
        thread.join(timeout=10)
        ours.close()
        theirs.close()
    assert "worker request must be" in reply["error"]
    assert outcome["code"] == 2


def test_a_reply_that_is_not_the_protocol_is_an_error(tmp_path):
    client = GateWorker(sys.executable, env=dict(os.environ), cwd=tmp_path)
    fake = "import sys, socket; s = socket.socket(fileno=int(sys.argv[-1])); s.recv(100); s.sendall(b'hello\\n')"
    # Stand in for the worker module with a process that answers garbage on the same channel.
    ours, theirs = socket.socketpair()
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-c", fake, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
    )
    theirs.close()
    client._process, client._channel, client._reader = process, ours, ours.makefile("rb")
    with pytest.raises(WorkerError, match="not the protocol"):
        client.run(["list"])
    assert client.pid is None


def test_an_interpreter_that_does_not_exist_is_one_clear_error(tmp_path):
    client = GateWorker(tmp_path / "no-python", env=dict(os.environ), cwd=tmp_path)
    with pytest.raises(WorkerError, match="cannot start the gate worker"):
        client.run(["list"])


def test_the_worker_entry_point_refuses_a_descriptor_that_is_not_a_socket(capsys):
    assert gate_worker.main(["--fd", "987"]) == 2
    assert "not an inherited socket" in capsys.readouterr().err


def test_an_edit_to_the_code_or_the_packages_restarts_the_real_worker_transparently(tmp_path):
    import shutil

    for package in ("gates", "pipeline"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the copy's bytecode stays in the copy
    # cwd is the copy too: ``python -m`` puts the working folder first on sys.path.
    client = GateWorker(sys.executable, env=env, cwd=tmp_path)
    try:
        assert client.run(["list"]) == 0
        first = client.pid
        assert client.run(["list"]) == 0
        assert client.pid == first
        edited = tmp_path / "gates" / "registry.py"
        edited.write_text(edited.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        # The old worker refuses to run stale code; the client starts a fresh one and retries.
        assert client.run(["list"]) == 0
        second = client.pid
        assert second != first
        # A package installed (or upgraded) beside it: the same, so no old module runs under a
        # cache key that names the new version.
        (tmp_path / "newtool-1.0.dist-info").mkdir()
        assert client.run(["list"]) == 0
        assert client.pid not in (first, second)
    finally:
        client.close()


def test_the_worker_skips_interpreter_teardown_but_runs_atexit_and_flushes(tmp_path):
    import subprocess

    marker = tmp_path / "atexit-ran"
    script = (
        "import atexit, sys\n"
        "from gates.worker import _exit_now\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').close())\n"
        "sys.stdout.write('buffered, not yet flushed')\n"
        "_exit_now(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": ""},
        check=False,
    )
    assert done.returncode == 3
    assert done.stdout == "buffered, not yet flushed"
    assert marker.is_file()  # coverage's data and logging are written by such handlers


def _load_as_the_worker_does(root: Path, module: str, *, worker: bool = True) -> list[str]:
    """Import ``module`` from the copy at ``root`` in a fresh process, as the worker imports."""
    import subprocess

    script = (
        "import importlib\n"
        "from gates import worker\n"
        f"{'worker._keep_own_bytecode()' if worker else 'pass'}\n"
        f"m = importlib.import_module({module!r})\n"
        "print(type(m.__spec__.loader).__name__, m.__cached__, getattr(m, 'VALUE', None))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    if not worker:  # plain Python, writing __pycache__ into the tree as it does by default
        env.pop("PYTHONDONTWRITEBYTECODE")
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


@pytest.fixture
def probed(tmp_path):
    """A copy of both packages with ``gates/_probe.py``; the bytecode mirror is removed after."""
    import shutil

    for package in ("gates", "pipeline"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "gates" / "_probe.py").write_text("VALUE = 1\n", encoding="utf-8")
    top = Path(sys.prefix) / "pycache"
    mirror = top / str(tmp_path).lstrip(os.sep)
    yield tmp_path, mirror / "gates" / f"_probe.{sys.implementation.cache_tag}.pyc"
    shutil.rmtree(mirror, ignore_errors=True)
    for parent in mirror.parents:  # the empty folders that mirrored the temp path
        if parent == top:
            break
        with contextlib.suppress(OSError):
            parent.rmdir()


def test_without_python_bytecode_the_worker_keeps_ours_checked_in_the_env_not_the_tree(probed):
    root, kept = probed
    probe = root / "gates" / "_probe.py"
    assert _load_as_the_worker_does(root, "gates._probe") == ["_OwnBytecodeLoader", str(kept), "1"]
    written = kept.read_bytes()
    assert int.from_bytes(written[4:8], "little") == 0b11  # PEP 552 checked-hash
    # A second process loads that bytecode as it is: the file is not written again.
    assert _load_as_the_worker_does(root, "gates._probe")[2] == "1"
    assert kept.read_bytes() == written
    # Same size, mtime put back within the same second: a timestamp .pyc would still match
    # and the old code would run under the new code's cache key. This one does not.
    before = probe.stat()
    probe.write_text("VALUE = 2\n", encoding="utf-8")
    os.utime(probe, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _load_as_the_worker_does(root, "gates._probe")[2] == "2"
    assert kept.read_bytes() != written
    # Nothing was written into the source tree.
    assert not list(root.rglob("__pycache__"))


def test_bytecode_another_user_could_write_is_not_loaded(probed):
    import py_compile

    root, kept = probed
    assert _load_as_the_worker_does(root, "gates._probe")[2] == "1"
    # Someone with group write access swaps in bytecode for other code, stamped with the hash
    # of the real source: it is refused, compiled again and made private again.
    evil = root / "evil.py"
    evil.write_text("VALUE = 666\n", encoding="utf-8")
    forged = root / "forged.pyc"
    py_compile.compile(
        str(evil),
        cfile=str(forged),
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    data = bytearray(forged.read_bytes())
    data[8:16] = kept.read_bytes()[8:16]
    kept.write_bytes(bytes(data))
    kept.chmod(0o664)
    assert _load_as_the_worker_does(root, "gates._probe")[2] == "1"
    assert kept.stat().st_mode & 0o777 == 0o644


def test_refused_bytecode_compiles_the_source_and_never_reads_the_trees_pycache(probed):
    root, kept = probed
    probe = root / "gates" / "_probe.py"
    assert _load_as_the_worker_does(root, "gates._probe")[2] == "1"
    # A timestamp .pyc in the source tree, left by a plain Python run.
    assert _load_as_the_worker_does(root, "gates._probe", worker=False)[1].endswith(
        f"__pycache__/_probe.{sys.implementation.cache_tag}.pyc"
    )
    # The mirror folder becomes group-writable: its bytecode is refused from now on.
    kept.parent.chmod(0o775)
    before = probe.stat()
    probe.write_text("VALUE = 2\n", encoding="utf-8")  # same size, same mtime
    os.utime(probe, ns=(before.st_atime_ns, before.st_mtime_ns))
    written = kept.read_bytes()
    # The stock loader would take the tree's stale timestamp .pyc and run VALUE = 1.
    assert _load_as_the_worker_does(root, "gates._probe")[2] == "2"
    assert kept.read_bytes() == written  # nothing kept in a folder others could write
