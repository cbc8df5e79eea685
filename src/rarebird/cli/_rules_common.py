"""What the rule commands share (``detect``, ``rule``, ``alerts``, ``exceptions``,
``value-lists``): the store, rule and format options, alert outputs and printing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from rarebird.alerts.model import Alert
from rarebird.cli._common import DEFAULT_STORE, open_existing_store, store_option
from rarebird.cli._output import Column, Rows, emit, format_option
from rarebird.timeutil import iso

__all__ = ["DEFAULT_STORE", "format_option", "store_option"]
rule_option = click.option(
    "--rule",
    "rule_path",
    metavar="RULE.toml",
    help="Detection rule (detection-rules TOML or Kibana export); default: the packaged rule.",
)


def open_rule_store(path: str, *, create: bool = False) -> Any:
    """The store at ``path``; created when missing only for a command that writes something a
    later run needs (``detect``, exceptions, value lists), otherwise a missing store is an
    error naming the path."""
    from rarebird.store import open_store

    return open_store(path) if create else open_existing_store(path)


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


#: the alert table's columns (``SUMMARY_HEADERS``) as they behave when the terminal is narrow
_ALERT_COLUMNS = {
    "alert": Column("alert", "id"), "anomaly time": Column("anomaly time", "time"),
    "user": Column("user", max_width=32), "host": Column("host", max_width=32),
    "process": Column("process", ratio=1, drop=3), "score": Column("score", "score"),
    "severity": Column("severity", drop=2), "anomaly": Column("anomaly", drop=2), "dups": Column("dups", "number", drop=1),
}  # fmt: skip


def print_alerts(alerts: Sequence[Any], fmt: str, *, empty: str = "(no new alerts)") -> None:
    """Alerts as a table (or csv: the same columns, full ids), or their Kibana documents;
    beside the score, Elastic's anomaly severity label (critical/major/minor/warning)."""
    from rarebird.explain import severity

    at = SUMMARY_HEADERS.index("score") + 1
    headers = [*SUMMARY_HEADERS[:at], "anomaly", *SUMMARY_HEADERS[at:]]
    rows = []
    for a in alerts:
        row = summary_row(a)
        rows.append([*row[:at], severity(a.record_score), *row[at:]])
    if fmt == "csv":
        rows = [[a.id, *row[1:]] for a, row in zip(alerts, rows, strict=True)]
    columns = [_ALERT_COLUMNS.get(h, Column(h)) for h in headers]
    emit(Rows.of(columns, rows, empty=empty, docs=[a.doc for a in alerts]), fmt)


def open_sinks(specs: Sequence[str]) -> list[Any]:
    """The outputs (a webhook's authentication comes from the environment)."""
    from rarebird.sinks import open_sink

    return [open_sink(spec) for spec in specs]


def check_dead_letter(specs: Sequence[str], dead_letter: str | None) -> None:
    """``--dead-letter`` holds what an ``--output`` refused: a usage error without one (checked
    before the store is opened)."""
    if dead_letter is not None and not specs:
        raise click.UsageError("--dead-letter goes with --output (the alerts an output refuses)")


def deliver_outbox(store: Any, sinks: Sequence[Any], dead_letter: str | None = None) -> None:
    """Deliver what the store's outbox holds for ``sinks`` (retried a few times); say what was
    left for later and what was refused for good. The dead letters of this delivery are kept
    in the store and, with ``dead_letter``, also appended to that file as JSON lines."""
    from rarebird.run.delivery import Delivery, RetryPolicy
    from rarebird.store.delivery import dead_letters, last_dead_letter_id, pending_for

    if not sinks:
        return
    before = last_dead_letter_id(store)
    Delivery(store, sinks, policy=RetryPolicy(retries=3, backoff=0.5, max_backoff=4.0)).deliver()
    if dead_letter is not None:
        write_dead_letters(dead_letter, dead_letters(store, after=before))
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


def write_dead_letters(path: str, letters: Sequence[Any]) -> None:
    """Append ``letters`` to ``path``, one JSON object a line: the output, the alert's id and
    document, the attempts, the last error and when (what ``rarebird outputs list`` shows)."""
    from rarebird.sinks.escape import json_bytes
    from rarebird.timeutil import from_epoch_ms, iso

    if not letters:
        return
    try:
        with open(path, "ab") as out:
            for d in letters:
                out.write(json_bytes({
                    "output": d.sink, "alert_id": d.alert.id, "attempts": d.attempts,
                    "error": d.error, "at": iso(from_epoch_ms(d.at_ms)), "alert": d.alert.doc,
                }) + b"\n")  # fmt: skip
    except OSError as exc:
        click.echo(f"rarebird: cannot write dead letters to {path}: {exc.strerror}; they are "
                   "kept in the store (`rarebird outputs list`)", err=True)  # fmt: skip


def close_sinks(sinks: Sequence[Any]) -> None:
    for sink in sinks:
        sink.close()


output_options = [
    click.option("--output", "outputs", multiple=True, metavar="SPEC",
                 help="Also send alerts to: ndjson:PATH|-, es-bulk:PATH, sqlite:PATH, "
                      "http(s)://URL (webhook), syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT, "
                      "elasticsearch+https://HOST:9200 (docs/ELASTIC.md). Repeatable."),
    click.option("--dead-letter", metavar="PATH",
                 help="Also append the alerts an output refused for good to PATH, one JSON "
                      "object a line (they are kept in the store too: rarebird outputs list / "
                      "replay)."),
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


SUMMARY_HEADERS = ("alert", "anomaly time", "user", "host", "process", "score", "severity",
                   "status", "dups")  # fmt: skip


def summary_row(alert: Alert) -> list[Any]:
    """The columns ``alerts list`` and ``detect`` print."""
    return [
        alert.id[:12],
        iso(alert.original_time),
        ", ".join(alert.values("user.name")),
        ", ".join(alert.values("host.name")),
        ", ".join(alert.values("process.name")),
        round(alert.record_score, 2),
        alert.severity,
        alert.workflow_status,
        alert.suppressed_count or None,
    ]
