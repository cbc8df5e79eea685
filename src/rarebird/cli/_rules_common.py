"""What the rule commands share (``detect``, ``rule``, ``alerts``, ``exceptions``,
``value-lists``): the store, rule and format options, alert outputs and printing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
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
    rule: Any,
    rule_uuid: str | None,
    space: str | None,
    kibana_url: str | None,
    anomaly_index: str | None = None,
    kibana_version: str | None = None,
) -> Any:
    from rarebird.alerts import RuleIdentity

    return RuleIdentity.for_rule(rule, rule_uuid=rule_uuid, space_id=space,
                                 kibana_base_url=kibana_url, anomaly_index=anomaly_index,
                                 kibana_version=kibana_version)  # fmt: skip


def print_alerts(alerts: Sequence[Any], fmt: str, *, empty: str = "(no new alerts)") -> None:
    from rarebird.alerts.model import SUMMARY_HEADERS

    if fmt == "json":
        print_json([a.doc for a in alerts])
    elif fmt == "ndjson":
        print_ndjson(a.doc for a in alerts)
    else:
        print_table(SUMMARY_HEADERS, [a.summary_row() for a in alerts], empty=empty)


def open_sinks(specs: Sequence[str], dead_letter: str | None, store_path: str) -> list[Any]:
    from rarebird.sinks import open_sink

    sinks = []
    for spec in specs:
        dl = dead_letter
        if dl is None and spec.startswith(("http://", "https://")):
            dl = str(Path(store_path).with_name(Path(store_path).name + ".webhook-dead-letters.ndjson"))  # fmt: skip
        sinks.append(open_sink(spec, dead_letter=dl))
    return sinks


def close_sinks(sinks: Sequence[Any]) -> None:
    from rarebird.sinks.webhook import WebhookSink

    for sink in sinks:
        sink.close()
        if isinstance(sink, WebhookSink) and sink.dead_letter and sink.pending():
            click.echo(
                f"rarebird: {sink.pending()} alert(s) for {sink.url} wait in {sink.dead_letter}; "
                "the next run sends them first",
                err=True,
            )


output_options = [
    click.option("--output", "outputs", multiple=True, metavar="SPEC",
                 help="Also send alerts to: ndjson:PATH|-, es-bulk:PATH, sqlite:PATH, "
                      "http(s)://URL (webhook), syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT, "
                      "elasticsearch+https://HOST:9200 (docs/ELASTIC.md). Repeatable."),
    click.option("--dead-letter", metavar="PATH",
                 help="Webhook dead-letter file [default: next to the store]."),
    click.option("--rule-uuid", metavar="UUID",
                 help="Kibana rule id (the 'id' of its export) to derive alert ids from: with "
                      "--space and --anomaly-index as that Kibana's, the ids are Kibana's own."),
    click.option("--space", metavar="ID",
                 help="Kibana space; alerts go to .alerts-security.alerts-ID [default: default]."),
    click.option("--anomaly-index", metavar="INDEX",
                 help="Index the anomaly records are in, as Kibana's ML rule reads them "
                      "(kibana.alert.ancestors, alert ids) [default: .ml-anomalies-shared]."),
    click.option("--kibana-url", metavar="URL", help="Kibana base URL, for kibana.alert.url."),
    click.option("--kibana-version", metavar="VERSION",
                 help="kibana.version written into alerts [default: 9.1.0]."),
]  # fmt: skip


def with_output_options(func: Any) -> Any:
    for opt in reversed(output_options):
        func = opt(func)
    return func
