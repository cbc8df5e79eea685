"""``rarebird detect``: the job and the rule together over historical events."""

from __future__ import annotations

from datetime import datetime

import click

from rarebird.cli._common import handle_errors, main, time_ranges
from rarebird.cli._rules_common import (
    close_sinks,
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
from rarebird.timeutil import iso


@main.command()
@store_option
@click.option("--job", "job_path", metavar="JOB.json", help="Anomaly job (Elastic's JSON).")
@click.option("--datafeed", "datafeed_path", metavar="DATAFEED.json", help="Datafeed (Elastic's JSON).")  # fmt: skip
@rule_option
@format_option
@click.option("--input-format", default="auto", show_default=True, help="Input format, or auto.")
@click.option("--down", "downtime", multiple=True, metavar="START/END", callback=time_ranges,
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
    downtime: list[tuple[datetime, datetime]],
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
    rule = load_rule(rule_path)
    load_builtin_formats()
    options = SourceOptions(prefilter=datafeed.query.prefilter)
    sources = [open_source(p, input_format, options) for p in expand_inputs(list(inputs))]
    merged = merge_by_time(sources)
    store = open_rule_store(store_path)
    sinks = open_sinks(outputs, dead_letter, store_path)
    try:
        report = replay(store, job, datafeed, rule, iter(merged),
                        identity=rule_identity(rule, rule_uuid, space, kibana_url), sinks=sinks,
                        downtime=downtime)  # fmt: skip
    finally:
        try:
            close_sinks(sinks)
        finally:
            store.close()
    print_alerts(report.new_alerts, fmt)
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
