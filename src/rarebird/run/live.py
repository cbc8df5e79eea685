"""The engine live (``rarebird serve``): the datafeed frontier on the wall clock, early warning,
snapshots, and one commit per turn.

The live engine is given events (already read and parsed) and told how far the datafeed may
advance; it never reads the clock to decide what the model learns or what the rule alerts on.

**The datafeed frontier.** Matched events wait in the pending set until the frontier passes
their time; then they go to the job in time order (ties: arrival order). :meth:`LiveEngine.advance`
moves the frontier to ``X``: every event before ``X`` goes to the job and every bucket that ends
at or before ``X`` is finalised; on the way, every rule run due is made with the job advanced to
exactly ``T - query_delay`` (see :mod:`rarebird.run.engine`). An event that arrives with a time
before the frontier is *late* and counted per source and bucket, never modelled.

**Early warning** (``alert_on_interim``): see :mod:`rarebird.run.early_warning`.

**Commits.** :meth:`LiveEngine.commit` writes, inside the caller's transaction, the job's
results and state, the pending-set changes, the late counts, the engine state (frontier, next
run, input positions), snapshots and the alert outbox. The rule runs and the interim alerts made
since the last commit are in that same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from rarebird.alerts.model import Alert, RuleIdentity
from rarebird.clock import Clock
from rarebird.datafeed.feed import (
    IngestOutcome,
    LateEvents,
    Pending,
    PendingEvents,
    TimeLimits,
)
from rarebird.definitions import DatafeedConfig, JobConfig, RuleConfig
from rarebird.definitions.service import BackfillConfig, SnapshotConfig
from rarebird.errors import DefinitionError
from rarebird.events import ProcessEvent
from rarebird.results import BucketResults
from rarebird.rules.executor import RuleRun
from rarebird.rules.profile import QuietProfile
from rarebird.rules.schedule import align_down, align_up
from rarebird.run.early_warning import EarlyWarning
from rarebird.run.engine import Engine, LogFn
from rarebird.run.snapshots import apply_retention, take_snapshot
from rarebird.run.state import EngineState
from rarebird.sources.ecs import event_from_document
from rarebird.store import Store
from rarebird.store.serve import (
    PendingRow,
    add_late,
    add_pending,
    add_to_outbox,
    load_service_state,
    pending_rows,
    remove_pending,
    save_service_state,
)
from rarebird.timeutil import from_epoch_ms, iso, to_epoch_ms

MISSED_MESSAGE = (
    "Datafeed has missed {0} documents due to ingest latency, latest bucket with missing data "
    "is [{1}]. Consider increasing query_delay"
)


@dataclass
class StepReport:
    """What one :meth:`LiveEngine.advance` did (for logs and metrics)."""

    fed: int = 0
    buckets: list[BucketResults] = field(default_factory=list)
    runs: list[RuleRun] = field(default_factory=list)
    confirmed: list[Alert] = field(default_factory=list)


class LiveEngine(Engine):
    """The engine for one job and one rule over one store, fed as data arrives."""

    def __init__(
        self,
        store: Store,
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
        time_limits: TimeLimits | None = None,
        profile: QuietProfile | None = None,
    ) -> None:
        if alert_on_interim and profile is not None:
            raise DefinitionError(
                rule.source or "<rule>", "alert_on_interim",
                "the quiet profile does not combine with alert_on_interim",
            )  # fmt: skip
        if alert_on_interim and rule.alert_suppression is not None:
            raise DefinitionError(
                rule.source or "<rule>", "alert_suppression",
                "alert_on_interim cannot be used with a rule that suppresses alerts",
            )  # fmt: skip
        super().__init__(
            store, job, datafeed, rule, identity=identity, renormalize=True, keep_events=True,
            clock=clock, log=log, time_limits=time_limits, profile=profile,
        )  # fmt: skip
        self.rule: RuleConfig = rule
        backfill = backfill or BackfillConfig()
        self.backfill = backfill
        self.snapshot_config = snapshots or SnapshotConfig()
        self.alert_on_interim = alert_on_interim
        self.keep_outbox = keep_outbox
        self.interval_ms = int(rule.interval.total_seconds() * 1000)
        self.by_field = job.detector.by_field_name
        now = clock.now()
        saved = load_service_state(store, job.job_id)
        self.first_start = saved is None
        if saved is None:
            assert self.identity is not None
            state = EngineState(first_start=iso(now), rule_uuid=self.identity.rule_uuid)
            if backfill.enabled:
                state.backfill_from_ms = to_epoch_ms(now - backfill.max_age)
            if not backfill.alerts:
                # the rule starts now, as a newly enabled rule does
                state.next_run_ms = to_epoch_ms(align_up(now, rule.interval))
        else:
            state = EngineState.from_json(saved)
        self.state = state
        self.pending = PendingEvents(state.seq)
        self.pending.restore(
            Pending(ts_ms, seq, event_from_document(orjson.loads(doc)), source)
            for seq, ts_ms, source, doc in pending_rows(store, job.job_id)
        )
        self.late = LateEvents(self.span_ms)
        self._snapshot_due = False
        self._outbox: list[Alert] = []
        assert self.identity is not None
        self.early = EarlyWarning(
            store, self.job, rule, self.identity, self.pending, clock=clock, log=self.log,
            enabled=alert_on_interim,
        )  # fmt: skip

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
        return len(self.pending)

    @property
    def interim_created(self) -> int:
        return self.early.created

    @property
    def interim_updated(self) -> int:
        return self.early.updated

    # --- events in ----------------------------------------------------------------------

    def ingest(self, events: Iterable[ProcessEvent], source: str, *, live: bool) -> IngestOutcome:
        """Keep the events the datafeed query matches until the frontier passes them."""
        received = kept = not_matched = late = old = quarantined = 0
        matches = self.datafeed.query.matches
        frontier = self.state.frontier_ms
        oldest = self.state.backfill_from_ms
        check_time = self.quarantine.check
        now = self.clock.now()
        profile = self.profile
        for event in events:
            received += 1
            if profile is not None and profile.note_host(event):
                self._job_dirty = True  # the profile's state changed: save it at the commit
            if not matches(event):
                not_matched += 1
                continue
            if check_time(event, now) is not None:
                quarantined += 1
                continue
            ts_ms = to_epoch_ms(event.timestamp)
            if oldest is not None and ts_ms < oldest:
                old += 1
                newest_old = self.state.older_newest_ms
                if newest_old is None or ts_ms > newest_old:
                    self.state.older_newest_ms = ts_ms
                continue
            if frontier is not None and ts_ms < frontier:
                late += 1
                self.late.add(source, ts_ms)
                continue
            kept += 1
            entry = self.pending.push(event, ts_ms, source)
            if live:
                self.early.note(entry.event, ts_ms)
        self.state.seq = self.pending.next_seq
        self.state.older_than_backfill += old
        return IngestOutcome(received, kept, not_matched, late, old, quarantined)

    # --- the frontier and the rule ------------------------------------------------------

    def advance(self, to: datetime) -> StepReport:
        """Move the frontier to ``to``, making every rule run due on the way (see the module
        doc). The caller holds the store transaction."""
        report = StepReport()
        to_ms = to_epoch_ms(to)
        frontier = self.state.frontier_ms
        if frontier is not None and to_ms <= frontier:
            return report
        first = self.pending.earliest_ms()
        if self.state.next_run_ms is None and first is not None:
            # rule over the history too (backfill.alerts): its runs start with the data
            self.state.next_run_ms = to_epoch_ms(align_up(from_epoch_ms(first), self.rule.interval))
        while self.state.next_run_ms is not None and self.state.next_run_ms - self.qd_ms <= to_ms:
            run_at = self.state.next_run_ms
            self._step(run_at - self.qd_ms, report)
            run = self.run_rule(from_epoch_ms(run_at))
            report.runs.append(run)
            if self.keep_outbox:
                self._outbox.extend(run.new_alerts)
                self._outbox.extend(run.updated_alerts)
            self.state.next_run_ms = run_at + self.interval_ms
        self._step(to_ms, report)
        return report

    def _step(self, to_ms: int, report: StepReport) -> None:
        frontier = self.state.frontier_ms
        if frontier is not None and to_ms <= frontier:
            return
        job = self.job
        finished: list[BucketResults] = []
        profile = self.profile
        for event in self.pending.pop_before(to_ms):
            if profile is not None:
                profile.observe(event, True)
            finished.extend(job.feed(event))
            report.fed += 1
            self._job_dirty = True
        finished.extend(job.advance_to(from_epoch_ms(to_ms)))
        if profile is not None:
            profile.finalize(to_ms)
        self.state.frontier_ms = to_ms
        for results in finished:
            self._job_dirty = True
            report.buckets.append(results)
            self._on_final(results, report)
        self.early.forget_before(to_ms // self.span_ms - 1)

    def _on_final(self, results: BucketResults, report: StepReport) -> None:
        bucket_ms = to_epoch_ms(results.bucket.timestamp)
        end_ms = bucket_ms + self.span_ms
        every = int(self.snapshot_config.interval.total_seconds() * 1000)
        last = self.state.last_snapshot_ms
        if last is None:
            self.state.last_snapshot_ms = end_ms - end_ms % every
        elif end_ms // every > last // every:
            self._snapshot_due = True
        confirmed = self.early.confirm(results, bucket_ms)
        report.confirmed.extend(confirmed)
        if self.keep_outbox:
            self._outbox.extend(confirmed)

    def early_warning(self) -> list[Alert]:
        """Alerts from interim results for users seen for the first time in their bucket since
        the last call (live events only). The caller holds the store transaction."""
        created = self.early.alert()
        if self.keep_outbox:
            self._outbox.extend(created)
        return created

    # --- commit -----------------------------------------------------------------------------

    def commit(self, sources: Mapping[str, Any], *, snapshot_reason: str | None = None) -> None:
        """Write everything since the last commit (the caller holds the transaction)."""
        store = self.store
        now = self.clock.now()
        if self._job_dirty:
            self.save_job()
        changes = self.pending.changes()
        if changes.removed:
            remove_pending(store, changes.removed)
        if changes.added:
            add_pending(store, self.config.job_id, [_row(p) for p in changes.added])
        late = self.late.take()
        if late:
            add_late(store, self.config.job_id, late, to_epoch_ms(now))
            self._log_late(late)
        self.state.sources = dict(sources)
        save_service_state(store, self.config.job_id, self.state.to_json(), iso(now))
        if self._snapshot_due or snapshot_reason:
            self._snapshot(now, snapshot_reason)
        if self._outbox:
            add_to_outbox(store, self._outbox)
            self._outbox = []

    def _log_late(self, late: Counter[tuple[str, int]]) -> None:
        by_source: Counter[str] = Counter()
        latest: dict[str, int] = {}
        for (src, b), n in late.items():
            by_source[src] += n
            latest[src] = max(latest.get(src, b), b)
        for src, n in sorted(by_source.items()):
            when = iso(from_epoch_ms(latest[src]))
            self.log("warning", "late_events", source=src, count=n, latest_bucket=when,
                     message=MISSED_MESSAGE.format(n, when))  # fmt: skip

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
        save_service_state(self.store, self.config.job_id, self.state.to_json(), iso(now))
        deleted = apply_retention(
            self.store, self.config.job_id,
            retention_days=self.snapshot_config.retention_days,
            daily_after_days=self.snapshot_config.daily_retention_after_days,
        )  # fmt: skip
        self.log("info", "model_snapshot", snapshot_id=snap.snapshot_id,
                 timestamp=iso(snap.timestamp), description=description,
                 deleted_by_retention=deleted or None)  # fmt: skip

    def pending_snapshot(self) -> list[PendingRow]:
        return [_row(p) for p in self.pending]


def _row(p: Pending) -> PendingRow:
    return (p.seq, p.ts_ms, p.source, orjson.dumps(p.event.to_ecs()).decode())


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
    target = align_down(now, frequency) - query_delay
    if next_run is not None and next_run <= now:
        due = next_run + ((now - next_run) // interval) * interval
        target = max(target, due - query_delay)
    return min(target, now - query_delay)
