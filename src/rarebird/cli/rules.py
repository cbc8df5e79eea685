"""``rarebird detect``, ``rule run``, ``alerts ...``, ``exceptions ...``, ``value-lists ...``:
the detection rule, its alerts and its exceptions. Thin: parse, call the library, print."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from rarebird.cli._common import (
    EXIT_USAGE,
    handle_errors,
    main,
    print_json,
    print_ndjson,
    print_table,
)
from rarebird.clock import SYSTEM_CLOCK
from rarebird.errors import RarebirdError
from rarebird.sources import format_names
from rarebird.timeutil import iso, parse_timestamp

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


def _time(value: str, what: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def _open(path: str) -> Any:
    import rarebird.rules.executor  # noqa: F401  (registers the rule, alert, exception tables)
    from rarebird.store import open_store

    return open_store(path)


def _load_rule(path: str | None) -> Any:
    from rarebird.definitions.rule import load_rule

    return load_rule(path)


def _identity(rule: Any, rule_uuid: str | None, space: str | None, kibana_url: str | None) -> Any:
    from rarebird.alerts import RuleIdentity

    return RuleIdentity.for_rule(rule, rule_uuid=rule_uuid, space_id=space,
                                 kibana_base_url=kibana_url)  # fmt: skip


def _print_alerts(alerts: Sequence[Any], fmt: str, *, empty: str = "(no new alerts)") -> None:
    from rarebird.alerts import SUMMARY_HEADERS

    if fmt == "json":
        print_json([a.doc for a in alerts])
    elif fmt == "ndjson":
        print_ndjson(a.doc for a in alerts)
    else:
        print_table(SUMMARY_HEADERS, [a.summary_row() for a in alerts], empty=empty)


def _open_sinks(specs: Sequence[str], dead_letter: str | None, store_path: str) -> list[Any]:
    from rarebird.sinks import open_sink

    sinks = []
    for spec in specs:
        dl = dead_letter
        if dl is None and spec.startswith(("http://", "https://")):
            dl = str(Path(store_path).with_name(Path(store_path).name + ".webhook-dead-letters.ndjson"))  # fmt: skip
        sinks.append(open_sink(spec, dead_letter=dl))
    return sinks


def _close_sinks(sinks: Sequence[Any]) -> None:
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
                      "http(s)://URL (webhook), syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT. "
                      "Repeatable."),
    click.option("--dead-letter", metavar="PATH",
                 help="Webhook dead-letter file [default: next to the store]."),
    click.option("--rule-uuid", metavar="UUID",
                 help="Kibana rule id to derive alert ids from (to match a Kibana's ids)."),
    click.option("--space", metavar="ID", help="Kibana space [default: default]."),
    click.option("--kibana-url", metavar="URL", help="Kibana base URL, for kibana.alert.url."),
]  # fmt: skip


def with_output_options(func: Any) -> Any:
    for opt in reversed(output_options):
        func = opt(func)
    return func


# --------------------------------------------------------------------------------------------
# detect


@main.command()
@store_option
@click.option("--job", "job_path", metavar="JOB.json", help="Anomaly job (Elastic's JSON).")
@click.option("--datafeed", "datafeed_path", metavar="DATAFEED.json", help="Datafeed (Elastic's JSON).")  # fmt: skip
@rule_option
@format_option
@click.option("--input-format", type=click.Choice(("auto", *format_names())), default="auto",
              show_default=True, metavar="FORMAT", help="Input format, or auto.")  # fmt: skip
@click.option("--down", "downtime", multiple=True, metavar="START/END",
              help="Simulate the rule being down (no runs) between two times; repeatable.")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
@with_output_options
@click.argument("inputs", nargs=-1, required=True)
@handle_errors
def detect(
    store_path: str,
    job_path: str | None,
    datafeed_path: str | None,
    rule_path: str | None,
    fmt: str,
    input_format: str,
    downtime: tuple[str, ...],
    quiet: bool,
    outputs: tuple[str, ...],
    dead_letter: str | None,
    rule_uuid: str | None,
    space: str | None,
    kibana_url: str | None,
    inputs: tuple[str, ...],
) -> None:
    """Run the job and the rule together over historical events; print the new alerts.

    The rule fires every `interval` of event time, over buckets the datafeed would have
    finalised by then (`query_delay` after their end), as a live deployment would; runs
    continue after the input until the last bucket has left the rule's lookback. Alerts,
    results and model state go to the store, so a later `detect` on newer data continues.
    """
    from rarebird.definitions import load_datafeed, load_job
    from rarebird.rules.replay import replay
    from rarebird.sources import (
        SourceOptions,
        expand_inputs,
        load_builtin_formats,
        merge_by_time,
        open_source,
    )

    job = load_job(job_path)
    datafeed = load_datafeed(datafeed_path)
    rule = _load_rule(rule_path)
    downs = []
    for spec in downtime:
        start, sep, end = spec.partition("/")
        if not sep:
            raise click.BadParameter("expected START/END", param_hint="--down")
        downs.append((_time(start, "--down"), _time(end, "--down")))
    load_builtin_formats()
    options = SourceOptions(prefilter=datafeed.query.prefilter)
    sources = [open_source(p, input_format, options) for p in expand_inputs(list(inputs))]
    merged = merge_by_time(sources)
    store = _open(store_path)
    sinks = _open_sinks(outputs, dead_letter, store_path)
    try:
        report = replay(store, job, datafeed, rule, iter(merged),
                        identity=_identity(rule, rule_uuid, space, kibana_url), sinks=sinks,
                        downtime=downs)  # fmt: skip
    finally:
        try:
            _close_sinks(sinks)
        finally:
            store.close()
    _print_alerts(report.new_alerts, fmt)
    if quiet:
        return
    stats = merged.stats
    span = f" ({iso(report.first_run)} .. {iso(report.last_run)})" if report.first_run and report.last_run else ""  # fmt: skip
    lines = [
        f"rarebird: {stats.lines:,} lines read, {report.events:,} events matched the datafeed, "
        f"{report.job_stats.bucket_count:,} buckets",
        f"rarebird: {report.runs:,} rule runs{span}, query delay "
        f"{report.query_delay.total_seconds():g}s; {len(report.new_alerts)} new alert(s), "
        f"{report.suppressed} suppressed, {report.excepted} excepted",
    ]
    late = report.job_stats.out_of_order_timestamp_count
    if late:
        lines.append(f"rarebird: {late:,} event(s) older than the job's current bucket were "
                     "dropped (out of order), as Elastic's job does")  # fmt: skip
    if report.skipped_runs:
        lines.append(f"rarebird: {report.skipped_runs} run(s) skipped (--down)")
    for reason, count in sorted(stats.skipped.items()):
        lines.append(f"rarebird: skipped {count:,} input line(s): {reason}")
    for issue in stats.issues[:5]:
        lines.append(f"rarebird:   {issue}")
    for message, count in report.warnings.items():
        lines.append(f"rarebird: warning: {message}" + (f" ({count} runs)" if count > 1 else ""))
    for line in lines:
        click.echo(line, err=True)


# --------------------------------------------------------------------------------------------
# rule run


@main.group()
def rule() -> None:
    """Run the detection rule over the store."""


@rule.command("run")
@store_option
@rule_option
@click.option("--now", "now_text", metavar="TIME",
              help="Run as if at this time (ISO-8601 or epoch ms) [default: the clock].")  # fmt: skip
@format_option
@with_output_options
@handle_errors
def rule_run(
    store_path: str,
    rule_path: str | None,
    now_text: str | None,
    fmt: str,
    outputs: tuple[str, ...],
    dead_letter: str | None,
    rule_uuid: str | None,
    space: str | None,
    kibana_url: str | None,
) -> None:
    """Run the rule once (with Kibana's catch-up after missed runs); print the new alerts."""
    from rarebird.rules.executor import RuleExecutor

    now = _time(now_text, "--now") if now_text else SYSTEM_CLOCK.now()
    r = _load_rule(rule_path)
    store = _open(store_path)
    sinks = _open_sinks(outputs, dead_letter, store_path)
    try:
        executor = RuleExecutor(store, r, identity=_identity(r, rule_uuid, space, kibana_url),
                                sinks=sinks)  # fmt: skip
        run = executor.run(now)
    finally:
        try:
            _close_sinks(sinks)
        finally:
            store.close()
    _print_alerts(run.new_alerts, fmt)
    ranges = ", ".join(f"[{iso(x.start)}, {iso(x.end)}]" for x in run.ranges)
    click.echo(
        f"rarebird: rule run at {iso(now)} over {ranges}: {run.found} anomalies over the "
        f"threshold, {len(run.new_alerts)} new alert(s), {run.already_alerted} already alerted, "
        f"{run.suppressed} suppressed, {run.excepted_total} excepted",
        err=True,
    )
    for w in run.warnings:
        click.echo(f"rarebird: warning: {w}", err=True)


# --------------------------------------------------------------------------------------------
# alerts


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
@click.option("--since", help="Anomaly time at or after (ISO-8601).")
@click.option("--until", help="Anomaly time before (ISO-8601).")
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
    since: str | None,
    until: str | None,
    min_score: float | None,
    severity: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """Alerts, newest anomaly first."""
    from rarebird.alerts import AlertFilter, list_alerts

    flt = AlertFilter(
        statuses=statuses, user=user, host=host, rule_id=rule_id,
        since=_time(since, "--since") if since else None,
        until=_time(until, "--until") if until else None,
        min_score=min_score, severity=severity, limit=limit,
    )  # fmt: skip
    store = _open(store_path)
    try:
        found = list_alerts(store, flt)
    finally:
        store.close()
    _print_alerts(found, fmt, empty="(no alerts)")


@alerts.command("show")
@store_option
@click.argument("alert_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@handle_errors
def alerts_show(store_path: str, alert_id: str, fmt: str) -> None:
    """One alert: its document (json) or a summary with the investigation guide (text)."""
    from rarebird.alerts import get_alert

    store = _open(store_path)
    try:
        alert = get_alert(store, alert_id)
        events = _events_behind(store, alert)
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


def _events_behind(store: Any, alert: Any) -> list[dict[str, Any]]:
    """The events the job kept for the anomaly's by-field value in its bucket."""
    from datetime import timedelta

    from rarebird.documents import field_values
    from rarebird.store.results import search_events

    start = alert.original_time
    end = start + timedelta(seconds=int(alert.doc.get("bucket_span", 900)))
    by_name = str(alert.doc.get("by_field_name", "user.name"))
    by_value = str(alert.doc.get("by_field_value", ""))
    job_id = str(alert.doc.get("job_id", ""))
    if by_name == "user.name":
        return search_events(store, job_id, user=by_value, start=start, end=end, limit=50)
    return [
        ev
        for ev in search_events(store, job_id, start=start, end=end, limit=10_000)
        if by_value in [str(v) for v in field_values(ev, by_name)]
    ][:50]


def _workflow(store_path: str, ids: tuple[str, ...], status: str, user: str | None,
              reason: str | None) -> None:  # fmt: skip
    from rarebird.alerts import set_workflow_status

    store = _open(store_path)
    try:
        changed = set_workflow_status(store, list(ids), status, now=SYSTEM_CLOCK.now(),
                                      user=user, reason=reason)  # fmt: skip
    finally:
        store.close()
    for a in changed:
        click.echo(f"{a.id}  {status}")


user_option = click.option("--user", help="Who did it (kibana.alert.workflow_user).")


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


# --------------------------------------------------------------------------------------------
# exceptions


@main.group()
def exceptions() -> None:
    """Rule exceptions: Elastic exception items, schedule windows, allow-lists."""


def _item_rows(items: Sequence[Any]) -> list[list[Any]]:
    return [[i.item_id, i.list_id, i.name, i.describe(),
             iso(i.expire_time) if i.expire_time else None] for i in items]  # fmt: skip


@exceptions.command("list")
@store_option
@rule_option
@click.option("--list", "list_id", help="Only this exception list.")
@click.option("--all", "all_lists", is_flag=True, help="Every list in the store, not only the rule's.")  # fmt: skip
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@handle_errors
def exceptions_list(store_path: str, rule_path: str | None, list_id: str | None,
                    all_lists: bool, fmt: str) -> None:  # fmt: skip
    """The exception items the rule applies."""
    from rarebird.rules.exception_store import list_ids_for_rule, load_items

    r = _load_rule(rule_path)
    store = _open(store_path)
    try:
        if list_id:
            ids: list[str] | None = [list_id]
        elif all_lists:
            ids = None
        else:
            ids = list_ids_for_rule(store, r)
        items = load_items(store, ids)
    finally:
        store.close()
    if fmt == "json":
        print_json([i.to_elastic() for i in items])
    elif fmt == "ndjson":
        print_ndjson(i.to_elastic() for i in items)
    else:
        print_table(["item_id", "list", "name", "conditions", "expires"], _item_rows(items),
                    empty="(no exceptions)")  # fmt: skip


@exceptions.command("add")
@store_option
@rule_option
@click.option("--list", "list_id", help="Exception list [default: the rule's default list].")
@click.option("--name", help="Item name.")
@click.option("--description", default="")
@click.option("--entry", "entries", multiple=True, metavar="'FIELD OP [VALUE]'",
              help="A condition: OP is is, is-not, is-one-of, is-not-one-of (a,b,c), exists, "
                   "does-not-exist, matches, does-not-match (wildcards), in-list, not-in-list "
                   "(a value list id). Nested: 'PARENT>FIELD OP VALUE'. All must hold.")  # fmt: skip
@click.option("--window", "windows", multiple=True, metavar="'DAYS HH:MM-HH:MM ZONE'",
              help="Only during this schedule window, e.g. 'Sat,Sun 01:00-05:00 Europe/Berlin'; "
                   "any of several.")  # fmt: skip
@click.option(
    "--allow-parent",
    "parents",
    multiple=True,
    metavar="PATTERN",
    help="Allowed parent process (name or executable, fnmatch pattern).",
)
@click.option(
    "--allow-script",
    "scripts",
    multiple=True,
    metavar="PATTERN",
    help="Allowed script (in the parent's args, fnmatch pattern).",
)
@click.option("--expires", help="Stop applying at this time (ISO-8601).")
@click.option("--comment", "comments", multiple=True)
@click.option(
    "--from-alert", "from_alert", metavar="ID", help="Propose an item from this alert's fields."
)
@click.option(
    "--fields",
    default="user.name,host.name",
    show_default=True,
    help="With --from-alert: the fields to match.",
)
@click.option(
    "--with-parents",
    is_flag=True,
    help="With --from-alert: allow-list the parent processes of the events behind it.",
)
@click.option("--yes", "-y", is_flag=True, help="With --from-alert: save without asking.")
@click.option("--dry-run", is_flag=True, help="Show the item, do not save it.")
@handle_errors
def exceptions_add(
    store_path: str, rule_path: str | None, list_id: str | None, name: str | None,
    description: str, entries: tuple[str, ...], windows: tuple[str, ...],
    parents: tuple[str, ...], scripts: tuple[str, ...], expires: str | None,
    comments: tuple[str, ...], from_alert: str | None, fields: str, with_parents: bool,
    yes: bool, dry_run: bool,
) -> None:  # fmt: skip
    """Add an exception item to the rule (or to --list)."""
    from rarebird.alerts import get_alert
    from rarebird.rules.exception_store import (
        ensure_rule_default_list,
        load_value_lists,
        new_item,
        propose_item,
        save_item,
    )
    from rarebird.rules.exceptions import AllowList, ScheduleWindow

    r = _load_rule(rule_path)
    now = SYSTEM_CLOCK.now()
    store = _open(store_path)
    try:
        target = list_id or ensure_rule_default_list(store, r, now)
        if (
            list_id
            and not store.conn.execute(
                "SELECT 1 FROM exception_lists WHERE list_id = ?", (list_id,)
            ).fetchone()
        ):
            raise click.UsageError(f"no exception list {list_id!r} (import one, or omit --list)")
        if from_alert:
            alert = get_alert(store, from_alert)
            allowed: list[str] = []
            if with_parents:
                for ev in _events_behind(store, alert):
                    proc = ev.get("process") or {}
                    parent = proc.get("parent") or {} if isinstance(proc, dict) else {}
                    exe = parent.get("executable") or parent.get("name")
                    if exe and exe not in allowed:
                        allowed.append(str(exe))
            item = propose_item(alert.doc, list_id=target, now=now,
                                fields=[f.strip() for f in fields.split(",") if f.strip()],
                                parents=allowed, name=name)  # fmt: skip
        else:
            value_lists = load_value_lists(store)
            parsed = _parse_entries(entries, value_lists)
            try:
                wins = [ScheduleWindow.parse(w) for w in windows]
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--window") from None
            allow = AllowList(tuple(parents), tuple(scripts)) if parents or scripts else None
            if not parsed and not wins and allow is None:
                raise click.UsageError("give at least one --entry, --window, --allow-parent or "
                                       "--allow-script (or --from-alert)")  # fmt: skip
            item = new_item(
                list_id=target, name=name or "rarebird exception", description=description,
                entries=parsed, windows=wins, allow=allow, now=now, comments=comments,
                expire_time=_time(expires, "--expires") if expires else None,
            )  # fmt: skip
        click.echo(f"{item.item_id}  {item.name}: {item.describe()}")
        if dry_run:
            return
        if from_alert and not yes and not click.confirm("Add this exception?", default=False):
            click.echo("not added", err=True)
            return
        save_item(store, item)
        click.echo(f"added to list {target}", err=True)
    finally:
        store.close()


def _parse_entries(texts: Sequence[str], value_lists: Any) -> list[Any]:
    from rarebird.rules.exceptions import (
        ExistsEntry,
        MatchAnyEntry,
        MatchEntry,
        NestedEntry,
        parse_entry_text,
    )

    out: list[Any] = []
    for text in texts:
        parent = None
        body = text
        head = text.split(None, 1)[0] if text.strip() else ""
        if ">" in head:
            parent, _, rest = text.partition(">")
            body = rest
        try:
            entry = parse_entry_text(body, value_lists)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--entry") from None
        if parent is None:
            out.append(entry)
            continue
        if not isinstance(entry, MatchEntry | MatchAnyEntry | ExistsEntry):
            raise click.BadParameter(
                "nested conditions may only use is, is-one-of, exists", param_hint="--entry"
            )
        if out and isinstance(out[-1], NestedEntry) and out[-1].field == parent.strip():
            out[-1] = NestedEntry(out[-1].field, (*out[-1].entries, entry))
        else:
            out.append(NestedEntry(parent.strip(), (entry,)))
    return out


@exceptions.command("remove")
@store_option
@click.argument("item_id")
@handle_errors
def exceptions_remove(store_path: str, item_id: str) -> None:
    """Remove an exception item by item_id (or id)."""
    from rarebird.rules.exception_store import delete_item

    store = _open(store_path)
    try:
        removed = delete_item(store, item_id)
    finally:
        store.close()
    if removed is None:
        click.echo(f"rarebird: error: no exception item {item_id!r}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"removed {removed.item_id}  {removed.name}")


@exceptions.command("import")
@store_option
@rule_option
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace lists and items that exist.")
@click.option("--no-attach", is_flag=True, help="Do not make the rule apply the imported lists.")
@handle_errors
def exceptions_import(store_path: str, rule_path: str | None, path: str, overwrite: bool,
                      no_attach: bool) -> None:  # fmt: skip
    """Import Kibana exception-list NDJSON (lists and items); the rule applies them."""
    from rarebird.rules.exception_store import import_exceptions
    from rarebird.rules.exceptions import parse_exceptions_ndjson

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RarebirdError(f"{path}: cannot read: {exc.strerror or exc}") from None
    parsed = parse_exceptions_ndjson(text, path)
    r = _load_rule(rule_path)
    store = _open(store_path)
    try:
        summary = import_exceptions(store, parsed, overwrite=overwrite,
                                    attach_rule_id=None if no_attach else r.rule_id)  # fmt: skip
    finally:
        store.close()
    click.echo(
        f"lists: {summary.lists_created} created, {summary.lists_updated} replaced; items: "
        f"{summary.items_created} created, {summary.items_updated} replaced, "
        f"{summary.items_skipped} already there"
    )
    for err in summary.errors:
        click.echo(f"rarebird: error: {err}", err=True)
    if summary.errors:
        sys.exit(EXIT_USAGE)


@exceptions.command("export")
@store_option
@rule_option
@click.option("--list", "list_ids", multiple=True, help="Lists to export [default: the rule's].")
@click.option("--output", "-o", "out", metavar="FILE", help="Write here [default: stdout].")
@click.option(
    "--elastic-only",
    is_flag=True,
    help="Leave out items with rarebird-only conditions (windows, allow-lists).",
)
@handle_errors
def exceptions_export(store_path: str, rule_path: str | None, list_ids: tuple[str, ...],
                      out: str | None, elastic_only: bool) -> None:  # fmt: skip
    """Export exception lists and items as Kibana NDJSON."""
    from rarebird.rules.exception_store import list_ids_for_rule, load_items, load_lists
    from rarebird.rules.exceptions import exceptions_to_ndjson

    r = _load_rule(rule_path)
    store = _open(store_path)
    try:
        ids = list(list_ids) or list_ids_for_rule(store, r)
        lists = load_lists(store, ids)
        items = load_items(store, [x.list_id for x in lists])
    finally:
        store.close()
    left_out = [i for i in items if not i.is_elastic_only] if elastic_only else []
    items = [i for i in items if i not in left_out]
    text = exceptions_to_ndjson(lists, items)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    for i in left_out:
        click.echo(f"rarebird: left out {i.item_id} ({i.name}): rarebird-only conditions", err=True)


# --------------------------------------------------------------------------------------------
# value lists


@main.group("value-lists")
def value_lists() -> None:
    """Value lists for 'in-list' exception entries (Elastic's /api/lists)."""


@value_lists.command("import")
@store_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--id", "list_id", help="List id [default: the file name].")
@click.option("--type", "list_type", default="keyword", show_default=True,
              help="keyword, ip, ip_range, text, ...")  # fmt: skip
@click.option("--name", help="Display name.")
@click.option("--append", is_flag=True, help="Add to the list instead of replacing its values.")
@handle_errors
def value_lists_import(store_path: str, path: str, list_id: str | None, list_type: str,
                       name: str | None, append: bool) -> None:  # fmt: skip
    """Import a value list: one value per line (a file of user names, say)."""
    from rarebird.rules.exception_store import save_value_list
    from rarebird.rules.exceptions import ValueList, read_value_list_file

    values = read_value_list_file(path)
    lid = list_id or Path(path).name
    store = _open(store_path)
    try:
        save_value_list(store, ValueList(lid, list_type, frozenset(values), name or lid),
                        SYSTEM_CLOCK.now(), replace_values=not append)  # fmt: skip
    finally:
        store.close()
    click.echo(f"{lid}: {len(set(values))} value(s) ({list_type})")


@value_lists.command("list")
@store_option
@handle_errors
def value_lists_list(store_path: str) -> None:
    """Value lists in the store."""
    from rarebird.rules.exception_store import load_value_lists

    store = _open(store_path)
    try:
        lists = load_value_lists(store)
    finally:
        store.close()
    print_table(["id", "type", "values", "name"],
                [[v.id, v.type, len(v.values), v.name] for v in lists.values()],
                empty="(no value lists)")  # fmt: skip


@value_lists.command("remove")
@store_option
@click.argument("list_id")
@handle_errors
def value_lists_remove(store_path: str, list_id: str) -> None:
    """Remove a value list (entries that use it stop matching)."""
    from rarebird.rules.exception_store import delete_value_list

    store = _open(store_path)
    try:
        found = delete_value_list(store, list_id)
    finally:
        store.close()
    if not found:
        click.echo(f"rarebird: error: no value list {list_id!r}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"removed {list_id}")
