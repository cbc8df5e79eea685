"""Prometheus metrics of ``rarebird serve``, in the text exposition format (version 0.0.4).

A small registry of counter and gauge families with labels. The service thread updates them,
the HTTP thread renders them for ``GET /metrics``; a lock keeps the two apart.

>>> m = Metrics()
>>> events = m.counter("rarebird_events_read_total", "Events read.", ("source",))
>>> events.inc(3, source='a"b')
>>> print(m.render(), end="")
# HELP rarebird_events_read_total Events read.
# TYPE rarebird_events_read_total counter
rarebird_events_read_total{source="a\\"b"} 3
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it.

    >>> format_value(3), format_value(0.25), format_value(math.inf), format_value(math.nan)
    ('3', '0.25', '+Inf', 'NaN')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass
class Family:
    """One metric family: a name, a type, label names and a value per label set."""

    name: str
    help: str
    kind: str
    labels: tuple[str, ...]
    lock: threading.Lock
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labels)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if self.kind == "counter" and amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self.lock:
            self.values[key] = float(value)

    def get(self, **labels: str) -> float:
        with self.lock:
            return self.values.get(self._key(labels), 0.0)

    def clear(self) -> None:
        with self.lock:
            self.values.clear()

    def lines(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        with self.lock:
            items = sorted(self.values.items())
        if not items and not self.labels:
            items = [((), 0.0)]
        for key, value in items:
            if self.labels:
                pairs = ",".join(
                    f'{n}="{_escape_label(v)}"' for n, v in zip(self.labels, key, strict=True)
                )
                yield f"{self.name}{{{pairs}}} {format_value(value)}"
            else:
                yield f"{self.name} {format_value(value)}"


class Metrics:
    """A registry of metric families, rendered in registration order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, Family] = {}

    def _family(self, name: str, help_text: str, kind: str, labels: tuple[str, ...]) -> Family:
        have = self._families.get(name)
        if have is not None:
            if (have.kind, have.labels) != (kind, labels):
                raise ValueError(f"metric {name} registered twice with different types")
            return have
        fam = Family(name, help_text, kind, labels, self._lock)
        self._families[name] = fam
        return fam

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Family:
        return self._family(name, help_text, "counter", labels)

    def gauge(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Family:
        return self._family(name, help_text, "gauge", labels)

    def render(self) -> str:
        out: list[str] = []
        for fam in list(self._families.values()):
            out.extend(fam.lines())
        return "\n".join(out) + "\n"


class ServeMetrics:
    """The families ``rarebird serve`` exports (names and meaning documented in the help)."""

    def __init__(self) -> None:
        m = self.registry = Metrics()
        self.up = m.gauge("rarebird_up", "1 while the service loop runs.")
        self.events_read = m.counter(
            "rarebird_events_read_total", "Events read from each source (before the datafeed query).",
            ("source",),
        )  # fmt: skip
        self.events_kept = m.counter(
            "rarebird_events_kept_total", "Events the datafeed query kept, by source.", ("source",)
        )
        self.events_dropped = m.counter(
            "rarebird_events_dropped_total",
            "Events or lines not modelled, by reason (not_matched, late, older_than_backfill, "
            "bad input reasons such as invalid JSON).",
            ("reason",),
        )
        self.events_late = m.counter(
            "rarebird_events_late_total",
            "Events that arrived after the datafeed had searched past their time (missed due to "
            "ingest latency), by source.",
            ("source",),
        )
        self.buckets_finalised = m.counter(
            "rarebird_buckets_finalised_total", "Buckets the job finalised."
        )
        self.records = m.counter(
            "rarebird_anomaly_records_total", "Anomaly records written by the job."
        )
        self.memory_status = m.gauge(
            "rarebird_job_memory_status",
            "The job's memory status (Elastic's model_size_stats.memory_status): 1 for the "
            "current one.",
            ("status",),
        )
        self.model_bytes = m.gauge("rarebird_job_model_bytes", "Estimated model memory.")
        self.job_counts = m.gauge(
            "rarebird_job_data_count",
            "The job's data_counts as Elastic reports them (processed_record_count, "
            "missing_field_count, out_of_order_timestamp_count, bucket_count ...).",
            ("name",),
        )
        self.latest_record = m.gauge(
            "rarebird_job_latest_record_timestamp_seconds",
            "latest_record_timestamp of the job (epoch seconds).",
        )
        self.alerts = m.counter(
            "rarebird_alerts_total",
            "Alerts created: by the scheduled rule run, or early from interim results.",
            ("kind",),
        )
        self.alerts_updated = m.counter(
            "rarebird_alerts_updated_total",
            "Alerts changed after creation (interim alerts confirmed by the final record, "
            "suppressed duplicates).",
        )
        self.rule_runs = m.counter("rarebird_rule_runs_total", "Rule executions.")
        self.lag = m.gauge(
            "rarebird_lag_seconds",
            "How far behind the wall clock: 'ingest' the newest event read, 'finalised' the end "
            "of the last final bucket, 'rule' the last rule run.",
            ("stage",),
        )
        self.pending = m.gauge(
            "rarebird_pending_events", "Events read but not yet given to the job (query delay)."
        )
        self.source_quiet = m.gauge(
            "rarebird_source_quiet",
            "1 when a source has sent nothing for longer than quiet_after (a gap).",
            ("source",),
        )
        self.http_requests = m.counter(
            "rarebird_http_requests_total",
            "HTTP requests by endpoint (/ingest, /healthz, /metrics, a mounted prefix or other) "
            "and status code.",
            ("path", "code"),
        )  # fmt: skip
        self.http_refused = m.counter(
            "rarebird_http_connections_refused_total",
            "Connections closed by the server: over max_connections, or headers not sent in time.",
            ("reason",),
        )  # fmt: skip
        self.alerts_delivered = m.counter(
            "rarebird_alerts_delivered_total", "Alerts an output took.", ("output",)
        )
        self.alerts_dead_lettered = m.counter(
            "rarebird_alerts_dead_lettered_total",
            "Alerts an output refused for good, kept as dead letters (rarebird outputs replay).",
            ("output",),
        )  # fmt: skip
        self.output_retries = m.counter(
            "rarebird_output_retries_total", "Delivery attempts retried after a failure.",
            ("output",),
        )  # fmt: skip
        self.output_up = m.gauge(
            "rarebird_output_up", "1 when the output took the last alerts offered, else 0.",
            ("output",),
        )  # fmt: skip
        self.outbox_pending = m.gauge(
            "rarebird_outbox_pending", "Alerts waiting in the outbox for an output.", ("output",)
        )
        self.ingest_batches = m.counter(
            "rarebird_ingest_batches_total", "Ingest batches by outcome.", ("outcome",)
        )
        self.snapshots = m.counter("rarebird_model_snapshots_total", "Model snapshots taken.")
        self.commits = m.counter(
            "rarebird_commits_total", "Store commits (positions, model, results, alerts together)."
        )

    def render(self) -> str:
        return self.registry.render()
