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
the store at a commit boundary. A replay's rule runs share a transaction for up to
:data:`BATCH_SECONDS` (the state is saved when it commits); a run that changed alerts commits
at once, before its sinks see them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta

from rarebird.alerts.model import RuleIdentity
from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.datafeed.feed import Quarantine, TimeLimits
from rarebird.definitions import DatafeedConfig, JobConfig, RuleConfig
from rarebird.errors import DefinitionError, StateError
from rarebird.events import EventGroup, ProcessEvent
from rarebird.job import AnomalyJob
from rarebird.job.anomaly import RENORMALIZE_INTERVAL_S
from rarebird.results import BucketResults
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.executor import RuleExecutor, RuleRun
from rarebird.rules.profile import QuietProfile
from rarebird.rules.schedule import align_down, align_up
from rarebird.run.readahead import read_ahead
from rarebird.run.tally import ReplayReport, RuleTally
from rarebird.sinks.base import Sink
from rarebird.store import Store
from rarebird.store.adapters import SqliteRuleStore
from rarebird.store.jobs import flush_job, load_job, save_job
from rarebird.store.profiles import load_profile_state, save_profile_state
from rarebird.store.serve import add_to_outbox
from rarebird.timeutil import format_duration, iso, to_epoch_ms

#: ``log(level, event, **fields)``
LogFn = Callable[..., None]
#: Commit results and model state at least this often (wall-clock seconds) on long replays.
CHECKPOINT_SECONDS = 30.0
#: Write results and kept events once this many are held, to bound memory.
FLUSH_PENDING = 20_000
#: In a replay with the rule, the rule runs of this many wall-clock seconds share one commit:
#: the model's state is serialised once per commit, not once per run (``detect`` on the
#: labelled fleet, 2,304 runs: 6.7 s -> 5.1 s, docs/BENCHMARKS.md). A run that changed alerts
#: commits at once, before any output sees them.
BATCH_SECONDS = 1.0


def check_rule_reads_job(rule: RuleConfig, job: JobConfig) -> None:
    """A rule that does not read the job can never alert on it: refuse to start."""
    jobs = rule.machine_learning_job_id
    if job.job_id not in jobs and "*" not in jobs:
        raise DefinitionError(
            rule.source or "<rule>", "machine_learning_job_id",
            f"the rule does not read job {job.job_id!r} (it reads {', '.join(jobs)})",
        )  # fmt: skip


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
        profile: QuietProfile | None = None,
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
        # without a rule (job run) a replay is a datafeed's lookback: Elasticsearch's 6-hour
        # quantiles timer runs on the wall clock and does not fire, so only jumps renormalise;
        # with the rule (detect, serve) the run stands for a live job, timer included
        every = RENORMALIZE_INTERVAL_S if rule is not None else None
        self.job: AnomalyJob = load_job(
            store, job, keep_events=keep_events, renormalize=renormalize, renormalize_every_s=every
        )
        self.identity = (
            identity if identity is not None or rule is None else RuleIdentity.for_rule(rule)
        )
        #: the opt-in scoring profile (None: Elastic's rule), its state resumed from the store
        self.profile = profile
        if profile is not None:
            saved = load_profile_state(store, job.job_id, profile.name)
            if saved is not None:
                try:
                    profile.restore(saved)
                except (ValueError, KeyError, TypeError) as exc:
                    raise StateError(f"{store.path}: profile {profile.name!r} state of job "
                                     f"{job.job_id!r}: {exc}") from exc  # fmt: skip
        self.executor: RuleExecutor | None = None
        if rule is not None:
            self.executor = RuleExecutor(
                SqliteRuleStore(store), rule, identity=self.identity, exceptions=exceptions,
                check_jobs=False, profile=profile,
            )  # fmt: skip
        self.quarantine = Quarantine(time_limits or TimeLimits())
        self.span = job.bucket_span
        self.span_ms = job.bucket_span_s * 1000
        self.qd = datafeed.query_delay_for(job.job_id)
        self.qd_ms = int(self.qd.total_seconds() * 1000)
        self.frequency = datafeed.frequency_for(job.bucket_span)
        self._job_dirty = False
        #: the open transaction of a replay's rule runs (:meth:`_batched`), and when it began
        self._batch: ExitStack | None = None
        self._batch_began = 0.0

    # --- shared steps ----------------------------------------------------------------------

    def save_job(self) -> None:
        """Write the job's output and state, and the profile's (one transaction)."""
        with self.store.transaction():
            save_job(self.store, self.job)
            if self.profile is not None:
                save_profile_state(self.store, self.config.job_id, self.profile.name,
                                   self.profile.to_state())  # fmt: skip
        self._job_dirty = False

    def run_rule(self, at: datetime) -> RuleRun:
        """One rule run at ``at``, over the results finalised so far (written first: the rule
        searches the store). In a replay's batch the results are written in its transaction
        and the state waits for the batch's commit."""
        assert self.executor is not None
        if self._batch is not None:
            flush_job(self.store, self.job)
        elif self._job_dirty:
            self.save_job()
        with self.store.transaction():
            run = self.executor.run(at)
            changed = [*run.new_alerts, *run.updated_alerts]
            if changed and self.outbox:
                add_to_outbox(self.store, changed)
        if self._batch is not None and (
            changed or self.clock.monotonic() - self._batch_began >= BATCH_SECONDS
        ):
            self._commit_batch()
        if changed:
            for sink in self.sinks:
                sink.write(changed)
        return run

    @contextmanager
    def _batched(self) -> Iterator[None]:
        """Rule runs inside share a transaction, committed (with the state) by
        :meth:`run_rule` every :data:`BATCH_SECONDS` and when alerts changed, and at the end;
        an error rolls back to the last commit, as one run's would."""
        if self.executor is None or self._batch is not None:
            yield
            return
        try:
            yield
        except BaseException:
            batch, self._batch = self._batch, None
            if batch is not None:
                batch.__exit__(*sys.exc_info())  # the store's transaction rolls back
            raise
        if self._batch is not None:
            self._commit_batch()

    def _begin_batch(self) -> None:
        if self._batch is None and self.executor is not None:
            batch = ExitStack()
            batch.enter_context(self.store.transaction())
            self._batch, self._batch_began = batch, self.clock.monotonic()

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, None
        assert batch is not None
        try:
            if self._job_dirty:
                self.save_job()  # inside the batch's transaction
        except BaseException:
            batch.__exit__(*sys.exc_info())
            raise
        batch.close()  # COMMIT

    def last_rule_run(self) -> datetime | None:
        """When the rule last ran over this store (None: never, or no rule)."""
        return None if self.executor is None else self.executor.last_started_at()

    # --- replay ----------------------------------------------------------------------------

    def replayer(
        self,
        *,
        downtime: Sequence[tuple[datetime, datetime]] = (),
        on_run: Callable[[RuleRun], None] | None = None,
        observe: Callable[[ProcessEvent, bool], None] | None = None,
    ) -> Replay:
        """A replay over this engine, fed one event at a time (:meth:`Replay.offer`) -- so that
        one pass over the input can feed several engines -- and ended with :meth:`Replay.finish`.
        ``observe`` sees every event offered, and whether the datafeed matched it."""
        return Replay(self, downtime=downtime, on_run=on_run, observe=observe)

    def replay(
        self,
        events: Iterable[ProcessEvent],
        *,
        downtime: Sequence[tuple[datetime, datetime]] = (),
        on_run: Callable[[RuleRun], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        progress_every: float = 0.5,
        observe: Callable[[ProcessEvent, bool], None] | None = None,
        ahead: int = 1,
    ) -> ReplayReport:
        """Feed time-ordered ``events`` through the datafeed and the job, firing the rule (if
        any) on the event clock, and commit; see the module doc. ``on_progress`` gets the
        number of events matched so far, every ``progress_every`` seconds. ``ahead``: events
        read before any is offered (:mod:`rarebird.run.readahead`; the same order either way)."""
        replay = self.replayer(downtime=downtime, on_run=on_run, observe=observe)
        replay.batched = True
        clock = self.clock
        last_report = clock.monotonic()
        offer = replay.offer
        with self._batched():
            for batch in read_ahead(events, ahead):
                for ev in batch:
                    if offer(ev) and on_progress is not None:
                        now = clock.monotonic()
                        if now - last_report >= progress_every:
                            last_report = now
                            on_progress(replay.matched)
            report = replay.finish()
        if on_progress is not None:
            on_progress(replay.matched)
        return report


class Replay:
    """One replay of time-ordered events through an :class:`Engine` (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        *,
        downtime: Sequence[tuple[datetime, datetime]] = (),
        on_run: Callable[[RuleRun], None] | None = None,
        observe: Callable[[ProcessEvent, bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.downtime = tuple(downtime)
        self.on_run = on_run
        observers = [o for o in (observe, engine.profile and engine.profile.observe) if o]

        def both(ev: ProcessEvent, matched: bool) -> None:
            for o in observers:
                o(ev, matched)

        self._observe: Callable[[ProcessEvent, bool], None] | None = (
            None if not observers else observers[0] if len(observers) == 1 else both
        )
        self.tally = RuleTally()
        self.buckets = 0
        self.records = 0
        self.matched = 0
        self.not_matched = 0
        self.last_event: datetime | None = None
        self._matches = engine.datafeed.query.matches
        executor = engine.executor
        rule = engine.rule
        self.last_run = executor.last_started_at() if executor is not None else None
        self.next_run: datetime | None = (
            self.last_run + rule.interval
            if rule is not None and self.last_run is not None
            else None
        )
        self._last_checkpoint = engine.clock.monotonic()
        #: rule runs share commits (:meth:`Engine._batched`): only where the caller's loop is
        #: inside it (:meth:`Engine.replay`)
        self.batched = False
        limits = engine.quarantine.limits
        self._newest_plausible = engine.clock.now() + limits.max_future
        self._oldest = limits.min_time

    def _note(self, results: Iterable[BucketResults]) -> None:
        rule = self.engine.rule
        for res in results:
            self.buckets += 1
            self.records += len(res.records)
            self.engine._job_dirty = True
            if rule is not None and any(
                r.record_score >= rule.anomaly_threshold for r in res.records
            ):
                self.tally.unseen.add(res.bucket.timestamp)

    def _fire(self, at: datetime) -> None:
        engine = self.engine
        if self.batched:
            engine._begin_batch()
        self._note(engine.job.advance_to(at - engine.qd))
        if engine.profile is not None:
            engine.profile.finalize(to_epoch_ms(at - engine.qd))
        if any(a <= at < b for a, b in self.downtime):
            if engine._job_dirty:
                engine.save_job()
            self.tally.skipped += 1
            return
        run = engine.run_rule(at)
        self.tally.add(run)
        if self.on_run is not None:
            self.on_run(run)

    def offer(self, ev: ProcessEvent) -> bool:
        """One event of the input: True when the datafeed query matched it and its time is
        plausible (it went to the job); an implausible time is quarantined (counted, with where
        it came from), never modelled."""
        matched = self._matches(ev)
        if self._observe is not None:
            self._observe(ev, matched)
        if not matched:
            self.not_matched += 1
            return False
        engine = self.engine
        ts = ev.timestamp
        if ts > self._newest_plausible or ts < self._oldest:
            now = engine.clock.now()  # a long replay: the wall clock has moved on
            self._newest_plausible = now + engine.quarantine.limits.max_future
            if engine.quarantine.check(ev, now) is not None:
                return False
        rule = engine.rule
        if rule is not None:
            next_run = self.next_run
            if next_run is None:
                next_run = align_up(ts, rule.interval)
            elif self.matched == 0 and self.last_run is not None and ts < self.last_run:
                self.tally.warn(
                    f"the input starts at {iso(ts)}, before the rule's last run in this "
                    f"store ({iso(self.last_run)}): the rule goes on from there, and the job "
                    "drops events of buckets it has already finalised"
                )
            while next_run - engine.qd <= ts:
                self._fire(next_run)
                next_run += rule.interval
            self.next_run = next_run
        elif engine.profile is not None:
            engine.profile.finalize(to_epoch_ms(ts))  # no rule runs to wait for: forget old days
        self._note(engine.job.feed(ev))
        self._fed(1, ts)
        return True

    def plausible_us(self) -> tuple[int, int]:
        """The event times this replay models, in epoch microseconds (both ends included);
        :meth:`offer` quarantines the others."""
        return _epoch_us(self._oldest), _epoch_us(self._newest_plausible)

    def quarantine(self, ev: ProcessEvent) -> None:
        """A matched event timed outside :meth:`plausible_us`: quarantined (counted, with where
        it came from) as :meth:`offer` would."""
        limits = self.engine.quarantine.limits
        self.engine.quarantine.check(ev, self._newest_plausible - limits.max_future)

    def offer_group(self, group: EventGroup) -> None:
        """Matched events of one user and bucket counted where they were scanned (``job run
        --aggregate``), times within :meth:`plausible_us`, in the order of their first
        events. Without a rule or a profile only: both need the events themselves."""
        engine = self.engine
        if engine.rule is not None or engine.profile is not None:
            raise ValueError("groups replay a job without a rule or a profile")
        self._note(engine.job.feed_group(group))
        self._fed(group.count, group.last)

    def _fed(self, n: int, last: datetime) -> None:
        engine = self.engine
        engine._job_dirty = True
        self.matched += n
        if self.last_event is None or last > self.last_event:
            self.last_event = last
        mono = engine.clock.monotonic()
        if mono - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self._last_checkpoint = mono
            engine.save_job()
        elif engine.job.pending >= FLUSH_PENDING:
            flush_job(engine.store, engine.job)

    def finish(self) -> ReplayReport:
        """End of input: the rule's last runs (or the job's last bucket), the final commit."""
        engine = self.engine
        job, rule, qd, tally = engine.job, engine.rule, engine.qd, self.tally
        if rule is None:
            self._note(job.finish())
            if engine.profile is not None:
                engine.profile.finalize(2**62)
        elif self.last_event is not None and self.next_run is not None:
            next_run = self.next_run
            last_bucket = align_down(self.last_event, engine.span)
            # go on until no run could have the last bucket in its range any more
            while next_run - rule.lookback <= last_bucket:
                self._fire(next_run)
                next_run += rule.interval
            self.next_run = next_run
            if next_run - rule.interval - qd < last_bucket + engine.span:
                # the rule never waited long enough for the last bucket: finish the job anyway
                # so the results cover the whole input
                self._note(job.finish())
        if engine._job_dirty or self.matched:
            engine.save_job()
        tally.never_seen += len(tally.unseen)
        if rule is not None and tally.never_seen:
            tally.warn(
                f"{tally.never_seen} bucket(s) with anomalies over the threshold were never "
                f"inside a rule run's range: the rule looks back {format_duration(rule.lookback)} "
                f"({rule.from_}) but a bucket is final only {format_duration(engine.span)} + "
                f"{qd.total_seconds():g}s (bucket span + query delay) after it starts"
            )
        return ReplayReport(
            events=self.matched,
            not_matched=self.not_matched,
            buckets=self.buckets,
            records=self.records,
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
            quarantine=engine.quarantine,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)
