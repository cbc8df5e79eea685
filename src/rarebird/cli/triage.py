"""``rarebird triage ID``: one anomaly or alert, with what an analyst needs to decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from rarebird.cli._common import (
    AliasedOption,
    handle_errors,
    main,
    open_existing_store,
    print_table,
    store_option,
)
from rarebird.cli._output import Column, echo, emit_document, format_option
from rarebird.explain import severity
from rarebird.timeutil import from_epoch_ms, iso, parse_duration
from rarebird.triage import triage


@main.command("triage")
@store_option
@click.option("--around", "--window", "window", cls=AliasedOption, default="1h",
              show_default=True, metavar="DURATION",
              help="How far around the anomaly to show other commands (e.g. 30m, 2h).")  # fmt: skip
@format_option()
@click.argument("ident", metavar="ALERT_ID | USER@TIME | RECORD_ID")
@handle_errors
def triage_cmd(store_path: str, window: str, fmt: str, ident: str) -> None:
    """Explain one anomaly: why it scored as it did, the user's history, and the other
    discovery commands around it.

    Name it by an alert id (or its first characters, as ``alerts list`` shows them), by
    USER@TIME (e.g. www-data@2026-01-16T02:30:00Z, any time in the anomaly's bucket), or by
    the anomaly record's Elastic id.
    """
    try:
        span = parse_duration(window)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--around") from None
    with open_existing_store(store_path) as store:
        t = triage(store, ident, window=span or timedelta(hours=1))
    doc = {"record_id": t.record_id, "record": t.record, "alert": t.alert, "details": t.details,
           "why": t.why, "history": t.history.__dict__, "around": t.around,
           "events_missing": t.events_missing}  # fmt: skip
    emit_document(doc, fmt, lambda: _show(t, window))


def _show(t: Any, window: str) -> None:
    rec = t.record
    when = iso(from_epoch_ms(int(rec["timestamp"])))
    echo(f"{rec['by_field_value']} at {when}  record_score {rec['record_score']:.1f} "
         f"({severity(rec['record_score'])})  p={rec['probability']:.3g}", style="bold")  # fmt: skip
    for infl in rec.get("influencers", []):
        echo(f"  {infl['influencer_field_name']}: {', '.join(infl['influencer_field_values'])}")
    if t.alert:
        a = t.alert
        echo(f"  alert {a.get('kibana.alert.uuid', '')[:12]} ({a.get('kibana.alert.workflow_status')}, "
             f"{a.get('kibana.alert.severity')}): {a.get('kibana.alert.reason', '')}")  # fmt: skip
    echo("\nWhy it scored", style="bold")
    for line in t.why:
        echo(f"  - {line}")
    h = t.history
    echo("\nThe user's history", style="bold")
    if t.events_missing:
        echo(f"  note: {t.events_missing}", style="yellow")
    if h.events:
        echo(f"  {h.events:,} earlier discovery commands since {h.first_seen}, last {h.last_seen_before}, "
             f"on {', '.join(h.hosts[:10])}")  # fmt: skip
    else:
        echo("  no earlier discovery commands from this user in the store")
    if h.earlier_records:
        echo(
            "  earlier anomalies: "
            + ", ".join(f"{t_} ({s:.0f})" for t_, s in h.earlier_records[-10:])
        )
    user = rec["by_field_value"]
    echo(f"\nCommands by {user} within {window}", style="bold")
    rows = [
        [e["@timestamp"], e.get("host", {}).get("name"),
         " ".join(e.get("process", {}).get("args") or [e.get("process", {}).get("name", "")]),
         e.get("process", {}).get("parent", {}).get("name"),
         e.get("process", {}).get("working_directory")]
        for e in t.by_user
    ]  # fmt: skip
    print_table([Column("time", "time"), Column("host", max_width=32), Column("command", ratio=2),
                 Column("parent", max_width=24), Column("cwd", ratio=1)], rows, empty="  (none)")  # fmt: skip
    echo(f"\nOther users on the same host within {window}", style="bold")
    print_table([Column("user", max_width=32), Column("commands", "number"), Column("what", ratio=1),
                 Column("first", "time"), Column("last", "time")], [list(r) for r in t.others],
                empty="  (none)")  # fmt: skip
