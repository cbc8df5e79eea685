"""The deterministic core of ``rarebird serve``: datafeed frontier, job, rule runs, early warning.

The engine is given events (already read and parsed) and told how far the datafeed may
advance; it never reads the clock to decide what the model learns or what the rule alerts on.

**The datafeed frontier.** Events that match the datafeed query wait in a *pending* set until
the frontier passes their time; then they go to the job in time order (ties: arrival order).
:meth:`Engine.advance` moves the frontier to ``X``: every event before ``X`` goes to the job and
every bucket that ends at or before ``X`` is finalised (``AnomalyJob.advance_to``). An event
that arrives with a time before the frontier is *late* -- the datafeed has searched past it, as
in Elastic, where it is missed "due to ingest latency" -- and is counted per source and bucket,
never modelled.

**The rule schedule.** Rule runs are at multiples of the rule's ``interval`` since the epoch.
Before the run at ``T`` the frontier is moved to exactly ``T - query_delay`` (and not beyond), so
the run sees exactly the buckets that end by then -- the same state, whatever moved the frontier
there and however the work was split between commits or process lifetimes. Runs are never
skipped: after downtime, every missed run is made, in order, each over its own state (the rule
has no gap, so no Kibana catch-up ranges are needed). This is what ``rarebird detect`` does on
the event clock (:mod:`rarebird.rules.replay`), so a service that ran (or crashed and restarted)
over some events alerts exactly as ``detect`` over the same events.

**Early warning** (``alert_on_interim``). When a user's first event of a bucket arrives, the
bucket is scored from the last final model as if it closed now (``AnomalyJob.interim``, on a
throw-away copy of the job that shares its model read-only); an interim record at or above the
threshold is alerted at once, with the id the final record's alert would have (interim and final
records share their ``_id``). When the bucket is final the same alert is updated with the final
record -- ``rarebird.early_warning.status`` becomes ``confirmed`` (final ``record_score`` at or
above the threshold), else ``not_confirmed``; the alert is kept either way (an analyst may
already be on it) -- and the scheduled rule run finds the alert id taken and creates nothing.

**Commits.** :meth:`Engine.commit` writes, inside the caller's transaction, the job's results
and state (``AnomalyJob.save``), the pending-set changes, the late counts, the service state
(frontier, next run, input positions), snapshots and the alert outbox. The rule runs and the
interim alerts made since the last commit are in that same transaction.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from rarebird.alerts import (
    Alert,
    RuleIdentity,
    alert_id_for,
    build_alert,
    existing_alert_ids,
    get_alert,
    insert_alerts,
    update_alerts,
)
from rarebird.clock import Clock
from rarebird.definitions import DatafeedConfig, JobConfig, RuleConfig
from rarebird.definitions.service import BackfillConfig, SnapshotConfig
from rarebird.errors import DefinitionError
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob
from rarebird.results import AnomalyRecord, BucketResults
from rarebird.rules.exception_store import load_rule_exceptions
from rarebird.rules.executor import RuleExecutor, RuleRun
from rarebird.rules.schedule import align_up
from rarebird.serve.snapshots import apply_retention, take_snapshot
from rarebird.serve.state import ServeState, load_serve_state, pending_rows, save_serve_state
from rarebird.sources.ecs import event_from_document
from rarebird.timeutil import from_epoch_ms, iso, to_epoch_ms

#: ``log(level, event, **fields)``
LogFn = Callable[..., None]
MISSED_MESSAGE = (
    "Datafeed has missed {0} documents due to ingest latency, latest bucket with missing data "
    "is [{1}]. Consider increasing query_delay"
)
#: alert fields the analyst's workflow owns: kept when an interim alert is updated
WORKFLOW_FIELDS = (
    "kibana.alert.workflow_status", "kibana.alert.workflow_status_updated_at",
    "kibana.alert.workflow_user", "kibana.alert.workflow_reason", "kibana.alert.workflow_tags",
    "kibana.alert.workflow_assignee_ids",
)  # fmt: skip
EW = "rarebird.early_warning."


@dataclass(frozen=True)
class IngestOutcome:
    """What became of a batch of events."""

    received: int = 0
    kept: int = 0
    not_matched: int = 0
    late: int = 0
    older_than_backfill: int = 0

    def to_doc(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(order=True)
class _Pending:
    ts_ms: int
    seq: int
    event: ProcessEvent = field(compare=False)
    source: str = field(compare=False)
    persisted: bool = field(compare=False, default=False)


@dataclass
class StepReport:
    """What one :meth:`Engine.advance` did (for logs and metrics)."""

    fed: int = 0
    buckets: list[BucketResults] = field(default_factory=list)
    runs: list[RuleRun] = field(default_factory=list)
    confirmed: list[Alert] = field(default_factory=list)


def interim_results(job: AnomalyJob, events: Sequence[ProcessEvent]) -> BucketResults | None:
    """Interim results of the bucket of ``events`` (all of one bucket, at or after the one the
    job is building) as if they had been given to the job: the job itself is not changed."""
    return job.interim_with(events)


class Engine:
    """Datafeed frontier + job + rule for one job and one rule over one store."""

    def __init__(
        self,
        store: Any,
        job: JobConfig,
        datafeed: DatafeedConfig,
        rule: RuleConfig,
        *,
        clock: Clock,
        identity: RuleIdentity | None = None,
        backfill: BackfillConfig | None = None,
        snapshots: SnapshotConfig | None = None,
        alert_on_interim: bool = False,
        keep_outbox: bool = False,
        log: LogFn | None = None,
    ) -> None:
        jobs = rule.machine_learning_job_id
        if job.job_id not in jobs and "*" not in jobs:
            raise DefinitionError(
                rule.source or "<rule>", "machine_learning_job_id",
                f"the rule does not read job {job.job_id!r} (it reads {', '.join(jobs)})",
            )  # fmt: skip
        if alert_on_interim and rule.alert_suppression is not None:
            raise DefinitionError(
                rule.source or "<rule>", "alert_suppression",
                "alert_on_interim cannot be used with a rule that suppresses alerts",
            )  # fmt: skip
        self.store = store
        self.config = job
        self.datafeed = datafeed
        self.rule = rule
        self.clock = clock
        self.identity = identity or RuleIdentity.for_rule(rule)
        backfill = backfill or BackfillConfig()
        self.backfill = backfill
        self.snapshot_config = snapshots or SnapshotConfig()
        self.alert_on_interim = alert_on_interim
        self.keep_outbox = keep_outbox
        self.log: LogFn = log or (lambda *a, **k: None)
        self.job = AnomalyJob.open(store, job, datafeed, keep_events=True, renormalize=True)
        self.executor = RuleExecutor(store, rule, identity=self.identity, check_jobs=False)
        self.span_ms = job.bucket_span_s * 1000
        self.qd = datafeed.query_delay_for(job.job_id)
        self.qd_ms = int(self.qd.total_seconds() * 1000)
        self.frequency = datafeed.frequency_for(job.bucket_span)
        self.interval_ms = int(rule.interval.total_seconds() * 1000)
        self.by_field = job.detector.by_field_name
        now = clock.now()
        state = load_serve_state(store, job.job_id)
        self.first_start = state is None
        if state is None:
            state = ServeState(first_start=iso(now), rule_uuid=self.identity.rule_uuid)
            if backfill.enabled:
                state.backfill_from_ms = to_epoch_ms(now - backfill.max_age)
            if not backfill.alerts:
                # the rule starts now, as a newly enabled rule does
                state.next_run_ms = to_epoch_ms(align_up(now, rule.interval))
        self.state = state
        self._heap: list[_Pending] = []
        for seq, ts_ms, source, doc in pending_rows(store, job.job_id):
            event = event_from_document(orjson.loads(doc))
            self._heap.append(_Pending(ts_ms, seq, event, source, persisted=True))
        heapq.heapify(self._heap)
        self._added: dict[int, _Pending] = {}
        self._removed: list[int] = []
        self._late: Counter[tuple[str, int]] = Counter()
        self._job_dirty = False
        self._snapshot_due = False
        self._outbox: list[Alert] = []
        #: bucket index -> users already looked at for early warning
        self._interim_seen: dict[int, set[str]] = {}
        self._interim_new: dict[int, set[str]] = {}
        for p in self._heap:
            value = p.event.value(self.by_field)
            if value is not None:
                self._interim_seen.setdefault(p.ts_ms // self.span_ms, set()).add(value)
        self.interim_created = 0
        self.interim_updated = 0

    # --- state --------------------------------------------------------------------------

    @property
    def frontier(self) -> datetime | None:
        f = self.state.frontier_ms
        return None if f is None else from_epoch_ms(f)

    @property
    def next_run(self) -> datetime | None:
        n = self.state.next_run_ms
        return None if n is None else from_epoch_ms(n)

    @property
    def pending_count(self) -> int:
        return len(self._heap)

    # --- events in ----------------------------------------------------------------------

    def ingest(self, events: Iterable[ProcessEvent], source: str, *, live: bool) -> IngestOutcome:
        """Keep the events the datafeed query matches until the frontier passes them."""
        received = kept = not_matched = late = old = 0
        matches = self.datafeed.query.matches
        frontier = self.state.frontier_ms
        oldest = self.state.backfill_from_ms
        span = self.span_ms
        for event in events:
            received += 1
            if not matches(event):
                not_matched += 1
                continue
            ts_ms = to_epoch_ms(event.timestamp)
            if oldest is not None and ts_ms < oldest:
                old += 1
                continue
            if frontier is not None and ts_ms < frontier:
                late += 1
                self._late[(source, ts_ms - ts_ms % span)] += 1
                continue
            kept += 1
            seq = self.state.seq
            self.state.seq += 1
            event = replace(event, timestamp=from_epoch_ms(ts_ms), origin=None)
            entry = _Pending(ts_ms, seq, event, source)
            heapq.heappush(self._heap, entry)
            self._added[seq] = entry
            if live and self.alert_on_interim:
                self._note_user(event, ts_ms)
        return IngestOutcome(received, kept, not_matched, late, old)

    def earliest_pending(self) -> datetime | None:
        return from_epoch_ms(self._heap[0].ts_ms) if self._heap else None

    # --- the frontier and the rule ------------------------------------------------------

    def advance(self, to: datetime) -> StepReport:
        """Move the frontier to ``to``, making every rule run due on the way (see the module
        doc). The caller holds the store transaction."""
        report = StepReport()
        to_ms = to_epoch_ms(to)
        frontier = self.state.frontier_ms
        if frontier is not None and to_ms <= frontier:
            return report
        if self.state.next_run_ms is None and self._heap:
            # rule over the history too (backfill.alerts): its runs start with the data
            first = from_epoch_ms(self._heap[0].ts_ms)
            self.state.next_run_ms = to_epoch_ms(align_up(first, self.rule.interval))
        while self.state.next_run_ms is not None and self.state.next_run_ms - self.qd_ms <= to_ms:
            run_at = self.state.next_run_ms
            self._step(run_at - self.qd_ms, report)
            self._run_rule(run_at, report)
            self.state.next_run_ms = run_at + self.interval_ms
        self._step(to_ms, report)
        return report

    def _step(self, to_ms: int, report: StepReport) -> None:
        frontier = self.state.frontier_ms
        if frontier is not None and to_ms <= frontier:
            return
        heap = self._heap
        job = self.job
        finished: list[BucketResults] = []
        while heap and heap[0].ts_ms < to_ms:
            entry = heapq.heappop(heap)
            if entry.persisted:
                self._removed.append(entry.seq)
            else:
                self._added.pop(entry.seq, None)
            finished.extend(job.feed(entry.event))
            report.fed += 1
            self._job_dirty = True
        finished.extend(job.advance_to(from_epoch_ms(to_ms)))
        self.state.frontier_ms = to_ms
        for results in finished:
            self._job_dirty = True
            report.buckets.append(results)
            self._on_final(results, report)
        done = to_ms // self.span_ms
        for index in [i for i in self._interim_seen if i < done - 1]:
            del self._interim_seen[index]

    def _run_rule(self, at_ms: int, report: StepReport) -> None:
        if self._job_dirty:
            self.job.save()  # results must be in the store for the rule's search
            self._job_dirty = False
        run = self.executor.run(from_epoch_ms(at_ms))
        report.runs.append(run)
        if self.keep_outbox:
            self._outbox.extend(run.new_alerts)
            self._outbox.extend(run.updated_alerts)

    def _on_final(self, results: BucketResults, report: StepReport) -> None:
        bucket_ms = to_epoch_ms(results.bucket.timestamp)
        end_ms = bucket_ms + self.span_ms
        every = int(self.snapshot_config.interval.total_seconds() * 1000)
        last = self.state.last_snapshot_ms
        if last is None:
            self.state.last_snapshot_ms = end_ms - end_ms % every
        elif end_ms // every > last // every:
            self._snapshot_due = True
        if self.alert_on_interim:
            self._confirm_interim(results, bucket_ms, report)

    # --- early warning --------------------------------------------------------------------

    def _note_user(self, event: ProcessEvent, ts_ms: int) -> None:
        value = event.value(self.by_field)
        if value is None:
            return
        index = ts_ms // self.span_ms
        seen = self._interim_seen.get(index)
        if seen is None:
            seen = self._interim_seen[index] = set()
            current = self.job.current
            if current is not None and current.index == index:
                seen.update(current.counts)
        if value not in seen:
            seen.add(value)
            self._interim_new.setdefault(index, set()).add(value)

    def early_warning(self) -> list[Alert]:
        """Alerts from interim results for users seen for the first time in their bucket since
        the last call (live events only). The caller holds the store transaction."""
        if not self._interim_new:
            return []
        new, self._interim_new = self._interim_new, {}
        now = self.clock.now()
        threshold = self.rule.anomaly_threshold
        created: list[Alert] = []
        exceptions = None
        for index, users in sorted(new.items()):
            events = sorted(
                (p for p in self._heap if p.ts_ms // self.span_ms == index),
                key=lambda p: (p.ts_ms, p.seq),
            )
            results = interim_results(self.job, [p.event for p in events])
            if results is None:
                continue
            candidates = [
                r for r in results.records
                if r.by_field_value in users and r.record_score >= threshold
            ]  # fmt: skip
            candidates.sort(key=lambda r: -r.record_score)
            for record in candidates[: self.rule.max_signals]:
                record_id = record.doc_id
                alert_id = alert_id_for(record_id, self.identity)
                if existing_alert_ids(self.store, [alert_id]):
                    continue
                if exceptions is None:
                    exceptions = load_rule_exceptions(self.store, self.rule).active(now)
                if exceptions:
                    user_events: list[Mapping[str, Any]] = [
                        p.event.to_ecs() for p in events
                        if p.event.value(self.by_field) == record.by_field_value
                    ]  # fmt: skip

                    def provide(
                        found: list[Mapping[str, Any]] = user_events,
                    ) -> Sequence[Mapping[str, Any]]:
                        return found

                    item = exceptions.first_match(
                        record.to_doc(), when=record.timestamp, events=provide
                    )
                    if item is not None:
                        self.log("info", "interim_excepted", user=record.by_field_value,
                                 exception=item.name)  # fmt: skip
                        continue
                alert = self._interim_alert(record, record_id, now)
                insert_alerts(self.store, [alert])
                self.store.conn.execute(
                    "INSERT OR REPLACE INTO serve_interim (alert_id, job_id, record_id, "
                    "bucket_ms, interim_score, status, final_score) VALUES (?,?,?,?,?,?,NULL)",
                    (alert.id, self.config.job_id, record_id, to_epoch_ms(record.timestamp),
                     record.record_score, "interim"),
                )  # fmt: skip
                created.append(alert)
        self.interim_created += len(created)
        if self.keep_outbox:
            self._outbox.extend(created)
        return created

    def _interim_alert(self, record: AnomalyRecord, record_id: str, now: datetime) -> Alert:
        alert = build_alert(record, record_id, self.rule, self.identity, now)
        doc = dict(alert.doc)
        doc[EW + "status"] = "interim"
        doc[EW + "interim_record_score"] = record.record_score
        doc[EW + "alerted_at"] = iso(now)
        return Alert(alert.id, doc)

    def _confirm_interim(self, results: BucketResults, bucket_ms: int, report: StepReport) -> None:
        rows = list(
            self.store.conn.execute(
                "SELECT alert_id, record_id, interim_score FROM serve_interim "
                "WHERE job_id = ? AND bucket_ms = ? AND status = 'interim'",
                (self.config.job_id, bucket_ms),
            )
        )
        if not rows:
            return
        by_id = {r.doc_id: r for r in results.records}
        threshold = self.rule.anomaly_threshold
        for alert_id, record_id, interim_score in rows:
            old = get_alert(self.store, alert_id)
            final = by_id.get(record_id)
            if final is not None:
                doc = build_alert(final, record_id, self.rule, self.identity, old.timestamp,
                                  execution_uuid=old.execution_uuid).doc  # fmt: skip
                for key in WORKFLOW_FIELDS:
                    if key in old.doc:
                        doc[key] = old.doc[key]
            else:
                doc = dict(old.doc)
            confirmed = final is not None and final.record_score >= threshold
            doc[EW + "status"] = "confirmed" if confirmed else "not_confirmed"
            doc[EW + "interim_record_score"] = interim_score
            doc[EW + "final_record_score"] = None if final is None else final.record_score
            doc[EW + "alerted_at"] = old.doc.get(EW + "alerted_at")
            updated = Alert(alert_id, doc, old.revision + 1)
            update_alerts(self.store, [updated])
            self.store.conn.execute(
                "UPDATE serve_interim SET status = ?, final_score = ? WHERE alert_id = ?",
                (doc[EW + "status"], doc[EW + "final_record_score"], alert_id),
            )
            report.confirmed.append(updated)
            self.interim_updated += 1
            if self.keep_outbox:
                self._outbox.append(updated)

    # --- commit -----------------------------------------------------------------------------

    def commit(self, sources: Mapping[str, Any], *, snapshot_reason: str | None = None) -> None:
        """Write everything since the last commit (the caller holds the transaction)."""
        store = self.store
        conn = store.conn
        now = self.clock.now()
        if self._job_dirty:
            self.job.save()
            self._job_dirty = False
        if self._removed:
            conn.executemany(
                "DELETE FROM serve_pending WHERE seq = ?", [(s,) for s in self._removed]
            )
            self._removed = []
        if self._added:
            job_id = self.config.job_id
            rows = []
            for entry in self._added.values():
                entry.persisted = True
                rows.append((entry.seq, job_id, entry.ts_ms, entry.source,
                             orjson.dumps(entry.event.to_ecs()).decode()))  # fmt: skip
            conn.executemany(
                "INSERT INTO serve_pending (seq, job_id, ts_ms, source, doc) VALUES (?,?,?,?,?)",
                rows,
            )
            self._added = {}
        if self._late:
            now_ms = to_epoch_ms(now)
            conn.executemany(
                "INSERT INTO serve_late (job_id, source, bucket_ms, count, first_seen_ms, "
                "last_seen_ms) VALUES (?,?,?,?,?,?) ON CONFLICT(job_id, source, bucket_ms) "
                "DO UPDATE SET count = count + excluded.count, last_seen_ms = excluded.last_seen_ms",
                [(self.config.job_id, src, b, n, now_ms, now_ms)
                 for (src, b), n in self._late.items()],
            )  # fmt: skip
            by_source: Counter[str] = Counter()
            latest: dict[str, int] = {}
            for (src, b), n in self._late.items():
                by_source[src] += n
                latest[src] = max(latest.get(src, b), b)
            for src, n in sorted(by_source.items()):
                self.log("warning", "late_events", source=src, count=n,
                         latest_bucket=iso(from_epoch_ms(latest[src])),
                         message=MISSED_MESSAGE.format(n, iso(from_epoch_ms(latest[src]))))  # fmt: skip
            self._late.clear()
        self.state.sources = dict(sources)
        save_serve_state(store, self.config.job_id, self.state, iso(now))
        if self._snapshot_due or snapshot_reason:
            self._snapshot(now, snapshot_reason)
        if self._outbox:
            conn.executemany(
                "INSERT INTO serve_outbox (alert_id, revision, doc) VALUES (?,?,?)",
                [(a.id, a.revision, orjson.dumps(a.doc).decode()) for a in self._outbox],
            )
            self._outbox = []

    def _snapshot(self, now: datetime, reason: str | None) -> None:
        self._snapshot_due = False
        end = self.job.stats.last_finalised_bucket_end
        if end is None:
            return
        description = (
            reason
            or f"State persisted at {iso(now)} after data to {iso(from_epoch_ms(int(end * 1000)))}"
        )
        snap = take_snapshot(
            self.store, self.job.to_state(), self.state, self.pending_snapshot(),
            created=now, description=description,
        )  # fmt: skip
        if snap is None:
            return
        self.state.last_snapshot_ms = int(end * 1000)
        save_serve_state(self.store, self.config.job_id, self.state, iso(now))
        deleted = apply_retention(
            self.store, self.config.job_id,
            retention_days=self.snapshot_config.retention_days,
            daily_after_days=self.snapshot_config.daily_retention_after_days,
        )  # fmt: skip
        self.log("info", "model_snapshot", snapshot_id=snap.snapshot_id,
                 timestamp=iso(snap.timestamp), description=description,
                 deleted_by_retention=deleted or None)  # fmt: skip

    def pending_snapshot(self) -> list[tuple[int, int, str, str]]:
        return [
            (p.seq, p.ts_ms, p.source, orjson.dumps(p.event.to_ecs()).decode())
            for p in sorted(self._heap)
        ]


def frontier_target(
    now: datetime,
    *,
    query_delay: timedelta,
    frequency: timedelta,
    next_run: datetime | None,
    interval: timedelta,
) -> datetime:
    """Where the datafeed may search up to at wall-clock ``now`` when live: the last
    ``frequency`` tick minus ``query_delay``, or the last due rule run minus ``query_delay``
    when that is later (the rule runs on its own schedule).

    >>> from datetime import UTC
    >>> t = datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)
    >>> frontier_target(t, query_delay=timedelta(seconds=75), frequency=timedelta(minutes=1),
    ...                 next_run=None, interval=timedelta(minutes=15)).isoformat()
    '2026-03-01T10:13:45+00:00'
    """
    from rarebird.rules.schedule import align_down

    target = align_down(now, frequency) - query_delay
    if next_run is not None and next_run <= now:
        due = next_run + ((now - next_run) // interval) * interval
        target = max(target, due - query_delay)
    return min(target, now - query_delay)
