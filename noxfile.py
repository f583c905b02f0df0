"""Nox sessions: one per gate, in registry order, plus typecheck and tests. Thin: each calls a CLI.

``nox -s train gate`` runs the whole chain. The order comes from ``gates.registry.GATES``
through ``requires=``; nothing here repeats it. All sessions share one environment built from
``requirements.lock`` (hash-pinned), created once by the ``env`` session and reused; with
``GATES_TEST_EXTRAS=1`` the typecheck and tests sessions add ``requirements-extras.lock``. The gate
sessions of one nox invocation send their commands to one warm worker process of that
environment (``gates/worker.py``), so the chain pays Python's start and the heavy imports once;
``GATES_NOX_WORKER=0`` runs one interpreter per session instead.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess  # nosec B404 - one isolated run of our own script, below
import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))


def _refuse_compiled_code() -> None:
    """Stop before importing anything of the tree if compiled code could stand in for it.

    ``gates/compiled.py`` runs as a script in isolated mode: compiled from its own source, with
    only the standard library importable, so nothing planted in the tree does the checking.
    """
    script = ROOT / "gates" / "compiled.py"
    done = subprocess.run(  # nosec B603 - our own script by path, no shell, isolated mode
        [sys.executable, "-I", str(script), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        found = (done.stdout + done.stderr).strip()
        sys.exit(f"noxfile: refusing to run: compiled code in the tree (LINT007)\n{found}")


_refuse_compiled_code()

from gates.closing import closing_lines  # noqa: E402 - standard library only
from gates.registry import GATES  # noqa: E402 - needs ROOT on sys.path first
from gates.worker import GateWorker, WorkerError  # noqa: E402 - standard library only
from pipeline.fsio import read_regular  # noqa: E402 - standard library only
from pipeline.pathrule import REPORTS_DIR_RULE, value_problem  # noqa: E402 - standard library only

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True

LOCK = ROOT / "requirements.lock"
# The optional extras (mlflow, dask), hash-pinned with the same pins as LOCK.
EXTRAS_LOCK = ROOT / "requirements-extras.lock"
EXTRAS_ENV = "GATES_TEST_EXTRAS"
# Small machines: one BLAS thread per process is faster than two for these model sizes
# (measured 1.4-2.1x on 2 cores for LogisticRegression CV); a user's setting wins.
THREAD_DEFAULTS = {
    name: os.environ.get(name, "1")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
}
WORKER_ENV = "GATES_NOX_WORKER"
# pipeline.config.MAX_POLICY_BYTES, which nox's interpreter cannot import (pydantic).
MAX_POLICY_BYTES = 1024 * 1024
_shared: dict[str, str] = {}
_workers: dict[str, GateWorker] = {}
_ran_gates: list[str] = []


def _reports_dir() -> Path | None:
    """[run].reports_dir of policy.toml (read with tomllib), else reports/; None when it breaks
    the path rule the policy applies to it (``pipeline.pathrule.REPORTS_DIR_RULE``), or when
    policy.toml is not a regular file of at most ``MAX_POLICY_BYTES``.

    The policy is the pull request's: a folder outside the project (``/tmp/x``,
    ``../elsewhere``, a symlink out of it) holds whatever anyone wrote there, and a verdict read
    from it must not close the run. The gates refuse such a policy; this prints a one-line note.
    So does a policy.toml committed as a FIFO (reading it waited for ever), a device, a symlink
    or a file past the loader's limit (read whole before): the gates refuse those too.
    """
    import tomllib  # noqa: PLC0415

    try:
        raw = read_regular(ROOT / "policy.toml", limit=MAX_POLICY_BYTES)
    except FileNotFoundError:
        raw = b""
    except OSError as err:
        reason = err.strerror or str(err)
        sys.stderr.write(f"noxfile: no verdict printed: policy.toml: {reason}\n")
        return None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
        value = document.get("run", {}).get("reports_dir", "reports")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError, RecursionError):
        value = "reports"
    problem = value_problem(ROOT, value, REPORTS_DIR_RULE)
    if problem is not None:
        sys.stderr.write(f"noxfile: no verdict printed: policy.toml: run.reports_dir: {problem}\n")
        return None
    return ROOT / str(value)


def _closing() -> None:
    """After nox's own summary: this run's warnings, then the verdict, the last line printed.

    Registered before any worker, so it runs after every worker closed (atexit is LIFO). Also
    when nox stopped the chain early: the first gate that did not pass is named instead.
    """
    if not _ran_gates:
        return
    reports = _reports_dir()
    lines = closing_lines(reports) if reports is not None else []
    if lines:
        sys.stderr.flush()
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


atexit.register(_closing)


@nox.session(name="env", reuse_venv=True)
def env(session: nox.Session) -> None:
    """Create the one shared environment from the hash-pinned requirements.lock."""
    # uv does not write bytecode at install time (pip does); without it every interpreter that
    # cannot write __pycache__ (PYTHONDONTWRITEBYTECODE, a read-only env) compiles scikit-learn
    # and pandas from source on each import: 6.3 s instead of 2.6 s for them, measured here.
    session.install("--require-hashes", "-r", str(LOCK), env={"UV_COMPILE_BYTECODE": "1"})
    _shared["bin"] = str(session.bin)


def _python(session: nox.Session) -> str:
    """The shared environment's interpreter (``env`` ran earlier in this nox process)."""
    if "bin" not in _shared:
        session.error("the shared environment is missing: run through nox so 'env' runs first")
    return str(Path(_shared["bin"]) / "python")


def _use_worker() -> bool:
    # The worker inherits its socket through pass_fds, which only POSIX systems have.
    wanted = os.environ.get(WORKER_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    return wanted and os.name == "posix"


def _worker(python: str) -> GateWorker:
    if python not in _workers:
        worker = GateWorker(python, env={**os.environ, **THREAD_DEFAULTS}, cwd=ROOT)
        atexit.register(worker.close)
        _workers[python] = worker
    return _workers[python]


def _prestart_worker() -> None:
    """Start the worker now, while nox sets itself up, when this invocation runs a gate.

    Only a head start: the guess (a gate's name among nox's arguments, the shared environment
    where nox puts it by default) may be wrong, and then the worker either idles until nox
    exits or is started later as usual. A worker started before the ``env`` session installs
    anything restarts by itself if the installed packages change (``gates/worker.py``).
    """
    python = ROOT / ".nox" / "env" / "bin" / "python"
    words = {word for arg in sys.argv[1:] for word in arg.split(",")}
    if _use_worker() and python.is_file() and words & set(_GATE_NAMES):
        with contextlib.suppress(WorkerError):
            _worker(str(python)).start()


def _gates(session: nox.Session, *args: str) -> None:
    python = _python(session)
    if args[:1] == ("run",):
        _ran_gates.append(args[1] if len(args) > 1 else "")
    if not _use_worker():
        session.run(python, "-m", "gates", *args, external=True, env=THREAD_DEFAULTS)
        return
    session.log(f"{python} -m gates {' '.join(args)}  (warm worker; {WORKER_ENV}=0 to disable)")
    try:
        code = _worker(python).run(args)
    except WorkerError as err:
        session.error(str(err))
    if code != 0:
        # The same failure nox reports for a command run as a subprocess ("failed", not "aborted").
        raise CommandFailed(f"Returned code {code}")


def _make_gate_session(
    name: str, summary: str, requires: list[str], *, notify: tuple[str, ...] = ()
) -> None:
    def gate_session(session: nox.Session) -> None:
        # Notify first: nox skips the dependents of a failed session, but a notified session
        # that does not require the chain still runs, so feedback records failed runs too.
        for stage in notify:
            session.notify(stage)
        _gates(session, "run", name, *session.posargs)

    gate_session.__doc__ = summary
    gate_session.__name__ = name
    nox.session(name=name, python=False, requires=requires, default=False)(gate_session)


_ALWAYS = tuple(spec.name for spec in GATES if spec.always)
_GATE_NAMES = tuple(spec.name for spec in GATES)
_previous = "env"
for _spec in GATES:
    if _spec.always:
        # Runs after whatever ran, passed or not: needs only the environment.
        _make_gate_session(_spec.name, _spec.summary, ["env"])
        continue
    _make_gate_session(_spec.name, _spec.summary, [_previous], notify=_ALWAYS)
    _previous = _spec.name


def _install_test_extras(session: nox.Session) -> None:
    """With ``GATES_TEST_EXTRAS=1``, install every optional extra (mlflow, dask) from its lock.

    Their tests skip with a reason when an extra is absent; CI sets the variable so that none
    does. ``requirements-extras.lock`` is hash-pinned like ``requirements.lock``, and both go to
    the installer in one command: a package the two pin differently is a conflict the installer
    refuses, so the extras lock cannot move a pin of the main lock.
    """
    value = os.environ.get(EXTRAS_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return
    if value not in ("1", "true", "yes", "on"):
        session.error(
            f"{EXTRAS_ENV}={value!r}: expected 1 (install every extra from "
            f"{EXTRAS_LOCK.name}) or 0 (none)"
        )
    python = _python(session)
    installer = ["uv", "pip", "install", "--python", python]
    if shutil.which("uv") is None:
        installer = [python, "-m", "pip", "install"]
    session.run(
        *installer,
        "--require-hashes",
        "-r",
        str(LOCK),
        "-r",
        str(EXTRAS_LOCK),
        external=True,
        env={"UV_COMPILE_BYTECODE": "1"},
    )
    # The modules whose absence skips tests (pytest.importorskip): fail here, not skip there.
    session.run(python, "-c", "import distributed, mlflow", external=True)


@nox.session(python=False, requires=["env"])
def typecheck(session: nox.Session) -> None:
    """mypy --strict on pipeline/, gates/ and noxfile.py (settings in pyproject.toml)."""
    # With the extras installed (GATES_TEST_EXTRAS=1, as in CI), their calls are checked
    # against their own types; without them those imports are Any.
    _install_test_extras(session)
    session.run(_python(session), "-m", "mypy", *session.posargs, external=True)


@nox.session(python=False, requires=["env"])
def tests(session: nox.Session) -> None:
    """Run the test suite with branch coverage, on one pytest-xdist worker more than cores.

    Every test but the end-to-end ones marked ``slow`` (``nox -s slow``; CI runs both, and
    ``nox -s tests slow`` locally does the same); this suite alone must reach the coverage
    floor. ``-- -n 0`` runs in this process only, ``-- -m ""`` every test (posargs win).
    """
    _install_test_extras(session)
    _pytest(session, "-m", "not slow", "--cov")


@nox.session(python=False, requires=["env"])
def slow(session: nox.Session) -> None:
    """Run the end-to-end tests marked ``slow``: the real chain from the CLI, nox and the CI
    tools over the project, fresh installs, kill loops and clusters.

    Coverage is added to what ``nox -s tests`` measured just before (``--cov-append``), so the
    report after both is the whole suite's; the floor is held by ``tests`` alone.
    """
    _install_test_extras(session)
    _pytest(session, "-m", "slow", "--cov", "--cov-append", "--cov-fail-under=0")


def _pytest(session: nox.Session, *selection: str) -> None:
    session.run(
        _python(session),
        "-m",
        "pytest",
        *selection,
        "--cov-report=term",
        "--durations=15",  # the slowest tests, so a CI run that grows says where
        # Many tests wait on a subprocess, a server or the package index: with one worker per
        # core about a fifth of the CPU sat idle (vmstat over a CI run on 2 cores); one more
        # worker fills it.
        f"--numprocesses={_cores() + 1}",
        # An idle worker takes tests queued for a busy one: the long end-to-end tests do not
        # leave one core waiting at the end.
        "--dist=worksteal",
        *session.posargs,
        external=True,
        env=THREAD_DEFAULTS,
    )


def _cores() -> int:
    """The cores this process may run on (its affinity, as pytest-xdist's ``auto`` counts)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@nox.session(python=False, requires=["env"], default=False)
def init(session: nox.Session) -> None:
    """Start from your own CSV: ``nox -s init -- DATA --label COLUMN [--id C] [--force]`` (DATA: .csv or .parquet)."""
    if not session.posargs:
        session.error(
            "usage: nox -s init -- DATA --label COLUMN [--id COLUMN] [--force] (DATA: .csv or .parquet)"
        )
    _gates(session, "init", *session.posargs)


@nox.session(python=False, requires=["env"], default=False)
def approve(session: nox.Session) -> None:
    """Approve the current data file: check its contract and rewrite the data lock."""
    _gates(session, "data", "approve")


@nox.session(python=False, requires=["env"], default=False)
def deploy(session: nox.Session) -> None:
    """Verify the signed attestation with the committed release key and promote the champion."""
    _gates(session, "deploy", *session.posargs)


@nox.session(python=False, requires=["env"], default=False)
def rollback(session: nox.Session) -> None:
    """Make the previous promoted, non-revoked version (or the one after --) the champion again."""
    _gates(session, "rollback", *session.posargs)


@nox.session(python=False, requires=["env"], default=False)
def service(session: nox.Session) -> None:
    """Serve the verified, signed model over HTTP (python -m gates serve; args after --).

    Named ``service`` because ``serve`` is the gate's session. Runs in its own interpreter,
    not the warm worker: it serves until interrupted.
    """
    session.run(
        _python(session),
        "-m",
        "gates",
        "serve",
        *session.posargs,
        external=True,
        env=THREAD_DEFAULTS,
    )


_prestart_worker()
