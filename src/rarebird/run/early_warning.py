"""Early warning (``alert_on_interim``): alert on a user's first events of a bucket at once.

When a user's first event of a bucket arrives (live), the bucket is scored from the last final
model as if it closed now (``AnomalyJob.interim_with``: the job itself is not changed), and an
interim record at or above the threshold is alerted at once, after the rule's exceptions, with
the id the final record's alert would have (interim and final records share their ``_id``).
When the bucket is final the same alert is updated with the final record --
``rarebird.early_warning.status`` becomes ``confirmed`` (final ``record_score`` at or above the
threshold), else ``not_confirmed``; the alert is kept either way (an analyst may already be on
it) -- and the scheduled rule run finds the alert id taken and creates nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rarebird.alerts.document import build_alert
from rarebird.alerts.model import Alert, RuleIdentity, alert_id_for
from rarebird.clock import Clock
from rarebird.datafeed.feed import PendingEvents
from rarebird.definitions import RuleConfig
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob
from rarebird.results import AnomalyRecord, BucketResults
from rarebird.rules.exceptions import ExceptionSet
from rarebird.store import Store
from rarebird.store.alerts import existing_alert_ids, get_alert, insert_alerts, update_alerts
from rarebird.store.exceptions import load_rule_exceptions
from rarebird.store.serve import add_interim, interim_in_bucket, set_interim_outcome
from rarebird.timeutil import iso, to_epoch_ms

#: ``log(level, event, **fields)``
LogFn = Callable[..., None]
EW = "rarebird.early_warning."
#: alert fields the analyst's workflow owns: kept when an interim alert is updated
WORKFLOW_FIELDS = (
    "kibana.alert.workflow_status", "kibana.alert.workflow_status_updated_at",
    "kibana.alert.workflow_user", "kibana.alert.workflow_reason", "kibana.alert.workflow_tags",
    "kibana.alert.workflow_assignee_ids",
)  # fmt: skip


class EarlyWarning:
    """The early-warning part of a live engine (inert unless ``enabled``)."""

    def __init__(
        self,
        store: Store,
        job: AnomalyJob,
        rule: RuleConfig,
        identity: RuleIdentity,
        pending: PendingEvents,
        *,
        clock: Clock,
        log: LogFn,
        enabled: bool,
    ) -> None:
        self.store = store
        self.job = job
        self.rule = rule
        self.identity = identity
        self.pending = pending
        self.clock = clock
        self.log = log
        self.enabled = enabled
        self.by_field = job.by_field
        self.span_ms = job.span * 1000
        #: bucket index -> users already looked at
        self._seen: dict[int, set[str]] = {}
        #: bucket index -> users seen for the first time since the last :meth:`alert`
        self._new: dict[int, set[str]] = {}
        self.created = 0
        self.updated = 0
        for p in pending:
            value = p.event.value(self.by_field)
            if value is not None:
                self._seen.setdefault(p.ts_ms // self.span_ms, set()).add(value)

    def note(self, event: ProcessEvent, ts_ms: int) -> None:
        """A live event waits for the frontier: is its user new in its bucket?"""
        if not self.enabled:
            return
        value = event.value(self.by_field)
        if value is None:
            return
        index = ts_ms // self.span_ms
        seen = self._seen.get(index)
        if seen is None:
            seen = self._seen[index] = set()
            current = self.job.current
            if current is not None and current.index == index:
                seen.update(current.counts)
        if value not in seen:
            seen.add(value)
            self._new.setdefault(index, set()).add(value)

    def forget_before(self, index: int) -> None:
        for old in [i for i in self._seen if i < index]:
            del self._seen[old]

    def alert(self) -> list[Alert]:
        """Alerts from interim results for the users noted since the last call."""
        if not self._new:
            return []
        new, self._new = self._new, {}
        store, rule, identity = self.store, self.rule, self.identity
        now = self.clock.now()
        created: list[Alert] = []
        exceptions: ExceptionSet | None = None
        for index, users in sorted(new.items()):
            waiting = self.pending.in_bucket(index, self.span_ms)
            results = self.job.interim_with([p.event for p in waiting])
            if results is None:
                continue
            candidates = [
                r for r in results.records
                if r.by_field_value in users and r.record_score >= rule.anomaly_threshold
            ]  # fmt: skip
            candidates.sort(key=lambda r: -r.record_score)
            for record in candidates[: rule.max_signals]:
                record_id = record.doc_id
                alert_id = alert_id_for(record_id, identity)
                if existing_alert_ids(store, [alert_id]):
                    continue
                if exceptions is None:
                    exceptions = load_rule_exceptions(store, rule).active(now)
                if exceptions:
                    user_events: list[Mapping[str, Any]] = [
                        p.event.to_ecs() for p in waiting
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
                alert = _interim_alert(record, record_id, rule, identity, now)
                insert_alerts(store, [alert])
                add_interim(store, alert_id=alert.id, job_id=self.job.config.job_id,
                            record_id=record_id, bucket_ms=to_epoch_ms(record.timestamp),
                            score=record.record_score)  # fmt: skip
                created.append(alert)
        self.created += len(created)
        return created

    def confirm(self, results: BucketResults, bucket_ms: int) -> list[Alert]:
        """The bucket of ``results`` is final: update its early alerts with the final records."""
        if not self.enabled:
            return []
        store = self.store
        waiting = interim_in_bucket(store, self.job.config.job_id, bucket_ms)
        if not waiting:
            return []
        by_id = {r.doc_id: r for r in results.records}
        threshold = self.rule.anomaly_threshold
        identity = self.identity
        out: list[Alert] = []
        for row in waiting:
            old = get_alert(store, row.alert_id)
            final = by_id.get(row.record_id)
            if final is not None:
                doc = build_alert(final, row.record_id, self.rule, identity, old.timestamp,
                                  execution_uuid=old.execution_uuid).doc  # fmt: skip
                for key in WORKFLOW_FIELDS:
                    if key in old.doc:
                        doc[key] = old.doc[key]
            else:
                doc = dict(old.doc)
            confirmed = final is not None and final.record_score >= threshold
            doc[EW + "status"] = "confirmed" if confirmed else "not_confirmed"
            doc[EW + "interim_record_score"] = row.interim_score
            doc[EW + "final_record_score"] = None if final is None else final.record_score
            doc[EW + "alerted_at"] = old.doc.get(EW + "alerted_at")
            updated = Alert(row.alert_id, doc, old.revision + 1)
            update_alerts(store, [updated])
            set_interim_outcome(store, row.alert_id, doc[EW + "status"],
                                doc[EW + "final_record_score"])  # fmt: skip
            out.append(updated)
        self.updated += len(out)
        return out


def _interim_alert(
    record: AnomalyRecord,
    record_id: str,
    rule: RuleConfig,
    identity: RuleIdentity,
    now: datetime,
) -> Alert:
    alert = build_alert(record, record_id, rule, identity, now)
    doc = dict(alert.doc)
    doc[EW + "status"] = "interim"
    doc[EW + "interim_record_score"] = record.record_score
    doc[EW + "alerted_at"] = iso(now)
    return Alert(alert.id, doc)
