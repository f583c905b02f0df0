"""The warm gate worker: a real worker process answers, and every way it can fail is a failure."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading

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
    from gates.registry import GATES

    assert "1. lint" in listed
    assert f"{len(GATES)}. feedback" in listed
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


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package of real files that the worker watches in place of ``gates/`` and ``pipeline/``."""
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "mod.py").write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.setattr(gate_worker, "CODE_PACKAGES", (root,))
    return root


def _edit_keeping_size_and_mtime(root):
    module = root / "mod.py"
    before = module.stat()
    module.write_text("VALUE = 2\n", encoding="utf-8")
    # Size and mtime as they were: a check by size and mtime alone would miss this edit.
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = module.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize(
    "change",
    [
        _edit_keeping_size_and_mtime,
        lambda root: (root / "new.py").write_text("", encoding="utf-8"),
        lambda root: (root / "mod.py").unlink(),
    ],
    ids=["edit-with-size-and-mtime-put-back", "module-added", "module-removed"],
)
def test_changed_code_on_disk_makes_the_worker_ask_for_a_restart(tmp_path, package, change):
    ran = []
    ours, theirs, thread, outcome = _serve_in_thread(run=lambda argv: ran.append(argv) or 0)
    try:
        assert _ask(ours, {"argv": ["one"], "cwd": str(tmp_path)}) == {"exit": 0}
        assert _ask(ours, {"argv": ["two"], "cwd": str(tmp_path)}) == {"exit": 0}
        change(package)
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
    client._process, client._channel, client._replies = process, ours, ours.makefile("rb")
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
    # Packages are installed in a folder of their own on sys.path, never in the checkout: the
    # worker refuses to start where distribution metadata sits in its working folder
    # (gates.compiled.refuse_metadata).
    site = tmp_path / "site"
    site.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(tmp_path), str(site)))}
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
        (site / "newtool-1.0.dist-info").mkdir()
        assert client.run(["list"]) == 0
        assert client.pid not in (first, second)
    finally:
        client.close()


def test_a_worker_killed_mid_gate_fails_the_session_and_writes_no_report(tmp_path):
    from tests.project_support import copy_project

    root = copy_project(tmp_path / "project")
    # The copy's lint gate kills its own process as it starts: a worker dying mid-command.
    lint = root / "gates" / "lint.py"
    lint.write_text(
        lint.read_text(encoding="utf-8")
        + "\n\ndef _die(self, context):\n"
        + "    import os, signal\n\n"
        + "    os.kill(os.getpid(), signal.SIGKILL)\n\n\n"
        + "LintGate.run = _die\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("GATES_RUN_ID", None)
    client = GateWorker(sys.executable, env=env, cwd=root)
    try:
        with pytest.raises(WorkerError, match=r"died while running 'gates run lint'.*status -9"):
            client.run(["run", "lint"])
        assert client.pid is None
    finally:
        client.close()
    # No report: the verdict, which reads them, cannot pass on a gate that never finished.
    assert not (root / "reports" / "lint.json").exists()


def test_the_worker_exits_as_python_does_running_atexit_and_stopping_pools(tmp_path):
    import subprocess

    # The worker's own entry, as ``python -m gates.worker`` runs it, after a joblib/loky pool
    # was started and an atexit handler registered (coverage registers one to save its data).
    marker, pids = tmp_path / "atexit-ran", tmp_path / "pool-pids"
    script = (
        "import atexit, gc, os, runpy, sys\n"
        "from joblib.externals.loky import get_reusable_executor\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write(str(gc.get_freeze_count())))\n"
        "pool = get_reusable_executor(max_workers=2)\n"
        "found = {pool.submit(os.getpid).result() for _ in range(8)}\n"
        f"open({str(pids)!r}, 'w').write(' '.join(map(str, found)))\n"
        "sys.stdout.write('buffered, not yet flushed')\n"
        "sys.argv[0] = 'gates.worker'\n"
        "runpy.run_module('gates.worker', run_name='__main__', alter_sys=True)\n"
    )
    ours, theirs = socket.socketpair()
    # Output to a file, not a pipe: the pool's processes inherit it, and waiting for a pipe's
    # end would wait for them too.
    with theirs, (tmp_path / "out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", script, "--fd", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": ""},
            cwd=REPO,
            stdout=out,
        )
    with ours:
        assert _ask(ours, {"argv": ["list"], "cwd": str(REPO)}) == {"exit": 0}
    # nox closed the channel: the worker leaves.
    assert process.wait(timeout=60) == 0
    assert (tmp_path / "out").read_bytes().startswith(b"buffered, not yet flushed")
    assert marker.is_file()
    # The objects loaded were frozen before the exit: the teardown does not collect them all.
    assert int(marker.read_text()) > 0
    workers = [int(pid) for pid in pids.read_text().split()]
    assert workers
    for pid in workers:  # the pool's processes were stopped, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
