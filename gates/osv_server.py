"""A local OSV advisory directory, served on loopback with the one OSV API call pip-audit makes.

pip-audit's ``--osv-url`` service POSTs ``{"package": {"name", "ecosystem"}, "version"}`` and
reads ``{"vulns": [OSV record, ...]}`` (or ``{}`` when none), exactly like api.osv.dev's
``/v1/query`` (pip_audit/_service/osv.py). The directory has the PyPA advisory-database
layout: ``vulns/<package>/<ID>.yaml``, one OSV record a file. Whether a record affects the
version asked about is decided by ``gates.osv_eval`` (the OSV schema's evaluation, fail closed).
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

from packaging.utils import NormalizedName, canonicalize_name

from gates.errors import GatesError
from gates.osv_eval import Advisory, RecordError, compile_record, parse_version

QUERY_PATH = "/v1/query"
# Requests are a few hundred bytes; anything far larger is not pip-audit.
_MAX_BODY = 64 * 1024
_MODIFIED = re.compile(r"^modified:\s*['\"]?([0-9T:.\-+Z]+)['\"]?\s*$", re.MULTILINE)


class AdvisoryDbError(GatesError):
    """The advisory directory is missing, empty, or holds a record that does not parse."""


class BadQueryError(GatesError):
    """A query the server cannot answer truthfully (its version is not a PEP 440 version)."""


@dataclass(frozen=True)
class _Entry:
    record: dict[str, Any]  # as read, served to pip-audit
    advisory: Advisory  # as evaluated


def _served(entry: _Entry) -> dict[str, Any]:
    """The record as pip-audit gets it.

    A record with a range that cannot be evaluated is reported for every version; pip-audit
    parses every ECOSYSTEM ``fixed`` value with ``packaging`` and would crash on the one that
    does not parse, so the served copy leaves those out and its summary says why it is reported.
    """
    reasons = entry.advisory.unevaluable
    if not reasons:
        return entry.record
    served = dict(entry.record)
    served["affected"] = [
        {
            **affected,
            "ranges": [
                {
                    **rng,
                    "events": [
                        e
                        for e in rng["events"]
                        if rng["type"] != "ECOSYSTEM"
                        or "fixed" not in e
                        or parse_version(e["fixed"]) is not None
                    ],
                }
                for rng in affected.get("ranges") or []
            ],
        }
        for affected in entry.record.get("affected") or []
    ]
    original = str(entry.record.get("summary") or entry.record.get("details") or "")
    served["summary"] = (
        f"[offline OSV evaluator: {'; '.join(reasons)}; reported for every version] {original}"
    )
    return served


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
        self._cache: dict[str, list[_Entry]] = {}
        self._lock = threading.Lock()
        # What the server refused to answer (400/500), for the gate's message: pip-audit only
        # reports the status code.
        self.errors: list[str] = []

    def _entries(self, canonical: NormalizedName) -> list[_Entry]:
        import yaml  # noqa: PLC0415 - only the audit gate needs PyYAML (for its error type)

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
                    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                        msg = f"{path}: not an OSV record (no 'id')"
                        raise AdvisoryDbError(msg)
                    try:
                        advisory = compile_record(record)
                    except RecordError as err:
                        raise AdvisoryDbError(f"{path}: {err}") from None
                    loaded.append(_Entry(record, advisory))
                self._cache[canonical] = loaded
            return self._cache[canonical]

    def records(self, name: str) -> list[dict[str, Any]]:
        """Every OSV record filed under the package, as read; a bad file raises."""
        return [entry.record for entry in self._entries(canonicalize_name(name))]

    def query(self, name: str, version: str) -> list[dict[str, Any]]:
        """The records affecting ``name`` at ``version`` (withdrawn ones never do).

        A version that is not PEP 440 cannot be placed in any range: ``BadQueryError``, never
        "nothing known" (pip-audit only ever asks about versions it parsed).
        """
        canonical = canonicalize_name(name)
        parsed = parse_version(version)
        if parsed is None:
            msg = f"version {version!r} is not a PEP 440 version; cannot evaluate OSV ranges"
            raise BadQueryError(msg)
        return [
            _served(entry)
            for entry in self._entries(canonical)
            if entry.advisory.affects(canonical, parsed)
        ]

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
        except BadQueryError as err:
            self.db.errors.append(f"{name}=={version}: {err}")
            self._send(400, {"error": f"bad query: {err}"})
            return
        except AdvisoryDbError as err:
            # A 5xx makes pip-audit fail (ServiceError): never answer "no vulns" on a bad record.
            self.db.errors.append(str(err))
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
