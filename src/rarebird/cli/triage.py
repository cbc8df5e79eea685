"""``rarebird triage ID``: one anomaly or alert, with what an analyst needs to decide."""

from __future__ import annotations

from datetime import timedelta

import click

from rarebird.cli._common import handle_errors, main, print_json, print_table
from rarebird.cli.job import store_option
from rarebird.explain import severity
from rarebird.store import open_store
from rarebird.timeutil import from_epoch_ms, iso, parse_duration
from rarebird.triage import triage


@main.command("triage")
@store_option
@click.option("--window", default="1h", show_default=True,
              help="How far around the anomaly to show other commands.")  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
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
        raise click.BadParameter(str(exc), param_hint="--window") from None
    with open_store(store_path) as store:
        t = triage(store, ident, window=span or timedelta(hours=1))
    rec = t.record
    if fmt == "json":
        print_json({"record_id": t.record_id, "record": rec, "alert": t.alert, "details": t.details,
                    "why": t.why, "history": t.history.__dict__, "around": t.around})  # fmt: skip
        return
    echo = click.echo
    when = iso(from_epoch_ms(int(rec["timestamp"])))
    echo(click.style(f"{rec['by_field_value']} at {when}", bold=True)
         + f"  record_score {rec['record_score']:.1f} ({severity(rec['record_score'])})"
         f"  p={rec['probability']:.3g}")  # fmt: skip
    for infl in rec.get("influencers", []):
        echo(f"  {infl['influencer_field_name']}: {', '.join(infl['influencer_field_values'])}")
    if t.alert:
        a = t.alert
        echo(f"  alert {a.get('kibana.alert.uuid', '')[:12]} ({a.get('kibana.alert.workflow_status')}, "
             f"{a.get('kibana.alert.severity')}): {a.get('kibana.alert.reason', '')}")  # fmt: skip
    echo(click.style("\nWhy it scored", bold=True))
    for line in t.why:
        echo(f"  - {line}")
    h = t.history
    echo(click.style("\nThe user's history", bold=True))
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
    echo(click.style(f"\nCommands by {user} within {window}", bold=True))
    rows = [
        [e["@timestamp"], e.get("host", {}).get("name"),
         " ".join(e.get("process", {}).get("args") or [e.get("process", {}).get("name", "")]),
         e.get("process", {}).get("parent", {}).get("name"),
         e.get("process", {}).get("working_directory")]
        for e in t.by_user
    ]  # fmt: skip
    print_table(["time", "host", "command", "parent", "cwd"], rows, empty="  (none)")
    echo(click.style(f"\nOther users on the same host within {window}", bold=True))
    print_table(["user", "commands", "what", "first", "last"], [list(r) for r in t.others],
                empty="  (none)")  # fmt: skip
