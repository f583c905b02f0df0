"""``reports/report.html``: one self-contained page with inline SVG plots (no scripts, no fetches).

Plots: CV fold scores per metric, the holdout confusion matrix and ROC curve (from
``reports/cv.holdout.csv``), metric history over recorded runs, and flagged rows per check. A
Content-Security-Policy forbids every external load and every script, so the page is safe to
open from a CI artifact.
"""

from __future__ import annotations

import csv
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from gates.base import Severity
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import flagged_rows

HOLDOUT_FILE = "cv.holdout.csv"
_W, _H, _PAD = 560, 260, 44
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_STATUS_COLORS = {
    "PASSED": "#2e7d32",
    "FAILED": "#c62828",
    "ERRORED": "#6a1b9a",
    "SKIPPED": "#757575",
    "NOT_RUN": "#9e9e9e",
}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px}
.badge{color:#fff;padding:2px 8px;border-radius:4px;font-weight:600;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;border:1px solid #eee;padding:8px}
figcaption{font-size:13px;color:#555}svg text{font-size:11px;fill:#333}.muted{color:#777}
"""


def _badge(status: str) -> str:
    color = _STATUS_COLORS.get(status, "#555")
    return f'<span class="badge" style="background:{color}">{escape(status)}</span>'


def _frame(title: str, body: str, *, width: int = _W, height: int = _H) -> str:
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>{body}</svg>'
        f"<figcaption>{escape(title)}</figcaption></figure>"
    )


def _axes(lo: float, hi: float, *, ticks: int = 5) -> str:
    parts = [
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 10}" y2="{_H - _PAD}" stroke="#444"/>',
        f'<line x1="{_PAD}" y1="10" x2="{_PAD}" y2="{_H - _PAD}" stroke="#444"/>',
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
    return (_H - _PAD) - (value - lo) / span * (_H - _PAD - 10)


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 0.02:
        lo, hi = lo - 0.01, hi + 0.01
    pad = (hi - lo) * 0.1
    return max(0.0, lo - pad) if lo >= 0 else lo - pad, min(1.0, hi + pad) if hi <= 1 else hi + pad


def _legend(names: list[str]) -> str:
    return "".join(
        f'<rect x="{_PAD + 8 + i * 130}" y="{_H - 16}" width="10" height="10" '
        f'fill="{_COLORS[i % len(_COLORS)]}"/><text x="{_PAD + 22 + i * 130}" y="{_H - 7}">'
        f"{escape(name[:20])}</text>"
        for i, name in enumerate(names)
    )


def bar_chart(title: str, groups: dict[str, list[float]], *, zero: bool = False) -> str:
    """Grouped bars: one group per key, one bar per value (e.g. one per CV fold)."""
    values = [v for vs in groups.values() for v in vs]
    if not values:
        return ""
    lo, hi = (0.0, max(values) * 1.1 or 1.0) if zero else _range(values)
    slot = (_W - _PAD - 20) / max(1, len(groups))
    parts = [_axes(lo, hi)]
    for g, (name, bars) in enumerate(groups.items()):
        width = max(2.0, (slot - 12) / max(1, len(bars)))
        for b, value in enumerate(bars):
            x = _PAD + 6 + g * slot + b * width
            y = _y(value, lo, hi)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width - 1:.1f}" '
                f'height="{(_H - _PAD) - y:.1f}" fill="{_COLORS[b % len(_COLORS)]}">'
                f"<title>{escape(name)} #{b + 1}: {value:.4f}</title></rect>"
            )
        parts.append(
            f'<text x="{_PAD + 6 + g * slot + slot / 2 - 6:.1f}" y="{_H - _PAD + 14}" '
            f'text-anchor="middle">{escape(name[:22])}</text>'
        )
    return _frame(title, "".join(parts))


def line_chart(title: str, series: dict[str, list[float]], *, labels: list[str]) -> str:
    """One polyline per series over the same x positions (e.g. runs, oldest first)."""
    values = [v for vs in series.values() for v in vs]
    if not values or len(labels) < 1:
        return ""
    lo, hi = _range(values)
    step = (_W - _PAD - 30) / max(1, len(labels) - 1)
    parts = [_axes(lo, hi)]
    for i, (name, points) in enumerate(series.items()):
        color = _COLORS[i % len(_COLORS)]
        coords = [(_PAD + 10 + j * step, _y(v, lo, hi)) for j, v in enumerate(points)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(name)} '
            f"{escape(labels[j])}: {points[j]:.4f}</title></circle>"
            for j, (x, y) in enumerate(coords)
        )
    parts.append(_legend(list(series)))
    return _frame(title, "".join(parts))


def confusion_matrix(title: str, labels: list[str], counts: dict[tuple[str, str], int]) -> str:
    """A heat-map of true (rows) against predicted (columns) labels, with the counts written in."""
    n = len(labels)
    if n == 0:
        return ""
    cell = min(80, 200 // n)
    left, top = 110, 40
    peak = max(counts.values(), default=0) or 1
    parts = [f'<text x="{left + n * cell / 2}" y="20" text-anchor="middle">predicted</text>']
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
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" '
                f'fill="{fill}" stroke="#fff"/><text x="{left + j * cell + cell / 2}" '
                f'y="{top + i * cell + cell / 2 + 4}" text-anchor="middle" '
                f'style="fill:{"#fff" if shade < 140 else "#222"}">{value}</text>'
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
        f'<text x="{left + size / 2}" y="{top + size + 28}" text-anchor="middle">'
        "false-positive rate</text>",
        f'<text x="12" y="{top + size / 2}" transform="rotate(-90 12 {top + size / 2})" '
        'text-anchor="middle">true-positive rate</text>',
    ]
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        color = _COLORS[i % len(_COLORS)]
        path = " ".join(pt(x, y) for x, y in zip(fpr, tpr, strict=True))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(
            f'<text x="{left + size + 10}" y="{top + 20 + i * 16}" fill="{color}">'
            f"{escape(name[:18])} AUC {auc:.3f}</text>"
        )
    return _frame(title, "".join(parts), width=left + size + 170, height=top + size + 40)


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


def _history_plot(history: tuple[dict[str, Any], ...]) -> str:
    records = [r for r in history if isinstance(r.get("metrics"), dict)][-50:]
    names = sorted(
        {k for r in records for k in r["metrics"] if k.startswith("cv.") and k.endswith(".mean")}
    )
    series: dict[str, list[float]] = {}
    for name in names:
        points = [r["metrics"].get(name) for r in records]
        if all(isinstance(p, int | float) for p in points):
            series[name.removeprefix("cv.").removesuffix(".mean")] = [float(p) for p in points]
    labels = [str(r.get("run_id", "?")) for r in records]
    return line_chart(
        f"CV mean per metric over the last {len(records)} runs", series, labels=labels
    )


def render(bundle: ReportBundle, *, classes: list[str], positive: str) -> str:
    """The whole page."""
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
        f"{escape(f.message)}</li>"
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
        plots.append(bar_chart("CV fold scores per metric (one bar per fold)", groups))
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
            )
        )
    plots.append(_history_plot(bundle.history))
    flagged: dict[str, list[float]] = {}
    for result in bundle.results():
        for check, count in flagged_rows(result).items():
            flagged[f"{result.gate}:{check}"] = [float(count)]
    if flagged:
        plots.append(bar_chart("Flagged rows per check", flagged, zero=True))
    else:
        by_rule = Counter(f.rule for r in bundle.results() for f in r.findings)
        if by_rule:
            plots.append(
                bar_chart(
                    "Findings per rule (no gate reported flagged rows)",
                    {k: [float(v)] for k, v in sorted(by_rule.items())},
                    zero=True,
                )
            )
        else:
            plots.append('<p class="muted">No rows flagged and no findings in this run.</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pipeline run {escape(view.run_id)}: {escape(view.verdict)}</title>
<style>{_CSS}</style></head><body>
<h1 id="verdict">Pipeline run <code>{escape(view.run_id)}</code>: {_badge(view.verdict)}</h1>
<p class="muted">commit <code>{escape(bundle.commit)}</code> · history head
<code>{escape(bundle.head)}</code> · {bundle.records} runs recorded
{"· champion " + escape(bundle.champion.source) if bundle.champion else "· no champion yet"}</p>
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
