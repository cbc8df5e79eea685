"""``rarebird serve``, ``rarebird status`` and ``rarebird snapshots list|revert``: the detection
as a service. Thin: parse, call :mod:`rarebird.serve`, print."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from rarebird.cli._common import (
    DEFAULT_STORE,
    EXIT_USAGE,
    STORE_ENV,
    handle_errors,
    main,
    open_existing_store,
    store_option,
)
from rarebird.cli._output import Column, Rows, echo, emit, emit_document, format_option
from rarebird.sources import format_names
from rarebird.timeutil import iso, parse_duration


def _duration(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        delta = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None
    if delta.total_seconds() <= 0:
        raise click.BadParameter("must be positive", param_hint=flag)
    return delta


@main.command()
@click.option("--config", "config_path", metavar="FILE",
              help="TOML configuration (see --example-config); flags override it.")  # fmt: skip
@click.option("--store", "store_path", metavar="PATH", envvar=STORE_ENV, show_envvar=True,
              help=f"SQLite store [default: the config's, or {DEFAULT_STORE}].")  # fmt: skip
@click.option("--job", "job_path", metavar="JOB.json", help="Anomaly job (Elastic's JSON).")
@click.option("--datafeed", "datafeed_path", metavar="DATAFEED.json", help="Datafeed (Elastic's JSON).")  # fmt: skip
@click.option("--rule", "rule_path", metavar="RULE.toml", help="Detection rule.")
@click.option("--follow", "follows", multiple=True, metavar="PATH",
              help="Follow a file (by name, across rotation), a folder of logs, - (stdin) or a "
                   "FIFO. Repeatable; replaces the config's inputs.")  # fmt: skip
@click.option("--input-format", metavar="FORMAT", type=click.Choice(("auto", *format_names())),
              help="Format of the followed inputs: auto (default), "
                   f"{', '.join(format_names())}.")  # fmt: skip
@click.option("--pattern", metavar="GLOB", help="For followed folders: file names to read [*].")
@click.option("--host-name", metavar="NAME", help="host.name for inputs that lack one.")
@click.option("--listen", metavar="HOST:PORT", help="Serve /healthz, /metrics and POST /ingest.")
@click.option("--token-file", metavar="FILE",
              help="Bearer token of POST /ingest (or env RAREBIRD_INGEST_TOKEN).")  # fmt: skip
@click.option("--alert-on-interim/--no-alert-on-interim", default=None,
              help="Early warning: alert on interim results within seconds.")  # fmt: skip
@click.option("--backfill/--no-backfill", default=None,
              help="On the first start, model the history the inputs hold [on].")  # fmt: skip
@click.option("--backfill-max-age", metavar="DURATION", help="History to model at most [14d].")
@click.option("--backfill-alerts/--no-backfill-alerts", default=None,
              help="Run the rule over the history too, as detect does [off].")  # fmt: skip
@click.option("--output", "outputs", multiple=True, metavar="SPEC",
              help="Also send alerts to ndjson:PATH, es-bulk:PATH, sqlite:PATH, http(s)://URL, "
                   "syslog+udp://HOST:PORT ... Repeatable.")  # fmt: skip
@click.option("--poll-interval", metavar="DURATION", help="How often inputs are polled [200ms].")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Least severe JSON log line written to stderr [info].")  # fmt: skip
@click.option("--example-config", is_flag=True, help="Print the documented example config and exit.")  # fmt: skip
@handle_errors
def serve(
    config_path: str | None,
    store_path: str | None,
    job_path: str | None,
    datafeed_path: str | None,
    rule_path: str | None,
    follows: tuple[str, ...],
    input_format: str | None,
    pattern: str | None,
    host_name: str | None,
    listen: str | None,
    token_file: str | None,
    alert_on_interim: bool | None,
    backfill: bool | None,
    backfill_max_age: str | None,
    backfill_alerts: bool | None,
    outputs: tuple[str, ...],
    poll_interval: str | None,
    log_level: str | None,
    example_config: bool,
) -> None:
    """Run the job and the rule continuously over followed inputs (and HTTP ingest).

    Buckets are finalised once the datafeed's query_delay has passed, the rule runs every
    interval on the wall clock, and everything is committed together so a crash (even
    kill -9) followed by a restart gives exactly the alerts of an uninterrupted run.
    SIGTERM stops it cleanly. Logs are JSON lines on stderr.
    """
    from dataclasses import replace

    from rarebird.definitions.service import (
        FollowConfig,
        ServeConfig,
        check_listen,
        example_path,
        load_config,
    )
    from rarebird.serve.service import Service

    if example_config:
        sys.stdout.write(Path(example_path()).read_text(encoding="utf-8"))
        return
    if config_path:
        cfg = load_config(config_path)
    else:
        cfg = ServeConfig(store=store_path or DEFAULT_STORE)
    cfg = cfg.override(store=store_path, job=job_path, datafeed=datafeed_path, rule=rule_path,
                       log_level=log_level, poll_interval=_duration(poll_interval, "--poll-interval"))  # fmt: skip
    if follows:
        cfg = replace(cfg, follow=tuple(
            FollowConfig(path=p, format=input_format or "auto", pattern=pattern or "*",
                         host_name=host_name)
            for p in follows
        ))  # fmt: skip
    elif input_format or host_name or pattern:
        cfg = replace(cfg, follow=tuple(
            replace(f, format=input_format or f.format, host_name=host_name or f.host_name,
                    pattern=pattern or f.pattern)
            for f in cfg.follow
        ))  # fmt: skip
    http = cfg.http
    if listen is not None:
        http = replace(http, listen=check_listen(listen))
    if token_file is not None:
        http = replace(
            http, token=None, token_file=token_file, token_env=None, source="--token-file"
        )
    elif (
        http.token is None
        and http.token_file is None
        and http.token_env is None
        and os.environ.get("RAREBIRD_INGEST_TOKEN")
    ):
        http = replace(http, token_env="RAREBIRD_INGEST_TOKEN", source="environment")
    alerts = cfg.alerts
    if alert_on_interim is not None:
        alerts = replace(alerts, alert_on_interim=alert_on_interim)
    if outputs:
        alerts = replace(alerts, outputs=outputs)
    bf = cfg.backfill
    if backfill is not None:
        bf = replace(bf, enabled=backfill)
    if backfill_max_age is not None:
        bf = replace(bf, max_age=_duration(backfill_max_age, "--backfill-max-age"))
    if backfill_alerts is not None:
        bf = replace(bf, alerts=backfill_alerts)
    cfg = replace(cfg, http=http, alerts=alerts, backfill=bf)
    if not cfg.follow and cfg.http.listen is None:
        click.echo("rarebird: error: nothing to read: give --follow PATH (or [[follow]] in the "
                   "config) and/or --listen for HTTP ingest", err=True)  # fmt: skip
        sys.exit(EXIT_USAGE)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    routes: list[Any] = []
    if cfg.http.pages and cfg.http.listen is not None:
        from starlette.routing import Mount

        from rarebird.web.app import pages_for

        host, port = cfg.http.address
        app, url = pages_for(cfg.store, host=host, port=port, rule_path=cfg.rule,
                             token=os.environ.get("RAREBIRD_UI_TOKEN") or None)  # fmt: skip
        routes.append(Mount("/", app=app))
        echo(f"rarebird serve: the triage pages are on this listener; log in at {url}", err=True)
    service = Service(cfg, http_routes=routes)
    service.open()
    service.run(stop)


# --------------------------------------------------------------------------------------------
# status


def _open_store(path: str) -> Any:
    return open_existing_store(path)


def _job_id(store: Any, given: str | None) -> str:
    from rarebird.errors import StoreError
    from rarebird.store.jobs import job_ids

    if given:
        return given
    ids = job_ids(store)
    if len(ids) == 1:
        return str(ids[0])
    if not ids:
        # a service that has modelled nothing yet (all its events older than the backfill
        # window, say) has saved no job, but its own state tells why
        from rarebird.definitions import load_job
        from rarebird.store.serve import load_service_state

        default = load_job(None).job_id
        if load_service_state(store, default) is not None:
            return default
        raise StoreError(f"{store.path}: the store holds no job")
    raise StoreError(f"{store.path}: the store holds several jobs ({', '.join(ids)}); "
                     "name one with --job-id")  # fmt: skip


job_id_option = click.option("--job-id", help="The job (default: the store's only job).")


@main.command()
@store_option
@job_id_option
@format_option()
@handle_errors
def status(store_path: str, job_id: str | None, fmt: str) -> None:
    """What a service keeps: job statistics, datafeed frontier, late data, gaps, snapshots."""
    import orjson

    from rarebird.job import JobStats
    from rarebird.run.state import EngineState
    from rarebird.store.delivery import delivery_states
    from rarebird.store.jobs import load_job_state
    from rarebird.store.serve import (
        count_pending,
        gaps,
        interim_counts,
        late_reports,
        load_service_state,
    )
    from rarebird.store.snapshots import list_snapshots
    from rarebird.timeutil import from_epoch_ms

    store = _open_store(store_path)
    try:
        jid = _job_id(store, job_id)
        saved = load_job_state(store, jid)
        stats: dict[str, Any] = {}
        if saved is not None:
            stats = JobStats.from_dict(orjson.loads(saved.text)["stats"]).to_dict()
        text = load_service_state(store, jid)
        serve = None if text is None else EngineState.from_json(text)
        late = late_reports(store, jid)
        quiet = gaps(store, jid)
        snaps = list_snapshots(store, jid)
        pending = count_pending(store, jid)
        interim = interim_counts(store, jid)
        delivery = delivery_states(store)
    finally:
        store.close()

    def ms(value: int | None) -> str | None:
        return None if value is None else iso(from_epoch_ms(value))

    doc: dict[str, Any] = {
        "job_id": jid,
        "data_counts": {k: stats.get(k) for k in (
            "processed_record_count", "missing_field_count", "out_of_order_timestamp_count",
            "bucket_count", "empty_bucket_count", "record_count", "earliest_record_timestamp",
            "latest_record_timestamp")},
        "model_size_stats": {k: stats.get(k) for k in (
            "model_bytes", "peak_model_bytes", "memory_status", "total_by_field_count",
            "bucket_allocation_failures_count", "new_values_refused")},
        "service": None if serve is None else {
            "first_start": serve.first_start,
            "frontier": ms(serve.frontier_ms),
            "next_rule_run": ms(serve.next_run_ms),
            "backfill_from": ms(serve.backfill_from_ms),
            "pending_events": pending,
            "inputs": sorted(serve.sources),
        },
        "late": [{"source": r.source, "bucket": ms(r.bucket_ms), "count": r.count,
                  "last_seen": ms(r.last_seen_ms)} for r in late],
        "gaps": [{"source": g.source, "quiet_from": ms(g.start_ms), "until": ms(g.end_ms)}
                 for g in quiet],
        "snapshots": len(snaps),
        "latest_snapshot": snaps[-1].snapshot_id if snaps else None,
        "early_warning": interim,
        "older_than_backfill": None if serve is None or not serve.older_than_backfill else {
            "events": serve.older_than_backfill,
            "backfill_from": ms(serve.backfill_from_ms),
            "newest": ms(serve.older_newest_ms),
        },
        "outputs": [{"output": d.sink, "waiting": d.pending, "dead_letters": d.dead_letters}
                    for d in delivery],
    }  # fmt: skip
    emit_document(doc, fmt, lambda: _status_table(doc))


def _value(value: Any) -> str:
    """A status value as a person reads it: no Python reprs."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if value else "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _status_table(doc: dict[str, Any]) -> None:
    echo(f"job {doc['job_id']}", style="bold")
    pairs: list[tuple[str, Any]] = [*doc["data_counts"].items(), *doc["model_size_stats"].items()]
    if doc["service"]:
        pairs.extend(doc["service"].items())
    latest = doc["latest_snapshot"]
    pairs.append(("snapshots", f"{doc['snapshots']:,}" + (f" (latest {latest})" if latest else "")))
    if doc["early_warning"]:
        pairs.append(("early warning alerts",
                      ", ".join(f"{k} {v}" for k, v in sorted(doc["early_warning"].items()))))  # fmt: skip
    emit(Rows.of([Column("field", "id"), Column("value", ratio=1)],
                 [(k, _value(v)) for k, v in pairs], header=False), "table")  # fmt: skip
    old = doc["older_than_backfill"]
    if old:
        echo(f"\nNot modelled: {old['events']:,} events older than the backfill window (from "
             f"{old['backfill_from']}; the newest of them at {old['newest']}). For older history "
             "use a larger --backfill-max-age on a new store, or 'rarebird detect' over the "
             "files.", style="yellow")  # fmt: skip
    if doc["outputs"]:
        echo(
            "\nOutputs (alerts waiting in the outbox; dead letters: rarebird outputs replay):",
            style="bold",
        )
        emit(Rows.of(["output", Column("waiting", "number"), Column("dead letters", "number")],
                     [(o["output"], o["waiting"], o["dead_letters"]) for o in doc["outputs"]]),
             "table")  # fmt: skip
    echo("\nLate events (missed due to ingest latency), by source and bucket:", style="bold")
    emit(Rows.of(["source", Column("bucket", "time"), Column("events", "number"),
                  Column("last seen", "time")],
                 [(r["source"], r["bucket"], r["count"], r["last_seen"]) for r in doc["late"]],
                 empty="  (none)"), "table")  # fmt: skip
    echo("\nGaps (sources that went quiet):", style="bold")
    emit(Rows.of(["source", Column("quiet from", "time"), Column("until", "time")],
                 [(g["source"], g["quiet_from"], g["until"] or "(still quiet)")
                  for g in doc["gaps"]], empty="  (none)"), "table")  # fmt: skip


# --------------------------------------------------------------------------------------------
# snapshots


@main.group()
def snapshots() -> None:
    """Model snapshots kept by rarebird serve: list them, revert the model to one."""


@snapshots.command("list")
@store_option
@job_id_option
@format_option()
@handle_errors
def snapshots_list(store_path: str, job_id: str | None, fmt: str) -> None:
    """Snapshots, oldest first (Elastic's get-model-snapshots fields with --format json)."""
    from rarebird.store.snapshots import list_snapshots

    store = _open_store(store_path)
    try:
        found = list_snapshots(store, _job_id(store, job_id))
    finally:
        store.close()
    emit(Rows.of(
        ("snapshot_id", Column("timestamp", "time"), Column("latest record", "time"),
         Column("users", "number"), "memory", Column("description", ratio=1)),
        [(s.snapshot_id, iso(s.timestamp),
          iso(s.latest_record_time) if s.latest_record_time else "", s.by_field_count,
          s.memory_status, s.description) for s in found],
        empty="(no snapshots)", docs=[s.to_doc() for s in found],
    ), fmt)  # fmt: skip


@snapshots.command("revert")
@store_option
@job_id_option
@click.option("--delete-intervening-results", is_flag=True,
              help="Delete results after the snapshot and read the inputs again from there.")  # fmt: skip
@click.argument("snapshot_id")
@handle_errors
def snapshots_revert(
    store_path: str, job_id: str | None, delete_intervening_results: bool, snapshot_id: str
) -> None:
    """Revert the job's model to SNAPSHOT_ID ('empty': a model from scratch).

    Stop rarebird serve first (Elastic requires the job to be closed). Without
    --delete-intervening-results only the model goes back: results and counts stay, and the
    job continues with new data. With it, results after the snapshot are deleted and the
    service resumes reading its inputs from where it was at the snapshot.
    """
    from rarebird.clock import SYSTEM_CLOCK
    from rarebird.errors import StoreError
    from rarebird.run.snapshots import revert_snapshot
    from rarebird.serve.lock import ServeLock

    if ServeLock.held(store_path):
        raise StoreError(f"{store_path}: rarebird serve is running on this store; stop it first")
    store = _open_store(store_path)
    try:
        jid = _job_id(store, job_id)
        out = revert_snapshot(store, jid, snapshot_id,
                              delete_intervening_results=delete_intervening_results,
                              now=SYSTEM_CLOCK.now())  # fmt: skip
    finally:
        store.close()
    where = f" (model as of {iso(out.model_time)})" if out.model_time else ""
    echo(f"rarebird: job {jid} reverted to snapshot {snapshot_id}{where}")
    if delete_intervening_results:
        echo(f"rarebird: deleted {out.deleted_results} result(s), {out.deleted_events} kept "
                   f"event(s), {out.deleted_rule_runs} rule run(s); inputs "
                   f"{'rewound to the snapshot' if out.rewound_inputs else 'unchanged'}")  # fmt: skip
