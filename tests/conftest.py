"""Shared fixtures: a throw-away copy of the project's policy and data, and ways to run the CLIs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.project_support import ADVISORY_DB_ENV, OSV_FIXTURE, copy_project

REPO = Path(__file__).resolve().parent.parent


def exec_noxfile(name: str) -> Any:
    """The project's ``noxfile.py`` executed as module ``name``. Its sessions go into nox's one
    registry of the process, so a second execution on the same test worker (another test file,
    or a module fixture set up again) re-registers them: nox warns (FutureWarning), which this
    suite turns into an error. That warning alone is let through here."""
    import importlib.util
    import warnings

    spec = importlib.util.spec_from_file_location(name, REPO / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "The session .* has already been registered", FutureWarning
        )
        spec.loader.exec_module(module)
    return module


def _set(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def write_toml(path: Path, document: dict[str, Any]) -> None:
    """Write a policy document back as TOML (tomli-w is not a dependency: a tiny writer)."""
    path.write_text(_dump(document), encoding="utf-8")


def _dump(document: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in document.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in document.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    text = "\n".join(lines) + ("\n\n" if lines else "")
    for key, table in tables.items():
        text += _dump(table, f"{prefix}.{_key(key)}" if prefix else _key(key))
    return text


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    msg = f"cannot write {value!r} as TOML"
    raise TypeError(msg)


class Project:
    """A copy of the project's policy and data in a temp folder, with helpers to change it.

    ``recorded`` is a project on which the real chain ran in this session (``recorded_chain``):
    the supply-chain gates that ``open_run`` runs upstream of a later gate replay its outcomes
    where nothing they read differs (``tests/chain_support.py``).
    """

    def __init__(self, root: Path, recorded: Path | None = None) -> None:
        self.root = root
        self.policy_path = root / "policy.toml"
        self._recorded = recorded

    @property
    def data_path(self) -> Path:
        return self.root / "data" / "breast_cancer.csv"

    def policy_document(self) -> dict[str, Any]:
        return tomllib.loads(self.policy_path.read_text(encoding="utf-8"))

    def edit_policy(self, **changes: Any) -> None:
        """``edit_policy(**{"cv.folds": 3})`` sets keys by dotted path and rewrites the file."""
        document = self.policy_document()
        for dotted, value in changes.items():
            _set(document, dotted, value)
        write_toml(self.policy_path, document)

    def load(self) -> Any:
        from pipeline.config import load_policy

        return load_policy(self.policy_path)

    def approve(self) -> None:
        """Re-lock the data as it is now (what ``python -m gates data approve`` does)."""
        from pipeline.data import read_table, write_lock

        policy = self.load()
        write_lock(policy, read_table(self.data_path, fmt="csv"))

    def chain(self, replay: tuple[str, ...] = ()) -> tuple[Any, ...]:
        """The registry's chain, with the gates named in ``replay`` replayed (see the class)."""
        from gates.registry import GATES
        from tests.chain_support import replaying

        if not replay or self._recorded is None:
            return GATES
        return replaying(self._recorded, replay)

    def run(self, *gates: str, open_run: bool = True, replay: tuple[str, ...] = ()) -> Any:
        """Run gates in-process; returns the RunSummary of the gates asked for.

        With ``open_run`` (the default), a test that starts at a later gate (``run("data")``)
        with no run in progress first runs the gates registered before it, so that a test
        about one gate does not have to repeat its upstream: lint, sast and audit replayed
        from the session's real run, the others for real. ``replay`` names gates of this run
        itself to replay (``replay=SUPPLY_CHAIN`` for a whole chain about later gates).
        """
        import io

        from gates.runner import run_chain

        if open_run:
            self.open_run(*gates)
        return run_chain(
            list(gates),
            gates=self.chain(replay),
            policy=self.load(),
            reports_dir=self.root / "reports",
            out=io.StringIO(),
        )

    def open_run(self, *gates: str) -> None:
        """Run the gates registered before the earliest of ``gates`` when no run is open."""
        import io

        from gates.registry import NAMES
        from gates.runner import run_chain
        from tests.chain_support import SUPPLY_CHAIN

        known = [g for g in gates if g in NAMES]
        if not known or (self.root / "reports" / "run.json").exists():
            return
        if os.environ.get("GATES_RUN_ID"):
            return
        upstream = list(NAMES[: min(NAMES.index(g) for g in known)])
        if upstream:
            run_chain(
                upstream,
                gates=self.chain(SUPPLY_CHAIN),
                policy=self.load(),
                reports_dir=self.root / "reports",
                out=io.StringIO(),
            )

    def report(self, gate: str) -> dict[str, Any]:
        import json

        return json.loads((self.root / "reports" / f"{gate}.json").read_text(encoding="utf-8"))


@pytest.fixture
def project(tmp_path: Path, recorded_chain: tuple[Path, Any]) -> Project:
    """A fresh copy of policy.toml, data/ and the code that a test may change freely."""
    return Project(copy_project(tmp_path / "project"), recorded=recorded_chain[0])


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any]]:
    """``build(folder)`` run once per test session, whatever the number of xdist workers.

    pytest-xdist's documented pattern: every worker's base temp folder sits in one folder per
    session; under a file lock there, the first worker to ask builds into ``<that>/<name>`` and
    writes what ``build`` returned (JSON) beside it; the others wait for the lock and read it.
    A build that raised leaves its error there, so the other workers fail with it instead of
    building again. Without xdist (``-n 0``) the folder is this session's own.
    """
    from filelock import FileLock

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        return folder, build(folder)
    shared = tmp_path_factory.getbasetemp().parent
    folder, marker = shared / name, shared / f"{name}.json"
    with FileLock(shared / f"{name}.lock"):
        if not marker.is_file():
            if folder.exists():  # not possible under the lock, but never build over a leftover
                shutil.rmtree(folder)
            folder.mkdir()
            try:
                made: dict[str, Any] = {"built": build(folder)}
            except BaseException as err:
                made = {"error": f"{name} failed in {os.environ['PYTEST_XDIST_WORKER']}: {err!r}"}
                marker.write_text(json.dumps(made), encoding="utf-8")
                raise
            partial = marker.with_suffix(".partial")
            partial.write_text(json.dumps(made), encoding="utf-8")
            partial.replace(marker)
        made = json.loads(marker.read_text(encoding="utf-8"))
    if "error" in made:
        pytest.fail(made["error"], pytrace=False)
    return folder, made["built"]


@pytest.fixture(scope="session")
def recorded_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The whole real chain (feedback included) run once in this session on a fresh copy, as
    ``python -m gates run`` runs it (development key, gate cache on): its folder and summary.

    Whatever its verdict, its supply-chain outcomes are the real ones for this code, so
    ``Project`` replays them. Set up before any test body runs (no test's monkeypatch reaches
    it), once per session (``built_once``: one xdist worker runs it, the others share it; the
    summary is rebuilt from its JSON form). Read-only: copy it to change it.
    """
    from gates.base import GateResult
    from gates.runner import RunSummary
    from tests.chain_support import recorded_material, run_real_chain

    def build(folder: Path) -> dict[str, Any]:
        summary = run_real_chain(copy_project(folder / "project"), use_cache=True)
        return {"run_id": summary.run_id, "results": [r.to_dict() for r in summary.results]}

    folder, made = built_once(tmp_path_factory, "passed-chain", build)
    root = folder / "project"
    recorded_material(root)  # under the session's environment, before any test changes it
    results = tuple(GateResult.from_dict(r) for r in made["results"])
    return root, RunSummary(run_id=made["run_id"], results=results)


@pytest.fixture(scope="session")
def passed_chain(recorded_chain: tuple[Path, Any]) -> Path:
    """``recorded_chain``, which every gate PASSED (``.cache/gates`` holds their entries)."""
    root, summary = recorded_chain
    assert summary.exit_code == 0, [f"{r.gate}: {r.summary}" for r in summary.results]
    return root


@pytest.fixture
def passed_project(passed_chain: Path, tmp_path: Path) -> Project:
    """A copy of ``passed_chain`` (reports, artifacts, history, cache, development key)."""
    from tests.chain_support import copy_run

    return Project(copy_run(passed_chain, tmp_path / "project"), recorded=passed_chain)


@pytest.fixture(scope="session")
def signed_chain(
    tmp_path_factory: pytest.TempPathFactory, recorded_chain: tuple[Path, Any]
) -> tuple[Path, str]:
    """A project whose whole chain PASSED, signed with its own release key; and its PEM.

    Lint, sast and audit replay ``recorded_chain``'s real outcomes (the same code), the other
    gates run. Built once per session (``built_once``). Read-only: copy it
    (``tests.release_support.copy_project``) to change it.
    """
    from tests.chain_support import replaying
    from tests.release_support import signed_project

    def build(folder: Path) -> dict[str, Any]:
        root, pem = signed_project(folder, gates=replaying(recorded_chain[0]))
        return {"root": root.relative_to(folder).as_posix(), "pem": pem}

    folder, made = built_once(tmp_path_factory, "signed-chain", build)
    return folder / made["root"], made["pem"]


@pytest.fixture
def unreachable_scheduler(monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``tcp://127.0.0.1:PORT`` address nothing listens on, with a 1 s connect timeout."""
    pytest.importorskip("distributed")
    import socket

    from pipeline import evaluate

    monkeypatch.setattr(evaluate, "_DASK_TIMEOUT_SECONDS", 1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """A real dask.distributed cluster: a scheduler and two worker processes on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # A free port: 8787 (the default even for None) may be taken by another cluster.
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session", autouse=True)
def _offline_advisory_db() -> Iterator[None]:
    # Every audit in the tests reads the tests' own OSV snapshot, offline (tests that need
    # another source set or clear the variable themselves).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ADVISORY_DB_ENV, str(OSV_FIXTURE))
        yield


def run_module(
    module: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> ARGS`` in ``cwd`` as a user would, with the repo importable."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("GATES_RUN_ID", None)
    if env and "GATES_RUN_ID" in env:
        environment["GATES_RUN_ID"] = env["GATES_RUN_ID"]
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def gates_cli(recorded_chain: tuple[Path, Any]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``gates_cli(project.root, "run")`` runs ``python -m gates run`` in that folder."""

    def call(
        cwd: Path, *args: str, open_run: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        # As Project.run: a later gate run alone first gets its upstream gates run.
        if open_run and args[:1] == ("run",) and args[1:]:
            project = Project(cwd, recorded=recorded_chain[0])
            project.open_run(*[a for a in args[1:] if not a.startswith("-")])
        return run_module("gates", *args, cwd=cwd, **kwargs)

    return call


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules that hold a ``slow`` test first; each module stays whole and in order.

    ``nox -s tests`` uses pytest-xdist's worksteal: each worker gets a contiguous share of this
    list, and a worker that runs dry takes the queued tail of the other, down to its last two
    tests. A long test queued at the very end keeps one core busy while the other waits; with
    the long modules first the tail is short tests. Module-scoped fixtures still set up once.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)  # stable: otherwise collection order


@pytest.fixture(autouse=True)
def _no_inherited_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # A run id exported by CI must not leak into tests that open their own runs.
    monkeypatch.delenv("GATES_RUN_ID", raising=False)


# -- release-key rotation (tests/gates/test_rotate.py, tests/attacks/test_key_rotation.py) ------


@pytest.fixture(scope="module")
def plain_registry(signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Three promoted versions without ``[roles]`` (``tests.rollback_support.build``)."""
    from tests.rollback_support import build

    return build(signed_chain, tmp_path_factory.mktemp("rotate-plain"), roles=False)


@pytest.fixture(scope="module")
def managed_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Three promoted versions with ``[roles]``."""
    from tests.rollback_support import build

    return build(signed_chain, tmp_path_factory.mktemp("rotate-roles"), roles=True)


@pytest.fixture
def plain(plain_registry: Any, signed_chain: tuple[Path, str], tmp_path: Path) -> Any:
    """A copy of ``plain_registry`` after a new release public key was committed."""
    from tests.rotate_support import commit_new_key

    return commit_new_key(plain_registry.copy(tmp_path / "p"), signed_chain[1], tmp_path / "s")


@pytest.fixture
def managed(managed_registry: Any, signed_chain: tuple[Path, str], tmp_path: Path) -> Any:
    """A copy of ``managed_registry`` after a new release public key was committed."""
    from tests.rotate_support import commit_new_key

    return commit_new_key(managed_registry.copy(tmp_path / "p"), signed_chain[1], tmp_path / "s")
