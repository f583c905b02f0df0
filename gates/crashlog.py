"""A gate that crashes: its traceback goes to ``reports/<gate>.log``, its report says where.

The console shows one line (the exception, the line of the project's code it came from, and
the log's path); the whole traceback is written atomically beside the gate's report and listed
among the report's artifacts with its SHA-256, so the verdict, the history and the feedback
stage see it. Writing the log is best effort: when it fails, the gate is still ERRORED and
the finding says why the traceback is missing.
"""

from __future__ import annotations

import traceback
from datetime import UTC, datetime
from pathlib import Path

from gates.base import Finding, Location, Outcome, RunContext, Status
from pipeline.fsio import atomic_write_bytes, sha256_bytes

RULE = "GATE000"


def log_path(context: RunContext, gate: str) -> Path:
    """``reports/<gate>.log``."""
    return context.reports_dir / f"{gate}.log"


def crashed(gate: str, context: RunContext, error: BaseException) -> Outcome:
    """The ERRORED outcome of ``gate`` that raised ``error``; never raises itself."""
    what = f"{type(error).__name__}: {_text(error)}"
    site = _site(error, context.root)
    log = log_path(context, gate)
    shown = _shown(log, context.root)
    artifacts: dict[str, str] = {}
    try:
        data = _render(gate, context, error).encode("utf-8", errors="replace")
        atomic_write_bytes(log, data)
        artifacts[shown] = sha256_bytes(data)
        note = f"traceback in {shown}"
    except Exception as err:  # a full disk, a folder in the log's place: still ERRORED
        note = f"could not write the traceback to {shown}: {type(err).__name__}: {_text(err)}"
    at = f" at {site.path}:{site.line}" if site.path else ""
    message = f"crashed: {what}{at} ({note})"
    return Outcome(
        status=Status.ERRORED,
        summary=f"could not run: {message}",
        findings=(
            Finding(rule=RULE, message=message, location=site if site.path else Location(shown)),
        ),
        artifacts=artifacts,
    )


def _render(gate: str, context: RunContext, error: BaseException) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    header = f"gate {gate} crashed in run {context.run_id} at {stamp}\n\n"
    return header + "".join(traceback.format_exception(error))


def _site(error: BaseException, root: Path) -> Location:
    """The innermost frame in the project's own code (else the innermost frame at all)."""
    try:
        frames = traceback.extract_tb(error.__traceback__)
        top = root.resolve()
        for frame in reversed(frames):
            path = Path(frame.filename)
            if path.is_absolute() and path.resolve().is_relative_to(top):
                return Location(path=path.resolve().relative_to(top).as_posix(), line=frame.lineno)
    except (OSError, RuntimeError, ValueError):  # a location is a courtesy, never a new crash
        return Location()
    return Location(path=frames[-1].filename, line=frames[-1].lineno) if frames else Location()


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (OSError, RuntimeError, ValueError):
        return str(path)


def _text(error: BaseException) -> str:
    """``str(error)``, one line, bounded; an exception whose ``__str__`` raises still prints."""
    try:
        text = str(error)
    except Exception:
        text = "<unprintable>"
    return " ".join(text.split())[:500]
