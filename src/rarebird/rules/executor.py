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
   one transaction, then handed to the extra sinks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from rarebird.alerts import (
    Alert,
    RuleIdentity,
    alert_id_for,
    build_alert,
    execution_uuid_for,
    existing_alert_ids,
    insert_alerts,
    record_suppressed,
    suppressed_record_ids,
    update_alerts,
)
from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values
from rarebird.results import AnomalyRecord
from rarebird.rules.exception_store import load_rule_exceptions
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.schedule import KIBANA_MAX_ALERTS_PER_RUN, RuleRange, plan_ranges
from rarebird.rules.suppression import SuppressionOutcome, Suppressor
from rarebird.sinks.base import Sink
from rarebird.store.results import search_events, search_results
from rarebird.store.sqlite import Store, register_migrations
from rarebird.timeutil import from_epoch_ms, iso, to_epoch_ms

MAX_SIGNALS_WARNING = (
    "This rule reached the maximum alert limit for the rule execution. "
    "Some alerts were not created."
)

register_migrations(
    "rules",
    [
        """
        CREATE TABLE rule_runs (
            rule_uuid       TEXT NOT NULL,
            started_ms      INTEGER NOT NULL,
            execution_uuid  TEXT NOT NULL,
            rule_id         TEXT NOT NULL,
            summary         TEXT NOT NULL,
            PRIMARY KEY (rule_uuid, started_ms)
        );
        """,
    ],
)


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
    from the store at every run. ``sinks`` receive new and updated alerts after they are
    committed. ``check_jobs`` adds a warning when a job has no results at all (Kibana's "ML jobs
    are not started" has no meaning for a replay).
    """

    def __init__(
        self,
        store: Store,
        rule: RuleConfig,
        *,
        identity: RuleIdentity | None = None,
        exceptions: ExceptionSet | None = None,
        sinks: Sequence[Sink] = (),
        max_alerts_per_run: int = KIBANA_MAX_ALERTS_PER_RUN,
        check_jobs: bool = True,
    ) -> None:
        self.store = store
        self.rule = rule
        self.identity = identity or RuleIdentity.for_rule(rule)
        self.exceptions = exceptions
        self.sinks = tuple(sinks)
        self.max_alerts_per_run = max_alerts_per_run
        self.check_jobs = check_jobs

    # -- history ---------------------------------------------------------------------------

    def previous_started_at(self, before: datetime) -> datetime | None:
        row = self.store.conn.execute(
            "SELECT max(started_ms) FROM rule_runs WHERE rule_uuid = ? AND started_ms < ?",
            (self.identity.rule_uuid, to_epoch_ms(before)),
        ).fetchone()
        return None if row is None or row[0] is None else from_epoch_ms(int(row[0]))

    def last_started_at(self) -> datetime | None:
        row = self.store.conn.execute(
            "SELECT max(started_ms) FROM rule_runs WHERE rule_uuid = ?", (self.identity.rule_uuid,)
        ).fetchone()
        return None if row is None or row[0] is None else from_epoch_ms(int(row[0]))

    # -- one execution ---------------------------------------------------------------------

    def run(self, now: datetime, *, previous_started_at: datetime | None = _FROM_STORE) -> RuleRun:
        if previous_started_at is _FROM_STORE:
            previous_started_at = self.previous_started_at(now)
        plan = plan_ranges(self.rule, now, previous_started_at,
                           max_alerts_per_run=self.max_alerts_per_run)  # fmt: skip
        exceptions = self.exceptions
        if exceptions is None:
            exceptions = load_rule_exceptions(self.store, self.rule)
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
        self._commit(run, outcome)
        changed = [*run.new_alerts, *run.updated_alerts]
        if changed:
            for sink in self.sinks:
                sink.write(changed)
        return run

    def _range_candidates(
        self,
        rng: RuleRange,
        exceptions: ExceptionSet,
        now: datetime,
        execution_uuid: str,
        tally: _Tally,
    ) -> list[Alert]:
        page = search_results(
            self.store, "record", job_ids=self.rule.machine_learning_job_id, start=rng.start,
            end=rng.end, min_score=self.rule.anomaly_threshold, order="score",
        )  # fmt: skip
        kept: list[tuple[str, AnomalyRecord]] = []
        for record_id, doc in page.hits:
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
        exists = existing_alert_ids(self.store, list(ids.values()))
        absorbed = suppressed_record_ids(self.store, self.identity.rule_uuid, list(ids))
        out: list[Alert] = []
        for record_id, record in kept:
            if record_id in tally.seen:
                continue
            tally.seen.add(record_id)
            if ids[record_id] in exists or record_id in absorbed:
                tally.already += 1
                continue
            out.append(build_alert(record, record_id, self.rule, self.identity, now,
                                   execution_uuid=execution_uuid))  # fmt: skip
        return out

    def _events_of(self, record: AnomalyRecord) -> Callable[[], Sequence[Mapping[str, Any]]]:
        def fetch() -> Sequence[Mapping[str, Any]]:
            start = record.timestamp
            end = start + timedelta(seconds=record.bucket_span)
            if record.by_field_name == "user.name":
                return search_events(self.store, record.job_id, user=record.by_field_value,
                                     start=start, end=end, limit=10_000)  # fmt: skip
            out = []
            for ev in search_events(self.store, record.job_id, start=start, end=end, limit=10_000):
                values = [str(v) for v in field_values(ev, record.by_field_name)]
                if record.by_field_value in values or ",".join(values) == record.by_field_value:
                    out.append(ev)
            return out

        return fetch

    def _check_jobs(self, tally: _Tally) -> None:
        for job_id in self.rule.machine_learning_job_id:
            if job_id == "*":
                continue
            row = self.store.conn.execute(
                "SELECT 1 FROM results WHERE job_id = ? AND result_type = 'bucket' LIMIT 1",
                (job_id,),
            ).fetchone()
            if row is None:
                tally.warn(f'No results of ML job "{job_id}" in the store: has the job run?')

    def _commit(self, run: RuleRun, outcome: SuppressionOutcome) -> None:
        with self.store.transaction() as conn:
            insert_alerts(self.store, run.new_alerts)
            update_alerts(self.store, run.updated_alerts)
            record_suppressed(self.store, self.identity.rule_uuid, outcome.suppressed)
            conn.execute(
                "INSERT OR REPLACE INTO rule_runs (rule_uuid, started_ms, execution_uuid, rule_id, "
                "summary) VALUES (?,?,?,?,?)",
                (run.rule_uuid, to_epoch_ms(run.started_at), run.execution_uuid, run.rule_id,
                 orjson.dumps(run.summary()).decode()),
            )  # fmt: skip


def run_rule(
    store: Store,
    rule: RuleConfig,
    now: datetime,
    *,
    identity: RuleIdentity | None = None,
    exceptions: ExceptionSet | None = None,
    sinks: Sequence[Sink] = (),
    previous_started_at: datetime | None = _FROM_STORE,
) -> RuleRun:
    """Run ``rule`` once at ``now`` over ``store`` (catch-up from the last stored run)."""
    executor = RuleExecutor(store, rule, identity=identity, exceptions=exceptions, sinks=sinks)
    return executor.run(now, previous_started_at=previous_started_at)
