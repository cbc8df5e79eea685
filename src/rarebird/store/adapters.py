"""The store seen through the protocols of the stages that must not know about SQL.

:class:`SqliteRuleStore` is the rule executor's :class:`~rarebird.rules.executor.RuleStore`
(the job's :class:`~rarebird.job.ResultsWindow` is :class:`rarebird.store.jobs.StoreResultsWindow`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rarebird.alerts.model import Alert
from rarebird.definitions.rule import RuleConfig
from rarebird.rules.exceptions import ExceptionSet
from rarebird.rules.executor import RuleRun
from rarebird.store import alerts, events, exceptions, results, rules
from rarebird.store.sqlite import Store

#: how many kept events the rule reads for one record's exception checks, at most
EVENTS_PER_RECORD = 10_000


class SqliteRuleStore:
    """A :class:`~rarebird.rules.executor.RuleStore` over a SQLite store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def last_run_at(self, rule_uuid: str, *, before: datetime | None = None) -> datetime | None:
        return rules.last_run_at(self.store, rule_uuid, before=before)

    def rule_exceptions(self, rule: RuleConfig) -> ExceptionSet:
        return exceptions.load_rule_exceptions(self.store, rule)

    def search_records(
        self, job_ids: Sequence[str], start: datetime, end: datetime, min_score: float
    ) -> list[tuple[str, Mapping[str, Any]]]:
        page = results.search_results(
            self.store, "record", job_ids=job_ids, start=start, end=end, min_score=min_score,
            order="score",
        )  # fmt: skip
        return list(page.hits)

    def events_of(
        self, job_id: str, start: datetime, end: datetime, user: str | None
    ) -> list[Mapping[str, Any]]:
        found = events.search_events(
            self.store, job_id, user=user, start=start, end=end, limit=EVENTS_PER_RECORD
        )
        return list(found)

    def existing_alert_ids(self, ids: Sequence[str]) -> set[str]:
        return alerts.existing_alert_ids(self.store, ids)

    def suppressed_record_ids(self, rule_uuid: str, record_ids: Sequence[str]) -> set[str]:
        return alerts.suppressed_record_ids(self.store, rule_uuid, record_ids)

    def open_alert_of_instance(
        self, rule_uuid: str, instance_id: str, created_since: datetime
    ) -> Alert | None:
        return alerts.open_alert_of_instance(self.store, rule_uuid, instance_id, created_since)

    def job_has_results(self, job_id: str) -> bool:
        return results.job_has_results(self.store, job_id)

    def commit_run(self, run: RuleRun, suppressed: Sequence[tuple[str, str]]) -> None:
        with self.store.transaction():
            alerts.insert_alerts(self.store, run.new_alerts)
            alerts.update_alerts(self.store, run.updated_alerts)
            alerts.record_suppressed(self.store, run.rule_uuid, suppressed)
            rules.record_rule_run(
                self.store, rule_uuid=run.rule_uuid, started_at=run.started_at,
                execution_uuid=run.execution_uuid, rule_id=run.rule_id, summary=run.summary(),
            )  # fmt: skip
