"""``rarebird alerts list|show|ack|close|open``: alerts and their workflow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from rarebird.cli._common import AliasedOption, handle_errors, main, since_until_options
from rarebird.cli._output import Column, Rows, echo, emit, emit_document, sanitize_lines
from rarebird.cli._rules_common import format_option, open_rule_store, print_alerts, store_option
from rarebird.clock import SYSTEM_CLOCK

F = TypeVar("F", bound=Callable[..., Any])


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
@since_until_options()
@click.option("--min-score", type=float, help="record_score at least.")
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]),
              help="The rule's severity of the alert.")  # fmt: skip
@click.option("--sort", type=click.Choice(["time", "score"]), default="time", show_default=True,
              help="Newest anomaly first, or highest score first.")  # fmt: skip
@click.option("--limit", type=int, default=None, help="At most this many (in --sort order).")
@format_option()
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
    sort: str,
    limit: int | None,
    fmt: str,
) -> None:
    """Alerts, newest anomaly first (or highest score first with --sort score)."""
    from rarebird.store.alerts import AlertFilter, list_alerts

    flt = AlertFilter(
        statuses=statuses, user=user, host=host, rule_id=rule_id,
        since=since,
        until=until,
        min_score=min_score, severity=severity, limit=limit, order=sort,
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
@format_option()
@handle_errors
def alerts_show(store_path: str, alert_id: str, fmt: str) -> None:
    """One alert: a summary with the events behind it and the investigation guide (table), or
    its Kibana document (json, ndjson, csv)."""
    from rarebird.evidence import events_behind
    from rarebird.store.alerts import get_alert

    store = open_rule_store(store_path)
    try:
        alert = get_alert(store, alert_id)
        events = events_behind(store, alert)
    finally:
        store.close()
    emit_document(alert.doc, fmt, lambda: _show(alert, events))


def _show(alert: Any, events: list[dict[str, Any]]) -> None:
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
    emit(Rows.of([Column("field", "id"), Column("value", ratio=1)], rows, header=False), "table")
    if events:
        echo("\nEvents behind the anomaly (kept by the job):", style="bold")
        table = []
        for ev in events[:20]:
            proc = ev.get("process", {})
            proc = proc if isinstance(proc, dict) else {}
            parent = proc.get("parent", {}) if isinstance(proc.get("parent"), dict) else {}
            host = ev.get("host", {})
            table.append([ev.get("@timestamp"), host.get("name") if isinstance(host, dict) else None,
                          " ".join(map(str, proc.get("args") or [])) or proc.get("name"),
                          parent.get("name")])  # fmt: skip
        emit(Rows.of([Column("time", "time"), Column("host", max_width=32),
                      Column("command", ratio=1), Column("parent", max_width=24)], table), "table")  # fmt: skip
        if len(events) > 20:
            echo(f"  ({len(events) - 20} more: --format json)")
    note = d.get("kibana.alert.rule.note")
    if note:
        click.echo("\n" + sanitize_lines(str(note)))


def _workflow(store_path: str, ids: tuple[str, ...], status: str, by: str | None,
              reason: str | None) -> None:  # fmt: skip
    from rarebird.store.alerts import set_workflow_status

    store = open_rule_store(store_path)
    try:
        changed = set_workflow_status(store, list(ids), status, now=SYSTEM_CLOCK.now(),
                                      user=by, reason=reason)  # fmt: skip
    finally:
        store.close()
    for a in changed:
        echo(f"{a.id}  {status}")


def _not_user(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            "--user filters alerts by user.name (alerts list); the analyst who changes an alert "
            "is --by NAME", ctx=ctx,
        )  # fmt: skip


def by_option(func: F) -> F:
    """``--by``: the analyst (kibana.alert.workflow_user); ``--user`` is refused with a hint,
    since everywhere else it filters by user.name."""
    func = click.option("--user", "_user", hidden=True, expose_value=False, callback=_not_user)(
        func
    )
    return click.option("--by", "--analyst", "by", cls=AliasedOption, metavar="NAME",
                        help="Who did it (rarebird.workflow.analyst; Kibana's workflow_user holds a profile id, left null).")(func)  # fmt: skip


def _reason(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A closing reason: one of Kibana's, or free text; a word that is none of them is most
    likely a typo (``false_postive``) and is refused with the nearest reason."""
    import difflib

    from rarebird.alerts.model import CLOSE_REASONS

    if value is None or value in CLOSE_REASONS or " " in value.strip():
        return value
    near = difflib.get_close_matches(value, CLOSE_REASONS, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    raise click.BadParameter(
        f"{value!r} is not a closing reason{hint}: one of {', '.join(CLOSE_REASONS)}, or a "
        "sentence (text with spaces)", ctx=ctx, param=param,
    )  # fmt: skip


@alerts.command("ack")
@store_option
@by_option
@click.argument("ids", nargs=-1, required=True)
@handle_errors
def alerts_ack(store_path: str, by: str | None, ids: tuple[str, ...]) -> None:
    """Mark alerts acknowledged (ids or unique prefixes)."""
    _workflow(store_path, ids, "acknowledged", by, None)


@alerts.command("close")
@store_option
@by_option
@click.option("--reason", callback=_reason,
              help="false_positive, duplicate, true_positive, benign_positive, automated_closure, "
                   "other, or a sentence.")  # fmt: skip
@click.argument("ids", nargs=-1, required=True)
@handle_errors
def alerts_close(store_path: str, by: str | None, reason: str | None, ids: tuple[str, ...]) -> None:  # fmt: skip
    """Close alerts (ids or unique prefixes)."""
    _workflow(store_path, ids, "closed", by, reason)


@alerts.command("open")
@store_option
@by_option
@click.argument("ids", nargs=-1, required=True)
@handle_errors
def alerts_open(store_path: str, by: str | None, ids: tuple[str, ...]) -> None:
    """Mark alerts open again."""
    _workflow(store_path, ids, "open", by, None)
