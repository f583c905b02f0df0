"""How a run shows progress: rich on a terminal, plain lines in CI, JSON log lines on request.

``GATES_LOG_FORMAT=json`` (or ``--log-format json``) selects structured logs; ``CI`` set or a
stream that is not a terminal selects plain lines; otherwise a rich spinner and coloured lines.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TextIO

from gates.base import GateResult, Severity, Status, codepoints
from gates.registry import NAMES, GateSpec

LOG_FORMAT_ENV = "GATES_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
# Unicode categories a log line shows as U+XXXX: control, format, line and paragraph separators.
_UNSHOWN = frozenset({"Cc", "Cf", "Zl", "Zp"})
# How many findings the console shows per gate; the report keeps all of them.
_SHOWN_FINDINGS = 8
_MARKS = {
    Status.PASSED: "ok  ",
    Status.FAILED: "FAIL",
    Status.ERRORED: "ERR ",
    Status.SKIPPED: "skip",
}


def one_line(text: str) -> str:
    """Untrusted text for a log line: control characters (a new line, a carriage return, an
    escape sequence's ESC, NUL), Unicode format characters and line or paragraph separators
    shown as ``U+000A`` instead of obeyed. A data file's column name (a quoted CSV header may
    hold a new line) is quoted in findings: raw, it wrote lines of its own into the CI log,
    ``[ok  ] data PASSED`` or a GitHub workflow command (``::error::``, ``::add-mask::``) among
    them (red team 17)."""
    return codepoints(text, _UNSHOWN)


def print_result(result: GateResult, *, out: TextIO) -> None:
    """One line per gate, then its error findings indented beneath it (``one_line`` each)."""
    out.write(
        f"[{_MARKS[result.status]}] {result.gate:<10} {result.status.value:<8} "
        f"{result.duration_seconds:6.2f}s  {one_line(result.summary)}\n"
    )
    shown = [f for f in result.findings if f.severity is Severity.ERROR][:_SHOWN_FINDINGS]
    for finding in shown:
        where = f" ({one_line(finding.policy_key)})" if finding.policy_key else ""
        out.write(f"         {finding.rule} {one_line(finding.message)}{where}\n")
    hidden = len(result.errors) - len(shown)
    if hidden > 0:
        out.write(f"         ... {hidden} more in {result.gate}.json\n")
    out.flush()


class Display(Protocol):
    """What the runner tells about a run as it goes."""

    def start(self, spec: GateSpec) -> None:
        """A gate is about to run."""

    def finish(self, result: GateResult) -> None:
        """A gate finished; its report is on disk."""

    def close(self) -> None:
        """The run is over (stop spinners, flush)."""


class PlainDisplay:
    """One line per gate and its error findings: what CI logs and pipes get."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def start(self, spec: GateSpec) -> None:
        """Nothing: a plain log shows finished gates only."""

    def finish(self, result: GateResult) -> None:
        """Print the result line and its findings."""
        print_result(result, out=self.out)

    def close(self) -> None:
        """Flush."""
        self.out.flush()


class JsonLogDisplay:
    """One JSON object per line per event, for log shippers (Loki, Elasticsearch, Cloud Logging)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _emit(self, event: str, level: str, **fields: Any) -> None:
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "logger": "gates",
            "event": event,
            **fields,
        }
        self.out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self.out.flush()

    def start(self, spec: GateSpec) -> None:
        """Log ``gate.start``."""
        self._emit("gate.start", "info", gate=spec.name)

    def finish(self, result: GateResult) -> None:
        """Log ``gate.finish`` with the verdict, time and error findings."""
        level = "info" if result.status is Status.PASSED else "error"
        self._emit(
            "gate.finish",
            level,
            gate=result.gate,
            run_id=result.run_id,
            status=result.status.value,
            duration_seconds=round(result.duration_seconds, 3),
            summary=result.summary,
            findings=[f.to_dict() for f in result.findings if f.severity is Severity.ERROR][:20],
        )

    def close(self) -> None:
        """Nothing to stop."""


class RichDisplay:
    """A spinner while a gate runs and a coloured line when it ends (terminal only)."""

    _STYLES: ClassVar[dict[Status, tuple[str, str]]] = {
        Status.PASSED: ("✔", "green"),
        Status.FAILED: ("✘", "red"),
        Status.ERRORED: ("!", "magenta"),
        Status.SKIPPED: ("-", "dim"),
    }

    def __init__(self, out: TextIO, *, total: int) -> None:
        from rich.console import Console  # noqa: PLC0415 - only on a terminal

        self.console = Console(file=out, highlight=False)
        self.total = total
        self.done = 0
        self.status: Any = None

    def start(self, spec: GateSpec) -> None:
        """Show a spinner naming the gate, its place in the chain and the time it has taken.

        The place is the gate's in the registry's chain (``[5/9] train``), also when this
        process runs one gate of it (one nox session per gate); the time ticks with the spinner.
        """
        from rich.markup import escape  # noqa: PLC0415

        if spec.name in NAMES:
            place = f"[{NAMES.index(spec.name) + 1}/{len(NAMES)}]"
        else:
            place = f"[{self.done + 1}/{self.total}]"
        label = f"[dim]{escape(place)}[/] [bold]{escape(spec.name)}[/]"
        self.status = self.console.status(_Ticking(label, escape(spec.summary)), spinner="dots")
        self.status.start()

    def finish(self, result: GateResult) -> None:
        """Stop the spinner, print the verdict line and up to eight error findings."""
        from rich.markup import escape  # noqa: PLC0415

        if self.status is not None:
            self.status.stop()
        self.done += 1
        mark, style = self._STYLES[result.status]
        self.console.print(
            f"[{style}]{mark} {result.gate:<10} {result.status.value:<8}[/] "
            f"[dim]{result.duration_seconds:6.2f}s[/]  {escape(one_line(result.summary))}"
        )
        for finding in result.errors[:8]:
            where = (
                f" [dim]({escape(one_line(finding.policy_key))})[/]" if finding.policy_key else ""
            )
            message = escape(one_line(finding.message))
            self.console.print(f"    [{style}]{finding.rule}[/] {message}{where}")
        if len(result.errors) > 8:
            self.console.print(
                f"    [dim]... {len(result.errors) - 8} more in {result.gate}.json[/]"
            )

    def close(self) -> None:
        """Stop a spinner left running by an interrupted gate."""
        if self.status is not None:
            self.status.stop()


class _Ticking:
    """A spinner's text whose elapsed time is computed each time rich draws it."""

    def __init__(self, label: str, summary: str) -> None:
        self.label = label
        self.summary = summary
        self.started = time.monotonic()

    def __rich__(self) -> Any:
        from rich.text import Text  # noqa: PLC0415

        elapsed = time.monotonic() - self.started
        return Text.from_markup(f"{self.label} {elapsed:.1f} s  {self.summary}")


def log_format(requested: str | None) -> str:
    """The requested format, else ``GATES_LOG_FORMAT``, else text; anything else is an error."""
    value = (requested or os.environ.get(LOG_FORMAT_ENV, "") or "text").strip().lower()
    if value not in LOG_FORMATS:
        msg = f"{LOG_FORMAT_ENV}={value!r}: expected one of {', '.join(LOG_FORMATS)}"
        raise ValueError(msg)
    return value


def choose(out: TextIO, *, fmt: str, total: int) -> Display:
    """JSON logs when asked; rich on an interactive terminal outside CI; plain lines otherwise."""
    if fmt == "json":
        return JsonLogDisplay(out)
    interactive = hasattr(out, "isatty") and out.isatty()
    if interactive and not os.environ.get("CI") and os.environ.get("TERM") != "dumb":
        return RichDisplay(out, total=total)
    return PlainDisplay(out)
