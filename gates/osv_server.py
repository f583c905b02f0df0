"""A local OSV advisory directory, served on loopback with the one OSV API call pip-audit makes.

pip-audit's ``--osv-url`` service POSTs ``{"package": {"name", "ecosystem"}, "version"}`` and
reads ``{"vulns": [OSV record, ...]}`` (or ``{}`` when none), exactly like api.osv.dev's
``/v1/query`` (pip_audit/_service/osv.py). The directory has the PyPA advisory-database
layout: ``vulns/<package>/<ID>.yaml``, one OSV record a file.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pipeline.errors import PipelineError

QUERY_PATH = "/v1/query"
# Requests are a few hundred bytes; anything far larger is not pip-audit.
_MAX_BODY = 64 * 1024
_MODIFIED = re.compile(r"^modified:\s*['\"]?([0-9T:.\-+Z]+)['\"]?\s*$", re.MULTILINE)


class AdvisoryDbError(PipelineError):
    """The advisory directory is missing, empty, or holds a record that does not parse."""


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _event_key(event: dict[str, Any]) -> tuple[int, Version]:
    (kind, value), *_ = event.items()
    if kind == "introduced" and str(value) == "0":
        return (0, Version("0"))
    parsed = _version(str(value))
    if parsed is None:
        raise InvalidVersion(str(value))
    return (1, parsed)


def range_affects(version: Version, range_: dict[str, Any]) -> bool:
    """Whether an ECOSYSTEM or SEMVER range affects ``version`` (OSV's evaluation algorithm).

    Events are sorted by version; ``introduced`` opens an affected interval, ``fixed`` closes
    it at that version (exclusive), ``last_affected`` closes it after that version. GIT ranges
    cannot be evaluated against a PyPI version and affect nothing here (the record's
    ``versions`` list covers them). A range with an unparsable version affects nothing.
    """
    if range_.get("type") not in ("ECOSYSTEM", "SEMVER"):
        return False
    events = [e for e in range_.get("events", []) if isinstance(e, dict) and e]
    try:
        ordered = sorted(events, key=_event_key)
    except InvalidVersion:
        return False
    affected = False
    for event in ordered:
        kind, value = next(iter(event.items()))
        bound = Version("0") if kind == "introduced" and str(value) == "0" else Version(str(value))
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind == "fixed" and version >= bound) or (
            kind == "last_affected" and version > bound
        ):
            affected = False
    return affected


def record_affects(record: dict[str, Any], name: str, version: Version) -> bool:
    """Whether an OSV record affects PyPI package ``name`` (canonical) at ``version``."""
    for affected in record.get("affected", []) or []:
        package = affected.get("package") or {}
        if package.get("ecosystem") != "PyPI":
            continue
        if canonicalize_name(str(package.get("name", ""))) != name:
            continue
        listed = affected.get("versions") or []
        if any(_version(str(v)) == version for v in listed) or str(version) in map(str, listed):
            return True
        if any(range_affects(version, r) for r in affected.get("ranges", []) or []):
            return True
    return False


@dataclass(frozen=True)
class Snapshot:
    """What a local advisory directory holds: record count and the newest ``modified``."""

    records: int
    newest_modified: datetime | None


def _parse_yaml(text: str) -> Any:
    """Parse YAML with BaseLoader: only str/list/dict are built, and every scalar stays a string
    (an unquoted version like ``1.10`` must not become the float 1.1)."""
    import yaml  # noqa: PLC0415 - only the audit gate needs PyYAML

    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class AdvisoryDb:
    """A directory of OSV records in the PyPA advisory-database layout, read lazily per package."""

    def __init__(self, root: Path) -> None:
        self.root = root
        vulns = root / "vulns"
        if not vulns.is_dir():
            msg = f"{root}: not an advisory database (expected a vulns/<package>/*.yaml tree)"
            raise AdvisoryDbError(msg)
        self._dirs = {canonicalize_name(d.name): d for d in vulns.iterdir() if d.is_dir()}
        if not self._dirs:
            msg = f"{vulns}: holds no package folders; an empty snapshot cannot vouch for anything"
            raise AdvisoryDbError(msg)
        self._cache: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def records(self, name: str) -> list[dict[str, Any]]:
        """Every OSV record filed under the package (canonical name); a bad file raises."""
        import yaml  # noqa: PLC0415 - only the audit gate needs PyYAML (for its error type)

        canonical = canonicalize_name(name)
        with self._lock:
            if canonical not in self._cache:
                folder = self._dirs.get(canonical)
                loaded = []
                for path in sorted(folder.glob("*.yaml")) if folder else []:
                    try:
                        record = _parse_yaml(path.read_text(encoding="utf-8"))
                    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
                        msg = f"{path}: unreadable OSV record ({type(err).__name__}: {err})"
                        raise AdvisoryDbError(msg) from None
                    if not isinstance(record, dict) or "id" not in record:
                        msg = f"{path}: not an OSV record (no 'id')"
                        raise AdvisoryDbError(msg)
                    loaded.append(record)
                self._cache[canonical] = loaded
            return self._cache[canonical]

    def query(self, name: str, version: str) -> list[dict[str, Any]]:
        """The records affecting ``name`` at ``version``; an unparsable version matches exactly."""
        canonical = canonicalize_name(name)
        parsed = _version(version)
        found = []
        for record in self.records(canonical):
            if parsed is not None and record_affects(record, canonical, parsed):
                found.append(record)
        return found

    def snapshot(self) -> Snapshot:
        """Count the records and find the newest ``modified`` (a regex: no YAML parse needed)."""
        count, newest = 0, None
        for folder in self._dirs.values():
            for path in folder.glob("*.yaml"):
                count += 1
                match = _MODIFIED.search(path.read_text(encoding="utf-8", errors="replace"))
                if match is None:
                    continue
                try:
                    stamp = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
                except ValueError:
                    continue
                stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
                newest = stamp if newest is None or stamp > newest else newest
        return Snapshot(records=count, newest_modified=newest)


class _Handler(BaseHTTPRequestHandler):
    server_version = "gates-osv/1"
    db: AdvisoryDb  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the gate reports what matters."""

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """Answer one OSV ``/v1/query``."""
        if self.path.split("?")[0] != QUERY_PATH:
            self._send(404, {"error": f"only POST {QUERY_PATH} is served"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= _MAX_BODY:
                raise ValueError(f"body length {length}")
            query = json.loads(self.rfile.read(length))
            package = query["package"]
            name, ecosystem, version = package["name"], package["ecosystem"], query["version"]
            if ecosystem != "PyPI" or not isinstance(name, str) or not isinstance(version, str):
                raise ValueError("expected a PyPI package name and version")
        except (ValueError, KeyError, TypeError) as err:
            self._send(400, {"error": f"bad query: {err}"})
            return
        try:
            vulns = self.db.query(name, version)
        except AdvisoryDbError as err:
            # A 5xx makes pip-audit fail (ServiceError): never answer "no vulns" on a bad record.
            self._send(500, {"error": str(err)})
            return
        self._send(200, {"vulns": vulns} if vulns else {})


@contextmanager
def serve(db: AdvisoryDb) -> Iterator[str]:
    """Serve ``db`` on 127.0.0.1 at an ephemeral port; yields the query URL; always stops."""
    handler = type("BoundHandler", (_Handler,), {"db": db})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="osv-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}{QUERY_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
