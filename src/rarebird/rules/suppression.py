"""Alert suppression: one alert per group of 1-3 field values, duplicates counted on it.

Kibana's ML-rule suppression (8.15+; ``bulk_create_suppressed_alerts_in_memory.ts``,
``wrap_suppressed_alerts.ts``, ``suppression_utils.ts``, ``alert_with_suppression.ts``):

- the group ("instance") of an alert is the values of ``group_by`` in it (arrays sorted), hashed
  with the rule id and space into ``kibana.alert.instance.id``; ``kibana.alert.suppression.terms``
  lists them;
- with a ``duration``, a new anomaly whose group already has an alert created within the last
  ``duration`` and not closed is not alerted: it increments that alert's
  ``kibana.alert.suppression.docs_count`` and moves ``suppression.end`` / ``last_detected``;
  without a duration, suppression only happens within one rule execution;
- ``missing_fields_strategy: suppress`` (default) groups alerts lacking a field under a null
  value; ``doNotSuppress`` creates a plain alert for each of them.

Where rarebird differs, on purpose:

- Kibana takes ``suppression.start``/``end`` from the hit's ``@timestamp``, which anomaly records
  lack, so it falls back to the execution time; rarebird uses the anomaly's time, so start/end say
  when the first and last suppressed anomalies happened.
- Kibana decides "already counted" by comparing ``suppression.end`` dates, so an anomaly seen
  again by the next overlapping run can be counted twice; rarebird remembers which anomaly
  records each alert absorbed, so every record is counted exactly once.
- Kibana's suppression path keeps dotted influencer keys (Kibana issue #227790); rarebird's
  suppressed alerts have the same nested ECS fields as the others.
- It is not behind a licence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from rarebird.alerts.document import Suppression
from rarebird.alerts.model import Alert, RuleIdentity
from rarebird.definitions.rule import AlertSuppression
from rarebird.documents import field_values
from rarebird.timeutil import iso


def suppression_terms(doc: Mapping[str, Any], group_by: Sequence[str]) -> tuple[tuple[str, Any], ...]:  # fmt: skip
    """(field, value) per ``group_by`` field: a sorted list, a single value, or None."""
    terms: list[tuple[str, Any]] = []
    for name in group_by:
        values = field_values(doc, name)
        if not values:
            terms.append((name, None))
        elif len(values) == 1 and not isinstance(_raw(doc, name), list):
            terms.append((name, values[0]))
        else:
            terms.append((name, sorted(values, key=str)))
    return tuple(terms)


def _raw(doc: Mapping[str, Any], name: str) -> Any:
    node: Any = doc
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def instance_id(terms: Sequence[tuple[str, Any]], identity: RuleIdentity) -> str:
    """The group id: sha256 over the terms, the rule uuid and the space (Kibana hashes the same
    three with ``object-hash``; only equality matters)."""
    payload = [[{"field": f, "value": v} for f, v in terms], identity.rule_uuid, identity.space_id]
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class RuleStoreReads(Protocol):
    """What suppression reads from the store."""

    def open_alert_of_instance(
        self, rule_uuid: str, instance_id: str, created_since: datetime
    ) -> Alert | None: ...


@dataclass
class SuppressionOutcome:
    """What suppression made of one batch of candidate alerts."""

    created: list[Alert] = field(default_factory=list)
    #: existing alerts whose duplicate count changed (latest version of each)
    updated: dict[str, Alert] = field(default_factory=dict)
    #: (record id, id of the alert that absorbed it)
    suppressed: list[tuple[str, str]] = field(default_factory=list)


class Suppressor:
    """Groups the new alerts of one rule execution (all of its time ranges)."""

    def __init__(
        self,
        store: RuleStoreReads,
        config: AlertSuppression,
        identity: RuleIdentity,
        started_at: datetime,
        execution_uuid: str,
    ) -> None:
        self.store = store
        self.config = config
        self.identity = identity
        self.started_at = started_at
        self.execution_uuid = execution_uuid
        #: instance id -> the alert duplicates now go to (None: looked up, there is none)
        self._open: dict[str, Alert | None] = {}

    def _existing(self, iid: str) -> Alert | None:
        if iid in self._open:
            return self._open[iid]
        found: Alert | None = None
        if self.config.duration is not None:
            found = self.store.open_alert_of_instance(
                self.identity.rule_uuid, iid, self.started_at - self.config.duration
            )
        self._open[iid] = found
        return found

    def process(self, candidates: Sequence[Alert], outcome: SuppressionOutcome) -> None:
        """Turn candidate alerts (new, in score order) into created alerts and counts."""
        group_by = self.config.group_by
        keyed: list[tuple[Alert, tuple[tuple[str, Any], ...]]] = []
        for alert in candidates:
            terms = suppression_terms(alert.doc, group_by)
            if self.config.missing_fields_strategy == "doNotSuppress" and any(
                v is None for _, v in terms
            ):
                outcome.created.append(alert)
                continue
            keyed.append((alert, terms))
        # the earliest anomaly of a group is kept (Kibana sorts by suppression start)
        keyed.sort(key=lambda pair: pair[0].original_time)
        now = iso(self.started_at)
        for alert, terms in keyed:
            iid = instance_id(terms, self.identity)
            when = alert.original_time
            target = self._existing(iid)
            if target is None:
                sup = Suppression(iid, terms, when, when, 0)
                doc = dict(alert.doc)
                doc.update(sup.fields())
                kept = Alert(alert.id, doc, 0)
                outcome.created.append(kept)
                self._open[iid] = kept
                continue
            doc = dict(target.doc)
            doc["kibana.alert.suppression.docs_count"] = int(doc.get("kibana.alert.suppression.docs_count", 0)) + 1  # fmt: skip
            if iso(when) > str(doc.get("kibana.alert.suppression.end", "")):
                doc["kibana.alert.suppression.end"] = iso(when)
            doc["kibana.alert.last_detected"] = now
            is_new = any(a.id == target.id for a in outcome.created)
            updated = Alert(target.id, doc, target.revision if is_new else target.revision + 1)
            if is_new:
                outcome.created = [updated if a.id == target.id else a for a in outcome.created]
            else:
                # one revision per execution, however many duplicates it counted
                prior = outcome.updated.get(target.id)
                revision = prior.revision if prior is not None else updated.revision
                updated = Alert(target.id, doc, revision)
                outcome.updated[target.id] = updated
            self._open[iid] = updated
            outcome.suppressed.append((alert.record_id, target.id))
