"""What a replay did: its report (:class:`ReplayReport`) and the tally of its rule runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rarebird.alerts.model import Alert
from rarebird.datafeed.feed import Quarantine
from rarebird.job import JobStats
from rarebird.rules.executor import RuleRun


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
class RuleTally:
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
