"""The ML rule executor: one execution of the detection rule over the anomaly results store.

Per execution at ``now`` (Kibana's ``ml.ts`` / ``find_ml_signals.ts`` / ``buildAnomalyQuery`` in
``lib/machine_learning/index.ts``), for each time range of :func:`~rarebird.rules.schedule.plan_ranges`
(normally one, ``[now-45m, now]``; more after missed runs):

1. anomaly *records* of the rule's jobs with bucket ``timestamp`` in [start, end] (both ends
   inclusive), ``is_interim: false`` and the **current** ``record_score >= anomaly_threshold``,
   best score first (ties: older first, then by id, so runs are repeatable);
2. minus the rule's exceptions (:mod:`rarebird.rules.exceptions`);
3. if more than ``max_signals`` remain: the "maximum alert limit" warning, and only the best
   ``max_signals`` go on;
4. one alert per record, id from (record ``_id``, rule) -- a record already alerted (by an earlier
   overlapping run, or an earlier range of this run) is not alerted again, and a stored alert is
   never changed or withdrawn by a later renormalisation; a record renormalised upward past the
   threshold while still in a run's range is alerted by that run;
5. suppression, if the rule has ``alert_suppression`` (:mod:`rarebird.rules.suppression`);
6. the new alerts, the changed duplicate counts and the run itself are committed to the store in
   one transaction (:meth:`RuleStore.commit_run`); the caller hands the new and changed alerts to
   its outputs. The executor runs no SQL and calls no sink: it sees the store through the small
   :class:`RuleStore` protocol, which :class:`rarebird.store.adapters.SqliteRuleStore` implements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rarebird.alerts.document import build_alert
from rarebird.alerts.model import Alert, RuleIdentity, alert_id_for, execution_uuid_for
from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values
from rarebird.results import AnomalyRecord
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.schedule import KIBANA_MAX_ALERTS_PER_RUN, RuleRange, plan_ranges
from rarebird.rules.suppression import SuppressionOutcome, Suppressor
from rarebird.timeutil import iso

MAX_SIGNALS_WARNING = (
    "This rule reached the maximum alert limit for the rule execution. "
    "Some alerts were not created."
)

#: A stored document (anomaly record, kept event), as JSON.
Doc = Mapping[str, Any]


class RuleStore(Protocol):
    """What the rule executor reads and writes: the store, seen from the rule."""

    def last_run_at(self, rule_uuid: str, *, before: datetime | None = None) -> datetime | None:
        """When the rule last ran (before ``before``, when given)."""
        ...

    def rule_exceptions(self, rule: RuleConfig) -> ExceptionSet:
        """The exception items and value lists the rule applies."""
        ...

    def search_records(
        self, job_ids: Sequence[str], start: datetime, end: datetime, min_score: float
    ) -> list[tuple[str, Doc]]:
        """Final anomaly records of the jobs with bucket time in [start, end] and current
        ``record_score >= min_score``, best first (ties: older first, then by id)."""
        ...

    def events_of(self, job_id: str, start: datetime, end: datetime, user: str | None) -> list[Doc]:
        """Kept events of the job in [start, end) (of one user, when given)."""
        ...

    def existing_alert_ids(self, ids: Sequence[str]) -> set[str]: ...

    def suppressed_record_ids(self, rule_uuid: str, record_ids: Sequence[str]) -> set[str]: ...

    def open_alert_of_instance(
        self, rule_uuid: str, instance_id: str, created_since: datetime
    ) -> Alert | None:
        """The newest not-closed alert of a suppression group created since ``created_since``."""
        ...

    def job_has_results(self, job_id: str) -> bool: ...

    def commit_run(self, run: RuleRun, suppressed: Sequence[tuple[str, str]]) -> None:
        """In one transaction: the run's new alerts, its updated alerts, the records counted as
        duplicates (record id, alert id) and the run itself."""
        ...


class RecordProfile(Protocol):
    """A scoring profile between the job's records and the rule (:mod:`rarebird.rules.profile`)."""

    def select(
        self, hits: Sequence[tuple[str, Doc]], start: datetime, end: datetime
    ) -> list[tuple[str, Doc]]:
        """The records of ``hits`` the rule goes on with, and records of its own."""
        ...

    def annotate(self, record_id: str) -> Mapping[str, Any]:
        """Fields added to the alert of ``record_id``."""
        ...


@dataclass(frozen=True)
class RuleRun:
    """What one execution did."""

    rule_id: str
    rule_uuid: str
    started_at: datetime
    execution_uuid: str
    ranges: tuple[RuleRange, ...]
    #: distinct records over the threshold in the ranges, before exceptions
    found: int
    #: records dropped by exceptions, by item (item_id, name) -> count
    excepted: Mapping[tuple[str, str], int]
    #: records over max_signals (after exceptions) that were not turned into alerts
    truncated: int
    #: records already alerted (or counted as duplicates) by an earlier run
    already_alerted: int
    new_alerts: tuple[Alert, ...]
    #: existing alerts whose suppressed-duplicate count grew
    updated_alerts: tuple[Alert, ...]
    #: records counted as duplicates on a kept alert
    suppressed: int
    warnings: tuple[str, ...]
    remaining_gap: timedelta = timedelta(0)
    #: ids of the records dropped by exceptions / cut by max_signals
    excepted_records: frozenset[str] = frozenset()
    truncated_records: frozenset[str] = frozenset()

    @property
    def excepted_total(self) -> int:
        return sum(self.excepted.values())

    def summary(self) -> dict[str, Any]:
        return {
            "started_at": iso(self.started_at),
            "ranges": [[iso(r.start), iso(r.end)] for r in self.ranges],
            "found": self.found,
            "excepted": self.excepted_total,
            "truncated": self.truncated,
            "already_alerted": self.already_alerted,
            "created": len(self.new_alerts),
            "updated": len(self.updated_alerts),
            "suppressed": self.suppressed,
            "warnings": list(self.warnings),
            "remaining_gap_s": self.remaining_gap.total_seconds(),
        }


_FROM_STORE: Any = object()


@dataclass
class _Tally:
    seen: set[str] = field(default_factory=set)
    found: set[str] = field(default_factory=set)
    excepted: Counter[tuple[str, str]] = field(default_factory=Counter)
    excepted_ids: set[str] = field(default_factory=set)
    truncated_ids: set[str] = field(default_factory=set)
    truncated: int = 0
    already: int = 0
    warnings: list[str] = field(default_factory=list)
    missing_lists: set[str] = field(default_factory=set)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


class RuleExecutor:
    """Runs one ML rule over one store.

    ``exceptions``: a fixed set (replay loads it once), or None to load the rule's exceptions
    from the store at every run. ``check_jobs`` adds a warning when a job has no results at all
    (Kibana's "ML jobs are not started" has no meaning for a replay). ``profile`` (**rarebird**,
    opt-in, :mod:`rarebird.rules.profile`): selects among the records found and adds its own,
    and annotates the alerts it keeps; None (the default) is Elastic's rule, untouched.
    """

    def __init__(
        self,
        store: RuleStore,
        rule: RuleConfig,
        *,
        identity: RuleIdentity | None = None,
        exceptions: ExceptionSet | None = None,
        max_alerts_per_run: int = KIBANA_MAX_ALERTS_PER_RUN,
        check_jobs: bool = True,
        profile: RecordProfile | None = None,
    ) -> None:
        self.store = store
        self.profile = profile
        self.rule = rule
        self.identity = identity or RuleIdentity.for_rule(rule)
        self.exceptions = exceptions
        self.max_alerts_per_run = max_alerts_per_run
        self.check_jobs = check_jobs

    # -- history ---------------------------------------------------------------------------

    def previous_started_at(self, before: datetime) -> datetime | None:
        return self.store.last_run_at(self.identity.rule_uuid, before=before)

    def last_started_at(self) -> datetime | None:
        return self.store.last_run_at(self.identity.rule_uuid)

    # -- one execution ---------------------------------------------------------------------

    def run(self, now: datetime, *, previous_started_at: datetime | None = _FROM_STORE) -> RuleRun:
        if previous_started_at is _FROM_STORE:
            previous_started_at = self.previous_started_at(now)
        plan = plan_ranges(self.rule, now, previous_started_at,
                           max_alerts_per_run=self.max_alerts_per_run)  # fmt: skip
        exceptions = self.exceptions
        if exceptions is None:
            exceptions = self.store.rule_exceptions(self.rule)
        exceptions = exceptions.active(now)
        execution_uuid = execution_uuid_for(self.identity, now)
        tally = _Tally()
        for w in plan.warnings:
            tally.warn(w)
        if self.check_jobs:
            self._check_jobs(tally)
        outcome = SuppressionOutcome()
        suppressor = None
        if self.rule.alert_suppression is not None:
            suppressor = Suppressor(self.store, self.rule.alert_suppression, self.identity, now,
                                    execution_uuid)  # fmt: skip
        for rng in plan.ranges:
            candidates = self._range_candidates(rng, exceptions, now, execution_uuid, tally)
            if suppressor is not None:
                suppressor.process(candidates, outcome)
            else:
                outcome.created.extend(candidates)
        for list_id in sorted(tally.missing_lists):
            tally.warn(
                f'Value list "{list_id}" referenced by an exception item does not exist: '
                "its entries do not match"
            )
        run = RuleRun(
            rule_id=self.rule.rule_id,
            rule_uuid=self.identity.rule_uuid,
            started_at=now,
            execution_uuid=execution_uuid,
            ranges=plan.ranges,
            found=len(tally.found),
            excepted=dict(tally.excepted),
            truncated=tally.truncated,
            already_alerted=tally.already,
            new_alerts=tuple(outcome.created),
            updated_alerts=tuple(outcome.updated.values()),
            suppressed=len(outcome.suppressed),
            warnings=tuple(tally.warnings),
            remaining_gap=plan.remaining_gap,
            excepted_records=frozenset(tally.excepted_ids),
            truncated_records=frozenset(tally.truncated_ids - tally.seen),
        )
        self.store.commit_run(run, outcome.suppressed)
        return run

    def _range_candidates(
        self,
        rng: RuleRange,
        exceptions: ExceptionSet,
        now: datetime,
        execution_uuid: str,
        tally: _Tally,
    ) -> list[Alert]:
        hits = self.store.search_records(
            self.rule.machine_learning_job_id, rng.start, rng.end, self.rule.anomaly_threshold
        )
        profile = self.profile
        if profile is not None:
            hits = profile.select(hits, rng.start, rng.end)
        kept: list[tuple[str, AnomalyRecord]] = []
        for record_id, doc in hits:
            tally.found.add(record_id)
            record = AnomalyRecord.from_doc(doc)
            if exceptions:
                item = exceptions.first_match(
                    doc, when=record.timestamp, events=self._events_of(record),
                    missing_lists=tally.missing_lists,
                )  # fmt: skip
                if item is not None:
                    tally.excepted[(item.item_id, item.name)] += 1
                    tally.excepted_ids.add(record_id)
                    continue
            kept.append((record_id, record))
        if len(kept) > rng.max_signals:
            tally.warn(MAX_SIGNALS_WARNING)
            tally.truncated += len(kept) - rng.max_signals
            tally.truncated_ids.update(rid for rid, _ in kept[rng.max_signals :])
            kept = kept[: rng.max_signals]
        ids = {rid: alert_id_for(rid, self.identity) for rid, _ in kept}
        exists = self.store.existing_alert_ids(list(ids.values()))
        absorbed = self.store.suppressed_record_ids(self.identity.rule_uuid, list(ids))
        out: list[Alert] = []
        for record_id, record in kept:
            if record_id in tally.seen:
                continue
            tally.seen.add(record_id)
            if ids[record_id] in exists or record_id in absorbed:
                tally.already += 1
                continue
            extra = profile.annotate(record_id) if profile is not None else None
            out.append(build_alert(record, record_id, self.rule, self.identity, now,
                                   execution_uuid=execution_uuid, extra=extra))  # fmt: skip
        return out

    def _events_of(self, record: AnomalyRecord) -> Callable[[], Sequence[Mapping[str, Any]]]:
        def fetch() -> Sequence[Mapping[str, Any]]:
            start = record.timestamp
            end = start + timedelta(seconds=record.bucket_span)
            if record.by_field_name == "user.name":
                return self.store.events_of(record.job_id, start, end, record.by_field_value)
            out = []
            for ev in self.store.events_of(record.job_id, start, end, None):
                values = [str(v) for v in field_values(ev, record.by_field_name)]
                if record.by_field_value in values or ",".join(values) == record.by_field_value:
                    out.append(ev)
            return out

        return fetch

    def _check_jobs(self, tally: _Tally) -> None:
        for job_id in self.rule.machine_learning_job_id:
            if job_id != "*" and not self.store.job_has_results(job_id):
                tally.warn(f'No results of ML job "{job_id}" in the store: has the job run?')


def run_rule(
    store: RuleStore,
    rule: RuleConfig,
    now: datetime,
    *,
    identity: RuleIdentity | None = None,
    exceptions: ExceptionSet | None = None,
    previous_started_at: datetime | None = _FROM_STORE,
) -> RuleRun:
    """Run ``rule`` once at ``now`` over ``store`` (catch-up from the last stored run)."""
    executor = RuleExecutor(store, rule, identity=identity, exceptions=exceptions)
    return executor.run(now, previous_started_at=previous_started_at)
