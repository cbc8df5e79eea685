"""``rarebird rule run``: the detection rule once over the store."""

from __future__ import annotations

from datetime import datetime

import click

from rarebird.cli._common import handle_errors, main, time_value
from rarebird.cli._output import echo
from rarebird.cli._rules_common import (
    check_dead_letter,
    close_sinks,
    deliver_outbox,
    format_option,
    load_rule,
    open_rule_store,
    open_sinks,
    print_alerts,
    rule_identity,
    rule_option,
    store_option,
    with_output_options,
)
from rarebird.clock import SYSTEM_CLOCK
from rarebird.timeutil import iso


@main.group()
def rule() -> None:
    """Run the detection rule over the store."""


@rule.command("run")
@store_option
@rule_option
@click.option("--now", metavar="TIME", callback=time_value,
              help="Run as if at this time (ISO-8601, epoch ms, now-1h, 7d) [default: the clock].")  # fmt: skip
@format_option()
@with_output_options
@handle_errors
def rule_run(
    store_path: str,
    rule_path: str | None,
    now: datetime | None,
    fmt: str,
    outputs: tuple[str, ...],
    dead_letter: str | None,
    rule_uuid: str | None,
    space: str | None,
    anomaly_index: str | None,
    kibana_url: str | None,
    kibana_version: str | None,
) -> None:
    """Run the rule once (with Kibana's catch-up after missed runs); print the new alerts."""
    from rarebird.rules.executor import RuleExecutor
    from rarebird.store.adapters import SqliteRuleStore
    from rarebird.store.serve import add_to_outbox

    check_dead_letter(outputs, dead_letter)
    now = now or SYSTEM_CLOCK.now()
    r = load_rule(rule_path)
    store = open_rule_store(store_path)
    sinks = open_sinks(outputs)
    try:
        executor = RuleExecutor(SqliteRuleStore(store), r,
                                identity=rule_identity(r, rule_uuid, space, kibana_url, anomaly_index, kibana_version))  # fmt: skip
        with store.transaction():
            run = executor.run(now)
            changed = [*run.new_alerts, *run.updated_alerts]
            if changed and sinks:
                add_to_outbox(store, changed)
        deliver_outbox(store, sinks, dead_letter)
    finally:
        try:
            close_sinks(sinks)
        finally:
            store.close()
    print_alerts(run.new_alerts, fmt)
    ranges = ", ".join(f"[{iso(x.start)}, {iso(x.end)}]" for x in run.ranges)
    echo(
        f"rarebird: rule run at {iso(now)} over {ranges}: {run.found} anomalies over the "
        f"threshold, {len(run.new_alerts)} new alert(s), {run.already_alerted} already alerted, "
        f"{run.suppressed} suppressed, {run.excepted_total} excepted",
        err=True,
    )
    for w in run.warnings:
        echo(f"rarebird: warning: {w}", err=True)
