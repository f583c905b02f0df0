"""The gate interface: Status, Finding, GateResult, RunContext, Reads and the Gate base class."""

from __future__ import annotations

import enum
import json
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from gates.errors import GateError
from pipeline.config import LoadedPolicy

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "Finding",
    "Gate",
    "GateError",  # defined in gates.errors, offered here beside the interface that raises it
    "GateResult",
    "Location",
    "Outcome",
    "Reads",
    "RunContext",
    "Severity",
    "Status",
]

REPORT_SCHEMA_VERSION = 1
# What reading a report (``json.loads`` then ``GateResult.from_dict``) raises on bad text; a
# report nested past the JSON parser's limit raises RecursionError.
UNPARSABLE_REPORT: tuple[type[Exception], ...] = (
    json.JSONDecodeError,
    UnicodeDecodeError,
    KeyError,
    ValueError,
    TypeError,
    RecursionError,
)


def codepoints(text: str, categories: frozenset[str]) -> str:
    """``text`` with every character of a Unicode category in ``categories`` written as its
    code point (``U+000A``), shown instead of obeyed: untrusted text in a log line
    (``gates.console.one_line``) or a report (``gates.feedback.markdown.visible``)."""
    return "".join(f"U+{ord(c):04X}" if unicodedata.category(c) in categories else c for c in text)


class Status(enum.Enum):
    """A gate's verdict. Only PASSED counts as passing; everything else fails the run."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    ERRORED = "ERRORED"
    SKIPPED = "SKIPPED"

    def __bool__(self) -> bool:
        return self is Status.PASSED


class Severity(enum.Enum):
    """How much a finding weighs: an ``error`` fails its gate, a ``warning`` is reported only."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Location:
    """Where a finding points: a file, and a line or a data row or a column where known."""

    path: str | None = None
    line: int | None = None
    column: str | None = None
    row: int | None = None


@dataclass(frozen=True)
class Finding:
    """One thing a gate found: its stable rule id, what was observed, and the bar it missed."""

    rule: str
    message: str
    severity: Severity = Severity.ERROR
    location: Location = field(default_factory=Location)
    observed: str | None = None
    threshold: str | None = None
    policy_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["severity"] = self.severity.value
        data["location"] = {k: v for k, v in asdict(self.location).items() if v is not None}
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """Inverse of ``to_dict``."""
        return cls(
            rule=str(data["rule"]),
            message=str(data["message"]),
            severity=Severity(data.get("severity", "error")),
            location=Location(**data.get("location", {})),
            observed=data.get("observed"),
            threshold=data.get("threshold"),
            policy_key=data.get("policy_key"),
        )


@dataclass(frozen=True)
class GateResult:
    """What one gate decided in one run, as written to ``reports/<gate>.json``."""

    gate: str
    status: Status
    summary: str
    run_id: str
    inputs: dict[str, str]
    findings: tuple[Finding, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    started: str = ""
    duration_seconds: float = 0.0
    schema_version: int = REPORT_SCHEMA_VERSION

    def __bool__(self) -> bool:
        return bool(self.status)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings that fail the gate."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema_version": self.schema_version,
            "gate": self.gate,
            "status": self.status.value,
            "summary": self.summary,
            "run_id": self.run_id,
            "inputs": dict(self.inputs),
            "findings": [f.to_dict() for f in self.findings],
            "metrics": self.metrics,
            "artifacts": dict(self.artifacts),
            "started": self.started,
            "duration_seconds": round(self.duration_seconds, 3),
        }

    def to_json(self) -> str:
        """The report file's text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """Parse a report; raises KeyError, ValueError or TypeError when it is malformed."""
        if data["schema_version"] != REPORT_SCHEMA_VERSION:
            msg = f"schema_version {data['schema_version']!r}, expected {REPORT_SCHEMA_VERSION}"
            raise ValueError(msg)
        return cls(
            gate=str(data["gate"]),
            status=Status(data["status"]),
            summary=str(data["summary"]),
            run_id=str(data["run_id"]),
            inputs={str(k): str(v) for k, v in data["inputs"].items()},
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
            metrics=dict(data["metrics"]),
            artifacts={str(k): str(v) for k, v in data["artifacts"].items()},
            started=str(data["started"]),
            duration_seconds=float(data["duration_seconds"]),
        )


@dataclass(frozen=True)
class Outcome:
    """What ``Gate.run`` returns; the runner stamps it with run id, inputs and timing."""

    status: Status
    summary: str
    findings: tuple[Finding, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def judge(
        cls,
        findings: list[Finding] | tuple[Finding, ...],
        *,
        passed: str,
        failed: str,
        metrics: dict[str, Any] | None = None,
        artifacts: dict[str, str] | None = None,
    ) -> Outcome:
        """PASSED when no finding is an error, FAILED otherwise."""
        bad = [f for f in findings if f.severity is Severity.ERROR]
        return cls(
            status=Status.FAILED if bad else Status.PASSED,
            summary=failed.format(n=len(bad), first=bad[0].message if bad else "")
            if bad
            else passed,
            findings=tuple(findings),
            metrics=metrics or {},
            artifacts=artifacts or {},
        )


@dataclass(frozen=True)
class RunContext:
    """Everything a gate may read: the policy, the project root, the run id and its folders."""

    policy: LoadedPolicy
    run_id: str
    reports_dir: Path

    @property
    def root(self) -> Path:
        """The project folder: where policy.toml lives."""
        return self.policy.base_dir

    @cached_property
    def artifacts_dir(self) -> Path:
        """Where the model and its manifest are written."""
        return self.policy.resolve(self.policy.policy.run.artifacts_dir)

    def report_path(self, gate: str) -> Path:
        """``reports/<gate>.json``."""
        return self.reports_dir / f"{gate}.json"

    def read_report(self, gate: str) -> GateResult:
        """Read another gate's report of this run; any problem is a GateError."""
        path = self.report_path(gate)
        try:
            result = GateResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            msg = f"{path}: report of gate '{gate}' not found"
            raise GateError(msg) from None
        except UNPARSABLE_REPORT as err:
            msg = f"{path}: report of gate '{gate}' is unparsable ({type(err).__name__}: {err})"
            raise GateError(msg) from err
        if result.run_id != self.run_id:
            msg = (
                f"{path}: report of gate '{gate}' belongs to run {result.run_id}, not {self.run_id}"
            )
            raise GateError(msg)
        return result


@dataclass(frozen=True)
class Reads:
    """What a gate's outcome depends on, declared for the gate cache (``gates/cache.py``).

    The cache always keys a gate on the code of both packages and every source or config file
    of the project, the installed distributions, the run's input digests and the earlier
    gates' reports; a gate states here only what it adds to that or leaves out of it. The
    cache turns this into key material (it owns keys, digests and the memo); a gate computes
    no digest of its own.

    - ``data``: False for a gate that reads neither the data file, its lock nor its checksums
      (the supply-chain gates): their digests then stay out of its key, so approving a new data
      snapshot re-runs the data gate and what follows, not ruff, bandit and pip-audit.
    - ``files``: files or folders (relative to the project, or absolute) of which every byte
      counts, whatever the suffix; one that does not exist counts as absent.
    - ``external``: identifiers of what no file holds (where a database lives, today's date).
    - ``reusable``: False when the outcome depends on something no digest captures (a live
      service, the commit checked out): the gate then always runs.
    """

    data: bool = True
    files: tuple[str | Path, ...] = ()
    external: Mapping[str, str] = field(default_factory=dict)
    reusable: bool = True


class Gate(ABC):
    """One step of the chain: a stable name, what it reads, and ``run(context) -> Outcome``.

    A gate raises GateError (or anything else) when it cannot judge; the runner turns that
    into an ERRORED result. It never returns PASSED without having checked.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def reads(self, context: RunContext) -> Reads:
        """What this gate reads beyond code, packages, inputs and earlier reports (default: the data)."""
        del context
        return Reads()

    @abstractmethod
    def run(self, context: RunContext) -> Outcome:
        """Check what this gate checks and return the outcome."""
