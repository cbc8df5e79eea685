"""``rarebird alerts list|show|ack|close|open``: alerts and their workflow."""

from __future__ import annotations

from datetime import datetime

import click

from rarebird.cli._common import handle_errors, main, print_json, time_value
from rarebird.cli._rules_common import format_option, open_rule_store, print_alerts, store_option
from rarebird.clock import SYSTEM_CLOCK


@main.group()
def alerts() -> None:
    """List alerts and move them through the workflow (open, acknowledged, closed)."""


@alerts.command("list")
@store_option
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["open", "acknowledged", "closed"]), help="Repeatable.")  # fmt: skip
@click.option("--user", help="Alerts about this user.name.")
@click.option("--host", help="Alerts involving this host.name.")
@click.option("--rule-id", help="Alerts of this rule_id.")
@click.option(
    "--since",
    metavar="TIME",
    callback=time_value,
    help="Anomaly time at or after (ISO-8601, epoch ms, now-1h, 7d).",
)
@click.option(
    "--until",
    metavar="TIME",
    callback=time_value,
    help="Anomaly time before (ISO-8601, epoch ms, now-1h, 7d).",
)
@click.option("--min-score", type=float, help="record_score at least.")
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]))
@click.option("--limit", type=int, default=None, help="At most this many (newest first).")
@format_option
@handle_errors
def alerts_list(
    store_path: str,
    statuses: tuple[str, ...],
    user: str | None,
    host: str | None,
    rule_id: str | None,
    since: datetime | None,
    until: datetime | None,
    min_score: float | None,
    severity: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """Alerts, newest anomaly first."""
    from rarebird.store.alerts import AlertFilter, list_alerts

    flt = AlertFilter(
        statuses=statuses, user=user, host=host, rule_id=rule_id,
        since=since,
        until=until,
        min_score=min_score, severity=severity, limit=limit,
    )  # fmt: skip
    store = open_rule_store(store_path)
    try:
        found = list_alerts(store, flt)
    finally:
        store.close()
    print_alerts(found, fmt, empty="(no alerts)")


@alerts.command("show")
@store_option
@click.argument("alert_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@handle_errors
def alerts_show(store_path: str, alert_id: str, fmt: str) -> None:
    """One alert: its document (json) or a summary with the investigation guide (text)."""
    from rarebird.evidence import events_behind
    from rarebird.store.alerts import get_alert

    store = open_rule_store(store_path)
    try:
        alert = get_alert(store, alert_id)
        events = events_behind(store, alert)
    finally:
        store.close()
    if fmt == "json":
        print_json(alert.doc)
        return
    d = alert.doc
    rows = [
        ("id", alert.id),
        ("status", alert.workflow_status),
        ("rule", f"{d.get('kibana.alert.rule.name')} ({d.get('kibana.alert.rule.rule_id')})"),
        ("anomaly time", d.get("kibana.alert.original_time")),
        ("alerted at", d.get("@timestamp")),
        ("user", ", ".join(alert.values("user.name"))),
        ("host", ", ".join(alert.values("host.name"))),
        ("process", ", ".join(alert.values("process.name"))),
        ("args", ", ".join(alert.values("process.args"))),
        ("score", f"{alert.record_score:.2f} (initial {float(d.get('initial_record_score', 0)):.2f})"),
        ("probability", f"{float(d.get('probability', 0)):.3g}"),
        ("severity", f"{alert.severity} (risk {d.get('kibana.alert.risk_score')})"),
        ("reason", d.get("kibana.alert.reason")),
    ]  # fmt: skip
    if alert.suppressed_count:
        rows.append(("duplicates", f"{alert.suppressed_count} suppressed "
                     f"(until {d.get('kibana.alert.suppression.end')})"))  # fmt: skip
    if d.get("kibana.alert.workflow_reason"):
        rows.append(("closed as", d["kibana.alert.workflow_reason"]))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k.ljust(width)}  {v}")
    if events:
        click.echo("\nEvents behind the anomaly (kept by the job):")
        for ev in events[:20]:
            proc = ev.get("process", {})
            parent = proc.get("parent", {}) if isinstance(proc, dict) else {}
            args = " ".join(proc.get("args", [])) if isinstance(proc, dict) else ""
            click.echo(f"  {ev.get('@timestamp')}  {ev.get('host', {}).get('name', '-')}  "
                       f"{args or proc.get('name', '')}  (parent: {parent.get('name', '-')})")  # fmt: skip
    note = d.get("kibana.alert.rule.note")
    if note:
        click.echo("\n" + str(note))


def _workflow(store_path: str, ids: tuple[str, ...], status: str, user: str | None,
              reason: str | None) -> None:  # fmt: skip
    from rarebird.store.alerts import set_workflow_status

    store = open_rule_store(store_path)
    try:
        changed = set_workflow_status(store, list(ids), status, now=SYSTEM_CLOCK.now(),
                                      user=user, reason=reason)  # fmt: skip
    finally:
        store.close()
    for a in changed:
        click.echo(f"{a.id}  {status}")


user_option = click.option(
    "--user",
    help="Who did it (rarebird.workflow.analyst; Kibana's workflow_user holds a profile id, left null).",
)


@alerts.command("ack")
@store_option
@user_option
@click.argument("ids", nargs=-1, required=True)
@handle_errors
def alerts_ack(store_path: str, user: str | None, ids: tuple[str, ...]) -> None:
    """Mark alerts acknowledged (ids or unique prefixes)."""
    _workflow(store_path, ids, "acknowledged", user, None)


@alerts.command("close")
@store_option
@user_option
@click.option("--reason", help="false_positive, duplicate, true_positive, benign_positive, other, or text.")  # fmt: skip
@click.argument("ids", nargs=-1, required=True)
@handle_errors
def alerts_close(store_path: str, user: str | None, reason: str | None, ids: tuple[str, ...]) -> None:  # fmt: skip
    """Close alerts (ids or unique prefixes)."""
    _workflow(store_path, ids, "closed", user, reason)


@alerts.command("open")
@store_option
@user_option
@click.argument("ids", nargs=-1, required=True)
@handle_errors
def alerts_open(store_path: str, user: str | None, ids: tuple[str, ...]) -> None:
    """Mark alerts open again."""
    _workflow(store_path, ids, "open", user, None)
