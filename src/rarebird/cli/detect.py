"""``rarebird detect``: the job and the rule together over historical events."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import click

from rarebird.cli._common import handle_errors, main, reading_progress, time_ranges
from rarebird.cli._inputs import (
    check_profile_settings,
    definition_options,
    engine_options,
    input_options,
    input_settings,
    make_profile,
    max_future_option,
    missing_names_hint,
    profile_option,
)
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
from rarebird.datafeed.feed import TimeLimits
from rarebird.store.lock import StoreLock
from rarebird.timeutil import iso


@main.command()
@store_option
@definition_options
@rule_option
@format_option()
@input_options
@profile_option
@engine_options
@max_future_option
@click.option("--down", "downtime", multiple=True, metavar="START/END", callback=time_ranges,
              help="Simulate the rule being down (no runs) between two times; repeatable.")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary on stderr.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show lines read, events kept and the rate while reading (default: on a terminal).",
)
@with_output_options
@click.argument("inputs", nargs=-1, required=True)
@handle_errors
def detect(
    store_path: str,
    job_path: tuple[str, ...],
    families: tuple[str, ...],
    datafeed_path: str | None,
    rule_path: str | None,
    fmt: str,
    input_format: str,
    passwd_file: str | None,
    group_file: str | None,
    host_name: str | None,
    identity: str,
    workers: int,
    profile_name: str,
    profile_settings: Any,
    scan_engine: str,
    spark_master: str | None,
    time_limits: TimeLimits,
    downtime: list[tuple[datetime, datetime]],
    quiet: bool,
    progress: bool | None,
    outputs: tuple[str, ...],
    dead_letter: str | None,
    rule_uuid: str | None,
    space: str | None,
    anomaly_index: str | None,
    kibana_url: str | None,
    kibana_version: str | None,
    inputs: tuple[str, ...],
) -> None:
    """Run the job and the rule together over historical events; print the new alerts.

    The rule fires every `interval` of event time, over buckets the datafeed would have
    finalised by then (`query_delay` after their end), as a live deployment would; runs
    continue after the input until the last bucket has left the rule's lookback. Alerts,
    results and model state go to the store, so a later `detect` on newer data continues.
    Inputs are read as by `job run` (the same options).
    """
    from rarebird.definitions.family import select_jobs
    from rarebird.run.engine import Engine
    from rarebird.run.replay import replay_inputs

    check_dead_letter(outputs, dead_letter)
    defs = select_jobs(job_path, families, datafeed_path=datafeed_path, with_rule=False)
    settings = input_settings(input_format, passwd_file, group_file, host_name, identity, workers,
                              scan_engine, spark_master)  # fmt: skip
    if len(defs) > 1:
        if profile_name != "default":
            raise click.UsageError("--profile applies to one job")
        check_profile_settings(profile_name, profile_settings)
        if rule_path or rule_uuid:
            raise click.UsageError("--rule/--rule-uuid apply to one job: each packaged job "
                                   "brings its own rule")  # fmt: skip
        _detect_many(store_path, job_path, families, inputs, settings, downtime, quiet, progress,
                     fmt, outputs, dead_letter, (space, kibana_url, anomaly_index, kibana_version),
                     time_limits)  # fmt: skip
        return
    job, datafeed = defs[0].job, defs[0].datafeed
    packaged_rule = rule_path is None and job_path and not job_path[0].endswith(".json")
    rule = (select_jobs(job_path)[0].rule if packaged_rule else None) or load_rule(rule_path)
    profile = make_profile(profile_name, job, profile_settings)
    if profile is not None:
        if scan_engine != "local":
            # the profile learns every host's first event; Spark scans only what the datafeed keeps
            raise click.UsageError("--profile quiet reads every event: use the local engine")
        settings = dataclasses.replace(settings, every_event=True)
    meter, show = reading_progress(inputs, quiet=quiet, progress=progress)
    lock = StoreLock(store_path, "detect")
    lock.acquire()
    try:
        store = open_rule_store(store_path, create=True)
    except BaseException:
        lock.release()
        raise
    sinks = open_sinks(outputs)
    try:
        engine = Engine(store, job, datafeed, rule, outbox=bool(sinks), profile=profile,
                        time_limits=time_limits, identity=rule_identity(rule, rule_uuid, space, kibana_url, anomaly_index, kibana_version))  # fmt: skip
        summary = replay_inputs(engine, inputs, settings, downtime=downtime, on_progress=show)
        meter.done()
        deliver_outbox(store, sinks, dead_letter)
    finally:
        meter.done()
        try:
            close_sinks(sinks)
        finally:
            store.close()
            lock.release()
    report = summary.report
    print_alerts(report.new_alerts, fmt)
    if quiet:
        return
    stats = summary.read
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
    hint = missing_names_hint(job.detectors[0].by_field_name, report.job_stats.missing_field_count)
    if hint:
        lines.append(f"rarebird: {hint}")
    refused = report.job_stats.new_values_refused
    if refused:
        lines.append(f"rarebird: {refused:,} event(s) of new users were refused at the job's "
                     f"model_memory_limit (memory status {report.job_stats.memory_status}), as "
                     "Elastic's job does at hard_limit: raise analysis_limits.model_memory_limit")  # fmt: skip
    if report.quarantine is not None and report.quarantine.total:
        for line in report.quarantine.describe(SYSTEM_CLOCK.now()):
            lines.append(f"rarebird: {line}")
        lines.extend(f"rarebird:   {example}" for example in report.quarantine.examples[:5])
    if profile is not None:
        lines.append(f"rarebird: profile {profile.name}: {len(profile.quieted):,} record(s) over "
                     "the threshold quieted (docs/RULE.md)")  # fmt: skip
    if report.skipped_runs:
        lines.append(f"rarebird: {report.skipped_runs} run(s) skipped (--down)")
    for reason, count in sorted(stats.skipped.items()):
        lines.append(f"rarebird: skipped {count:,} input line(s): {reason}")
    for issue in stats.issues[:5]:
        lines.append(f"rarebird:   {issue}")
    for message, count in report.warnings.items():
        lines.append(f"rarebird: warning: {message}" + (f" ({count} runs)" if count > 1 else ""))
    for line in lines:
        echo(line, err=True)


def _detect_many(
    store_path: str, job_path: tuple[str, ...], families: tuple[str, ...],
    inputs: tuple[str, ...], settings: Any, downtime: list[tuple[datetime, datetime]],
    quiet: bool, progress: bool | None, fmt: str, outputs: tuple[str, ...],
    dead_letter: str | None, kibana: tuple[str | None, ...], time_limits: TimeLimits,
) -> None:  # fmt: skip
    """``detect`` over several packaged jobs: one pass over the inputs feeds each job, and each
    job's own rule alerts on its records."""
    from rarebird.definitions.family import select_jobs
    from rarebird.run.engine import Engine
    from rarebird.run.replay import replay_inputs_many

    defs = select_jobs(job_path, families)
    meter, show = reading_progress(inputs, quiet=quiet, progress=progress)
    with StoreLock(store_path, "detect"):
        store = open_rule_store(store_path, create=True)
        sinks = open_sinks(outputs)
        try:
            engines = [
                Engine(store, d.job, d.datafeed, d.rule, outbox=bool(sinks),
                       time_limits=time_limits, identity=rule_identity(d.rule, None, *kibana))
                for d in defs
            ]  # fmt: skip
            summary = replay_inputs_many(engines, inputs, settings, downtime=downtime,
                                         on_progress=show)  # fmt: skip
            meter.done()
            deliver_outbox(store, sinks, dead_letter)
        finally:
            meter.done()
            try:
                close_sinks(sinks)
            finally:
                store.close()
    alerts = [a for _, report in summary.reports for a in report.new_alerts]
    print_alerts(tuple(alerts), fmt)
    if quiet:
        return
    echo(f"rarebird: {summary.read.lines:,} lines read once for {len(defs)} jobs", err=True)
    for (job_id, report), d in zip(summary.reports, defs, strict=True):
        rule = d.rule.rule_id if d.rule is not None else "-"
        echo(f"rarebird: {job_id}: {report.events:,} events matched its datafeed, "
             f"{report.runs:,} runs of rule {rule}, {len(report.new_alerts)} new alert(s)",
             err=True)  # fmt: skip
