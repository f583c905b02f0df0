"""A warm gate worker: one interpreter of the shared environment runs every gate session of a nox run.

``nox -s train gate`` runs ten sessions. Started one interpreter each, the chain would pay
Python's start, pydantic, the policy's validation and (for data, train and cv) pandas and
scikit-learn again and again. Instead the noxfile starts ``python -m gates.worker`` once per nox
invocation and sends it each session's command; the worker runs it with the CLI that
``python -m gates`` runs (``gates._cli.main``), in order, one at a time, writing to nox's own
standard output and error.

The channel is a socket pair made by the nox process and inherited by the worker (no file on
disk, nothing another user can connect to). A request is a JSON line ``{"argv": [...], "cwd":
"..."}``; the reply, sent once the command's output is flushed, is ``{"exit": N}``. Fail closed:

- a worker that dies mid-command closes the channel: the client raises ``WorkerError`` and the
  session fails (the gate's report was never written, so the verdict cannot pass);
- nox going away closes the channel too: the worker leaves its loop and exits as any Python
  program does (threads joined, ``atexit`` handlers run: coverage's data, logging, joblib's
  pools; then the interpreter's teardown, which nox waits for, without its garbage
  collections: ``leave_without_final_collection``);
- a ``.py`` file of ``gates/`` or ``pipeline/`` changed, added or removed, or an installed
  distribution changed, since the worker started: its loaded modules could disagree with the
  cache key it would compute, so it answers ``{"restart": true}`` without running anything and
  the client starts a fresh worker.

Bytecode: the worker does nothing of its own. Python writes and checks it as usual; where
``PYTHONDONTWRITEBYTECODE`` is set, the project's two packages are compiled from source once per
worker (once per nox invocation, not once per gate), and the environment's packages use the
bytecode compiled at install (``UV_COMPILE_BYTECODE`` in the ``env`` session). Why no
``PYTHONPYCACHEPREFIX`` is set here, and when Python's own bytecode could be stale (not in a
fresh checkout): ``docs/performance.md``, "The warm worker on public APIs only".

Standard library only at the top: the noxfile imports this module in nox's own interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import socket
import subprocess  # nosec B404 # starts the shared environment's python with a fixed argv
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from gates import CODE_PACKAGES
from gates.errors import GatesError

# Exit code of a command that crashed inside the worker: "could not run", never a pass.
_EXIT_CRASHED = 2
_EXIT_INTERRUPTED = 130
# Seconds to wait for a worker to exit after its channel closed, before it is killed.
_CLOSE_TIMEOUT = 10.0
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerError(GatesError):
    """The worker could not be started, died, or answered something that is not the protocol."""


# --- the worker side -----------------------------------------------------------------------


def _code_state() -> tuple[object, ...]:
    """What the loaded code depends on: every ``.py`` of both packages, and the installed set.

    Each file by path, inode, size, mtime and ctime (a stat walk, no reads). Anyone who can
    write a file can put its size and mtime back, but not its ctime, so every edit shows; a
    ``touch`` shows too, and costs only a fresh worker. The installed distributions are the
    ``*.dist-info`` names on ``sys.path``: a worker started before nox's ``env`` session
    upgraded a package must not run the old one under a cache key naming the new.
    """
    files = []
    for package in CODE_PACKAGES:
        for folder, dirs, names in os.walk(package):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    with contextlib.suppress(OSError):
                        st = os.stat(path)
                        files.append((path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    installed: set[str] = set()
    for entry in sys.path:
        with contextlib.suppress(OSError):
            installed.update(n for n in os.listdir(entry or ".") if n.endswith(".dist-info"))
    return (tuple(sorted(files)), frozenset(installed))


def serve(channel: socket.socket, *, run: Callable[[Sequence[str]], int] | None = None) -> int:
    """Answer requests on ``channel`` until the client closes it; return the exit code."""
    started = _code_state()  # before the gates are imported: an edit during the import shows
    if run is None:
        from gates._cli import main  # noqa: PLC0415 - imported once, kept warm

        run = main
    try:
        with channel.makefile("rb") as requests:
            for line in requests:
                try:
                    request = _parse_request(line)
                except ValueError as err:
                    # Not the noxfile speaking: answer why and stop rather than guess.
                    _reply(channel, {"error": str(err)})
                    return 2
                if _code_state() != started:
                    _reply(channel, {"restart": True})
                    return 0
                os.chdir(request["cwd"])
                code = _run_one(run, request["argv"])
                sys.stdout.flush()
                sys.stderr.flush()
                _reply(channel, {"exit": code})
    except KeyboardInterrupt:
        return _EXIT_INTERRUPTED
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the client went away; nothing is left to answer
    return 0


def _parse_request(line: bytes) -> dict[str, Any]:
    request = json.loads(line)  # a JSONDecodeError is a ValueError
    argv = request.get("argv") if isinstance(request, dict) else None
    cwd = request.get("cwd") if isinstance(request, dict) else None
    if not (
        isinstance(argv, list) and all(isinstance(a, str) for a in argv) and isinstance(cwd, str)
    ):
        msg = f"worker request must be {{'argv': [str, ...], 'cwd': str}}; got {request!r}"
        raise ValueError(msg)
    return {"argv": argv, "cwd": cwd}


def _run_one(run: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    try:
        return run(argv)
    except SystemExit as stop:  # argparse's usage errors and --help
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else _EXIT_CRASHED)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED
    except Exception:  # a crash: shown as a subprocess would show it, and never a pass
        traceback.print_exc()
        return _EXIT_CRASHED


def _reply(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode("utf-8") + b"\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gates.worker --fd N``: serve the socket inherited as file descriptor N."""
    parser = argparse.ArgumentParser(prog="python -m gates.worker", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="inherited socket descriptor")
    args = parser.parse_args(argv)
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        channel = socket.socket(fileno=args.fd)
    except OSError as err:
        sys.stderr.write(f"error: --fd {args.fd}: not an inherited socket ({err})\n")
        return 2
    with channel:
        code = serve(channel)
    leave_without_final_collection()
    return code


def leave_without_final_collection() -> None:
    """Spare the interpreter's teardown its garbage collections over everything loaded.

    Called when nothing is left to do but exit. ``gc.freeze()`` (public since Python 3.7) moves
    every object tracked so far into a generation no collection visits; the exit stays Python's
    own: non-daemon threads are joined, ``atexit`` handlers run (coverage's data, joblib's
    pools, ``weakref.finalize``, logging), modules are torn down and every object whose last
    reference goes is freed as before. What is skipped is the collection of reference cycles
    already unreachable: their ``__del__`` methods do not run, as for any object still alive
    at exit. Nothing the gates write depends on them: every report and cache entry is written
    (atomically) before the reply that ends its command. With pydantic, cryptography and the
    policy's models loaded, those collections were most of the teardown nox waits for: 0.26 s
    against 0.03 s with the freeze (median of 5, load 10; ``docs/performance.md``).
    """
    gc.freeze()


# --- the client side (runs in nox's interpreter) --------------------------------------------


class GateWorker:
    """The nox side: start the worker with the shared environment's python and send it commands."""

    def __init__(self, python: str | Path, *, env: Mapping[str, str], cwd: Path) -> None:
        self.python = str(python)
        self.env = dict(env)
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._replies: BinaryIO | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start a worker (a no-op while one is running)."""
        if self._process is not None:
            return
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                self._process = subprocess.Popen(  # nosec B603 # fixed argv, no shell
                    [self.python, "-m", "gates.worker", "--fd", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                )
            except OSError as err:
                ours.close()
                msg = f"cannot start the gate worker with {self.python}: {err}"
                raise WorkerError(msg) from None
        self._channel, self._replies = ours, ours.makefile("rb")

    def run(self, argv: Sequence[str]) -> int:
        """Run ``python -m gates ARGV`` in the worker and return its exit code."""
        for _attempt in range(2):
            self.start()
            reply = self._ask({"argv": list(argv), "cwd": str(self.cwd)})
            if reply.get("restart") is True:
                self.close()  # the code changed on disk: a fresh worker loads it
                continue
            code = reply.get("exit")
            if not isinstance(code, int):
                self.close()
                msg = f"gate worker answered {reply!r}; expected {{'exit': <int>}}"
                raise WorkerError(msg)
            return code
        msg = "gate worker asked to restart twice in a row (is the code being edited?)"
        raise WorkerError(msg)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._channel is None or self._replies is None:
            msg = "gate worker is not running"
            raise WorkerError(msg)
        cause = ""
        try:
            self._channel.sendall(json.dumps(request).encode("utf-8") + b"\n")
            line = self._replies.readline()
        except OSError as err:
            line, cause = b"", f" ({err})"
        if not line:
            pid, status = self.pid, self.close()
            msg = (
                f"gate worker (pid {pid}) died while running "
                f"'gates {' '.join(request['argv'])}'{cause}; exit status {status}"
            )
            raise WorkerError(msg)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self.close()
            msg = f"gate worker answered {line[:200]!r}, which is not the protocol"
            raise WorkerError(msg)
        return reply

    def close(self) -> int | None:
        """Close the channel (the worker exits on its own), wait for it and return its status.

        A worker that does not exit within ``_CLOSE_TIMEOUT`` seconds is killed.
        """
        process, closing = self._process, (self._replies, self._channel)
        self._process, self._channel, self._replies = None, None, None
        for closer in closing:
            if closer is not None:
                closer.close()
        if process is None:
            return None
        try:
            return process.wait(timeout=_CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


if __name__ == "__main__":
    from gates.compiled import refuse_metadata

    # Before the gates (and the libraries loading plugins) are imported: see gates/compiled.py.
    refuse_metadata(sys.path[0])
    sys.exit(main())
