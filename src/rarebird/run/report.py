"""The evaluate report (:mod:`rarebird.run.evaluate`) as rows, Markdown or HTML with an SVG
plot of the threshold sweep. Pure text: every string that came from events or labels (user
names, hosts, label names, file names) is escaped for HTML with :func:`html.escape`, and for
Markdown with backslashes before the characters tables and emphasis use."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from rarebird.run.evaluate import DAY_MS, Evaluation, Figures, window_text
from rarebird.timeutil import from_epoch_ms, iso

NAMES = {
    "ml": "ML rule (Elastic's, default)",
    "ml+quiet": "ML rule, --profile quiet",
    "new_terms": "New Terms on user.name (14-day history)",
}
CLASS_HEADER = ("detector", "label", "events", "caught", "missed", "alerts", "alerts/day",
                "time to alert")  # fmt: skip
SUMMARY_HEADER = ("detector", "alerts", "attack alerts", "benign alerts", "alerts/day",
                  "precision", "attack classes caught")  # fmt: skip
SWEEP_HEADER = ("detector", "threshold", "alerts", "benign", "precision", "attack classes caught",
                "attack events caught")  # fmt: skip


def delay_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h" if minutes < 48 * 60 else f"{minutes / 1440:.1f} d"


def _precision(f: Figures) -> str:
    return "-" if f.precision is None else f"{f.precision:.2f}"


def summary_rows(ev: Evaluation) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for f in ev.detectors:
        got, total = f.attack_classes_caught
        rows.append((NAMES.get(f.detector, f.detector), str(f.alerts), str(f.attack_alerts),
                     str(f.benign_alerts), f"{f.per_day:.2f}", _precision(f), f"{got}/{total}"))  # fmt: skip
    return rows


def class_rows(ev: Evaluation) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    days = max((ev.window_end_ms - ev.window_start_ms) / DAY_MS, 1e-9)
    for f in ev.detectors:
        for c in f.classes:
            rows.append((f.detector, c.label, str(c.events), str(c.caught), str(c.missed),
                         str(c.alerts), f"{c.alerts / days:.2f}", delay_text(c.delay_s)))  # fmt: skip
    return rows


def sweep_rows(ev: Evaluation) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, figures in ev.sweeps.items():
        for f in figures:
            got, total = f.attack_classes_caught
            events = sum(c.caught for c in f.classes if c.label.startswith("attack"))
            rows.append((name, f"{f.threshold:g}", str(f.alerts), str(f.benign_alerts),
                         _precision(f), f"{got}/{total}", str(events)))  # fmt: skip
    return rows


def alert_rows(ev: Evaluation) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for f in ev.detectors:
        for a, caught in f.listing:
            rows.append((f.detector, iso(from_epoch_ms(a.alerted_ms)), a.user, a.host,
                         "-" if a.reason == "new_term" else f"{a.score:.1f}", a.reason or "-", ", ".join(caught) or "(none)"))  # fmt: skip
    return rows


ALERT_HEADER = ("detector", "alerted at", "user", "host", "score", "reason", "catches")


def _intro(ev: Evaluation) -> list[str]:
    out = [
        f"inputs: {', '.join(ev.inputs)}; labels: {ev.labels_path}; identity: {ev.identity}; "
        f"rule threshold {ev.threshold:g}",
        f"scored window: {window_text(ev)} UTC (the first {ev.warm_up_days} days are learning "
        "time; "
        f"{ev.warm_up_labels} labelled events fell in them)",
    ]
    if ev.unmatched_labels:
        first = ev.unmatched_labels[0]
        out.append(f"{len(ev.unmatched_labels)} labelled row(s) matched no event the datafeed "
                   f"selects (first: line {first.line})")  # fmt: skip
    return out


# --- JSON ---------------------------------------------------------------------------------


def _figures_doc(f: Figures) -> dict[str, Any]:
    got, total = f.attack_classes_caught
    return {
        "detector": f.detector, "threshold": f.threshold, "alerts": f.alerts,
        "attack_alerts": f.attack_alerts, "benign_alerts": f.benign_alerts,
        "alerts_per_day": round(f.per_day, 4), "precision": f.precision,
        "attack_classes_caught": got, "attack_classes": total,
        "classes": [{"label": c.label, "events": c.events, "caught": c.caught,
                     "missed": c.missed, "alerts": c.alerts, "time_to_alert_s": c.delay_s}
                    for c in f.classes],
    }  # fmt: skip


def json_doc(ev: Evaluation) -> dict[str, Any]:
    """The evaluation as one JSON document (``evaluate --format json``)."""
    return {
        "inputs": list(ev.inputs), "labels": ev.labels_path, "identity": ev.identity,
        "rule_threshold": ev.threshold,
        "scored_from": iso(from_epoch_ms(ev.window_start_ms)),
        "scored_to": iso(from_epoch_ms(ev.window_end_ms)),
        "warm_up_days": ev.warm_up_days, "labelled_events_in_warm_up": ev.warm_up_labels,
        "labels_matching_no_event": len(ev.unmatched_labels),
        "detectors": [
            {**_figures_doc(f),
             "listing": [{"alerted_at": iso(from_epoch_ms(a.alerted_ms)), "user": a.user,
                          "host": a.host, "bucket": iso(from_epoch_ms(a.bucket_ms)),
                          "score": None if a.reason == "new_term" else a.score,
                          "reason": a.reason or None, "catches": list(caught)}
                         for a, caught in f.listing]}
            for f in ev.detectors
        ],
        "sweep": {name: [_figures_doc(f) for f in figures] for name, figures in ev.sweeps.items()},
    }  # fmt: skip


# --- Markdown -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(text: str) -> str:
    """A table cell: no line breaks, HTML escaped (Markdown renders raw HTML), and the
    characters of Markdown's tables, emphasis, code and links backslashed."""
    flat = html.escape(text.replace("\n", " ").replace("\r", " "), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out


def markdown(ev: Evaluation) -> str:
    lines = ["# rarebird evaluate", ""]
    lines += [f"- {_md(x)}" for x in _intro(ev)] + [""]
    lines += ["## Detectors", ""] + _md_table(SUMMARY_HEADER, summary_rows(ev)) + [""]
    lines += ["## Per label class", ""] + _md_table(CLASS_HEADER, class_rows(ev)) + [""]
    lines += ["## Threshold sweep", ""] + _md_table(SWEEP_HEADER, sweep_rows(ev)) + [""]
    lines += ["## Alerts", ""] + _md_table(ALERT_HEADER, alert_rows(ev)) + [""]
    return "\n".join(lines)


# --- HTML -----------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


COLOURS = {"ml": "#d6604d", "ml+quiet": "#2166ac"}


def sweep_svg(ev: Evaluation, width: int = 640, height: int = 300) -> str:
    """The sweep as an inline SVG: alerts (solid) and benign alerts (dashed) per threshold, one
    colour per detector, on a log-like square-root scale so a few alerts stay visible."""
    left, right, top, bottom = 56, 190, 20, 40
    pw, ph = width - left - right, height - top - bottom
    points = [f for figures in ev.sweeps.values() for f in figures]
    if not points:
        return ""
    tmax = max(f.threshold or 0 for f in points) or 1
    amax = max(max(f.alerts for f in points), 1)

    def x(t: float) -> float:
        return float(left + pw * t / tmax)

    def y(n: int) -> float:
        return float(top + ph * (1 - (n / amax) ** 0.5))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="alerts by anomaly threshold">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']  # fmt: skip
    for n in sorted({0, amax, *(round(amax * q * q) for q in (0.25, 0.5, 0.75))}):
        parts.append(f'<text x="{left - 6}" y="{y(n) + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{n}</text>')  # fmt: skip
    for f in next(iter(ev.sweeps.values())):
        t = f.threshold or 0
        parts.append(f'<text x="{x(t):.1f}" y="{top + ph + 16}" font-size="11" '
                     f'text-anchor="middle">{t:g}</text>')  # fmt: skip
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" font-size="12" '
                 'text-anchor="middle">anomaly threshold</text>')  # fmt: skip
    for i, (name, figures) in enumerate(ev.sweeps.items()):
        colour = COLOURS.get(name, "#4d4d4d")
        for dash, key in (("", "alerts"), (' stroke-dasharray="5,4"', "benign")):
            pts = " ".join(
                f"{x(f.threshold or 0):.1f},{y(f.alerts if key == 'alerts' else f.benign_alerts):.1f}"
                for f in figures
            )
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"{dash}/>')  # fmt: skip
        ly = top + 14 + i * 34
        parts.append(f'<text x="{left + pw + 10}" y="{ly}" font-size="11" fill="{colour}">'
                     f"{_e(name)}: alerts</text>")  # fmt: skip
        parts.append(f'<text x="{left + pw + 10}" y="{ly + 14}" font-size="11" fill="{colour}">'
                     f"{_e(name)}: benign (dashed)</text>")  # fmt: skip
    x25 = x(ev.threshold)
    parts.append(f'<line x1="{x25:.1f}" y1="{top}" x2="{x25:.1f}" y2="{top + ph}" stroke="#999" '
                 'stroke-dasharray="2,3"/>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
    "text-align:left}th{background:#f3f3f3}"
)


def html_report(ev: Evaluation) -> str:
    intro = "".join(f"<li>{_e(x)}</li>" for x in _intro(ev))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>rarebird evaluate</title><style>{STYLE}</style></head><body>"
        f"<h1>rarebird evaluate</h1><ul>{intro}</ul>"
        f"<h2>Detectors</h2>{_html_table(SUMMARY_HEADER, summary_rows(ev))}"
        f"<h2>Per label class</h2>{_html_table(CLASS_HEADER, class_rows(ev))}"
        f"<h2>Threshold sweep</h2>{sweep_svg(ev)}{_html_table(SWEEP_HEADER, sweep_rows(ev))}"
        f"<h2>Alerts</h2>{_html_table(ALERT_HEADER, alert_rows(ev))}"
        "</body></html>\n"
    )


def write_report(ev: Evaluation, path: str) -> None:
    """Write the report to ``path``: ``.html``/``.htm`` or ``.md``."""
    lower = path.lower()
    if lower.endswith((".html", ".htm")):
        text = html_report(ev)
    elif lower.endswith(".md"):
        text = markdown(ev)
    else:
        raise ValueError(f"{path}: the report is written as .html or .md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
