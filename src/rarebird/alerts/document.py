"""The alert document: what Kibana's ML rule indexes for one anomaly record.

**The document** is what Kibana's ML rule indexes into ``.alerts-security.alerts-<space>``
(``bulk_create_ml_signals.ts``, ``wrap_hits.ts``, ``transform_hit_to_alert.ts``,
``build_alert.ts``): the anomaly record's ``_source`` with its influencer and by-field values
moved from dotted keys to nested ECS objects (``transformAnomalyFieldsToEcs``: ``"user.name":
["alice"]`` becomes ``user: {name: ["alice"]}``), and the ``kibana.alert.*`` fields merged on
top as dotted keys. ``@timestamp`` is the rule execution time; ``kibana.alert.original_time``
the anomaly's bucket start. The reason text is Kibana's ``buildReasonMessageUtil`` template.
Severity and risk score come from the rule, or from its ``severity_mapping`` /
``risk_score_mapping`` (``build_severity_from_mapping.ts``, ``build_risk_score_from_mapping.ts``).
The rule's investigation guide travels as ``kibana.alert.rule.note``.

Around the security fields, the rule registry's persistence wrapper adds the common alert fields
and ``kibana.version``, ``kibana.alert.rule.execution.timestamp``, ``kibana.alert.start`` and
``kibana.alert.last_detected`` (``x-pack/platform/plugins/shared/rule_registry/server/utils/
create_persistence_rule_type_wrapper.ts`` ``augmentAlerts``, ``get_common_alert_fields.ts``).
It does *not* set ``kibana.alert.instance.id``, ``action_group`` or ``flapping`` for a security
alert (the alerting framework's own alerts client does, for other rule types): only suppression
sets ``kibana.alert.instance.id``. Kibana writes the wall-clock time into
``execution.timestamp``; rarebird writes the run's time, so that a replay and a restarted
service write the same bytes.

**Updates.** Kibana never re-indexes a security alert: it sends a partial ``update`` of the
fields it changes (suppression: ``docs_count``, ``suppression.end``, ``last_detected``) to the
concrete index the alert is in. :func:`update_document` is what rarebird sends for a changed
alert: the fields rarebird may change after creation (the anomaly record re-scored, the reason,
severity and risk score that follow from it, suppression counts, ``rarebird.*``), never the
analyst's workflow fields nor the rule's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rarebird.alerts.model import (
    ANALYST_FIELD,
    DEFAULT_SPACE,
    ML_RULE_TYPE_ID,
    ML_RULE_TYPE_NAME,
    SERVER_APP_ID,
    Alert,
    RuleIdentity,
    alert_id_for,
    execution_uuid_for,
)
from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values, set_path
from rarebird.results import AnomalyRecord
from rarebird.timeutil import format_duration, from_epoch_ms, iso

_SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def anomaly_to_ecs(record_doc: Mapping[str, Any]) -> dict[str, Any]:
    """Kibana's ``transformAnomalyFieldsToEcs``: influencer and by-field values move from dotted
    top-level keys to nested objects (by field last, so it wins), ``@timestamp`` is added."""
    doc = dict(record_doc)
    moves: list[tuple[str, list[Any]]] = []
    for infl in doc.get("influencers") or ():
        moves.append((infl["influencer_field_name"], list(infl["influencer_field_values"])))
    by_name, by_value = doc.get("by_field_name"), doc.get("by_field_value")
    if by_name and by_value:
        moves.append((by_name, [by_value]))
    for name, _ in moves:
        doc.pop(name, None)
    for name, values in moves:
        set_path(doc, name, values)
    doc["@timestamp"] = iso(from_epoch_ms(int(record_doc["timestamp"])))
    return doc


def _reason_value(doc: Mapping[str, Any], path: str) -> str | None:
    values = [v for v in field_values(doc, path) if isinstance(v, str | int | float)]
    if not values or (len(values) == 1 and values[0] == "-"):
        return None
    return ", ".join(str(v) for v in values)


def build_reason(name: str, severity: str, doc: Mapping[str, Any]) -> str:
    """Kibana's alert reason (``reason_formatters.ts``, ``buildReasonMessageUtil``).

    >>> build_reason("Rule X", "low", {"user": {"name": ["alice"]}, "process": {"name": ["ss"]},
    ...                                "host": {"name": ["h1"]}})
    'event with process ss, by alice on h1 created low alert Rule X.'
    """
    category = _reason_value(doc, "event.category")
    process = _reason_value(doc, "process.name")
    parent = _reason_value(doc, "process.parent.name")
    file_name = _reason_value(doc, "file.name")
    src, src_port = _reason_value(doc, "source.ip"), _reason_value(doc, "source.port")
    dst, dst_port = _reason_value(doc, "destination.ip"), _reason_value(doc, "destination.port")
    user, host = _reason_value(doc, "user.name"), _reason_value(doc, "host.name")
    of_interest = any(v is not None for v in (process, parent, file_name, src, src_port, dst, dst_port))  # fmt: skip
    text = f"{category} " if category else ""
    text += "event"
    if of_interest:
        text += " with"
    if process:
        text += f" process {process},"
    if parent:
        text += f" parent process {parent},"
    if file_name:
        text += f" file {file_name},"
    if src:
        text += f" source {src}"
    if src_port:
        text += f":{src_port},"
    if dst:
        text += f" destination {dst}"
    if dst_port:
        text += f":{dst_port},"
    if user:
        text += f" by {user}"
    if host:
        text += f" on {host}"
    return f"{text} created {severity} alert {name}."


def severity_from_mapping(rule: RuleConfig, doc: Mapping[str, Any]) -> str:
    """``severity_mapping``: among entries whose field value equals theirs, the highest
    severity wins; else the rule's severity."""
    match: str | None = None
    ordered = sorted(rule.severity_mapping, key=lambda m: _SEVERITY_ORDER.get(m.get("severity", ""), 0))  # fmt: skip
    for m in ordered:
        want = str(m.get("value", ""))
        have = {
            str(v)
            for v in field_values(doc, str(m.get("field", "")))
            if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
        }
        if want in have and m.get("severity") in _SEVERITY_ORDER:
            match = str(m["severity"])
    return match or rule.severity


def risk_score_from_mapping(rule: RuleConfig, doc: Mapping[str, Any]) -> int | float:
    """``risk_score_mapping`` (one field): the largest value of it in 0-100, else the rule's."""
    if not rule.risk_score_mapping:
        return rule.risk_score
    fname = str(rule.risk_score_mapping[0].get("field", ""))
    numbers: list[float] = []
    for v in field_values(doc, fname):
        if isinstance(v, bool):
            continue
        try:
            n = float(v)
        except (TypeError, ValueError):
            continue
        if 0 <= n <= 100:
            numbers.append(n)
    if not numbers:
        return rule.risk_score
    best = max(numbers)
    return int(best) if best == int(best) else best


def rule_parameters(rule: RuleConfig) -> dict[str, Any]:
    """``kibana.alert.rule.parameters``: the rule's parameters in snake case, as
    ``commonParamsCamelToSnake`` writes them (``immutable``, ``rule_source``,
    ``related_integrations``, ``required_fields``, ``setup`` always present)."""
    params = rule.parameters()
    threshold = params.get("anomaly_threshold")
    if isinstance(threshold, float) and threshold.is_integer():
        params["anomaly_threshold"] = int(threshold)  # Kibana's schema: an integer
    return params


#: fields of the analyst's workflow: Kibana's, never sent in an update
WORKFLOW_FIELDS = (
    "kibana.alert.workflow_status", "kibana.alert.workflow_status_updated_at",
    "kibana.alert.workflow_user", "kibana.alert.workflow_reason", "kibana.alert.workflow_tags",
    "kibana.alert.workflow_assignee_ids", ANALYST_FIELD,
)  # fmt: skip
#: ``kibana.*`` fields rarebird may change after an alert was created
_MUTABLE_KIBANA = frozenset(
    {
        "kibana.alert.reason", "kibana.alert.severity", "kibana.alert.risk_score",
        "kibana.alert.last_detected", "kibana.alert.suppression.docs_count",
        "kibana.alert.suppression.start", "kibana.alert.suppression.end",
    }
)  # fmt: skip


def is_mutable_field(name: str) -> bool:
    """Whether rarebird may change the top-level field ``name`` of an alert after creating it.

    >>> [is_mutable_field(n) for n in ("record_score", "user", "kibana.alert.rule.name",
    ...  "kibana.alert.workflow_status", "kibana.alert.suppression.end", "@timestamp")]
    [True, True, False, False, True, False]
    """
    if name in WORKFLOW_FIELDS or name in ("@timestamp", "event.kind"):
        return False
    if name.startswith("kibana."):
        return name in _MUTABLE_KIBANA
    return True


def update_document(
    doc: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The partial document of an ``update`` for a changed alert: its mutable fields (see
    :func:`is_mutable_field`), only those that differ from ``previous`` when it is known.

    >>> update_document({"record_score": 80, "kibana.alert.workflow_status": "closed",
    ...                  "kibana.alert.suppression.docs_count": 3},
    ...                 {"record_score": 80, "kibana.alert.suppression.docs_count": 2})
    {'kibana.alert.suppression.docs_count': 3}
    """
    return {
        name: value
        for name, value in doc.items()
        if is_mutable_field(name) and (previous is None or previous.get(name) != value)
    }


@dataclass(frozen=True, slots=True)
class Suppression:
    """Suppression fields of an alert that stands for a group of duplicates."""

    instance_id: str
    terms: tuple[tuple[str, Any], ...]
    start: datetime
    end: datetime
    docs_count: int = 0

    def fields(self) -> dict[str, Any]:
        return {
            "kibana.alert.instance.id": self.instance_id,
            "kibana.alert.suppression.terms": [{"field": f, "value": v} for f, v in self.terms],
            "kibana.alert.suppression.start": iso(self.start),
            "kibana.alert.suppression.end": iso(self.end),
            "kibana.alert.suppression.docs_count": self.docs_count,
        }


def build_alert(
    record: AnomalyRecord,
    record_id: str,
    rule: RuleConfig,
    identity: RuleIdentity,
    executed_at: datetime,
    *,
    execution_uuid: str | None = None,
    suppression: Suppression | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Alert:
    """The alert Kibana's ML rule writes for one anomaly record at ``executed_at``; ``extra``
    (**rarebird**: a scoring profile's ``rarebird.profile.*`` fields) is added last."""
    alert_id = alert_id_for(record_id, identity)
    source = anomaly_to_ecs(record.to_doc())
    original_time = source["@timestamp"]
    severity = severity_from_mapping(rule, source)
    risk = risk_score_from_mapping(rule, source)
    now = iso(executed_at)
    execution_uuid = execution_uuid or execution_uuid_for(identity, executed_at)
    fields: dict[str, Any] = {
        "@timestamp": now,
        "kibana.space_ids": [identity.space_id],
        "event.kind": "signal",
        "kibana.alert.original_time": original_time,
        "kibana.alert.rule.consumer": SERVER_APP_ID,
        "kibana.alert.ancestors": [
            {"id": record_id, "type": "event", "index": identity.anomaly_index, "depth": 0}
        ],
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.depth": 1,
        "kibana.alert.reason": build_reason(rule.name, severity, source),
        "kibana.alert.severity": severity,
        "kibana.alert.risk_score": risk,
        "kibana.alert.rule.parameters": rule_parameters(rule),
        "kibana.alert.rule.actions": [],
        "kibana.alert.rule.author": list(rule.author),
        "kibana.alert.rule.created_at": rule.created_at,
        "kibana.alert.rule.created_by": rule.created_by or "rarebird",
        "kibana.alert.rule.description": rule.description,
        "kibana.alert.rule.enabled": rule.enabled,
        "kibana.alert.rule.exceptions_list": rule.parameters()["exceptions_list"],
        "kibana.alert.rule.false_positives": list(rule.false_positives),
        "kibana.alert.rule.from": rule.from_,
        "kibana.alert.rule.immutable": rule.immutable,
        "kibana.alert.rule.interval": _format_interval(rule),
        "kibana.alert.rule.indices": [],
        "kibana.alert.rule.license": rule.license,
        "kibana.alert.rule.max_signals": rule.max_signals,
        "kibana.alert.rule.name": rule.name,
        "kibana.alert.rule.note": rule.note,
        "kibana.alert.rule.references": list(rule.references),
        "kibana.alert.rule.risk_score_mapping": list(rule.risk_score_mapping),
        "kibana.alert.rule.rule_id": rule.rule_id,
        "kibana.alert.rule.severity_mapping": list(rule.severity_mapping),
        "kibana.alert.rule.tags": list(rule.tags),
        "kibana.alert.rule.threat": list(rule.threat),
        "kibana.alert.rule.to": rule.to,
        "kibana.alert.rule.type": "machine_learning",
        "kibana.alert.rule.updated_at": rule.updated_at,
        "kibana.alert.rule.updated_by": rule.updated_by or "rarebird",
        "kibana.alert.rule.uuid": identity.rule_uuid,
        "kibana.alert.rule.version": rule.version,
        "kibana.alert.uuid": alert_id,
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "kibana.alert.rule.risk_score": rule.risk_score,
        "kibana.alert.rule.severity": rule.severity,
        "kibana.alert.intended_timestamp": now,
        "kibana.alert.rule.execution.type": "scheduled",
        # added by the rule registry's persistence wrapper around the security fields
        "kibana.alert.rule.category": ML_RULE_TYPE_NAME,
        "kibana.alert.rule.producer": SERVER_APP_ID,
        "kibana.alert.rule.rule_type_id": ML_RULE_TYPE_ID,
        "kibana.alert.rule.revision": rule.revision,
        "kibana.alert.rule.execution.uuid": execution_uuid,
        "kibana.alert.rule.execution.timestamp": now,
        "kibana.alert.start": now,
        "kibana.alert.last_detected": now,
        "kibana.version": identity.kibana_version,
    }
    # a date field never carries "": absent when the rule's dates are unknown
    for key in ("kibana.alert.rule.created_at", "kibana.alert.rule.updated_at"):
        if fields[key] is None:
            del fields[key]
    if identity.kibana_base_url:
        base = identity.kibana_base_url.rstrip("/")
        space = "" if identity.space_id == DEFAULT_SPACE else f"/s/{identity.space_id}"
        fields["kibana.alert.url"] = (
            f"{base}{space}/app/security/alerts/redirect/{alert_id}"
            f"?index={identity.alerts_index}&timestamp={now}"
        )
    if suppression is not None:
        fields.update(suppression.fields())
    doc = source
    doc.pop("event.kind", None)
    doc.update(fields)
    if extra:
        doc.update(extra)
    return Alert(alert_id, doc)


def _format_interval(rule: RuleConfig) -> str:
    return format_duration(rule.interval)
