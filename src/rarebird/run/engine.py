"""THE composition: datafeed -> job -> rule on the event clock -> one commit.

One :class:`Engine` runs the stages for every command that models events:

- ``rarebird job run`` is the engine in replay with no rule (:meth:`Engine.replay`);
- ``rarebird detect`` is the engine in replay with the rule;
- ``rarebird serve`` is the engine live (:meth:`Engine.ingest`, :meth:`Engine.advance`,
  :meth:`Engine.commit`), driven by :mod:`rarebird.serve.service`.

**Events in.** In replay the input is already in time order (:func:`rarebird.sources.merge_by_time`),
so every event the datafeed query matches goes to the job as it comes; the job drops one older
than the bucket it is building (out of order, as Elastic's job does). Live, matched events wait in
the datafeed's pending set until the *frontier* passes them (:mod:`rarebird.datafeed.feed`).

**The rule schedule.** Rule runs are at multiples of the rule's ``interval`` since the epoch.
Before the run at ``T`` the job is advanced to exactly ``T - query_delay`` (and not beyond), so
the run sees exactly the buckets that end by then -- the same state whatever moved the job there
and however the work was split between commits or process lifetimes. Runs are never skipped:
after downtime every missed run is made, in order, each over its own state. In replay the runs
follow the events' clock; live they follow the wall clock, but the decisions are the same, which
is why a service that ran (or crashed and restarted) over some events alerts exactly as
``detect`` over the same events. The replay-only ``downtime`` simulates Kibana being down: runs
inside it do not happen and the next run catches up as Kibana does.

**Commits.** The job's output and state, the rule runs' alerts and (live) the pending set, late
counts, early-warning alerts, snapshots and the engine's position are written with
:meth:`Engine.commit` / the replay's checkpoints inside the store's transactions: a crash leaves
the store at a commit boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rarebird.alerts.model import Alert, RuleIdentity
from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.datafeed.feed import Datafeed, Quarantine, TimeLimits
from rarebird.definitions import DatafeedConfig, JobConfig, RuleConfig
from rarebird.errors import DefinitionError
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob, JobStats
from rarebird.results import BucketResults
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.executor import RuleExecutor, RuleRun
from rarebird.rules.schedule import align_down, align_up
from rarebird.sinks.base import Sink
from rarebird.store import Store
from rarebird.store.adapters import SqliteRuleStore
from rarebird.store.jobs import flush_job, load_job, save_job
from rarebird.store.serve import add_to_outbox
from rarebird.timeutil import format_duration, iso

#: ``log(level, event, **fields)``
LogFn = Callable[..., None]
#: Commit results and model state at least this often (wall-clock seconds) on long replays.
CHECKPOINT_SECONDS = 30.0
#: Write results and kept events once this many are held, to bound memory.
FLUSH_PENDING = 20_000


def check_rule_reads_job(rule: RuleConfig, job: JobConfig) -> None:
    """A rule that does not read the job can never alert on it: refuse to start."""
    jobs = rule.machine_learning_job_id
    if job.job_id not in jobs and "*" not in jobs:
        raise DefinitionError(
            rule.source or "<rule>", "machine_learning_job_id",
            f"the rule does not read job {job.job_id!r} (it reads {', '.join(jobs)})",
        )  # fmt: skip


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did: the datafeed's counts, the job's, and the rule's (when it ran)."""

    #: events the datafeed query matched (given to the job) / parsed events it did not match
    events: int
    not_matched: int
    buckets: int
    records: int
    job_stats: JobStats
    query_delay: timedelta
    runs: int = 0
    skipped_runs: int = 0
    first_run: datetime | None = None
    last_run: datetime | None = None
    new_alerts: tuple[Alert, ...] = ()
    updated_alerts: int = 0
    suppressed: int = 0
    #: distinct anomaly records dropped by exceptions / never alerted because of max_signals
    excepted: int = 0
    truncated: int = 0
    #: warning text -> number of runs that gave it
    warnings: dict[str, int] = field(default_factory=dict)
    #: buckets with records over the threshold that no run ever had in its range
    unseen_buckets: int = 0
    #: events whose time was not plausible, never given to the job
    quarantine: Quarantine | None = None


@dataclass
class _RuleTally:
    runs: int = 0
    skipped: int = 0
    first: datetime | None = None
    last: datetime | None = None
    alerts: list[Alert] = field(default_factory=list)
    updated: int = 0
    suppressed: int = 0
    excepted: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)
    warnings: dict[str, int] = field(default_factory=dict)
    #: bucket starts with records over the threshold, not yet inside any run's range
    unseen: set[datetime] = field(default_factory=set)
    never_seen: int = 0

    def warn(self, message: str) -> None:
        self.warnings[message] = self.warnings.get(message, 0) + 1

    def add(self, run: RuleRun) -> None:
        self.runs += 1
        self.first = self.first or run.started_at
        self.last = run.started_at
        self.alerts.extend(run.new_alerts)
        self.updated += len(run.updated_alerts)
        self.suppressed += run.suppressed
        self.excepted |= run.excepted_records
        self.truncated |= run.truncated_records
        for w in run.warnings:
            self.warn(w)
        lo = run.ranges[-1].start  # the normal range; catch-up ranges are older
        for start in list(self.unseen):
            if any(r.start <= start <= r.end for r in run.ranges):
                self.unseen.discard(start)
            elif start < lo:
                self.unseen.discard(start)  # it left the range without a run seeing it
                self.never_seen += 1


class Engine:
    """The stages composed over one store: datafeed, job and (optionally) the rule.

    ``rule=None`` runs the job alone (``job run``). ``exceptions``: a fixed set for every run
    (a replay loads it once), or None to read the rule's exceptions from the store at every run
    (live). ``outbox``: new and changed alerts are queued for the outputs in the transaction of
    the rule run that made them (:mod:`rarebird.run.delivery` delivers them); ``sinks`` receive
    them directly after each run instead (no retries, no outbox: tests and embedding).
    """

    def __init__(
        self,
        store: Store,
        job: JobConfig,
        datafeed: DatafeedConfig,
        rule: RuleConfig | None = None,
        *,
        identity: RuleIdentity | None = None,
        exceptions: ExceptionSet | None = None,
        sinks: Sequence[Sink] = (),
        renormalize: bool = True,
        keep_events: bool = True,
        outbox: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        log: LogFn | None = None,
        time_limits: TimeLimits | None = None,
    ) -> None:
        if rule is not None:
            check_rule_reads_job(rule, job)
        self.store = store
        self.config = job
        self.datafeed = datafeed
        self.rule = rule
        self.clock = clock
        self.sinks = tuple(sinks)
        #: queue new and changed alerts for the outputs, in the transaction of their rule run
        self.outbox = outbox
        self.log: LogFn = log or (lambda *a, **k: None)
        self.job: AnomalyJob = load_job(
            store, job, keep_events=keep_events, renormalize=renormalize
        )
        self.identity = (
            identity if identity is not None or rule is None else RuleIdentity.for_rule(rule)
        )
        self.executor: RuleExecutor | None = None
        if rule is not None:
            self.executor = RuleExecutor(
                SqliteRuleStore(store), rule, identity=self.identity, exceptions=exceptions,
                check_jobs=False,
            )  # fmt: skip
        self.feed = Datafeed(datafeed.query, time_limits, clock.now)
        self.span = job.bucket_span
        self.span_ms = job.bucket_span_s * 1000
        self.qd = datafeed.query_delay_for(job.job_id)
        self.qd_ms = int(self.qd.total_seconds() * 1000)
        self.frequency = datafeed.frequency_for(job.bucket_span)
        self._job_dirty = False

    # --- shared steps ----------------------------------------------------------------------

    def save_job(self) -> None:
        """Write the job's output and state (one transaction)."""
        save_job(self.store, self.job)
        self._job_dirty = False

    def run_rule(self, at: datetime) -> RuleRun:
        """One rule run at ``at``, over the results finalised so far (saved first: the rule
        searches the store)."""
        assert self.executor is not None
        if self._job_dirty:
            self.save_job()
        with self.store.transaction():
            run = self.executor.run(at)
            changed = [*run.new_alerts, *run.updated_alerts]
            if changed and self.outbox:
                add_to_outbox(self.store, changed)
        if changed:
            for sink in self.sinks:
                sink.write(changed)
        return run

    def last_rule_run(self) -> datetime | None:
        """When the rule last ran over this store (None: never, or no rule)."""
        return None if self.executor is None else self.executor.last_started_at()

    # --- replay ----------------------------------------------------------------------------

    def replay(
        self,
        events: Iterable[ProcessEvent],
        *,
        downtime: Sequence[tuple[datetime, datetime]] = (),
        on_run: Callable[[RuleRun], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        progress_every: float = 0.5,
    ) -> ReplayReport:
        """Feed time-ordered ``events`` through the datafeed and the job, firing the rule (if
        any) on the event clock, and commit; see the module doc. ``on_progress`` gets the
        number of events matched so far, every ``progress_every`` seconds."""
        job = self.job
        rule = self.rule
        tally = _RuleTally()
        buckets = records = 0
        qd = self.qd
        last_run = self.executor.last_started_at() if self.executor is not None else None
        next_run: datetime | None = (
            last_run + rule.interval if rule is not None and last_run is not None else None
        )

        def note(results: Iterable[BucketResults]) -> None:
            nonlocal buckets, records
            for res in results:
                buckets += 1
                records += len(res.records)
                self._job_dirty = True
                if rule is not None and any(
                    r.record_score >= rule.anomaly_threshold for r in res.records
                ):
                    tally.unseen.add(res.bucket.timestamp)

        def fire(at: datetime) -> None:
            note(job.advance_to(at - qd))
            if any(a <= at < b for a, b in downtime):
                if self._job_dirty:
                    self.save_job()
                tally.skipped += 1
                return
            run = self.run_rule(at)
            tally.add(run)
            if on_run is not None:
                on_run(run)

        clock = self.clock
        last_report = last_checkpoint = clock.monotonic()
        matched = 0
        last_event: datetime | None = None
        for ev in self.feed.filter(events):
            ts = ev.timestamp
            if rule is not None:
                if next_run is None:
                    next_run = align_up(ts, rule.interval)
                elif matched == 0 and last_run is not None and ts < last_run:
                    tally.warn(
                        f"the input starts at {iso(ts)}, before the rule's last run in this "
                        f"store ({iso(last_run)}): the rule goes on from there, and the job drops "
                        "events of buckets it has already finalised"
                    )
                while next_run - qd <= ts:
                    fire(next_run)
                    next_run += rule.interval
            note(job.feed(ev))
            self._job_dirty = True
            matched += 1
            last_event = ts if last_event is None or ts > last_event else last_event
            now = clock.monotonic()
            if on_progress is not None and now - last_report >= progress_every:
                last_report = now
                on_progress(matched)
            if now - last_checkpoint >= CHECKPOINT_SECONDS:
                last_checkpoint = now
                self.save_job()
            elif job.pending >= FLUSH_PENDING:
                flush_job(self.store, job)

        if rule is None:
            note(job.finish())
        elif last_event is not None and next_run is not None:
            last_bucket = align_down(last_event, self.span)
            # go on until no run could have the last bucket in its range any more
            while next_run - rule.lookback <= last_bucket:
                fire(next_run)
                next_run += rule.interval
            if next_run - rule.interval - qd < last_bucket + self.span:
                # the rule never waited long enough for the last bucket: finish the job anyway
                # so the results cover the whole input
                note(job.finish())
        if self._job_dirty or matched:
            self.save_job()
        if on_progress is not None:
            on_progress(matched)
        tally.never_seen += len(tally.unseen)
        if rule is not None and tally.never_seen:
            tally.warn(
                f"{tally.never_seen} bucket(s) with anomalies over the threshold were never "
                f"inside a rule run's range: the rule looks back {format_duration(rule.lookback)} "
                f"({rule.from_}) but a bucket is final only {format_duration(self.span)} + "
                f"{qd.total_seconds():g}s (bucket span + query delay) after it starts"
            )
        return ReplayReport(
            events=matched,
            not_matched=self.feed.not_matched,
            buckets=buckets,
            records=records,
            job_stats=job.stats,
            query_delay=qd,
            runs=tally.runs,
            skipped_runs=tally.skipped,
            first_run=tally.first,
            last_run=tally.last,
            new_alerts=tuple(tally.alerts),
            updated_alerts=tally.updated,
            suppressed=tally.suppressed,
            excepted=len(tally.excepted),
            truncated=len(tally.truncated - {a.record_id for a in tally.alerts}),
            warnings=tally.warnings,
            unseen_buckets=tally.never_seen,
            quarantine=self.feed.quarantine,
        )
