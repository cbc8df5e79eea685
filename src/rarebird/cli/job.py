"""``rarebird job run|stats`` and ``rarebird results``: run the anomaly job, look at results."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from rarebird.cli._common import (
    EXIT_INPUT,
    Progress,
    handle_errors,
    main,
    print_json,
    print_ndjson,
    print_table,
    time_value,
)
from rarebird.definitions import load_datafeed, load_job
from rarebird.run.engine import Engine
from rarebird.run.replay import InputOptions, RunSummary, replay_inputs
from rarebird.run.replay import Progress as RunProgress
from rarebird.store import open_store
from rarebird.store.jobs import load_job as load_stored_job
from rarebird.store.lock import StoreLock
from rarebird.store.results import get_record_details, search_results
from rarebird.timeutil import from_epoch_ms, iso

DEFAULT_STORE = "rarebird.db"


def store_option(func: Any) -> Any:
    return click.option(
        "--store",
        "store_path",
        default=DEFAULT_STORE,
        show_default=True,
        metavar="PATH",
        help="SQLite file holding results, model state and alerts.",
    )(func)


def definition_options(func: Any) -> Any:
    func = click.option(
        "--datafeed",
        "datafeed_path",
        metavar="DATAFEED.json",
        help="Elastic datafeed JSON (default: the packaged v3_linux_network_connection_discovery datafeed).",
    )(func)
    return click.option(
        "--job",
        "job_path",
        metavar="JOB.json",
        help="Elastic anomaly job JSON (default: the packaged v3_linux_network_connection_discovery job).",
    )(func)


def input_options(func: Any) -> Any:
    func = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Processes reading one large raw auditd file in parallel.",
    )(func)
    func = click.option(
        "--identity",
        type=click.Choice(["user", "login"]),
        default="user",
        show_default=True,
        help="Model user.name as Elastic does, or the login user behind sudo (raw auditd).",
    )(func)
    func = click.option("--host-name", metavar="NAME", help="host.name for inputs that lack one.")(
        func
    )
    func = click.option(
        "--group", "group_file", metavar="FILE", help="group(5) file for numeric gids."
    )(func)
    func = click.option(
        "--passwd", "passwd_file", metavar="FILE", help="passwd(5) file for numeric uids."
    )(func)
    return click.option(
        "--input-format",
        default="auto",
        show_default=True,
        metavar="FORMAT",
        help="auto (sniffed from the first lines), ecs, auditd, laurel, sysmon or osquery.",
    )(func)


def input_settings(
    input_format: str,
    passwd_file: str | None,
    group_file: str | None,
    host_name: str | None,
    identity: str,
    workers: int = 1,
) -> InputOptions:
    """The input options every command that reads events shares (``input_options``)."""
    return InputOptions(
        format=input_format,
        identity=identity,
        passwd=passwd_file,
        group=group_file,
        host_name=host_name,
        workers=workers,
    )


@main.group()
def job() -> None:
    """Run the anomaly detection job over events."""


@job.command("run")
@store_option
@definition_options
@input_options
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
    "for a running job (default: keep the engine's initial scores).",
)
@click.argument("inputs", nargs=-1, required=True, metavar="FILES...")
@handle_errors
def job_run(
    store_path: str,
    job_path: str | None,
    datafeed_path: str | None,
    input_format: str,
    passwd_file: str | None,
    group_file: str | None,
    host_name: str | None,
    identity: str,
    workers: int,
    job_id: str | None,
    quiet: bool,
    progress: bool | None,
    strict: bool,
    renormalize: bool,
    inputs: tuple[str, ...],
) -> None:
    """Replay events from FILES through the job; write results and model state to the store.

    FILES are files, folders (every file inside, rotated and .gz logs included), quoted globs,
    or - for standard input. Several inputs are merged into one time order. At the end of the
    input every bucket up to the last event's is finalised. Running again on later files
    continues the same job.
    """
    job_cfg = load_job(job_path, job_id)
    datafeed_cfg = load_datafeed(datafeed_path)
    shown = not quiet and (sys.stderr.isatty() if progress is None else progress)
    meter = Progress(enabled=shown)

    def show(p: RunProgress) -> None:
        meter.update(p.lines, p.kept, f"{p.bytes / 1e6:,.0f} MB", force=p.final)

    settings = input_settings(input_format, passwd_file, group_file, host_name, identity, workers)
    with StoreLock(store_path, "job run"), open_store(store_path) as store:
        engine = Engine(store, job_cfg, datafeed_cfg, renormalize=renormalize)
        summary = replay_inputs(engine, inputs, settings, on_progress=show)
        meter.done()
        if not quiet:
            _print_summary(summary, store_path, engine)
    if strict and summary.read.skipped_total:
        sys.exit(EXIT_INPUT)


def _print_summary(summary: RunSummary, store_path: str, engine: Engine) -> None:
    anomaly_job = engine.job
    echo = click.echo
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
        echo(click.style(f"skipped {read.skipped_total:,} lines: {reasons}", fg="yellow"), err=True)
        for issue in read.issues[:10]:
            echo(f"        {issue}", err=True)
        if read.skipped_total > 10:
            echo(f"        ... ({read.skipped_total - 10:,} more)", err=True)
    quarantine = summary.report.quarantine
    if quarantine is not None and quarantine.total:
        for line in quarantine.describe(engine.clock.now()):
            echo(click.style(f"time    {line}", fg="yellow"), err=True)
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
        echo(click.style("job     " + "; ".join(extra), fg="yellow"), err=True)
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
@handle_errors
def job_stats(
    store_path: str, job_path: str | None, datafeed_path: str | None, job_id: str | None
) -> None:
    """Show the job's counts and model size as Elastic's job statistics do."""
    job_cfg = load_job(job_path, job_id)
    load_datafeed(datafeed_path)  # a bad datafeed file is an error here too
    with open_store(store_path) as store:
        anomaly_job = load_stored_job(store, job_cfg)
        doc = {"job_id": job_cfg.job_id, **anomaly_job.stats.to_dict()}
    print_json(doc)


_RESULT_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "record": [
        ("time", "timestamp"),
        ("record_score", "record_score"),
        ("initial", "initial_record_score"),
        ("probability", "probability"),
        ("user", "by_field_value"),
        ("host", "host.name"),
        ("process", "process.name"),
        ("args", "process.args"),
        ("why", "_why"),
    ],
    "bucket": [
        ("time", "timestamp"),
        ("anomaly_score", "anomaly_score"),
        ("event_count", "event_count"),
        ("influencers", "_bucket_influencers"),
    ],
    "influencer": [
        ("time", "timestamp"),
        ("influencer_score", "influencer_score"),
        ("probability", "probability"),
        ("field", "influencer_field_name"),
        ("value", "influencer_field_value"),
    ],
}


def _cell(doc: dict[str, Any], key: str) -> Any:
    if key == "timestamp":
        return iso(from_epoch_ms(int(doc["timestamp"])))
    if key == "_why":
        expl = doc.get("anomaly_score_explanation") or {}
        parts = []
        if expl.get("by_field_first_occurrence"):
            parts.append("first time seen")
        rarity = expl.get("by_field_relative_rarity")
        if rarity is not None:
            parts.append(f"{rarity:,.0f}x rarer than typical")
        return "; ".join(parts)
    if key == "_bucket_influencers":
        return ", ".join(
            f"{b['influencer_field_name']}={b['anomaly_score']:.1f}"
            for b in doc.get("bucket_influencers", [])
            if b["anomaly_score"] > 0
        )
    value = doc.get(key)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


@main.command("results")
@store_option
@click.option("--job-id", help="Only this job's results (default: every job in the store).")
@click.option(
    "--type",
    "result_type",
    type=click.Choice(["record", "bucket", "influencer"]),
    default="record",
    show_default=True,
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ndjson"]),
    default="table",
    show_default=True,
)
@click.option(
    "--start",
    metavar="TIME",
    callback=time_value,
    help="Only buckets starting at or after this time (ISO-8601, epoch ms, now-1h, 7d).",
)
@click.option(
    "--end",
    metavar="TIME",
    callback=time_value,
    help="Only buckets starting at or before this time (ISO-8601, epoch ms, now-1h, 7d).",
)
@click.option("--user", help="Only this by-field value (records) / influencer value.")
@click.option("--min-score", type=float, help="Only results scoring at least this (0-100).")
@click.option("--sort", type=click.Choice(["score", "time"]), default="score", show_default=True)
@click.option(
    "--limit", type=int, default=50, show_default=True, help="At most this many (0: all)."
)
@click.option("--include-interim", is_flag=True, help="Also show interim results.")
@handle_errors
def results_cmd(
    store_path: str,
    job_id: str | None,
    result_type: str,
    fmt: str,
    start: datetime | None,
    end: datetime | None,
    user: str | None,
    min_score: float | None,
    sort: str,
    limit: int,
    include_interim: bool,
) -> None:
    """Show anomaly results (records, buckets or influencers) with Elastic's field names."""
    with open_store(store_path) as store:
        page = search_results(
            store,
            result_type,
            job_ids=[job_id] if job_id else [],
            start=start,
            end=end,
            min_score=min_score,
            entity=user,
            include_interim=include_interim,
            order=sort,
            limit=limit or None,
        )
    docs = [doc for _, doc in page.hits]
    if fmt == "json":
        print_json(docs)
        return
    if fmt == "ndjson":
        print_ndjson(docs)
        return
    columns = list(_RESULT_COLUMNS[result_type])
    if result_type == "record":
        with open_store(store_path) as store:
            for doc_id, doc in page.hits:
                identities = (get_record_details(store, doc_id) or {}).get("identities")
                if identities:
                    doc["_identities"] = "; ".join(
                        f"{name}={', '.join(values)}" for name, values in identities.items()
                    )
        if any("_identities" in doc for doc in docs):
            columns.insert(5, ("also as", "_identities"))
    rows = [[_cell(doc, key) for _, key in columns] for doc in docs]
    print_table([title for title, _ in columns], rows, empty=f"(no {result_type} results)")
    if result_type == "record" and docs:
        first = docs[0]
        click.echo(
            f"(explain one: rarebird triage {first['by_field_value']}@"
            f"{iso(from_epoch_ms(int(first['timestamp'])))})",
            err=True,
        )
    if page.total > len(docs):
        click.echo(f"({page.total - len(docs):,} more; use --limit 0 for all)", err=True)
