"""A fake rule store and the contract every :class:`~rarebird.rules.executor.RuleStore` keeps.

:class:`MemoryRuleStore` holds anomaly records, kept events, alerts and rule runs in plain
dicts: a reference implementation of the protocol, for tests of the rule executor that need no
database, and the other side of :func:`check_rule_store`, which runs the same rule executions
over two stores seeded with the same records and asserts they agree on everything a rule run
returns and stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rarebird.alerts.model import Alert
from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values
from rarebird.results import AnomalyRecord, BucketResult, BucketResults
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.executor import RuleExecutor, RuleRun, RuleStore
from rarebird.store.adapters import SqliteRuleStore
from rarebird.store.results import write_results
from rarebird.timeutil import from_epoch_ms, parse_timestamp, to_epoch_ms


@dataclass
class MemoryRuleStore:
    """A :class:`~rarebird.rules.executor.RuleStore` in memory."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    suppressed: dict[tuple[str, str], str] = field(default_factory=dict)
    runs: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    exceptions: ExceptionSet = field(default_factory=lambda: ExceptionSet((), {}))

    # --- seeding (not part of the protocol) ---------------------------------------------------

    def add_records(self, records: Sequence[AnomalyRecord]) -> None:
        for r in records:
            self.records[r.doc_id] = r.to_doc()

    def add_events(self, job_id: str, docs: Sequence[dict[str, Any]]) -> None:
        self.events.setdefault(job_id, []).extend(docs)

    # --- the protocol -------------------------------------------------------------------------

    def last_run_at(self, rule_uuid: str, *, before: datetime | None = None) -> datetime | None:
        limit = None if before is None else to_epoch_ms(before)
        times = [
            ms for uuid, ms in self.runs if uuid == rule_uuid and (limit is None or ms < limit)
        ]
        return from_epoch_ms(max(times)) if times else None

    def rule_exceptions(self, rule: RuleConfig) -> ExceptionSet:
        return self.exceptions

    def search_records(
        self, job_ids: Sequence[str], start: datetime, end: datetime, min_score: float
    ) -> list[tuple[str, Mapping[str, Any]]]:
        lo, hi = to_epoch_ms(start), to_epoch_ms(end)
        every = not job_ids or list(job_ids) == ["*"]
        hits = [
            (rid, doc)
            for rid, doc in self.records.items()
            if (every or doc["job_id"] in job_ids)
            and lo <= doc["timestamp"] <= hi
            and not doc.get("is_interim", False)
            and doc["record_score"] >= min_score
        ]
        hits.sort(key=lambda h: (-h[1]["record_score"], h[1]["timestamp"], h[0]))
        return list(hits)

    def events_of(
        self, job_id: str, start: datetime, end: datetime, user: str | None
    ) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        for doc in self.events.get(job_id, []):
            if not start <= parse_timestamp(doc["@timestamp"]) < end:
                continue
            if user is not None and user not in [str(v) for v in field_values(doc, "user.name")]:
                continue
            out.append(doc)
        return out

    def existing_alert_ids(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.alerts}

    def suppressed_record_ids(self, rule_uuid: str, record_ids: Sequence[str]) -> set[str]:
        return {r for r in record_ids if (rule_uuid, r) in self.suppressed}

    def open_alert_of_instance(
        self, rule_uuid: str, instance_id: str, created_since: datetime
    ) -> Alert | None:
        found = [
            a
            for a in self.alerts.values()
            if a.rule_uuid == rule_uuid
            and a.instance_id == instance_id
            and a.workflow_status != "closed"
            and a.timestamp >= created_since
        ]
        found.sort(key=lambda a: (a.timestamp, a.id), reverse=True)
        return found[0] if found else None

    def job_has_results(self, job_id: str) -> bool:
        return any(doc["job_id"] == job_id for doc in self.records.values())

    def commit_run(self, run: RuleRun, suppressed: Sequence[tuple[str, str]]) -> None:
        for alert in run.new_alerts:
            self.alerts.setdefault(alert.id, alert)
        for alert in run.updated_alerts:
            self.alerts[alert.id] = alert
        for record_id, alert_id in suppressed:
            self.suppressed.setdefault((run.rule_uuid, record_id), alert_id)
        self.runs[(run.rule_uuid, to_epoch_ms(run.started_at))] = run.summary()


class SqliteSeededRuleStore(SqliteRuleStore):
    """The SQLite rule store, with the seeding the contract needs (records written as the job
    writes them: one bucket result per timestamp)."""

    def add_records(self, records: Sequence[AnomalyRecord]) -> None:
        by_ts: dict[datetime, list[AnomalyRecord]] = {}
        for r in records:
            by_ts.setdefault(r.timestamp, []).append(r)
        batch = []
        for ts, recs in sorted(by_ts.items()):
            top = max(r.record_score for r in recs)
            bucket = BucketResult(
                job_id=recs[0].job_id, timestamp=ts, bucket_span=recs[0].bucket_span,
                anomaly_score=top, initial_anomaly_score=top, event_count=len(recs),
                is_interim=recs[0].is_interim,
            )  # fmt: skip
            batch.append(BucketResults(bucket=bucket, records=tuple(recs)))
        write_results(self.store, batch)


class SeedableRuleStore(RuleStore, Protocol):
    """A rule store the contract can put records into."""

    def add_records(self, records: Sequence[AnomalyRecord]) -> None: ...


def check_rule_store(
    make: Callable[[], SeedableRuleStore],
    reference: Callable[[], SeedableRuleStore],
    rule: RuleConfig,
    records: Sequence[AnomalyRecord],
    run_times: Sequence[datetime],
) -> list[RuleRun]:
    """Run ``rule`` at ``run_times`` over a store from ``make`` and one from ``reference``, both
    seeded with ``records``; assert every run returns the same and the stores answer the
    protocol's questions alike afterwards. Returns the runs (over the store under test)."""
    mine, ref = make(), reference()
    mine.add_records(records)
    ref.add_records(records)
    got: list[RuleRun] = []
    for when in run_times:
        a = RuleExecutor(mine, rule).run(when)
        b = RuleExecutor(ref, rule).run(when)
        assert _run_view(a) == _run_view(b), f"run at {when}: {_run_view(a)} != {_run_view(b)}"
        got.append(a)
    uuid = got[0].rule_uuid if got else ""
    assert mine.last_run_at(uuid) == ref.last_run_at(uuid)
    if run_times:
        later = max(run_times) + timedelta(seconds=1)
        assert mine.last_run_at(uuid, before=later) == ref.last_run_at(uuid, before=later)
    ids = [a.id for r in got for a in r.new_alerts]
    assert mine.existing_alert_ids(ids) == ref.existing_alert_ids(ids) == set(ids)
    for job_id in {r.job_id for r in records}:
        assert mine.job_has_results(job_id) == ref.job_has_results(job_id)
    return got


def _run_view(run: RuleRun) -> tuple[Any, ...]:
    return (
        run.found,
        run.truncated,
        run.already_alerted,
        run.suppressed,
        run.warnings,
        [(a.id, a.revision, a.record_score) for a in run.new_alerts],
        [(a.id, a.revision) for a in run.updated_alerts],
    )
