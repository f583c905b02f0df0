"""Planted attacks on the policy file (issue 14, item 6): paths that escape, files that are not.

A pull request controls policy.toml. Every path it names must resolve inside the project with
every symlink followed (``[audit].advisory_db`` and ``[release].private_key_file``: outside
it), and must be what its key names; every malformed policy is exit 2 with one message naming
the file and the key, never a traceback. The loader is called directly where the CLI adds
nothing; the cases about exit codes and tracebacks go through ``python -m gates`` and
``python -m pipeline``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pipeline.config import MAX_DEPTH, PathRule, Policy, load_policy
from pipeline.errors import PolicyError
from tests.conftest import REPO, run_module, write_toml

# ---------------------------------------------------------------------------------------------
# A light project: the policy, the data and the release key (no code: nothing here runs a tool).


class Light:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.policy = root / "policy.toml"

    def document(self) -> dict[str, Any]:
        return tomllib.loads(self.policy.read_text(encoding="utf-8"))

    def set(self, dotted: str, value: Any) -> None:
        document = self.document()
        *parents, leaf = dotted.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        write_toml(self.policy, document)

    def error(self) -> str:
        with pytest.raises(PolicyError) as info:
            load_policy(self.policy)
        return str(info.value)

    def cli(self, *args: str, module: str = "gates") -> subprocess.CompletedProcess[str]:
        return run_module(module, *args, cwd=self.root, timeout=120)


@pytest.fixture
def light(tmp_path: Path) -> Light:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return Light(root)


def _one_line_naming(text: str, *fragments: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    for fragment in fragments:
        assert fragment in lines[0], (fragment, text)
    return lines[0]


def test_the_light_project_is_valid_to_begin_with(light: Light) -> None:
    # The control: every failure below is the planted change, not the fixture.
    done = light.cli("policy", "check")
    assert done.returncode == 0, done.stderr
    load_policy(light.policy)


# ---------------------------------------------------------------------------------------------
# One case per path key: each pointed outside the project (the reports_dir case first).

OUTSIDE = "../elsewhere"
_INSIDE_KEYS: list[tuple[str, Any]] = [
    ("run.reports_dir", OUTSIDE),
    ("run.artifacts_dir", OUTSIDE),
    ("data.path", "../elsewhere/data.csv"),
    ("data.lock", "../elsewhere/data.lock.json"),
    ("data.checksums", "../elsewhere/SHA256SUMS"),
    ("lint.paths", ["pipeline", OUTSIDE]),
    ("sast.paths", ["pipeline", OUTSIDE]),
    ("sast.exclude", [OUTSIDE]),
    ("sast.loaders", ["../elsewhere/persist.py"]),
    ("sast.baseline", "../elsewhere/baseline.json"),
    ("audit.requirements", "../elsewhere/requirements.lock"),
    ("audit.locks", ["requirements-extras.lock", "../elsewhere/extras.lock"]),
    ("release.public_key", "../elsewhere/release.pub"),
    ("release.dev_key_dir", OUTSIDE),
    ("release.registry_dir", OUTSIDE),
    ("feedback.history", "../elsewhere/runs.jsonl"),
    ("feedback.quarantine_dir", OUTSIDE),
    ("feedback.champion", "../elsewhere/champion"),
    ("feedback.mlflow_artifact_location", OUTSIDE),
    ("feedback.mlflow_tracking_uri", "file:///tmp/elsewhere/mlruns"),
    ("feedback.mlflow_tracking_uri", "sqlite:////tmp/elsewhere/mlflow.db"),
    ("feedback.mlflow_tracking_uri", "sqlite+pysqlite:////tmp/elsewhere/mlflow.db"),
    ("feedback.mlflow_tracking_uri", "../elsewhere/mlruns"),
]


@pytest.mark.parametrize(
    ("key", "value"),
    _INSIDE_KEYS,
    ids=[f"{k}={v if isinstance(v, str) else v[-1]}" for k, v in _INSIDE_KEYS],
)
def test_a_path_key_pointing_outside_the_project_is_refused(
    light: Light, key: str, value: Any
) -> None:
    light.set(key, value)
    message = light.error()
    shown = f"{key}.{len(value) - 1}" if isinstance(value, list) else key
    _one_line_naming(message, "policy.toml", f"{shown}: expected", "outside the project folder")


def test_reports_dir_outside_through_the_cli_writes_nothing_and_exits_2(light: Light) -> None:
    # The case, end to end: nothing is written to ../elsewhere, no verdict is reached.
    light.set("run.reports_dir", OUTSIDE)
    done = light.cli("run", "data")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    _one_line_naming(done.stderr, "policy.toml", "run.reports_dir", "outside the project folder")
    assert not (light.root.parent / "elsewhere").exists()
    assert not (light.root / "reports").exists()


# ---------------------------------------------------------------------------------------------
# The tricks, each on a key where it matters.


def _symlinked_dir(light: Light) -> str:
    outside = light.root.parent / "outside"
    outside.mkdir()
    (light.root / "out").symlink_to(outside, target_is_directory=True)
    return "out"


def _symlinked_file(light: Light) -> str:
    target = light.root.parent / "stolen.csv"
    shutil.copy2(light.root / "data" / "breast_cancer.csv", target)
    (light.root / "data" / "link.csv").symlink_to(target)
    return "data/link.csv"


def _dangling_symlink(light: Light) -> str:
    (light.root / "out").symlink_to(light.root.parent / "not-yet")
    return "out"


def _symlink_loop(light: Light) -> str:
    (light.root / "loop").symlink_to(light.root / "loop")
    return "loop/reports"


def _fifo(light: Light) -> str:
    os.mkfifo(light.root / "data" / "pipe.csv")
    return "data/pipe.csv"


def _absolute_path_outside(light: Light) -> str:
    return str(light.root.parent / "elsewhere.csv")


def _escaped(old: str, new: str) -> Callable[[Light], None]:
    # A value with a TOML escape (\u0000, \n) is written as policy text, not through write_toml.
    def plant(light: Light) -> None:
        text = light.policy.read_text(encoding="utf-8")
        assert old in text
        light.policy.write_text(text.replace(old, new, 1), encoding="utf-8")

    return plant


TRICKS: dict[str, tuple[str, Callable[[Light], Any], str]] = {
    # name: (key, value or planter, fragment of the message)
    "absolute-path": ("data.path", _absolute_path_outside, "outside the project folder"),
    "dotdot-inside-then-out": ("run.reports_dir", "data/../../elsewhere", "outside the project"),
    "symlinked-folder-out": ("run.reports_dir", _symlinked_dir, "outside the project folder"),
    "symlinked-file-out": ("data.path", _symlinked_file, "outside the project folder"),
    "dangling-symlink-out": ("run.artifacts_dir", _dangling_symlink, "outside the project"),
    "symlink-loop": ("run.reports_dir", _symlink_loop, "cannot be resolved"),
    "tilde-home": ("data.path", "~/data.csv", "'~' is not expanded"),
    "nul-byte": (
        "data.path",
        _escaped('path = "data/breast_cancer.csv"', 'path = "data/breast_cancer.csv\\u0000.txt"'),
        "NUL bytes",
    ),
    "newline-in-path": (
        "run.reports_dir",
        _escaped('reports_dir = "reports"', 'reports_dir = "reports\\nerror: all gates PASSED"'),
        "control characters",
    ),
    "component-over-255-bytes": ("run.reports_dir", "r" * 300, "at most 255 bytes"),
    "path-over-1024-chars": ("run.reports_dir", "/".join(["r" * 200] * 30), "at most 1024"),
    "one-megabyte-reports-dir": ("run.reports_dir", "r" * 1_000_000, "at most 1024 characters"),
    "dev-zero-as-data": ("data.path", "/dev/zero", "outside the project folder"),
    "fifo-as-data": ("data.path", _fifo, "which is a FIFO"),
    "folder-as-data": ("data.path", "data", "which is a directory"),
    "file-as-reports-dir": ("run.reports_dir", "policy.toml", "which is a regular file"),
    "under-a-file": ("run.reports_dir", "policy.toml/reports", "part of which is a file"),
    "reports-in-project-root": ("run.reports_dir", ".", "the project folder itself"),
    "empty-path": ("run.artifacts_dir", "", "at least 1 character"),
    "path-of-wrong-type": ("data.lock", 7, "valid string"),
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_path_trick_is_refused(light: Light, trick: str) -> None:
    key, plant, fragment = TRICKS[trick]
    value = plant(light) if callable(plant) else plant
    if value is not None:  # None: the planter edited the policy's text itself
        light.set(key, value)
    _one_line_naming(light.error(), "policy.toml", f"{key}: expected", fragment)


# ---------------------------------------------------------------------------------------------
# The two keys that point outside by design: read-only input, and never the tree.


def _fake_snapshot(folder: Path) -> None:
    # What the attacker wants the audit to read: a snapshot that knows only the canary, so the
    # canary is "seen" and every other pin is clean.
    source = REPO / "tests" / "assets" / "osv" / "vulns" / "joblib"
    shutil.copytree(source, folder / "vulns" / "joblib")


def _empty_in_tree(light: Light) -> str:
    (light.root / "empty").mkdir()
    return "empty"


def _canary_only_in_tree(light: Light) -> str:
    _fake_snapshot(light.root / "osv")
    return "osv"


def _absolute_into_tree(light: Light) -> str:
    _fake_snapshot(light.root / "osv")
    return str(light.root / "osv")


def _outside_link_into_tree(light: Light) -> str:
    _fake_snapshot(light.root / "osv")
    (light.root.parent / "db").symlink_to(light.root / "osv", target_is_directory=True)
    return "../db"


ADVISORY: dict[str, Callable[[Light], str]] = {
    "empty-folder-in-tree": _empty_in_tree,
    "canary-only-snapshot-in-tree": _canary_only_in_tree,
    "absolute-path-into-tree": _absolute_into_tree,
    "outside-symlink-into-tree": _outside_link_into_tree,
    "folder-holding-the-project": lambda light: "..",
    "project-folder-itself": lambda light: ".",
}


@pytest.mark.parametrize("trick", sorted(ADVISORY))
def test_an_advisory_db_the_pull_request_controls_is_refused(light: Light, trick: str) -> None:
    light.set("audit.advisory_db", ADVISORY[trick](light))
    _one_line_naming(
        light.error(), "policy.toml", "audit.advisory_db: expected a folder outside", "project"
    )


def test_an_advisory_db_reached_through_proc_self_cwd_is_refused(light: Light) -> None:
    # Another name of the project folder (as a bind mount would be): compared by what it is.
    _fake_snapshot(light.root / "osv")
    light.set("audit.advisory_db", "/proc/self/cwd/osv")
    done = light.cli("policy", "check")
    assert done.returncode == 2
    _one_line_naming(done.stderr, "policy.toml", "audit.advisory_db", "inside the project")


def test_a_snapshot_beside_the_project_stays_allowed(light: Light) -> None:
    # The documented exception: a read-only snapshot outside the tree (../shared/advisory-db).
    _fake_snapshot(light.root.parent / "shared" / "advisory-db")
    light.set("audit.advisory_db", "../shared/advisory-db")
    assert load_policy(light.policy).policy.audit.advisory_db == "../shared/advisory-db"


def test_a_private_key_file_in_the_tree_is_refused(light: Light) -> None:
    # A key committed in the pull request is the pull request's key.
    light.set("release.private_key_file", "keys/release.key")
    _one_line_naming(
        light.error(), "release.private_key_file: expected a file outside the project folder"
    )


# ---------------------------------------------------------------------------------------------
# Malformed policy files, through the CLI: exit 2, one line naming the file (and key), no traceback.


def _nested(light: Light, depth: int) -> None:
    text = light.policy.read_text(encoding="utf-8")
    deep = "[" * depth + "]" * depth
    light.policy.write_text(
        text.replace("params = { C = 1.0,", f"params = {{ C = {deep},"), encoding="utf-8"
    )


def _write_bytes(data: bytes) -> Callable[[Light], None]:
    return lambda light: light.policy.write_bytes(data)


def _replace_policy(make: Callable[[Path], None]) -> Callable[[Light], None]:
    def plant(light: Light) -> None:
        light.policy.unlink()
        make(light.policy)

    return plant


def _symlink_out(path: Path) -> None:
    outside = path.parent.parent / "policy.toml"
    shutil.copy2(REPO / "policy.toml", outside)
    path.symlink_to(outside)


MALFORMED: dict[str, tuple[Callable[[Light], None], tuple[str, ...]]] = {
    "50000-deep-array": (lambda p: _nested(p, 50_000), ("line", "'params'", "nested")),
    "40-deep-array": (lambda p: _nested(p, 40), ("model.params.C.0.0", "nested")),
    "1mb-reports-dir": (
        _escaped('reports_dir = "reports"', f'reports_dir = "{"r" * 1_000_000}"'),
        ("run.reports_dir", "at most 1024 characters"),
    ),
    "invalid-utf8": (
        lambda p: p.policy.write_bytes(p.policy.read_bytes().replace(b"diagnosis", b"diag\xff", 1)),
        ("not UTF-8", "line"),
    ),
    "bom": (lambda p: p.policy.write_bytes(b"\xef\xbb\xbf" + p.policy.read_bytes()), ("mark",)),
    "duplicate-key": (_escaped("seed = 42", "seed = 42\nseed = 7"), ("run.seed", "twice")),
    "duplicate-table": (
        lambda p: p.policy.write_text(p.policy.read_text() + "\n[run]\nseed = 1\n"),
        ("'run'", "twice"),
    ),
    "wrong-type": (_escaped("seed = 42", 'seed = "42"'), ("run.seed", "valid integer")),
    "infinite-float": (
        _escaped("max_file_mb = 2048", "max_file_mb = inf"),
        ("data.checks.max_file_mb", "finite number"),
    ),
    "5000-digit-integer": (_escaped("seed = 42", f"seed = {'9' * 5000}"), ("digits",)),
    "empty-file": (_write_bytes(b""), ("empty",)),
    "comments-only": (_write_bytes(b"# nothing here\n"), ("empty",)),
    "huge-file": (
        lambda p: p.policy.write_bytes(p.policy.read_bytes() + b"#" * (2 << 20)),
        ("at most 1048576 bytes",),
    ),
    "policy-is-a-directory": (_replace_policy(lambda path: path.mkdir()), ("a directory",)),
    "policy-is-a-fifo": (_replace_policy(os.mkfifo), ("a FIFO",)),
    "policy-symlink-out-of-the-tree": (_replace_policy(_symlink_out), ("symlink to",)),
    "policy-symlink-to-dev-zero": (
        _replace_policy(lambda path: path.symlink_to("/dev/zero")),
        ("symlink to /dev/zero",),
    ),
    "policy-symlink-loop": (_replace_policy(lambda path: path.symlink_to(path)), ("resolve",)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_policy_is_one_line_and_exit_2(light: Light, case: str) -> None:
    plant, fragments = MALFORMED[case]
    plant(light)
    done = light.cli("policy", "check")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout == ""
    line = _one_line_naming(done.stderr, "policy.toml", *fragments)
    assert len(line) < 1200  # the 1 MB value is described, not echoed


@pytest.mark.parametrize(
    "case", ["50000-deep-array", "1mb-reports-dir", "policy-is-a-fifo", "huge-file"]
)
def test_the_pipeline_cli_refuses_a_malformed_policy_the_same_way(light: Light, case: str) -> None:
    MALFORMED[case][0](light)
    done = light.cli("train", module="pipeline")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    _one_line_naming(done.stderr, "policy.toml", *MALFORMED[case][1])
    assert not (light.root / "artifacts").exists()


def test_nesting_up_to_the_limit_is_only_a_schema_error(light: Light) -> None:
    # The depth guard is not what refuses ordinary policies: a list at the limit is a type error.
    _nested(light, MAX_DEPTH - 3)
    message = light.error()
    assert "nested" not in message
    assert "model.params.C" in message


# ---------------------------------------------------------------------------------------------
# Every path-valued key carries a rule, so one added later cannot escape unchecked.

_PATHLIKE = ("path", "dir", "file", "lock", "checksums", "key", "baseline", "loaders", "history")
_PATHLIKE += ("champion", "requirements", "exclude", "advisory_db", "location", "uri", "paths")
_NOT_PATHS = {"private_key_env", "pushgateway_url", "id_column", "prediction_column"}


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for name, field in model.model_fields.items():
        found.append((f"{prefix}{name}", field))
        annotation = field.annotation
        for inner in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found += _fields(inner, f"{prefix}{name}.")
    return found


def test_every_path_like_key_has_a_path_rule() -> None:
    missing = [
        key
        for key, field in _fields(Policy)
        if key.rsplit(".", 1)[-1].endswith(_PATHLIKE)
        and key.rsplit(".", 1)[-1] not in _NOT_PATHS
        and field.annotation is not bool
        and not any(isinstance(m, PathRule) for m in field.metadata)
    ]
    assert missing == []
    ruled = [
        key
        for key, field in _fields(Policy)
        if any(isinstance(m, PathRule) for m in field.metadata)
    ]
    assert len(ruled) >= 20, ruled


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "sqlite:///mlflow.db"])
def test_a_loopback_or_in_project_tracking_store_stays_allowed(light: Light, uri: str) -> None:
    light.set("feedback.mlflow_tracking_uri", uri)
    assert load_policy(light.policy).policy.feedback.mlflow_tracking_uri == uri


# ---------------------------------------------------------------------------------------------
# Endpoints: a scheduler the pull request names would compute (and send back) the data gate's
# and cv's results, and a Pushgateway or tracking server would receive reports and flagged rows.
# The policy may name only loopback; a remote endpoint comes from the environment CI sets.

_REMOTE_ENDPOINTS: list[tuple[str, str, str]] = [
    ("run.dask_scheduler", "tcp://scheduler.attacker.example:8786", "scheduler.attacker.example"),
    ("run.dask_scheduler", "10.0.0.7:8786", "10.0.0.7"),
    ("run.dask_scheduler", "tls://127.0.0.1.attacker.example:8786", "127.0.0.1.attacker.example"),
    ("run.dask_scheduler", "tcp://user@attacker.example:1@127.0.0.1:8786", "127.0.0.1"),
    ("feedback.pushgateway_url", "http://203.0.113.9:9091", "203.0.113.9"),
    ("feedback.mlflow_tracking_uri", "https://mlflow.attacker.example", "mlflow.attacker.example"),
    ("feedback.mlflow_tracking_uri", "http://[2001:db8::1]:5000", "2001:db8::1"),
]


@pytest.mark.parametrize(
    ("key", "value", "host"), _REMOTE_ENDPOINTS, ids=[v for _, v, _ in _REMOTE_ENDPOINTS]
)
def test_a_remote_endpoint_in_the_policy_is_refused(
    light: Light, key: str, value: str, host: str
) -> None:
    light.set(key, value)
    _one_line_naming(light.error(), "policy.toml", key, "loopback", f"found host {host!r}")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("run.dask_scheduler", "tcp://127.0.0.1:8786"),
        ("run.dask_scheduler", "localhost:8786"),
        ("feedback.pushgateway_url", "http://[::1]:9091"),
    ],
)
def test_a_loopback_endpoint_stays_allowed(light: Light, key: str, value: str) -> None:
    light.set(key, value)
    section, name = key.split(".")
    assert getattr(getattr(load_policy(light.policy).policy, section), name) == value


def test_a_remote_scheduler_from_the_environment_is_still_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.evaluate import DASK_SCHEDULER_ENV, resolve_scheduler

    monkeypatch.setenv(DASK_SCHEDULER_ENV, "tcp://dask.ci.internal:8786")
    assert resolve_scheduler(None) == "tcp://dask.ci.internal:8786"
