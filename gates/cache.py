"""The gate cache: reuse an unchanged gate's earlier outcome, safely, the way ``dvc repro`` skips.

A cache entry is ``<cache dir>/<key>.json``; the files a gate wrote (the model, its manifest,
native reports) are kept by content in ``<cache dir>/objects/<sha256>``. The key is SHA-256
over everything the outcome can depend on:

- the gate's name and ``module:Class``;
- the source digest: every ``.py`` of the ``gates`` and ``pipeline`` packages, and every
  source or configuration file of the project (``.py``, ``.toml``, ``.cfg``, ``.ini``,
  ``.yml``, ``.lock`` ...), so a linter's gate sees a change anywhere it looks; in output,
  data and build folders only the modules (an import reaches them by name);
- the environment: Python's version and platform, and the name and version of every installed
  distribution (so a new scikit-learn, ruff or bandit misses);
- the run's input digests (policy, data, data lock, checksums, requirements.lock);
- the run-independent content of every earlier gate's report of this run, and the bytes on disk
  of every artifact those reports list (a new model invalidates cv);
- what the gate declares it reads (``Gate.reads(context)``, one ``Reads`` value): every byte of
  the files and folders it names, the identifiers of what no file holds, whether the data's
  digests count (and whether it may be reused at all).

Gates declare; this module owns keys, digests and the memo. File digests for the key (the
source digest, the files a gate reads, such as a scanner's scope or an advisory snapshot) go
through a ``DigestMemo``: like DVC's state database it remembers each file's SHA-256 by its
device, inode, size, mtime and ctime, so an unchanged file is not read again; the memo file is
sealed like an entry. The run's input digests (policy, data, lock) trust only what this process
hashed itself: they are the record of the run, not just a key.

Before reuse the entry's seal (SHA-256, or HMAC-SHA256 when ``GATES_CACHE_HMAC_KEY`` is set)
is checked and every output is re-hashed (and restored from the object store when it is
gone). Anything that does not
check out is a miss: the gate runs. Only PASSED and FAILED outcomes are stored; a cached
FAIL stays FAIL.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import platform
import shutil
import stat
import subprocess  # nosec B404 # runs git with a fixed argv list, never a shell
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from gates import CODE_PACKAGES
from gates.base import Finding, GateResult, Outcome, Reads, RunContext, Status
from gates.errors import GatesError
from gates.inputs import data_input_keys
from gates.registry import GateSpec, checked_before
from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_bytes, atomic_write_json, sha256_file
from pipeline.gittree import committed_in

# Bump when the key material or the entry layout changes: old entries then simply miss.
CACHE_FORMAT = 2
NO_CACHE_ENV = "GATES_NO_CACHE"
CACHE_DIR_ENV = "GATES_CACHE_DIR"
HMAC_KEY_ENV = "GATES_CACHE_HMAC_KEY"
# Metrics key under which a report records its cache key and where it was reused from.
METRICS_KEY = "cache"
MEMO_FILE = "digests.memo"
MEMO_FORMAT = 1
# A file changed this recently may change again within the same timestamp tick unseen (the
# "racy git" problem): its digest is used but not remembered.
_SETTLED_NS = 2_000_000_000

_SOURCE_SUFFIXES = frozenset({".py", ".pyi", ".toml", ".cfg", ".ini", ".lock", ".yml", ".yaml"})
_SOURCE_NAMES = frozenset({"Jenkinsfile", ".bandit", "requirements.txt"})
# What an import reaches: counted in every folder, including the ones below.
_CODE_SUFFIXES = frozenset({".py", ".pyi"})
# Folders that hold outputs, caches, data or environments: their configuration-like files
# (a data lock, a cached YAML) are not sources, but a module there is (``from build.knob import
# FACTOR`` imports it; a folder name keeps nothing out of an import).
_SKIP_DIRS = frozenset(
    {
        "reports",
        "artifacts",
        "registry",
        "node_modules",
        "__pycache__",
        "build",
        "dist",
        "data",
        "venv",
    }
)


def disabled_by_env() -> bool:
    """True when ``GATES_NO_CACHE`` is set to anything but an empty string, 0 or false."""
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir(context: RunContext) -> Path:
    """``GATES_CACHE_DIR`` when set (CI keeps it between runs), else ``<project>/.cache/gates``."""
    return cache_dir_of(context.root)


def cache_dir_of(root: Path) -> Path:
    """``cache_dir`` for the project at ``root``."""
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(configured) if configured else root / ".cache" / "gates"


# Folders no scanner reads: caches, environments and version control.
SKIP_PARTS = frozenset({"__pycache__", ".nox", ".venv", ".git", ".ruff_cache", ".pytest_cache"})


def tree_digest(
    root: Path,
    paths: Sequence[str | Path],
    file_sha256: Callable[[str], str] | None = None,
) -> str:
    """SHA-256 over the name and bytes of every file under ``paths`` (files or folders).

    Every file counts, whatever its suffix (a notebook, a stub, a nested ``ruff.toml``, a
    baseline): the cache key of a scanner must change whenever anything it could read does.
    A path that does not exist is recorded as absent, so its appearance is a change too.
    A path inside ``root`` is named relative to it, however it was given, so a project copied
    or checked out elsewhere keeps its keys; a path outside is named as given. Names under a
    folder are taken relative to that name, and the walk is one ``scandir`` per
    folder (no ``resolve()`` or extra ``stat`` per file: an advisory snapshot of thousands of
    files is walked in milliseconds). The gate cache passes its ``DigestMemo``, which
    remembers unchanged files by stat instead of reading them again.
    """
    hasher = file_sha256 or _file_sha256
    top = os.path.abspath(root)
    digest = hashlib.sha256()
    for name in sorted({_name_in(top, str(p)) for p in paths}):
        base = name if os.path.isabs(name) else os.path.join(top, name)
        if os.path.isfile(base):
            digest.update(f"{name}\0{hasher(base)}\n".encode())
        elif os.path.isdir(base):
            for label, path in _files_under(base, name):
                digest.update(f"{label}\0{hasher(path) if path else 'symlink'}\n".encode())
        else:
            digest.update(f"{name}\0absent\n".encode())
    return digest.hexdigest()


def _name_in(top: str, name: str) -> str:
    """``name`` relative to ``top`` when it is an absolute path under it; else ``name``."""
    if os.path.isabs(name):
        relative = os.path.relpath(name, top)
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            return Path(relative).as_posix()
    return name


def _files_under(
    folder: str, prefix: str, rel: str = "", *, pycache: bool = False
) -> Iterator[tuple[str, str | None]]:
    """``(label, path)`` of every file under ``folder``: its own files, then each subfolder's.

    Labels read ``prefix/rel/name`` (``rel`` is ``.`` at the top). Sorted by name at every
    level; folders no scanner reads are skipped, but for the sources in a ``__pycache__`` (not
    its bytecode): an import reaches them and the sast gate fails on them. A symlink to a folder
    is not followed (as ``os.walk`` does not) but counts by its target (path None), and a
    symlink to a file counts.
    """
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    here = f"{prefix}/{rel or '.'}"
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in SKIP_PARTS or entry.name == "__pycache__":
                subfolders.append(entry)
        elif entry.is_symlink() and entry.is_dir():
            yield f"{here}/{entry.name} -> {os.readlink(entry.path)}", None
        elif entry.is_file() and not (pycache and ".pyc" in entry.name):  # bytecode, its temp files
            yield f"{here}/{entry.name}", entry.path
    for entry in subfolders:
        inner = f"{rel}/{entry.name}" if rel else entry.name
        yield from _files_under(
            entry.path, prefix, inner, pycache=pycache or entry.name == "__pycache__"
        )


# Below this size a file is read whole: hashlib.file_digest's 256 KiB buffer per call costs more
# than the hashing for the thousands of small YAML files of an advisory snapshot.
_READ_WHOLE_BYTES = 1 << 20


def _file_sha256(path: str | Path) -> str:
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size <= _READ_WHOLE_BYTES:
            return hashlib.sha256(handle.read()).hexdigest()
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _digest_files(
    paths: Sequence[tuple[str, str | Path]], file_sha256: Callable[[str | Path], str] = _file_sha256
) -> str:
    """SHA-256 over each label and its file's digest. A name that does not lead to a regular
    file (a symlink to a FIFO or ``/dev/zero``, which a pull request can commit as
    ``pipeline/x.py``) counts by what it is, unread: reading it hung every gate's key."""
    digest = hashlib.sha256()
    for label, path in sorted(paths):
        digest.update(label.encode("utf-8") + b"\0")
        kind = _not_regular(path)
        digest.update((kind or file_sha256(path)).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _not_regular(path: str | Path) -> str | None:
    """None for a regular file (symlinks followed); else what the name leads to, unread."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        return f"unreadable ({err.strerror})"
    if stat.S_ISREG(mode):
        return None
    target = f" -> {os.readlink(path)}" if os.path.islink(path) else ""
    return f"not a regular file (mode {stat.filemode(mode)}){target}"


_Stat = tuple[int, int, int, int, int]


def _stat_of(st: os.stat_result) -> _Stat:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class DigestMemo:
    """SHA-256 of files, remembered by stat so that an unchanged file is not read again.

    A file is known by its device, inode, size, mtime and ctime. mtime alone can be set back
    by anyone who can write the file (``touch -d``); ctime cannot, as every write or metadata
    change sets it to the current time. A digest is remembered only when the file's stat was
    the same before and after reading it and its last change is older than ``_SETTLED_NS``.

    ``store`` (``<cache dir>/digests.memo``, JSON) keeps the memo between processes, sealed as
    cache entries are; one that does not check out is ignored whole. ``sha256(path,
    stored=False)`` trusts only what this process hashed.

    Stat cannot see every change: writes through a shared ``mmap`` leave mtime and ctime alone
    until the page is written back, and network or FUSE file systems may serve cached
    attributes (git's index and DVC's state share these limits). Where that matters, the cache
    is already meant to be authenticated: with ``GATES_CACHE_HMAC_KEY`` set, no digest is
    taken from the store (those of this process still are), and ``--no-cache`` reads every
    file.
    """

    settle_ns: int = _SETTLED_NS

    def __init__(self, store: Path | None = None) -> None:
        self.store = None if os.environ.get(HMAC_KEY_ENV, "") else store
        self._stored = _load_memo(self.store) if self.store is not None else {}
        self._fresh: dict[str, tuple[_Stat, str]] = {}

    def sha256(self, path: str | Path, *, stored: bool = True) -> str:
        """The file's SHA-256: remembered when its stat is unchanged, else read and hashed."""
        name = path if isinstance(path, str) and os.path.isabs(path) else os.path.abspath(path)
        before = _stat_of(os.stat(name))
        for known in (self._fresh, self._stored) if stored else (self._fresh,):
            entry = known.get(name)
            if entry is not None and entry[0] == before:
                return entry[1]
        started = time.time_ns()
        digest = sha256_file(Path(name))
        after = _stat_of(os.stat(name))
        if after == before and max(after[3], after[4]) < started - self.settle_ns:
            self._fresh[name] = (after, digest)
        return digest

    @property
    def dirty(self) -> bool:
        """Whether this process learned a digest the store does not hold."""
        return any(self._stored.get(name) != entry for name, entry in self._fresh.items())

    def save(self) -> None:
        """Write the store (atomically) when something new was learned; forget deleted files."""
        if self.store is None or not self.dirty:
            return
        merged = {**self._stored, **self._fresh}
        entries = {
            name: [*stat, digest]
            for name, (stat, digest) in sorted(merged.items())
            if os.path.lexists(name)
        }
        body = {"format": MEMO_FORMAT, "entries": entries}
        atomic_write_json(self.store, {"body": body, "seal": _seal(body)})
        self._stored = {name: merged[name] for name in entries}


def _load_memo(store: Path) -> dict[str, tuple[_Stat, str]]:
    try:
        document = json.loads(store.read_text(encoding="utf-8"))
        body, seal = document["body"], document["seal"]
        if not isinstance(body, dict) or body.get("format") != MEMO_FORMAT:
            return {}
        if not _seal_ok(body, seal):
            return {}
        return {
            str(name): ((int(a), int(b), int(c), int(d), int(e)), str(digest))
            for name, (a, b, c, d, e, digest) in body["entries"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


_memos: dict[Path, DigestMemo] = {}


def digest_memo(folder: Path) -> DigestMemo:
    """The memo kept in ``folder``, loaded once per process (the warm worker keeps it)."""
    store = folder / MEMO_FILE
    if store not in _memos:
        _memos[store] = DigestMemo(store)
    return _memos[store]


@lru_cache(maxsize=1)
def _package_digest() -> str:
    """Digest of every ``.py`` of both packages, once per process: the code it runs was loaded once.

    The warm worker, which serves many commands, restarts when any of these files changed
    since it started (``gates/worker.py``): each command runs in a process as fresh, in this
    respect, as one started for it.
    """
    files = [
        (f"{package.name}/{path.relative_to(package).as_posix()}", path)
        for package in CODE_PACKAGES
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts
    ]
    return _digest_files(files)


def _project_sources(root: Path, skip: set[Path]) -> Iterator[tuple[str, str]]:
    """The source files of the project found by walking it: modules anywhere an import can
    reach by name (hidden folders and virtual environments cannot be), configuration outside
    the folders above. What git tracks counts besides, whatever its name (``_tracked_sources``).

    Walked with strings, no ``Path`` built: the walk runs for every gate's key, and a ``Path``
    per file of the project (reports, data and artifacts included) cost more than the whole
    digest with the memo (``docs/performance.md``).
    """
    top = str(root)
    real_top = os.path.realpath(top)
    outputs = tuple((s, s.rstrip(os.sep) + os.sep) for s in map(str, skip))
    for folder, dirs, files in os.walk(top):
        rel = folder[len(top) :].lstrip(os.sep)
        # The walk follows no symlink: below the top, a folder's real path is the top's plus
        # its own relative path.
        resolved = os.path.join(real_top, rel) if rel else real_top
        code_only = not _SKIP_DIRS.isdisjoint(rel.split(os.sep) if rel else ()) or any(
            resolved == s or resolved.startswith(prefix) for s, prefix in outputs
        )
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not _local_venv(root, Path(folder, d))
        )
        label = f"{rel.replace(os.sep, '/')}/" if rel else ""
        for name in files:
            suffix = _suffix(name).lower()
            if suffix in _CODE_SUFFIXES or (
                not code_only and (suffix in _SOURCE_SUFFIXES or name in _SOURCE_NAMES)
            ):
                yield label + name, os.path.join(folder, name)


def _tracked_sources(root: Path) -> list[str] | None:
    """Every file git tracks in the checkout at ``root``, relative to it; None outside git.

    A pull request controls every committed byte, and the project's code reads whatever it
    names: a walk that picks files by suffix and skips hidden folders left out a committed
    ``pipeline/.conf/model.toml``, ``.lib/knob.py``, ``model.json`` or ``MODEL.TOML`` (red team
    19). So in a checkout every tracked file counts. One ``git ls-files`` reads the index (the
    files themselves are hashed through the memo, as the walk's are). In a checkout git cannot
    list (missing, "dubious ownership", a broken ``GIT_DIR``) there is no key: a GatesError,
    so the gate runs. Outside git (no ``.git`` at or above ``root``) None: the walk alone.
    """
    top = Path(os.path.abspath(root))
    holder = next((f for f in (top, *top.parents) if os.path.lexists(f / ".git")), None)
    git = shutil.which("git")
    if git is None:
        if holder is None:
            return None
        msg = (
            f"{holder} holds .git but git is not on PATH: the gate cache cannot tell what the"
            " checkout tracks"
        )
        raise GatesError(msg)
    try:
        listed = subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
            [git, "ls-files", "-z", "--cached"], cwd=top, capture_output=True, check=False
        )
    except OSError as err:
        msg = f"git failed to start in {top} ({err}): the gate cache cannot tell what it tracks"
        raise GatesError(msg) from err
    if listed.returncode != 0:
        if holder is None:
            return None
        why = listed.stderr.decode(errors="replace").strip().splitlines()
        msg = (
            f"git cannot list the files of the checkout at {top} ({why[0] if why else 'no output'}):"
            " the gate cache cannot tell what it tracks"
        )
        raise GatesError(msg)
    return sorted({os.fsdecode(name) for name in listed.stdout.split(b"\0") if name})


def _local_venv(root: Path, folder: Path) -> bool:
    """A virtual environment of this machine's, left out of the key: a ``pyvenv.cfg`` in it and
    nothing of it from the checked-out commit.

    A pull request controls every committed byte: a ``pyvenv.cfg`` it commits beside its own
    configuration (``pipeline/conf/pyvenv.cfg`` next to ``model.toml``) took that folder out of
    every gate's key (red team 10), while ``import`` and the project's code read it as any other.
    Outside a git checkout nothing can be told and the folder is left out, as before.
    """
    if not _is_file(os.path.join(folder, "pyvenv.cfg")):
        return False
    return committed_in(folder, root) is None


def _suffix(name: str) -> str:
    """``PurePath(name).suffix``: from the last dot, unless the name starts or ends there."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


# The errors ``Path.is_file`` takes for "no" (any other is raised, as it raises them).
_NOT_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def _is_file(path: str) -> bool:
    """``Path(path).is_file()`` without building the ``Path``."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as err:
        if err.errno not in _NOT_THERE:
            raise
        return False
    except ValueError:
        return False


def source_digest(context: RunContext, memo: DigestMemo | None = None) -> str:
    """Digest of the gate code (both packages) and every source/config file of the project."""
    policy = context.policy
    # Everything a run writes is output, not source: the run history (and its .lock file), the
    # model registry, quarantined feedback, reports and artifacts.
    outputs = (
        policy.resolve(policy.policy.feedback.history).parent,
        policy.resolve(policy.policy.release.registry_dir),
        policy.resolve(policy.policy.feedback.quarantine_dir),
    )
    skip = {context.reports_dir.resolve(), context.artifacts_dir.resolve()}
    skip.update(path.resolve() for path in outputs)
    hasher = memo.sha256 if memo is not None else _file_sha256
    sources = dict(_project_sources(context.root, skip))
    tracked = _tracked_sources(context.root)
    if tracked:
        # The data, its lock and checksums are the run's inputs, keyed as such (left out of the
        # key of a gate that declares ``Reads(data=False)``): not sources, tracked or not.
        root = context.root.resolve()
        data = {
            path.relative_to(root).as_posix()
            for key in data_input_keys(policy)
            if (path := (policy.base_dir / key).resolve()).is_relative_to(root)
        }
        top = str(context.root)
        for label in tracked:
            if label not in data:
                sources.setdefault(label, os.path.join(top, label))
    project = _digest_files(list(sources.items()), hasher)
    return hashlib.sha256(f"{_package_digest()}:{project}".encode()).hexdigest()


@lru_cache(maxsize=1)
def environment_digest() -> str:
    """Python version and platform, plus the name-version of every installed distribution.

    Read from the ``*.dist-info`` folder names on ``sys.path`` (a directory listing, far
    cheaper than importing anything or reading metadata), so any tool upgrade misses.
    """
    found: set[str] = set()
    for entry in sys.path:
        with contextlib.suppress(OSError):
            found.update(
                name
                for name in os.listdir(entry or ".")
                if name.endswith((".dist-info", ".egg-info"))
            )
    text = "\n".join(
        [
            sys.version,
            platform.machine(),
            platform.system(),
            sys.implementation.name,
            *sorted(found),
        ]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def report_content_digest(report: GateResult) -> str:
    """Digest of what a report says, without what differs between runs of the same outcome.

    Its input digests are left out: an earlier report only counts once the runner has checked
    that they equal this run's, and a gate whose key leaves the data out (``Reads.data``) must
    not take the data's digest in again through an upstream report.
    """
    metrics = {k: v for k, v in report.metrics.items() if k != METRICS_KEY}
    body = {
        "gate": report.gate,
        "status": report.status.value,
        "findings": [f.to_dict() for f in report.findings],
        "metrics": metrics,
        "artifacts": report.artifacts,
    }
    return hashlib.sha256(_canonical(body)).hexdigest()


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class CacheKey:
    """The key of one gate in one run, and the material it was computed from (kept for audit)."""

    digest: str
    material: dict[str, Any]


def reusable(spec: GateSpec, context: RunContext) -> bool:
    """Whether ``spec``'s outcome may be stored and reused in this run.

    Never the verdict or an always-run stage (they judge this run itself), never a gate whose
    ``Reads.reusable`` is False; a gate that cannot say (its ``reads`` raised) is simply run.
    """
    return _reads(spec, context) is not None


def _reads(spec: GateSpec, context: RunContext) -> Reads | None:
    if spec.verdict or spec.always:
        return None
    try:
        reads = spec.load().reads(context)
    except Exception:  # fail closed: doubt means "run it"
        return None
    return reads if reads.reusable else None


def compute_key(
    spec: GateSpec,
    context: RunContext,
    inputs: dict[str, str],
    *,
    reads: Reads | None = None,
    memo: DigestMemo | None = None,
) -> CacheKey:
    """The key of ``spec`` in this run; prerequisites must already have been checked.

    ``reads`` is what the gate declares (asked of it when not given); ``memo`` remembers file
    digests by stat, for key material only.
    """
    declared = reads if reads is not None else spec.load().reads(context)
    if not declared.data:
        data = data_input_keys(context.policy)
        inputs = {k: v for k, v in inputs.items() if k not in data}
    upstream: dict[str, str] = {}
    upstream_files: dict[str, str] = {}
    for earlier in checked_before(spec.name):
        report = context.read_report(earlier.name)
        upstream[earlier.name] = report_content_digest(report)
        for rel in report.artifacts:
            if rel in inputs or rel in upstream_files:
                continue  # already hashed this run as an input
            path = _resolve(context, rel)
            upstream_files[rel] = sha256_file(path) if path.is_file() else "absent"
    hasher = memo.sha256 if memo is not None else None
    material = {
        "format": CACHE_FORMAT,
        "gate": spec.name,
        "target": spec.target,
        "sources": source_digest(context, memo),
        "environment": environment_digest(),
        "inputs": dict(sorted(inputs.items())),
        "upstream": upstream,
        "upstream_files": dict(sorted(upstream_files.items())),
        "reads": {
            "data": declared.data,
            "files": tree_digest(context.root, declared.files, hasher),
            "external": dict(sorted(declared.external.items())),
        },
    }
    return CacheKey(digest=hashlib.sha256(_canonical(material)).hexdigest(), material=material)


def _resolve(context: RunContext, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else context.root / path


def _relative(context: RunContext, path: Path) -> str:
    root = context.root.resolve()
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)


def _seal(body: dict[str, Any]) -> dict[str, str]:
    secret = os.environ.get(HMAC_KEY_ENV, "")
    payload = _canonical(body)
    if secret:
        mac = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
        return {"alg": "hmac-sha256", "digest": mac}
    return {"alg": "sha256", "digest": hashlib.sha256(payload).hexdigest()}


def _seal_ok(body: dict[str, Any], seal: Any) -> bool:
    if not isinstance(seal, dict):
        return False
    expected = _seal(body)
    # With a secret configured, an entry sealed by a bare digest (which anyone can recompute)
    # is not trusted.
    return seal.get("alg") == expected["alg"] and hmac.compare_digest(
        str(seal.get("digest", "")), expected["digest"]
    )


class OutputSnapshot:
    """The files a gate may write (its artifacts folder, its ``reports/<gate>.*`` files), by stat.

    Taken before the gate runs and compared after, so the cache knows which files it wrote
    without trusting timestamps against a clock.
    """

    def __init__(self, spec: GateSpec, context: RunContext) -> None:
        self._spec = spec
        self._context = context
        self.before = self._stat()

    def _candidates(self) -> Iterator[Path]:
        folder = self._context.artifacts_dir
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file())
        reports = self._context.reports_dir
        if reports.is_dir():
            own = self._context.report_path(self._spec.name).name
            yield from (
                p for p in reports.glob(f"{self._spec.name}.*") if p.is_file() and p.name != own
            )

    def _stat(self) -> dict[Path, tuple[int, int, int]]:
        stats = {}
        for path in self._candidates():
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                stats[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        return stats

    def written(self) -> list[Path]:
        """Files that are new or changed since the snapshot."""
        after = self._stat()
        return sorted(p for p, st in after.items() if self.before.get(p) != st)


class GateCache:
    """Look up, verify, restore and store the cached outcomes of one run's gates."""

    def __init__(
        self, context: RunContext, *, read: bool = True, memo: DigestMemo | None = None
    ) -> None:
        self.context = context
        self.read = read
        self.memo = memo
        self.folder = cache_dir(context)

    def key(self, spec: GateSpec, inputs: dict[str, str]) -> CacheKey | None:
        """``spec``'s key in this run; None when it may not be reused or the key cannot be had.

        A key that cannot be computed (an unreadable earlier report) only costs a real run.
        """
        reads = _reads(spec, self.context)
        if reads is None:
            return None
        try:
            return compute_key(spec, self.context, inputs, reads=reads, memo=self.memo)
        except (GatesError, PipelineError, OSError, ValueError, ImportError, AttributeError):
            return None

    def entry_path(self, key: CacheKey) -> Path:
        """``<cache dir>/<key>.json``."""
        return self.folder / f"{key.digest}.json"

    def _object(self, digest: str) -> Path:
        return self.folder / "objects" / digest

    def lookup(self, spec: GateSpec, key: CacheKey) -> tuple[Outcome, str, float] | None:
        """The cached outcome, its origin run and original duration; None on any doubt."""
        if not self.read:
            return None
        try:
            body = self._sealed_body(spec, key)
            if body is None:
                return None
            outcome = _outcome(body["outcome"])
            usable = outcome.status in (Status.PASSED, Status.FAILED) and self._outputs_in_place(
                body["outputs"], outcome.artifacts
            )
            return (
                (outcome, str(body["run_id"]), float(body["duration_seconds"])) if usable else None
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _sealed_body(self, spec: GateSpec, key: CacheKey) -> dict[str, Any] | None:
        document = json.loads(self.entry_path(key).read_text(encoding="utf-8"))
        body, seal = document["body"], document["seal"]
        if not isinstance(body, dict) or not _seal_ok(body, seal):
            return None
        if body["key"] != key.digest or body["format"] != CACHE_FORMAT or body["gate"] != spec.name:
            return None
        return body

    def _outputs_in_place(self, outputs: dict[str, str], artifacts: dict[str, str]) -> bool:
        for rel, digest in outputs.items():
            path = _resolve(self.context, rel)
            if path.is_file() and sha256_file(path) == digest:
                continue
            stored = self._object(digest)
            if not stored.is_file() or sha256_file(stored) != digest:
                return False
            atomic_write_bytes(path, stored.read_bytes())
        for rel, digest in artifacts.items():
            if rel in outputs:
                continue
            path = _resolve(self.context, rel)
            if not path.is_file() or sha256_file(path) != digest:
                return False
        return True

    def store(
        self,
        spec: GateSpec,
        key: CacheKey,
        result: GateResult,
        *,
        written: list[Path],
    ) -> None:
        """Keep a PASSED or FAILED result and the files the gate wrote; never anything else."""
        if result.status not in (Status.PASSED, Status.FAILED) or not reusable(spec, self.context):
            return
        outputs: dict[str, str] = {}
        for path in written:
            digest = sha256_file(path)
            target = self._object(digest)
            if not target.is_file() or sha256_file(target) != digest:
                atomic_write_bytes(target, path.read_bytes())
            outputs[_relative(self.context, path)] = digest
        metrics = {k: v for k, v in result.metrics.items() if k != METRICS_KEY}
        body = {
            "format": CACHE_FORMAT,
            "key": key.digest,
            "material": key.material,
            "gate": spec.name,
            "run_id": result.run_id,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_seconds": round(result.duration_seconds, 3),
            "outcome": {
                "status": result.status.value,
                "summary": result.summary,
                "findings": [f.to_dict() for f in result.findings],
                "metrics": metrics,
                "artifacts": dict(result.artifacts),
            },
            "outputs": outputs,
        }
        atomic_write_json(self.entry_path(key), {"body": body, "seal": _seal(body)})


def _outcome(data: dict[str, Any]) -> Outcome:
    return Outcome(
        status=Status(data["status"]),
        summary=str(data["summary"]),
        findings=tuple(Finding.from_dict(f) for f in data["findings"]),
        metrics=dict(data["metrics"]),
        artifacts={str(k): str(v) for k, v in data["artifacts"].items()},
    )
