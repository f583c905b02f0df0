"""``reports/report.html``: one page with inline SVG plots, no scripts, no inline styles.

Plots: CV fold scores per metric with the policy's thresholds drawn in, the holdout confusion
matrix and ROC curve (from ``reports/cv.holdout.csv``), CV means, flag rates and gate durations
over the recorded runs (failed runs marked), and flagged rows per check; every chart has labelled
axes and a legend. A FAILED run lists each failing rule with its policy key first; warnings of
any gate (an old advisory snapshot, a development signing key) have a section of their own.

The only style sheet is ``report.css`` beside the page (``stylesheet()``): no ``style``
attribute, ``<style>`` element, script or event handler, so the page reads the same under
Jenkins' default Content-Security-Policy (``style-src 'self'``) as anywhere else, and its own
policy forbids every other load.
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gates.base import Finding, Severity
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import flagged_rows
from gates.feedback.markdown import visible
from gates.sarif_log import policy_line

HOLDOUT_FILE = "cv.holdout.csv"
CSS_FILE = "report.css"
_W, _H, _PAD, _BOTTOM = 560, 290, 56, 58
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_FAILED = "#c62828"
_STATUSES = ("PASSED", "FAILED", "ERRORED", "SKIPPED", "NOT_RUN", "INCOMPLETE")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px}
.badge{color:#fff;padding:2px 8px;border-radius:4px;font-weight:600;font-size:12px;background:#555}
.s-PASSED{background:#2e7d32}.s-FAILED{background:#c62828}.s-ERRORED{background:#6a1b9a}
.s-SKIPPED{background:#757575}.s-NOT_RUN,.s-INCOMPLETE{background:#9e9e9e}
.grid{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;border:1px solid #eee;padding:8px}
figcaption{font-size:13px;color:#555}svg text{font-size:11px;fill:#333}.muted{color:#777}
svg text.axis{font-size:12px;fill:#444;font-weight:600}svg text.light{fill:#fff}
ul.legend{list-style:none;padding:0;margin:4px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
ul.legend svg{vertical-align:middle;margin-right:4px}
#failures td:first-child,#warnings td:first-child{white-space:nowrap}
.warn{background:#fff8e1}
"""


def escape(text: str) -> str:
    """Untrusted text for the page: HTML-escaped, and Unicode format characters (bidi
    overrides and isolates, zero-width ones) shown as ``U+202E`` instead of obeyed, as in
    ``summary.md`` (trust-model rows 85 and 89)."""
    return html.escape(visible(text))


def stylesheet() -> str:
    """The text of ``report.css``, written beside ``report.html``."""
    return _CSS.lstrip()


def _badge(status: str) -> str:
    known = status if status in _STATUSES else "other"
    return f'<span class="badge s-{known}">{escape(status)}</span>'


def _frame(
    title: str,
    body: str,
    *,
    width: int = _W,
    height: int = _H,
    legend: Sequence[tuple[str, str, str]] = (),
) -> str:
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>{body}</svg>'
        f"{_legend(legend)}<figcaption>{escape(title)}</figcaption></figure>"
    )


def _legend(entries: Sequence[tuple[str, str, str]]) -> str:
    """An HTML legend under a chart: (name, colour, kind) with kind box, line, dash or cross."""
    if not entries:
        return ""
    marks = {
        "box": '<rect x="1" y="1" width="10" height="10" fill="{c}"/>',
        "line": '<line x1="0" y1="6" x2="14" y2="6" stroke="{c}" stroke-width="3"/>',
        "dash": '<line x1="0" y1="6" x2="14" y2="6" stroke="{c}" stroke-width="2" '
        'stroke-dasharray="3 2"/>',
        "cross": '<path d="M2 2 L10 10 M10 2 L2 10" stroke="{c}" stroke-width="2"/>',
    }
    items = "".join(
        f'<li><svg xmlns="http://www.w3.org/2000/svg" width="14" height="12" aria-hidden="true">'
        f"{marks[kind].format(c=color)}</svg>{escape(name)}</li>"
        for name, color, kind in entries
    )
    return f'<ul class="legend">{items}</ul>'


def _axes(lo: float, hi: float, *, x_label: str, y_label: str, ticks: int = 5) -> str:
    bottom = _H - _BOTTOM
    parts = [
        f'<line x1="{_PAD}" y1="{bottom}" x2="{_W - 10}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{_PAD}" y1="10" x2="{_PAD}" y2="{bottom}" stroke="#444"/>',
        f'<text class="axis" x="{(_PAD + _W - 10) / 2:.0f}" y="{_H - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text class="axis" x="14" y="{bottom / 2:.0f}" transform="rotate(-90 14 '
        f'{bottom / 2:.0f})" text-anchor="middle">{escape(y_label)}</text>',
    ]
    for i in range(ticks + 1):
        value = lo + (hi - lo) * i / ticks
        y = _y(value, lo, hi)
        parts.append(
            f'<line x1="{_PAD - 4}" y1="{y:.1f}" x2="{_W - 10}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{_PAD - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.3g}</text>'
        )
    return "".join(parts)


def _y(value: float, lo: float, hi: float) -> float:
    span = (hi - lo) or 1.0
    return (_H - _BOTTOM) - (value - lo) / span * (_H - _BOTTOM - 10)


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 0.02:
        lo, hi = lo - 0.01, hi + 0.01
    pad = (hi - lo) * 0.1
    return max(0.0, lo - pad) if lo >= 0 else lo - pad, min(1.0, hi + pad) if hi <= 1 else hi + pad


def bar_chart(
    title: str,
    groups: Mapping[str, Sequence[float]],
    *,
    zero: bool = False,
    x_label: str,
    y_label: str,
    bar_names: Sequence[str] = (),
    thresholds: Mapping[str, Sequence[tuple[float, str]]] | None = None,
) -> str:
    """Grouped bars: one group per key, one bar per value (e.g. one per CV fold).

    ``bar_names`` name the bars of a group in the legend (fold 1, fold 2, ...); ``thresholds``
    draw dashed lines across a group at each ``(value, name)`` (the policy's minimums).
    """
    values = [v for vs in groups.values() for v in vs]
    if not values:
        return ""
    lines = thresholds or {}
    marks = [v for vs in lines.values() for v, _ in vs]
    lo, hi = (0.0, max(values) * 1.1 or 1.0) if zero else _range(values + marks)
    slot = (_W - _PAD - 20) / max(1, len(groups))
    parts = [_axes(lo, hi, x_label=x_label, y_label=y_label)]
    kinds: set[str] = set()
    for g, (name, bars) in enumerate(groups.items()):
        width = max(2.0, (slot - 12) / max(1, len(bars)))
        for b, value in enumerate(bars):
            x = _PAD + 6 + g * slot + b * width
            y = _y(value, lo, hi)
            label = bar_names[b] if b < len(bar_names) else f"#{b + 1}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width - 1:.1f}" '
                f'height="{(_H - _BOTTOM) - y:.1f}" fill="{_COLORS[b % len(_COLORS)]}">'
                f"<title>{escape(name)} {escape(label)}: {value:.4f}</title></rect>"
            )
        for value, kind in lines.get(name, ()):
            kinds.add(kind)
            y = _y(value, lo, hi)
            x0, x1 = _PAD + 2 + g * slot, _PAD + (g + 1) * slot - 4
            color = _threshold_color(kind)
            parts.append(
                f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" stroke="{color}" '
                f'stroke-width="2" stroke-dasharray="5 3"><title>{escape(name)} {escape(kind)} '
                f"{value:.4f}</title></line>"
            )
        x = _PAD + 6 + g * slot + slot / 2 - 6
        if slot >= 7 * min(len(name), 22):  # the name fits under its group
            parts.append(
                f'<text x="{x:.1f}" y="{_H - _BOTTOM + 14}" text-anchor="middle">'
                f"{escape(name[:22])}</text>"
            )
        else:  # slanted, so that neighbours do not overlap
            y = _H - _BOTTOM + 10
            parts.append(
                f'<text x="{x:.1f}" y="{y}" text-anchor="end" transform="rotate(-30 {x:.1f} '
                f'{y})">{escape(name[:14])}</text>'
            )
    count = max(len(vs) for vs in groups.values())
    legend = [
        (bar_names[b] if b < len(bar_names) else f"#{b + 1}", _COLORS[b % len(_COLORS)], "box")
        for b in range(count)
    ]
    legend += [(f"threshold: {kind}", _threshold_color(kind), "dash") for kind in sorted(kinds)]
    return _frame(title, "".join(parts), legend=legend if count > 1 or kinds else ())


def _threshold_color(kind: str) -> str:
    return "#b71c1c" if "fold" in kind else "#000000"


def line_chart(
    title: str,
    series: Mapping[str, Sequence[float | None]],
    *,
    labels: Sequence[str],
    x_label: str,
    y_label: str,
    failed: Sequence[bool] = (),
    zero: bool = False,
) -> str:
    """One polyline per series over the same x positions (runs, oldest first).

    A ``None`` point is a gap. ``failed[j]`` marks run ``j`` (a red cross on the axis and a red
    dashed line), so a regression can be read against the runs that did not pass.
    """
    values = [v for vs in series.values() for v in vs if v is not None]
    if not values or len(labels) < 1:
        return ""
    lo, hi = (0.0, max(values) * 1.1 or 1.0) if zero else _range(values)
    step = (_W - _PAD - 30) / max(1, len(labels) - 1)
    parts = [_axes(lo, hi, x_label=x_label, y_label=y_label)]
    bottom = _H - _BOTTOM
    for j, bad in enumerate(failed):
        if bad:
            x = _PAD + 10 + j * step
            parts.append(
                f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{bottom}" stroke="{_FAILED}" '
                f'stroke-dasharray="2 3"/><path d="M{x - 4:.1f} {bottom - 4} L{x + 4:.1f} '
                f'{bottom + 4} M{x + 4:.1f} {bottom - 4} L{x - 4:.1f} {bottom + 4}" '
                f'stroke="{_FAILED}" stroke-width="2"><title>{escape(labels[j])}: did not pass'
                "</title></path>"
            )
    legend: list[tuple[str, str, str]] = []
    for i, (name, points) in enumerate(series.items()):
        color = _COLORS[i % len(_COLORS)]
        legend.append((name, color, "line"))
        runs: list[list[tuple[float, float, int]]] = [[]]
        for j, v in enumerate(points):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((_PAD + 10 + j * step, _y(v, lo, hi), j))
        for run in (r for r in runs if r):
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in run)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(name)} '
                f"{escape(labels[j])}: {points[j]:.4f}</title></circle>"
                for x, y, j in run
            )
    if any(failed):
        legend.append(("run that did not pass", _FAILED, "cross"))
    return _frame(title, "".join(parts), legend=legend)


def confusion_matrix(title: str, labels: list[str], counts: dict[tuple[str, str], int]) -> str:
    """A heat-map of true (rows) against predicted (columns) labels, with the counts written in."""
    n = len(labels)
    if n == 0:
        return ""
    cell = min(80, 200 // n)
    left, top = 110, 40
    peak = max(counts.values(), default=0) or 1
    parts = [
        f'<text class="axis" x="{left + n * cell / 2}" y="16" text-anchor="middle">'
        "predicted label</text>"
    ]
    for j, label in enumerate(labels):
        parts.append(
            f'<text x="{left + j * cell + cell / 2}" y="{top - 6}" text-anchor="middle">'
            f"{escape(label[:12])}</text>"
        )
    for i, truth in enumerate(labels):
        parts.append(
            f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end">'
            f"true {escape(truth[:12])}</text>"
        )
        for j, guess in enumerate(labels):
            value = counts.get((truth, guess), 0)
            shade = int(245 - 185 * value / peak)
            fill = f"rgb({shade},{shade + 5 if shade < 250 else 250},255)"
            light = ' class="light"' if shade < 140 else ""
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" '
                f'fill="{fill}" stroke="#fff"/><text x="{left + j * cell + cell / 2}" '
                f'y="{top + i * cell + cell / 2 + 4}" text-anchor="middle"{light}>{value}</text>'
            )
    width, height = left + n * cell + 20, top + n * cell + 20
    return _frame(title, "".join(parts), width=width, height=height)


def roc_plot(title: str, curves: dict[str, tuple[list[float], list[float], float]]) -> str:
    """ROC curves (false-positive rate against true-positive rate) with their AUC."""
    if not curves:
        return ""
    size = 240
    left, top = 44, 10

    def pt(x: float, y: float) -> str:
        return f"{left + x * size:.1f},{top + (1 - y) * size:.1f}"

    parts = [
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#444"/>',
        f'<line x1="{left}" y1="{top + size}" x2="{left + size}" y2="{top}" '
        'stroke="#bbb" stroke-dasharray="4"/>',
        f'<text class="axis" x="{left + size / 2}" y="{top + size + 28}" '
        'text-anchor="middle">false-positive rate</text>',
        f'<text class="axis" x="12" y="{top + size / 2}" transform="rotate(-90 12 '
        f'{top + size / 2})" text-anchor="middle">true-positive rate</text>',
    ]
    legend = [("chance (AUC 0.5)", "#bbbbbb", "dash")]
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        color = _COLORS[i % len(_COLORS)]
        path = " ".join(pt(x, y) for x, y in zip(fpr, tpr, strict=True))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(
            f'<text x="{left + size + 10}" y="{top + 20 + i * 16}" fill="{color}">'
            f"{escape(name[:18])} AUC {auc:.3f}</text>"
        )
        legend.append((f"class {name} (one against the rest)", color, "line"))
    return _frame(
        title, "".join(parts), width=left + size + 170, height=top + size + 40, legend=legend
    )


def read_holdout(path: Path) -> list[dict[str, str]]:
    """Rows of ``reports/cv.holdout.csv``; empty when the cv gate did not write it this run."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except (FileNotFoundError, UnicodeDecodeError, csv.Error):
        return []


def _holdout_plots(rows: list[dict[str, str]], classes: list[str], positive: str) -> list[str]:
    if not rows or "y_true" not in rows[0]:
        return []
    labels = classes or sorted({r["y_true"] for r in rows} | {r["y_pred"] for r in rows})
    counts = Counter((r["y_true"], r["y_pred"]) for r in rows)
    plots = [confusion_matrix(f"Confusion matrix (holdout, {len(rows)} rows)", labels, counts)]
    targets = [positive] if len(labels) == 2 else labels
    curves = {}
    for label in targets:
        column = f"proba_{label}"
        if column not in rows[0]:
            continue
        truth = [1 if r["y_true"] == label else 0 for r in rows]
        if len(set(truth)) < 2:
            continue
        scores = [float(r[column]) for r in rows]
        fpr, tpr = roc_points(truth, scores)
        curves[label] = (fpr, tpr, trapezoid_area(fpr, tpr))
    plots.append(roc_plot("ROC curve (holdout)", curves))
    return plots


def roc_points(truth: list[int], scores: list[float]) -> tuple[list[float], list[float]]:
    """False- and true-positive rates at every distinct score threshold, from (0, 0) to (1, 1).

    The same points as ``sklearn.metrics.roc_curve(drop_intermediate=False)``, without loading
    scikit-learn into the feedback stage (which runs on every run, cached or not).
    """
    positives = sum(truth)
    negatives = len(truth) - positives
    ranked = sorted(zip(scores, truth, strict=True), key=lambda pair: -pair[0])
    fpr, tpr = [0.0], [0.0]
    true_pos = false_pos = 0
    for index, (score, label) in enumerate(ranked):
        true_pos += label
        false_pos += 1 - label
        # Emit a point only after the last row of a run of tied scores.
        if index + 1 == len(ranked) or ranked[index + 1][0] != score:
            fpr.append(false_pos / negatives)
            tpr.append(true_pos / positives)
    return fpr, tpr


def trapezoid_area(xs: list[float], ys: list[float]) -> float:
    """Area under a curve given by points with non-decreasing x (the ROC AUC)."""
    return sum(
        (x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False)
    )  # pairs of neighbours


_HISTORY_PLOTTED = 50


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def history_plots(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """CV means, the flag rate and each gate's duration over the last recorded runs.

    Runs whose verdict was not PASSED are marked on every chart.
    """
    records = [r for r in history if isinstance(r.get("metrics"), dict)][-_HISTORY_PLOTTED:]
    if not records:
        return []
    labels = [str(r.get("run_id", "?")) for r in records]
    failed = [r.get("verdict") != "PASSED" for r in records]
    x_label = f"recorded run, oldest to newest ({len(records)})"
    names = sorted(
        {k for r in records for k in r["metrics"] if k.startswith("cv.") and k.endswith(".mean")}
    )
    means = {
        name.removeprefix("cv.").removesuffix(".mean"): [
            _number(r["metrics"].get(name)) for r in records
        ]
        for name in names
    }
    plots = [
        line_chart(
            f"CV mean per metric over the last {len(records)} runs",
            means,
            labels=labels,
            x_label=x_label,
            y_label="CV mean score",
            failed=failed,
        )
    ]
    rates = [_number(r["metrics"].get("data.flag_rate")) for r in records]
    percent = [None if v is None else round(v * 100, 6) for v in rates]
    if any(v is not None for v in rates):
        plots.append(
            line_chart(
                "Share of rows flagged by the data checks, per run",
                {"flagged rows / rows": percent},
                labels=labels,
                x_label=x_label,
                y_label="flag rate (% of rows)",
                failed=failed,
                zero=True,
            )
        )
    gates: list[str] = []
    for record in records:
        for gate in record.get("gates", {}) if isinstance(record.get("gates"), dict) else {}:
            if gate not in gates:
                gates.append(gate)
    durations = {
        gate: [
            _number(r.get("gates", {}).get(gate, {}).get("duration_seconds"))
            if isinstance(r.get("gates", {}).get(gate), dict)
            else None
            for r in records
        ]
        for gate in gates
    }
    durations = {g: d for g, d in durations.items() if any(v is not None for v in d)}
    if durations:
        plots.append(
            line_chart(
                "Gate durations per run",
                durations,
                labels=labels,
                x_label=x_label,
                y_label="seconds",
                failed=failed,
                zero=True,
            )
        )
    return plots


def _thresholds(
    thresholds: Mapping[str, Mapping[str, float | None]] | None,
) -> dict[str, list[tuple[float, str]]]:
    lines: dict[str, list[tuple[float, str]]] = {}
    for metric, bars in (thresholds or {}).items():
        for kind in ("min_mean", "min_fold"):
            value = bars.get(kind)
            if isinstance(value, int | float):
                lines.setdefault(metric, []).append((float(value), kind))
    return lines


def _where(finding: Finding, bundle: ReportBundle, policy: str | None) -> str:
    """``path:line``; a finding about the policy file at the line of its key."""
    path, line = finding.location.path, finding.location.line
    if line is None and policy is not None and path in (None, "", bundle.policy_file):
        line = policy_line(policy, finding.policy_key)
        path = bundle.policy_file if line else path
    if not path:
        return ""
    return f"{path}:{line}" if line else path


def _policy_text(bundle: ReportBundle) -> str | None:
    try:
        return (bundle.policy_path or bundle.root / bundle.policy_file).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _finding_rows(bundle: ReportBundle, pairs: Sequence[tuple[str, Finding]]) -> str:
    policy = _policy_text(bundle)
    return "".join(
        f"<tr><td>{escape(gate)}</td><td><code>{escape(f.rule)}</code></td>"
        f"<td>{f'<code>{escape(f.policy_key)}</code>' if f.policy_key else ''}</td>"
        f"<td>{escape(_where(f, bundle, policy))}</td><td>{escape(f.message[:600])}</td></tr>"
        for gate, f in pairs
    )


def _failures(bundle: ReportBundle) -> str:
    """Why the run did not pass: each failing rule with its policy key, then gates not run."""
    if bundle.view.verdict == "PASSED":
        return ""
    pairs = [
        (g.name, f)
        for g in bundle.view.gates
        if g.result is not None and g.status != "PASSED"
        for f in g.result.errors
    ]
    missing = "".join(
        f"<tr><td>{escape(g.name)}</td><td>{_badge(g.status)}</td><td></td><td></td>"
        f"<td>{escape(g.problem or (g.result.summary if g.result else ''))[:400]}</td></tr>"
        for g in bundle.view.gates
        if g.status != "PASSED" and (g.result is None or not g.result.errors)
    )
    return (
        '<h2>Why it did not pass</h2><table id="failures"><tr><th>gate</th><th>rule</th>'
        "<th>policy key</th><th>where</th><th>message</th></tr>"
        f"{_finding_rows(bundle, pairs)}{missing}</table>"
    )


def gate_warnings(bundle: ReportBundle) -> list[tuple[str, Finding]]:
    """Every warning a gate of this run reported (the feedback stage's own are listed apart)."""
    return [
        (result.gate, finding)
        for result in bundle.results()
        for finding in result.findings
        if finding.severity is Severity.WARNING
    ]


def _warnings(bundle: ReportBundle) -> str:
    pairs = gate_warnings(bundle)
    if not pairs:
        return ""
    return (
        f'<h2>Warnings ({len(pairs)})</h2><table id="warnings" class="warn"><tr><th>gate</th>'
        "<th>rule</th><th>policy key</th><th>where</th><th>message</th></tr>"
        f"{_finding_rows(bundle, pairs)}</table>"
    )


def render(
    bundle: ReportBundle,
    *,
    classes: list[str],
    positive: str,
    thresholds: Mapping[str, Mapping[str, float | None]] | None = None,
) -> str:
    """The whole page (``thresholds``: ``[cv.thresholds]`` as ``{metric: {min_mean: ...}}``)."""
    view = bundle.view
    rows = []
    for gate in view.gates:
        result = gate.result
        reason = gate.problem if result is None else result.summary
        seconds = f"{result.duration_seconds:.2f}s" if result is not None else "-"
        rows.append(
            f"<tr><td>{escape(gate.name)}</td><td>{_badge(gate.status)}</td><td>{seconds}</td>"
            f"<td>{escape(reason[:400])}</td></tr>"
        )
    metric_rows = "".join(
        f"<tr><td>{escape(d.metric)}</td><td>{d.value:.4f}</td>"
        f"<td>{'' if d.champion is None else f'{d.champion:.4f}'}</td>"
        f"<td>{'' if d.vs_champion is None else f'{d.vs_champion:+.4f}'}</td>"
        f"<td>{'' if d.recent is None else f'{d.recent:.4f}'}</td>"
        f"<td>{'' if d.vs_recent is None else f'{d.vs_recent:+.4f}'}</td></tr>"
        for d in bundle.deltas
    )
    findings = "".join(
        f"<li>{'❌' if f.severity is Severity.ERROR else '⚠️'} <code>{escape(f.rule)}</code> "
        f"{escape(f.message)}"
        f"{f' (<code>{escape(f.policy_key)}</code>)' if f.policy_key else ''}</li>"
        for f in bundle.findings
    )
    plots: list[str] = []
    cv = view.result("cv")
    if cv is not None:
        groups = {
            m: [float(v) for v in s["folds"]]
            for m, s in cv.metrics.items()
            if isinstance(s, dict) and isinstance(s.get("folds"), list)
        }
        folds = max((len(v) for v in groups.values()), default=0)
        plots.append(
            bar_chart(
                "CV fold scores per metric (one bar per fold), with the policy's minimums",
                groups,
                x_label="metric",
                y_label="score on the fold",
                bar_names=[f"fold {i + 1}" for i in range(folds)],
                thresholds=_thresholds(thresholds),
            )
        )
        plots.extend(
            _holdout_plots(read_holdout(bundle.reports_dir / HOLDOUT_FILE), classes, positive)
        )
    risk = view.result("risk")
    if risk is not None:
        plots.append(
            bar_chart(
                "Robust accuracy per norm (one bar per epsilon, risk gate)",
                _risk_groups(risk.metrics),
                zero=True,
                x_label="norm",
                y_label="accuracy under perturbation",
            )
        )
    plots.extend(history_plots(bundle.history))
    flagged: dict[str, list[float]] = {}
    for result in bundle.results():
        for check, count in flagged_rows(result).items():
            flagged[f"{result.gate}:{check}"] = [float(count)]
    if flagged:
        plots.append(
            bar_chart(
                "Flagged rows per check (this run)",
                flagged,
                zero=True,
                x_label="gate:check",
                y_label="rows flagged",
            )
        )
    else:
        by_rule = Counter(f.rule for r in bundle.results() for f in r.findings)
        if by_rule:
            plots.append(
                bar_chart(
                    "Findings per rule (no gate reported flagged rows)",
                    {k: [float(v)] for k, v in sorted(by_rule.items())},
                    zero=True,
                    x_label="rule",
                    y_label="findings",
                )
            )
        else:
            plots.append('<p class="muted">No rows flagged and no findings in this run.</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'self'; img-src 'self' data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pipeline run {escape(view.run_id)}: {escape(view.verdict)}</title>
<link rel="stylesheet" href="{CSS_FILE}"></head><body>
<h1 id="verdict">Pipeline run <code>{escape(view.run_id)}</code>: {_badge(view.verdict)}</h1>
<p class="muted">commit <code>{escape(bundle.commit)}</code> · history head
<code>{escape(bundle.head)}</code> · {bundle.records} runs recorded
{"· champion " + escape(bundle.champion.source) if bundle.champion else "· no champion yet"}</p>
{_failures(bundle)}{_warnings(bundle)}
<h2>Gates</h2>
<table id="gates"><tr><th>gate</th><th>verdict</th><th>time</th><th>summary</th></tr>{"".join(rows)}</table>
<h2>Key metrics</h2>
<table id="metrics"><tr><th>metric</th><th>this run</th><th>champion</th><th>Δ champion</th>
<th>recent mean</th><th>Δ recent</th></tr>{metric_rows}</table>
<h2>Trends and feedback</h2>
<ul id="findings">{findings or '<li class="muted">No regressions or rising flag rates.</li>'}</ul>
<h2>Plots</h2>
<div class="grid" id="plots">{"".join(p for p in plots if p)}</div>
</body></html>
"""


def _risk_groups(metrics: dict[str, Any]) -> dict[str, list[float]]:
    """The risk gate's robust accuracy, grouped by norm, one value per epsilon."""
    groups: dict[str, list[float]] = {}
    for record in metrics.get("robustness", []):
        accuracy = record.get("accuracy") if isinstance(record, dict) else None
        if isinstance(accuracy, int | float) and not isinstance(accuracy, bool):
            groups.setdefault(str(record.get("norm")), []).append(float(accuracy))
    return groups
