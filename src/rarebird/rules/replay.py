"""Replay: the anomaly job and the detection rule together over historical events, on the event
clock, as a live deployment would have run them.

Timing, as a live stack has it:

- the datafeed finalises a bucket only once ``query_delay`` has passed its end
  (``DatafeedConfig.query_delay_for``: the datafeed's value, else a stable 60-120 s per job);
- the rule runs every ``interval``; rarebird puts the runs on multiples of ``interval`` since the
  epoch, so two replays of consecutive data with one store run the rule at the same instants as
  one replay of all of it. A store that already has runs of the rule continues from the last
  one (every run in between happens, as the live rule would have run through a quiet period);
- at run time ``T`` the job has finalised exactly the buckets that end at or before
  ``T - query_delay``, and the rule runs at ``now = T``;
- at the end of the input the runs go on until no further run could see the last bucket (its
  start has left ``[T + from, T]``), so every finalised bucket was inside the range of every run
  that would have seen it live. A rule whose lookback is too short for that (``from`` shorter
  than ``bucket_span + query_delay``) never sees some buckets; the report says how many.

The job renormalises stored scores as a running Elastic job does (``renormalize``), so a
record's ``record_score`` may rise past the threshold after it was first written, and the next
run whose range still holds it alerts.

``downtime`` simulates an outage of the rule (Kibana down): runs scheduled inside a downtime
range do not happen, and the first run after it catches up as Kibana does
(:func:`~rarebird.rules.schedule.plan_ranges`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rarebird.alerts import Alert, RuleIdentity
from rarebird.definitions.datafeed import DatafeedConfig
from rarebird.definitions.job import JobConfig
from rarebird.definitions.rule import RuleConfig
from rarebird.errors import DefinitionError
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob, JobStats
from rarebird.results import BucketResults
from rarebird.rules.exception_store import load_rule_exceptions
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.executor import RuleExecutor, RuleRun
from rarebird.rules.schedule import align_down, align_up
from rarebird.sinks.base import Sink
from rarebird.store.sqlite import Store
from rarebird.timeutil import format_duration, iso


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did."""

    runs: int
    skipped_runs: int
    first_run: datetime | None
    last_run: datetime | None
    events: int
    new_alerts: tuple[Alert, ...]
    updated_alerts: int
    suppressed: int
    #: distinct anomaly records dropped by exceptions / never alerted because of max_signals
    excepted: int
    truncated: int
    #: warning text -> number of runs that gave it
    warnings: dict[str, int]
    #: buckets with records over the threshold that no run ever had in its range
    unseen_buckets: int
    job_stats: JobStats
    query_delay: timedelta


@dataclass
class _State:
    runs: int = 0
    skipped: int = 0
    first: datetime | None = None
    last: datetime | None = None
    alerts: list[Alert] = field(default_factory=list)
    updated: int = 0
    suppressed: int = 0
    excepted: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)
    warnings: Counter[str] = field(default_factory=Counter)
    #: bucket starts with records over the threshold, not yet inside any run's range
    unseen: set[datetime] = field(default_factory=set)
    never_seen: int = 0


def replay(
    store: Store,
    job: JobConfig,
    datafeed: DatafeedConfig,
    rule: RuleConfig,
    events: Iterable[ProcessEvent],
    *,
    identity: RuleIdentity | None = None,
    exceptions: ExceptionSet | None = None,
    sinks: Sequence[Sink] = (),
    downtime: Sequence[tuple[datetime, datetime]] = (),
    on_run: Callable[[RuleRun], None] | None = None,
    keep_events: bool = True,
    renormalize: bool = True,
) -> ReplayReport:
    """Feed ``events`` (time-ordered) through the datafeed query and the job, firing the rule
    on the event clock; returns what happened. Results, alerts and model state are committed
    to ``store`` as they are made."""
    if job.job_id not in rule.machine_learning_job_id and "*" not in rule.machine_learning_job_id:
        raise DefinitionError(
            rule.source or "<rule>", "machine_learning_job_id",
            f"the rule does not read job {job.job_id!r} "
            f"(it reads {', '.join(rule.machine_learning_job_id)})",
        )  # fmt: skip
    anomaly_job = AnomalyJob.open(store, job, datafeed, keep_events=keep_events,
                                  renormalize=renormalize)  # fmt: skip
    if exceptions is None:
        exceptions = load_rule_exceptions(store, rule)
    executor = RuleExecutor(store, rule, identity=identity, exceptions=exceptions, sinks=sinks,
                            check_jobs=False)  # fmt: skip
    qd = datafeed.query_delay_for(job.job_id)
    span = job.bucket_span
    interval = rule.interval
    st = _State()
    last_run = executor.last_started_at()
    next_run: datetime | None = last_run + interval if last_run is not None else None
    dirty = False

    def note(results: Iterable[BucketResults]) -> None:
        nonlocal dirty
        for res in results:
            dirty = True
            if any(r.record_score >= rule.anomaly_threshold for r in res.records):
                st.unseen.add(res.bucket.timestamp)

    def fire(at: datetime) -> None:
        nonlocal dirty
        note(anomaly_job.advance_to(at - qd))
        if dirty:
            anomaly_job.save()
            dirty = False
        if any(a <= at < b for a, b in downtime):
            st.skipped += 1
            return
        run = executor.run(at)
        st.runs += 1
        st.first = st.first or at
        st.last = at
        st.alerts.extend(run.new_alerts)
        st.updated += len(run.updated_alerts)
        st.suppressed += run.suppressed
        st.excepted |= run.excepted_records
        st.truncated |= run.truncated_records
        for w in run.warnings:
            st.warnings[w] += 1
        lo = run.ranges[-1].start  # the normal range; catch-up ranges are older
        for start in list(st.unseen):
            if any(r.start <= start <= r.end for r in run.ranges):
                st.unseen.discard(start)
            elif start < lo:
                st.unseen.discard(start)  # it left the range without a run seeing it
                st.never_seen += 1
        if on_run is not None:
            on_run(run)

    n_events = 0
    last_event: datetime | None = None
    for ev in events:
        if not datafeed.query.matches(ev):
            continue
        if next_run is None:
            next_run = align_up(ev.timestamp, interval)
        elif n_events == 0 and last_run is not None and ev.timestamp < last_run:
            st.warnings[
                f"the input starts at {iso(ev.timestamp)}, before the rule's last run in this "
                f"store ({iso(last_run)}): the rule goes on from there, and the job drops "
                "events of buckets it has already finalised"
            ] += 1
        while next_run - qd <= ev.timestamp:
            fire(next_run)
            next_run += interval
        note(anomaly_job.feed(ev))
        dirty = True
        n_events += 1
        last_event = ev.timestamp if last_event is None else max(last_event, ev.timestamp)

    if last_event is not None and next_run is not None:
        last_bucket = align_down(last_event, span)
        last_bucket_end = last_bucket + span
        # go on until no run could have the last bucket in its range any more
        while next_run - rule.lookback <= last_bucket:
            fire(next_run)
            next_run += interval
        if next_run - interval - qd < last_bucket_end:
            # the rule never waited long enough for the last bucket: finish the job anyway so
            # the results cover the whole input
            note(anomaly_job.finish())
    if dirty or n_events:
        anomaly_job.save()
    st.never_seen += len(st.unseen)
    if st.never_seen:
        st.warnings[
            f"{st.never_seen} bucket(s) with anomalies over the threshold were never inside a "
            f"rule run's range: the rule looks back {format_duration(rule.lookback)} ({rule.from_}) "
            f"but a bucket is final only {format_duration(span)} + {qd.total_seconds():g}s "
            "(bucket span + query delay) after it starts"
        ] += 1
    return ReplayReport(
        runs=st.runs,
        skipped_runs=st.skipped,
        first_run=st.first,
        last_run=st.last,
        events=n_events,
        new_alerts=tuple(st.alerts),
        updated_alerts=st.updated,
        suppressed=st.suppressed,
        excepted=len(st.excepted),
        truncated=len(st.truncated - {a.record_id for a in st.alerts}),
        warnings=dict(st.warnings),
        unseen_buckets=st.never_seen,
        job_stats=anomaly_job.stats,
        query_delay=qd,
    )
