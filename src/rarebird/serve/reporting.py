"""What the service tells the outside about its work: metrics, structured log lines, and the
status document ``/healthz`` and ``rarebird status`` show. Pure functions of what a turn did."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rarebird.alerts.model import Alert
from rarebird.datafeed.feed import IngestOutcome, Quarantine
from rarebird.run.live import LiveEngine, StepReport
from rarebird.serve.metrics import ServeMetrics
from rarebird.sources import ParsedChunk
from rarebird.timeutil import from_epoch_ms, iso, to_epoch_s

LogFn = Callable[..., None]


def count_parsed(metrics: ServeMetrics, log: LogFn, label: str, parsed: ParsedChunk) -> None:
    """Lines read from an input, what the prefilter and the parser dropped, bad lines."""
    metrics.events_read.inc(parsed.lines, source=label)
    if parsed.prefiltered:
        metrics.events_dropped.inc(parsed.prefiltered, reason="not_matched")
    for reason, n in parsed.skipped.items():
        metrics.events_dropped.inc(n, reason=reason)
    for issue in parsed.issues[:5]:
        log("warning", "bad_input", source=label, location=str(issue.location),
            reason=issue.reason, detail=issue.detail or None)  # fmt: skip


def count_outcome(metrics: ServeMetrics, source: str, outcome: IngestOutcome) -> None:
    """What the datafeed made of events from one source."""
    if outcome.kept:
        metrics.events_kept.inc(outcome.kept, source=source)
    if outcome.not_matched:
        metrics.events_dropped.inc(outcome.not_matched, reason="not_matched")
    if outcome.late:
        metrics.events_dropped.inc(outcome.late, reason="late")
        metrics.events_late.inc(outcome.late, source=source)
    if outcome.quarantined:
        metrics.events_dropped.inc(outcome.quarantined, reason="implausible_time")
    if outcome.older_than_backfill:
        metrics.events_dropped.inc(outcome.older_than_backfill, reason="older_than_backfill")


def _alert_line(a: Alert) -> dict[str, Any]:
    return {"id": a.id, "user": a.values("user.name"), "host": a.values("host.name"),
            "anomaly_time": iso(a.original_time), "score": round(a.record_score, 2)}  # fmt: skip


def report_turn(
    metrics: ServeMetrics, log: LogFn, report: StepReport, interim: list[Alert], *, live: bool
) -> None:
    """Buckets finalised, rule runs, early-warning alerts made and confirmed in one turn."""
    if report.buckets:
        metrics.buckets_finalised.inc(len(report.buckets))
        metrics.records.inc(sum(len(b.records) for b in report.buckets))
    for run in report.runs:
        metrics.rule_runs.inc()
        if run.new_alerts:
            metrics.alerts.inc(len(run.new_alerts), kind="rule")
        if run.updated_alerts:
            metrics.alerts_updated.inc(len(run.updated_alerts))
        if run.new_alerts or run.warnings or live:
            log("info" if not run.warnings else "warning", "rule_run",
                at=run.started_at, found=run.found, created=len(run.new_alerts),
                already_alerted=run.already_alerted, excepted=run.excepted_total,
                warnings=list(run.warnings) or None,
                alerts=[_alert_line(a) for a in run.new_alerts] or None)  # fmt: skip
    if report.confirmed:
        metrics.alerts_updated.inc(len(report.confirmed))
        for alert in report.confirmed:
            log("info", "interim_alert_final", id=alert.id,
                status=alert.doc.get("rarebird.early_warning.status"),
                final_record_score=alert.doc.get("rarebird.early_warning.final_record_score"))  # fmt: skip
    if interim:
        metrics.alerts.inc(len(interim), kind="interim")
        for alert in interim:
            log("info", "interim_alert", id=alert.id, user=alert.values("user.name"),
                host=alert.values("host.name"), anomaly_time=iso(alert.original_time),
                interim_record_score=round(alert.record_score, 2))  # fmt: skip


def engine_metrics(
    metrics: ServeMetrics, engine: LiveEngine, newest_ms: int | None, now: datetime
) -> None:
    """The job's counts, memory, pending events and lags as gauges."""
    m = metrics
    stats = engine.job.stats
    for status in ("ok", "soft_limit", "hard_limit"):
        m.memory_status.set(1 if stats.memory_status == status else 0, status=status)
    m.model_bytes.set(stats.model_bytes)
    for name in ("processed_record_count", "missing_field_count",
                 "out_of_order_timestamp_count", "bucket_count", "empty_bucket_count",
                 "record_count", "total_by_field_count", "new_values_refused"):  # fmt: skip
        m.job_counts.set(getattr(stats, name), name=name)
    if stats.latest_record_timestamp is not None:
        m.latest_record.set(stats.latest_record_timestamp)
    m.pending.set(engine.pending_count)
    now_s = to_epoch_s(now)
    if newest_ms is not None:
        m.lag.set(max(0.0, now_s - newest_ms / 1000), stage="ingest")
    if stats.last_finalised_bucket_end is not None:
        m.lag.set(max(0.0, now_s - stats.last_finalised_bucket_end), stage="finalised")
    last_run = engine.last_rule_run()
    if last_run is not None:
        m.lag.set(max(0.0, now_s - to_epoch_s(last_run)), stage="rule")


def engine_status(
    engine: LiveEngine,
    *,
    live: bool,
    quiet: Mapping[str, int | None],
    broken: Mapping[str, bool],
) -> dict[str, Any]:
    """The status document (``/healthz``): mode, frontier, next run, counts, sources."""
    stats = engine.job.stats
    latest = stats.latest_record_timestamp
    return {
        "job_id": engine.config.job_id,
        "mode": "live" if live else "catching_up",
        "frontier": iso(engine.frontier) if engine.frontier else None,
        "next_rule_run": iso(engine.next_run) if engine.next_run else None,
        "pending_events": engine.pending_count,
        "memory_status": stats.memory_status,
        "new_values_refused": stats.new_values_refused,
        "processed_record_count": stats.processed_record_count,
        "latest_record_timestamp": None if latest is None else iso(from_epoch_ms(int(latest * 1000))),
        "sources": {
            label: {"quiet_since": iso(from_epoch_ms(since)) if since else None,
                    "broken": broken.get(label, False)}
            for label, since in quiet.items()
        },
    }  # fmt: skip


def older_than_backfill(engine: LiveEngine, since_start: int) -> dict[str, Any] | None:
    """Why a first start may model nothing: events older than the backfill window (which starts
    ``backfill.max_age`` before the first start, as Elastic's datafeed looks back) are not
    modelled. What to log and show, or None when there were none."""
    state = engine.state
    if not state.older_than_backfill or state.backfill_from_ms is None:
        return None
    newest = state.older_newest_ms
    return {
        "events": state.older_than_backfill,
        "since_start": since_start,
        "backfill_from": iso(from_epoch_ms(state.backfill_from_ms)),
        "newest": None if newest is None else iso(from_epoch_ms(newest)),
        "message": (
            f"{state.older_than_backfill:,} events matched the datafeed but are older than the "
            f"backfill window (from {iso(from_epoch_ms(state.backfill_from_ms))}, "
            "backfill.max_age before the first start) and were not modelled; for older history "
            "use a larger --backfill-max-age on a new store, or 'rarebird detect' / "
            "'rarebird job run' over the files"
        ),
    }


def log_quarantine(log: LogFn, source: str, count: int, quarantine: Quarantine) -> None:
    """Events of one read quarantined for their time (with the first examples, file:line);
    nothing when ``count`` is 0."""
    if not count:
        return
    log("warning", "events_quarantined", source=source, count=count, total=quarantine.total,
        max_future=quarantine.limits.max_future.total_seconds(),
        first_examples=quarantine.examples[:5],
        message="events dated implausibly far in the future or past are not modelled")  # fmt: skip


def report_memory(log: LogFn, engine: LiveEngine, previous: str) -> str:
    """Log the job's memory status once per change (not per event): at ``hard_limit`` new users
    are refused, and how many so far. Returns the status now."""
    stats = engine.job.stats
    if stats.memory_status != previous:
        log("info" if stats.memory_status == "ok" else "warning", "memory_status",
            status=stats.memory_status, previous=previous, model_bytes=stats.model_bytes,
            limit=engine.config.model_memory_limit, new_values_refused=stats.new_values_refused,
            message="new by-field values are refused while at hard_limit"
            if stats.memory_status == "hard_limit" else None)  # fmt: skip
    return stats.memory_status
