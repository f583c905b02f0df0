"""A warm gate worker: one process of the shared environment runs every gate session of a nox run.

``nox -s train gate`` runs ten sessions. Started one interpreter each, the chain pays Python's
start, the policy's validation and the import of pandas and scikit-learn again and again (the
bare scripts it is measured against pay them once or twice). Instead the noxfile starts this
worker once per nox invocation and sends it each session's command; the worker runs it with the
same CLI (``gates._cli.main``) that ``python -m gates`` runs, in order, one at a time.

The channel is a socket pair made by the nox process and inherited by the worker (no file on
disk, nothing another user can connect to). One request is a JSON line ``{"argv": [...],
"cwd": "..."}``; the reply, sent after the command's output has been flushed to the worker's
standard output and error (which are nox's own), is ``{"exit": N}``. Fail closed on every edge:

- a worker that dies mid-command closes the channel: the client raises ``WorkerError`` and the
  session fails (the gate's report was never written, so the verdict cannot pass);
- the client going away (nox killed) closes the channel too: the worker exits;
- code of the ``gates`` or ``pipeline`` packages that changed on disk since the worker started
  would make its loaded modules disagree with the cache key it computes: the worker answers
  ``{"restart": true}`` without running anything, and the client starts a fresh worker.

Two costs a warm worker would otherwise pay on every nox run, measured on 2 cores:

- Where ``PYTHONDONTWRITEBYTECODE`` is set (CI images and some developer machines set it),
  Python compiled the two packages from source at every start (about 0.05 s). The worker
  keeps their bytecode where ``PYTHONPYCACHEPREFIX`` would, but for these two packages only
  and in the environment (``<env>/pycache/``), never in the source tree, as checked-hash
  ``.pyc`` files (PEP 552) that are used only while they match the source's bytes and only
  when no one else could have written them;
  site-packages keep their own bytecode as installed.
- Tearing down an interpreter that has pandas and scikit-learn loaded takes about 0.1 s, and
  nox waits for it: once the client has closed the channel, the worker runs its ``atexit``
  handlers (coverage's data, logging), flushes its output and leaves with ``os._exit``.

This module imports only the standard library at the top: the noxfile imports it in nox's own
interpreter, before (and without) the project's dependencies.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import marshal
import os
import socket
import stat
import subprocess  # nosec B404 # starts the shared environment's python with a fixed argv
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, BinaryIO

from gates import CODE_PACKAGES
from gates.errors import GatesError

# Exit code reported when the command itself crashed inside the worker: "could not run".
_EXIT_CRASHED = 2
_EXIT_INTERRUPTED = 130
# Seconds to wait for a worker to exit after its channel closed, before it is killed.
_CLOSE_TIMEOUT = 10.0
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerError(GatesError):
    """The worker could not be started, died, or answered something that is not the protocol."""


# --- the worker side -----------------------------------------------------------------------


_OWN_PACKAGES = frozenset(package.name for package in CODE_PACKAGES)
_PYCACHE_DIR = "pycache"


# PEP 552 flags of a checked-hash .pyc: hash-based, and the source is checked on every load.
_PYC_CHECKED_HASH = 0b11


def _pyc_header(stamp: bytes) -> bytes:
    """The 16-byte header of a checked-hash ``.pyc`` for a source whose hash is ``stamp``."""
    return importlib.util.MAGIC_NUMBER + _PYC_CHECKED_HASH.to_bytes(4, "little") + stamp


class _FromBytes(importlib.machinery.SourcelessFileLoader):
    """Python's sourceless loader, given the ``.pyc`` bytes already read and validated."""

    def __init__(self, fullname: str, path: str, data: bytes) -> None:
        super().__init__(fullname, path)
        self._data = data

    def get_data(self, path: str) -> bytes:
        return self._data


class _OwnBytecodeLoader(importlib.machinery.SourceFileLoader):
    """The source loader of our packages, with checked-hash bytecode kept at ``cached``.

    The ``.pyc`` is PEP 552's checked-hash kind and is used only while the hash it records is
    the hash of the source's bytes now: an edit that keeps the size and the second of the
    mtime (which a timestamp ``.pyc`` would not notice) is compiled again. A miss compiles the
    very bytes just hashed, never falls back to a ``__pycache__`` in the source tree, and
    writes the result through a private temp file and an atomic rename. Python's own
    sourceless loader unmarshals the bytes checked here. Bytecode that another user could
    have written or swapped (the file, or any folder from ``prefix`` down, owned by someone
    else or writable by group or others; a symlink) is never loaded.
    """

    cached: str = ""
    prefix: str = ""

    def get_code(self, fullname: str) -> CodeType | None:
        source = self.get_data(self.path)
        stamp = importlib.util.source_hash(source)
        data = self._checked_bytecode(stamp)
        if data is not None:
            return _FromBytes(fullname, self.cached, data).get_code(fullname)
        code = self.source_to_code(source, self.path)  # a SyntaxError surfaces as usual
        with contextlib.suppress(OSError, ValueError):
            self._keep(code, stamp)
        return code

    def _private_folders(self) -> bool:
        folder = os.path.dirname(self.cached)
        current = self.prefix
        rel = os.path.relpath(folder, self.prefix)
        for part in ["", *([] if rel == "." else rel.split(os.sep))]:
            current = os.path.join(current, part) if part else current
            try:
                st = os.lstat(current)
            except OSError:
                return False
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
                return False
        return True

    def _checked_bytecode(self, stamp: bytes) -> bytes | None:
        if not self._private_folders():
            return None
        try:
            fd = os.open(self.cached, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None
            data = handle.read()
        return data if data[:16] == _pyc_header(stamp) else None

    def _keep(self, code: CodeType, stamp: bytes) -> None:
        os.makedirs(os.path.dirname(self.cached), mode=0o755, exist_ok=True)
        if not self._private_folders():
            return
        header = _pyc_header(stamp)
        tmp = f"{self.cached}.{os.getpid()}.tmp"
        # Created private (0o644 at most, whatever the umask): no one else ever holds it open.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header + marshal.dumps(code))
            os.replace(tmp, self.cached)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class _OwnBytecode(importlib.abc.MetaPathFinder):
    """Finds the project's packages as usual, then loads them with ``_OwnBytecodeLoader``."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = str(prefix)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in _OWN_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        source = os.path.abspath(spec.loader.path)
        folder, name = os.path.split(source)
        tag = sys.implementation.cache_tag
        level = f".opt-{sys.flags.optimize}" if sys.flags.optimize else ""
        # Where PYTHONPYCACHEPREFIX would put it: the source's folder mirrored under the prefix.
        cached = os.path.join(
            self.prefix, folder.lstrip(os.sep), f"{name.removesuffix('.py')}.{tag}{level}.pyc"
        )
        loader = _OwnBytecodeLoader(fullname, spec.loader.path)
        loader.cached, loader.prefix = cached, self.prefix
        spec.loader = loader
        spec.cached = cached
        return spec


def _keep_own_bytecode() -> None:
    """Where Python writes no bytecode, keep the project's own in ``<env>/pycache/``."""
    if not sys.dont_write_bytecode:
        return  # Python's own __pycache__ folders do the job
    prefix = Path(sys.prefix) / _PYCACHE_DIR
    try:
        prefix.mkdir(mode=0o755, exist_ok=True)
        st = prefix.stat()
    except OSError:
        return  # a read-only environment: compile from source, as Python would
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        return  # bytecode another user could write is never loaded
    sys.meta_path.insert(0, _OwnBytecode(prefix))


def _exit_now(code: int) -> None:
    """Leave without tearing the interpreter down, after what shutdown would do first.

    In the interpreter's order: wait for non-daemon threads and shut executors down
    (``threading._shutdown``, which is how concurrent.futures and joblib stop their pools),
    run the ``atexit`` handlers (coverage's data, logging), flush standard output and error
    (exit 120 if that fails, as Python does). Only the teardown of modules and objects is
    skipped.
    """
    if threading.current_thread() is threading.main_thread():
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize calls first
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue  # as Python's own shutdown skips them
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120
    os._exit(code)


def _source_digest(*, cached: bool = False) -> str:
    # Uncached by default: this asks whether the code on disk is still the code loaded. The
    # first digest is the cache's own (computed once per process), so it is not taken twice.
    from gates.cache import package_digest  # noqa: PLC0415 - the worker's own import

    return package_digest(cached=cached)


def _source_signature() -> tuple[tuple[str, int, int], ...]:
    """Name, size and mtime of every ``.py`` of both packages: a stat walk, no reads."""
    found = []
    for package in CODE_PACKAGES:
        for folder, dirs, files in os.walk(package):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    with contextlib.suppress(OSError):
                        st = os.stat(path)
                        found.append((path, st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


def _installed() -> frozenset[str]:
    """The ``*.dist-info`` names on ``sys.path``: which distributions, at which versions."""
    found: set[str] = set()
    for entry in sys.path:
        with contextlib.suppress(OSError):
            found.update(n for n in os.listdir(entry or ".") if n.endswith(".dist-info"))
    return frozenset(found)


class _CodeWatch:
    """Whether the code on disk is still the code this worker started with.

    A stat walk per request; the files are read and hashed again only when a size or mtime
    moved, so a ``touch`` alone does not restart the worker but any edit does. The installed
    distributions are watched too: a worker started before nox's ``env`` session upgraded a
    package must not run the old one under a cache key naming the new.
    """

    def __init__(self) -> None:
        self.installed = _installed()
        self.signature = _source_signature()
        self.digest = _source_digest(cached=True)

    def unchanged(self) -> bool:
        if _installed() != self.installed:
            return False
        signature = _source_signature()
        if signature == self.signature:
            return True
        if _source_digest() != self.digest:
            return False
        self.signature = signature
        return True


def serve(channel: socket.socket, *, run: Callable[[Sequence[str]], int] | None = None) -> int:
    """Answer requests on ``channel`` until the client closes it; return the exit code."""
    if run is None:
        from gates._cli import main  # noqa: PLC0415 - imported once, kept warm

        run = main
    watch = _CodeWatch()
    reader = channel.makefile("rb")
    try:
        for line in reader:
            try:
                request = _parse_request(line)
            except (WorkerError, ValueError) as err:
                # Not the noxfile speaking: answer why and stop rather than guess.
                _reply(channel, {"error": str(err)})
                return 2
            if not watch.unchanged():
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
    finally:
        reader.close()
    return 0


def _parse_request(line: bytes) -> dict[str, Any]:
    request = json.loads(line)
    if not isinstance(request, dict):
        msg = f"worker request must be a JSON object; got {request!r}"
        raise WorkerError(msg)
    argv, cwd = request.get("argv"), request.get("cwd")
    if not (
        isinstance(argv, list) and all(isinstance(a, str) for a in argv) and isinstance(cwd, str)
    ):
        msg = f"worker request must be {{'argv': [str, ...], 'cwd': str}}; got {request!r}"
        raise WorkerError(msg)
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
    _keep_own_bytecode()
    with channel:
        return serve(channel)


# --- the client side (runs in nox's interpreter) --------------------------------------------


class GateWorker:
    """The nox side: start the worker with the shared environment's python and send it commands."""

    def __init__(self, python: str | Path, *, env: Mapping[str, str], cwd: Path) -> None:
        self.python = str(python)
        self.env = dict(env)
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._reader: BinaryIO | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start a worker (a no-op while one is running)."""
        if self._process is not None:
            return
        ours, theirs = socket.socketpair()
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
        finally:
            theirs.close()
        self._channel = ours
        self._reader = ours.makefile("rb")

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
        if self._channel is None or self._reader is None:
            msg = "gate worker is not running"
            raise WorkerError(msg)
        try:
            self._channel.sendall(json.dumps(request).encode("utf-8") + b"\n")
            line = self._reader.readline()
        except OSError as err:
            line, cause = b"", f" ({err})"
        else:
            cause = ""
        if not line:
            status = self._reap()
            msg = (
                f"gate worker (pid {self.pid}) died while running "
                f"'gates {' '.join(request['argv'])}'{cause}; exit status {status}"
            )
            self._forget()
            raise WorkerError(msg)
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict):
            self.close()
            msg = f"gate worker answered {line[:200]!r}, which is not the protocol"
            raise WorkerError(msg)
        return reply

    def _reap(self) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=_CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()

    def _forget(self) -> None:
        for closer in (self._reader, self._channel):
            if closer is not None:
                with contextlib.suppress(OSError):
                    closer.close()
        self._process, self._channel, self._reader = None, None, None

    def close(self) -> None:
        """Close the channel (the worker exits on its own) and wait for it; kill if it hangs."""
        if self._process is None:
            return
        process = self._process
        for closer in (self._reader, self._channel):
            if closer is not None:
                with contextlib.suppress(OSError):
                    closer.close()
        try:
            process.wait(timeout=_CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._forget()


if __name__ == "__main__":
    _exit_now(main())
