"""What the rule commands share (``detect``, ``rule``, ``alerts``, ``exceptions``,
``value-lists``): the store, rule and format options, alert outputs and printing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from rarebird.cli._common import print_json, print_ndjson, print_table

DEFAULT_STORE = "rarebird.db"  # the same default as `job run`
FORMATS = click.Choice(["table", "json", "ndjson"])

store_option = click.option(
    "--store",
    "store_path",
    default=DEFAULT_STORE,
    show_default=True,
    metavar="PATH",
    help="SQLite store (results, model state, alerts, exceptions).",
)
rule_option = click.option(
    "--rule",
    "rule_path",
    metavar="RULE.toml",
    help="Detection rule (detection-rules TOML or Kibana export); default: the packaged rule.",
)
format_option = click.option(
    "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format."
)


def open_rule_store(path: str) -> Any:
    """The store at ``path`` (created when missing)."""
    from rarebird.store import open_store

    return open_store(path)


def load_rule(path: str | None) -> Any:
    from rarebird.definitions.rule import load_rule

    return load_rule(path)


def rule_identity(
    rule: Any, rule_uuid: str | None, space: str | None, kibana_url: str | None
) -> Any:
    from rarebird.alerts import RuleIdentity

    return RuleIdentity.for_rule(rule, rule_uuid=rule_uuid, space_id=space,
                                 kibana_base_url=kibana_url)  # fmt: skip


def print_alerts(alerts: Sequence[Any], fmt: str, *, empty: str = "(no new alerts)") -> None:
    from rarebird.alerts.model import SUMMARY_HEADERS

    if fmt == "json":
        print_json([a.doc for a in alerts])
    elif fmt == "ndjson":
        print_ndjson(a.doc for a in alerts)
    else:
        print_table(SUMMARY_HEADERS, [a.summary_row() for a in alerts], empty=empty)


def open_sinks(specs: Sequence[str], dead_letter: str | None, store_path: str) -> list[Any]:
    """The outputs (a webhook's authentication comes from the environment). ``dead_letter`` is
    no longer used: dead letters are kept in the store."""
    from rarebird.sinks import open_sink

    return [open_sink(spec) for spec in specs]


def deliver_outbox(store: Any, sinks: Sequence[Any]) -> None:
    """Deliver what the store's outbox holds for ``sinks`` (retried a few times); say what was
    left for later and what was refused for good."""
    from rarebird.run.delivery import Delivery, RetryPolicy
    from rarebird.store.delivery import dead_letters, pending_for

    if not sinks:
        return
    Delivery(store, sinks, policy=RetryPolicy(retries=3, backoff=0.5, max_backoff=4.0)).deliver()
    for sink in sinks:
        left = pending_for(store, sink.name)
        if left:
            click.echo(f"rarebird: {left} alert(s) for {sink.name} could not be delivered yet; "
                       "they stay in the store's outbox: the next detect or serve, or `rarebird "
                       "outputs replay`, sends them", err=True)  # fmt: skip
        dead = len(dead_letters(store, sink.name))
        if dead:
            click.echo(f"rarebird: {dead} alert(s) were refused by {sink.name} and kept as dead "
                       "letters: `rarebird outputs replay` sends them again", err=True)  # fmt: skip


def close_sinks(sinks: Sequence[Any]) -> None:
    for sink in sinks:
        sink.close()


output_options = [
    click.option("--output", "outputs", multiple=True, metavar="SPEC",
                 help="Also send alerts to: ndjson:PATH|-, es-bulk:PATH, sqlite:PATH, "
                      "http(s)://URL (webhook), syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT. "
                      "Repeatable."),
    click.option("--dead-letter", metavar="PATH",
                 help="Unused: dead letters are kept in the store (rarebird outputs list / "
                      "replay)."),
    click.option("--rule-uuid", metavar="UUID",
                 help="Kibana rule id to derive alert ids from (to match a Kibana's ids)."),
    click.option("--space", metavar="ID", help="Kibana space [default: default]."),
    click.option("--kibana-url", metavar="URL", help="Kibana base URL, for kibana.alert.url."),
]  # fmt: skip


def with_output_options(func: Any) -> Any:
    for opt in reversed(output_options):
        func = opt(func)
    return func
