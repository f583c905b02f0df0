"""``reports/summary.md``: a pull-request comment / job summary, escaped and under 1 MiB."""

from __future__ import annotations

import re
from typing import Any

from gates.base import Severity, codepoints
from gates.feedback.bundle import ReportBundle

# GitHub rejects comments over 65536 characters and job summaries over 1 MiB; 1 MiB is the
# hard cap here and reasons are clipped so that a summary stays far below it.
MAX_BYTES = 1024 * 1024
_REASON = 300
_ICONS = {
    "PASSED": "✅",
    "FAILED": "❌",
    "ERRORED": "💥",
    "SKIPPED": "⏭️",
    "NOT_RUN": "⏸️",
    "INCOMPLETE": "⏸️",
}
# Markdown and inline HTML that could change the rendering or inject links/mentions.
# Unicode format characters (category Cf): bidi overrides and isolates, zero-width ones.
_FORMAT = frozenset({"Cf"})
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~@&])")


def escape(text: str, *, limit: int = _REASON) -> str:
    """One line of untrusted text, safe inside a Markdown table cell or list item; Unicode
    format characters (bidi overrides and isolates, zero-width ones) shown as ``U+202E``: they
    reorder or hide what the reviewer reads ("Trojan Source"; red team 13)."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", visible(flat))


def visible(text: str) -> str:
    """Unicode format characters (category Cf) written as ``U+XXXX`` (also used by
    ``report.html``)."""
    return codepoints(text, _FORMAT)


def code(text: str) -> str:
    """Untrusted text inside a code span: backslashes are literal there, so drop backticks
    instead; format characters shown as ``U+XXXX``, as ``escape`` does (a column name in a
    finding's policy key; red team 14)."""
    return "`" + visible(" ".join(text.replace("`", "'").split())[:_REASON]) + "`"


def _fmt(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def render(bundle: ReportBundle) -> str:
    """The summary's Markdown text, capped at ``MAX_BYTES``."""
    verdict = bundle.view.verdict
    lines = [
        f"## {_ICONS.get(verdict, '')} Pipeline verdict: **{escape(verdict)}**",
        "",
        f"Run {code(bundle.view.run_id)} · commit {code(bundle.commit[:12])} · "
        f"history head {code(bundle.head[:12])}",
        "",
        "| gate | verdict | time | reason |",
        "|---|---|---:|---|",
    ]
    for gate in bundle.view.gates:
        result = gate.result
        if result is None:
            lines.append(f"| {escape(gate.name)} | ⏸️ NOT RUN | - | {escape(gate.problem)} |")
            continue
        red = result.status.value != "PASSED"
        reason = escape(result.summary) if red else ""
        if red and result.errors:
            first = result.errors[0]
            where = f" ({first.policy_key})" if first.policy_key else ""
            reason = escape(f"{first.rule} {first.message}{where}")
        lines.append(
            f"| {escape(gate.name)} | {_ICONS[result.status.value]} {result.status.value} | "
            f"{result.duration_seconds:.1f}s | {reason} |"
        )
    warnings = [
        (result.gate, finding)
        for result in bundle.results()
        for finding in result.findings
        if finding.severity is Severity.WARNING
    ]
    if warnings:
        lines += ["", f"### ⚠️ Warnings ({len(warnings)})", ""]
        for source, finding in warnings:
            key = f" ({code(finding.policy_key)})" if finding.policy_key else ""
            lines.append(f"- {escape(source)}: {code(finding.rule)} {escape(finding.message)}{key}")
    scores = [d for d in bundle.deltas if d.metric.endswith((".mean", ".holdout"))]
    if scores:
        window = "recent runs"
        lines += [
            "",
            "### Key metrics",
            "",
            f"| metric | this run | champion | Δ champion | {window} | Δ recent |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for delta in scores:
            lines.append(
                f"| {escape(delta.metric)} | {_fmt(delta.value)} | {_fmt(delta.champion)} | "
                f"{_fmt(delta.vs_champion, signed=True)} | {_fmt(delta.recent)} | "
                f"{_fmt(delta.vs_recent, signed=True)} |"
            )
        if bundle.champion is None:
            lines += ["", "_No champion recorded yet: deltas against the champion are blank._"]
    risk = bundle.view.result("risk")
    if risk is not None:
        lines += risk_lines(risk.metrics)
    if bundle.findings:
        lines += ["", "### Trends and feedback", ""]
        for finding in bundle.findings:
            mark = {Severity.ERROR: "❌", Severity.NOTE: "📝"}.get(finding.severity, "⚠️")
            lines.append(f"- {mark} {code(finding.rule)} {escape(finding.message)}")
    lines += [
        "",
        "Reports: `report.html` (plots), `junit.xml`, `merged.sarif`, `gl-code-quality.json`, "
        "`metrics.prom`.",
        "",
    ]
    return cap("\n".join(lines))


def risk_lines(metrics: dict[str, Any]) -> list[str]:
    """The risk gate's figures: robust accuracy per norm and epsilon, membership exposure."""
    robust = [r for r in metrics.get("robustness", []) if isinstance(r, dict)]
    privacy = [a for a in metrics.get("privacy", []) if isinstance(a, dict)]
    if not robust and not privacy:
        return []
    lines = ["", "### Model risk", ""]
    if robust:
        lines += ["| norm | epsilon | robust accuracy | method |", "|---|---:|---:|---|"]
        lines += [
            f"| {escape(str(r.get('norm')))} | {escape(str(r.get('epsilon')))} | "
            f"{_fmt(_number(r.get('accuracy')))} | {escape(str(r.get('method')))} |"
            for r in robust
        ]
    if privacy:
        lines += [
            "",
            "| membership attack | AUC | TPR at 0.1% FPR | TPR at 1% FPR |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {escape(str(a.get('attack')))} | {_fmt(_number(a.get('auc')))} | "
            f"{_fmt(_number(a.get('tpr_at_0.1pct_fpr')))} | "
            f"{_fmt(_number(a.get('tpr_at_1pct_fpr')))} |"
            for a in privacy
        ]
    return lines


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cap(text: str, *, limit: int = MAX_BYTES) -> str:
    """Cut ``text`` at a line boundary so that its UTF-8 encoding fits in ``limit`` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    note = "\n\n_Summary truncated at 1 MiB; see report.html and the JSON reports._\n"
    room = limit - len(note.encode("utf-8"))
    cut = data[:room].decode("utf-8", errors="ignore")
    return cut[: cut.rfind("\n")] + note
