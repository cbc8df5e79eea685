"""``rarebird job run|stats`` and ``rarebird results``: run the anomaly job, look at results."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from rarebird.cli._common import (
    EXIT_INPUT,
    handle_errors,
    main,
    open_existing_store,
    reading_progress,
    store_option,
)
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
from rarebird.cli._output import Rows, echo, emit, emit_document, format_option
from rarebird.datafeed.feed import TimeLimits
from rarebird.definitions.family import JobDefinitions, select_jobs
from rarebird.run.aggregate import replay_aggregated
from rarebird.run.engine import Engine
from rarebird.run.replay import (
    InputOptions,
    RunSummary,
    replay_inputs,
    replay_inputs_many,
)
from rarebird.store import open_store
from rarebird.store.jobs import load_job as load_stored_job
from rarebird.store.lock import StoreLock


@main.group()
def job() -> None:
    """Run the anomaly detection job over events."""


@job.command("run")
@store_option
@definition_options
@input_options
@profile_option
@engine_options
@max_future_option
@click.option("--job-id", help="Run under this job id (default: the job file's id).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show lines read, events kept and the rate while reading (default: on a terminal).",
)
@click.option("--strict", is_flag=True, help="Exit with code 2 if any input line was bad.")
@click.option(
    "--renormalize",
    is_flag=True,
    help="Rescore stored results when the score distribution changes, as Elasticsearch does "
    "during a datafeed's lookback (default: keep the engine's initial scores).",
)
@click.option(
    "--aggregate",
    is_flag=True,
    help="Parquet inputs: the scan (DuckDB, or Spark with --engine spark) also counts each "
    "user's events per bucket and only those counts reach the job. The same records, faster; "
    "the events are not kept for triage (docs/SCALE.md).",
)
@click.argument("inputs", nargs=-1, required=True, metavar="FILES...")
@handle_errors
def job_run(
    store_path: str,
    job_path: tuple[str, ...],
    families: tuple[str, ...],
    datafeed_path: str | None,
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
    job_id: str | None,
    quiet: bool,
    progress: bool | None,
    strict: bool,
    renormalize: bool,
    aggregate: bool,
    inputs: tuple[str, ...],
) -> None:
    """Replay events from FILES through the job; write results and model state to the store.

    FILES are files, folders (every file inside, rotated and .gz logs included), quoted globs,
    or - for standard input. Several inputs are merged into one time order. At the end of the
    input every bucket up to the last event's is finalised. Running again on later files
    continues the same job.
    """
    defs = select_jobs(job_path, families, datafeed_path=datafeed_path, job_id=job_id,
                       with_rule=False)  # fmt: skip
    meter, show = reading_progress(inputs, quiet=quiet, progress=progress)
    settings = input_settings(input_format, passwd_file, group_file, host_name, identity, workers,
                              scan_engine, spark_master)  # fmt: skip
    if len(defs) > 1:
        if aggregate:
            raise click.UsageError("--aggregate runs one job")
        if profile_name != "default":
            raise click.UsageError("--profile applies to one job")
        check_profile_settings(profile_name, profile_settings)
        _run_many(defs, store_path, inputs, settings, show, meter, quiet, strict, renormalize,
                  time_limits)  # fmt: skip
        return
    if aggregate and identity != "user":
        raise click.UsageError("--aggregate models user.name as it is: not with --identity login")
    job_cfg, datafeed_cfg = defs[0].job, defs[0].datafeed
    profile = make_profile(profile_name, job_cfg, profile_settings)
    if profile is not None:
        if scan_engine != "local":
            # the profile learns every host's first event; Spark scans only what the datafeed keeps
            raise click.UsageError("--profile quiet reads every event: use the local engine")
        if aggregate:
            raise click.UsageError("--profile quiet needs every event: not with --aggregate")
        settings = dataclasses.replace(settings, every_event=True)
    with StoreLock(store_path, "job run"), open_store(store_path) as store:
        engine = Engine(store, job_cfg, datafeed_cfg, renormalize=renormalize, profile=profile,
                        time_limits=time_limits)  # fmt: skip
        try:
            if aggregate:
                summary = replay_aggregated(engine, inputs, settings, on_progress=show)
            else:
                summary = replay_inputs(engine, inputs, settings, on_progress=show)
        finally:
            meter.done()
        if not quiet:
            _print_summary(summary, store_path, engine)
    if strict and summary.read.skipped_total:
        sys.exit(EXIT_INPUT)


def _run_many(
    defs: list[JobDefinitions], store_path: str, inputs: tuple[str, ...], settings: InputOptions,
    show: Any, meter: Any, quiet: bool, strict: bool, renormalize: bool, time_limits: TimeLimits,
) -> None:  # fmt: skip
    """``job run`` over several jobs: one pass over the inputs feeds each job."""
    with StoreLock(store_path, "job run"), open_store(store_path) as store:
        engines = [Engine(store, d.job, d.datafeed, renormalize=renormalize,
                          time_limits=time_limits) for d in defs]  # fmt: skip
        try:
            summary = replay_inputs_many(engines, inputs, settings, on_progress=show)
        finally:
            meter.done()
    if not quiet:
        read = summary.read
        echo(f"read    {read.lines:,} lines, {read.bytes / 1e6:,.1f} MB in {summary.seconds:.2f} s "
             f"(once, for {len(defs)} jobs; {read.prefiltered:,} skipped unparsed)", err=True)  # fmt: skip
        for job_id, report in summary.reports:
            echo(f"job     {job_id}: {report.events:,} events matched its datafeed, "
                 f"{report.buckets:,} buckets finalised, {report.records:,} anomaly records",
                 err=True)  # fmt: skip
        echo(f"store   {store_path}", err=True)
    if strict and summary.read.skipped_total:
        sys.exit(EXIT_INPUT)


def _print_summary(summary: RunSummary, store_path: str, engine: Engine) -> None:
    anomaly_job = engine.job
    for line in summary.inputs:
        echo(f"input   {line}", err=True)
    read = summary.read
    echo(
        f"read    {read.lines:,} lines, {read.bytes / 1e6:,.1f} MB in {summary.seconds:.2f} s "
        f"({summary.events_per_second:,.0f} lines/s)",
        err=True,
    )
    echo(
        f"kept    {summary.matched:,} events matched the datafeed "
        f"({read.prefiltered:,} lines skipped unparsed by the prefilter, "
        f"{summary.not_matched:,} parsed events did not match)",
        err=True,
    )
    if read.skipped:
        reasons = ", ".join(f"{n:,} {why}" for why, n in read.skipped.most_common())
        echo(f"skipped {read.skipped_total:,} lines: {reasons}", err=True, style="yellow")
        for issue in read.issues[:10]:
            echo(f"        {issue}", err=True)
        if read.skipped_total > 10:
            echo(f"        ... ({read.skipped_total - 10:,} more)", err=True)
    quarantine = summary.report.quarantine
    if quarantine is not None and quarantine.total:
        for line in quarantine.describe(engine.clock.now()):
            echo(f"time    {line}", err=True, style="yellow")
        for example in quarantine.examples[:10]:
            echo(f"        {example}", err=True)
    js = summary.report.job_stats
    extra = []
    if js.missing_field_count:
        extra.append(f"{js.missing_field_count:,} without {anomaly_job.by_field} (not modelled)")
    if js.out_of_order_timestamp_count:
        extra.append(f"{js.out_of_order_timestamp_count:,} out of order (dropped)")
    if js.new_values_refused:
        extra.append(
            f"{js.new_values_refused:,} new {anomaly_job.by_field} values refused at the memory limit"
        )
    if extra:
        echo("job     " + "; ".join(extra), err=True, style="yellow")
    hint = missing_names_hint(anomaly_job.by_field, js.missing_field_count)
    if hint:
        echo(f"hint    {hint}", err=True)
    echo(
        f"job     {anomaly_job.config.job_id}: {summary.report.buckets:,} buckets finalised, "
        f"{summary.report.records:,} anomaly records, {js.total_by_field_count:,} "
        f"{anomaly_job.by_field} values modelled, memory {js.model_bytes / 1e6:.1f} MB "
        f"({js.memory_status})",
        err=True,
    )
    echo(f"store   {store_path}", err=True)


@job.command("stats")
@store_option
@definition_options
@click.option("--job-id", help="Job id (default: the job file's id).")
@format_option(default="json")
@handle_errors
def job_stats(
    store_path: str, job_path: tuple[str, ...], families: tuple[str, ...],
    datafeed_path: str | None, job_id: str | None, fmt: str,
) -> None:  # fmt: skip
    """Show the job's counts and model size as Elastic's job statistics do."""
    defs = select_jobs(job_path, families, datafeed_path=datafeed_path, job_id=job_id,
                       with_rule=False)  # fmt: skip
    if len(defs) > 1:
        raise click.UsageError("job stats shows one job: give one --job")
    job_cfg = defs[0].job
    with open_existing_store(store_path) as store:
        anomaly_job = load_stored_job(store, job_cfg)
        doc = {"job_id": job_cfg.job_id, **anomaly_job.stats.to_dict()}
    emit_document(
        doc, fmt, lambda: emit(Rows.of(["statistic", "value"], doc.items(), header=False), "table")
    )
