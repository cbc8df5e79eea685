"""Alerts: the documents the detection rule writes, their ids, their table and their workflow.

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

**The id** is Kibana's ``generateId``: ``sha256(index + anomaly _id + String(_version) +
"<spaceId>:<rule saved-object id>")`` (``rule_types/utils/utils.ts``). The anomaly search does
not ask for versions, so ``_version`` is the string ``"undefined"``. rarebird's fixed values
(:class:`RuleIdentity`): index ``.ml-anomalies-shared`` (the shared results index every
module job writes to), space ``default``, and a rule uuid derived from the rule's ``rule_id``
(uuid5 in :data:`RULE_UUID_NAMESPACE`) -- or the real saved-object id of a Kibana rule, which
makes rarebird's alert ids equal to that Kibana's. One anomaly record gives at most one alert per
rule, however many overlapping runs see it.

**The workflow** is Kibana's: ``open`` -> ``acknowledged`` -> ``closed`` (and back), kept in
``kibana.alert.workflow_status`` with ``workflow_status_updated_at``, ``workflow_user`` and, when
closing, ``workflow_reason``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from rarebird.definitions.rule import RuleConfig
from rarebird.errors import RarebirdError
from rarebird.events import set_path
from rarebird.results import AnomalyRecord
from rarebird.rules.fields import field_values
from rarebird.store.sqlite import Store, register_migrations
from rarebird.timeutil import format_duration, from_epoch_ms, iso, parse_timestamp, to_epoch_ms

ANOMALY_INDEX = ".ml-anomalies-shared"
ALERTS_INDEX = ".alerts-security.alerts-default"
DEFAULT_SPACE = "default"
#: uuid5 namespace for rule uuids derived from ``rule_id``
RULE_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://rarebird.invalid/rule")
#: Kibana's rule-type facts for ML rules (``create_ml_alert_type.ts``)
ML_RULE_TYPE_ID = "siem.mlRule"
ML_RULE_TYPE_NAME = "Machine Learning Rule"
SERVER_APP_ID = "siem"
WORKFLOW_STATUSES = ("open", "acknowledged", "closed")
#: Kibana's reasons for closing an alert (9.x); other text is accepted too
CLOSE_REASONS = (
    "false_positive", "duplicate", "true_positive", "benign_positive", "automated_closure", "other",
)  # fmt: skip
_SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class AlertLookupError(RarebirdError):
    """An alert id (or prefix) that matches no alert, or more than one."""


register_migrations(
    "alerts",
    [
        """
        CREATE TABLE alerts (
            id               TEXT PRIMARY KEY,
            rule_uuid        TEXT NOT NULL,
            rule_id          TEXT NOT NULL,
            record_id        TEXT NOT NULL,
            job_id           TEXT NOT NULL,
            execution_uuid   TEXT NOT NULL,
            created_ms       INTEGER NOT NULL,
            original_time_ms INTEGER NOT NULL,
            user_names       TEXT NOT NULL,
            host_names       TEXT NOT NULL,
            record_score     REAL NOT NULL,
            severity         TEXT NOT NULL,
            workflow_status  TEXT NOT NULL,
            instance_id      TEXT NOT NULL,
            revision         INTEGER NOT NULL DEFAULT 0,
            doc              TEXT NOT NULL
        );
        CREATE INDEX alerts_by_time ON alerts (created_ms);
        CREATE INDEX alerts_by_instance ON alerts (rule_uuid, instance_id, created_ms);
        CREATE INDEX alerts_by_record ON alerts (rule_uuid, record_id);
        CREATE TABLE alert_suppressed (
            rule_uuid  TEXT NOT NULL,
            record_id  TEXT NOT NULL,
            alert_id   TEXT NOT NULL,
            PRIMARY KEY (rule_uuid, record_id)
        );
        """,
        # the alerts page: sorted by anomaly time, score, user or status, filtered by user or
        # host (the host index is scanned instead of the table, whose rows hold whole documents)
        """
        CREATE INDEX IF NOT EXISTS alerts_by_original_time ON alerts (original_time_ms);
        CREATE INDEX IF NOT EXISTS alerts_by_score ON alerts (record_score);
        CREATE INDEX IF NOT EXISTS alerts_by_user ON alerts (user_names, original_time_ms);
        CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (workflow_status, original_time_ms);
        CREATE INDEX IF NOT EXISTS alerts_by_host ON alerts (host_names, original_time_ms);
        """,
    ],
)


# --------------------------------------------------------------------------------------------
# identity and ids


@dataclass(frozen=True, slots=True)
class RuleIdentity:
    """The values an alert id is derived from, and where alerts say they came from."""

    rule_uuid: str
    space_id: str = DEFAULT_SPACE
    anomaly_index: str = ANOMALY_INDEX
    #: Kibana's public base URL; when set, alerts carry ``kibana.alert.url`` as Kibana's do
    kibana_base_url: str | None = None

    @classmethod
    def for_rule(cls, rule: RuleConfig, **overrides: Any) -> RuleIdentity:
        """The default identity of ``rule``: a stable uuid from its ``rule_id``."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        rule_uuid = overrides.pop("rule_uuid", None) or rule_uuid_for(rule.rule_id)
        return cls(rule_uuid=rule_uuid, **overrides)

    @property
    def alerts_index(self) -> str:
        return f".alerts-security.alerts-{self.space_id}"


def rule_uuid_for(rule_id: str) -> str:
    """rarebird's stand-in for a Kibana rule saved-object id: uuid5 over the ``rule_id``.

    >>> rule_uuid_for("c28c4d8c-f014-40ef-88b6-79a1d67cd499")
    'c6387adf-4c8f-501d-84fd-f477235e60be'
    """
    return str(uuid.uuid5(RULE_UUID_NAMESPACE, rule_id))


def generate_alert_id(index: str, doc_id: str, version: str, rule_key: str) -> str:
    """Kibana's ``generateId``: sha256 hex of the four strings concatenated."""
    return hashlib.sha256((index + doc_id + version + rule_key).encode()).hexdigest()


def alert_id_for(record_id: str, identity: RuleIdentity) -> str:
    """The id of the alert a rule makes from the anomaly record ``record_id``."""
    return generate_alert_id(
        identity.anomaly_index, record_id, "undefined", f"{identity.space_id}:{identity.rule_uuid}"
    )


def execution_uuid_for(identity: RuleIdentity, started_at: datetime) -> str:
    """A stable id for the rule execution that started at ``started_at``."""
    return str(uuid.uuid5(RULE_UUID_NAMESPACE, f"{identity.rule_uuid}@{iso(started_at)}"))


# --------------------------------------------------------------------------------------------
# building the document


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


def _date_or_empty(value: Any) -> str:
    if not value:
        return ""
    try:
        return iso(parse_timestamp(str(value).replace("/", "-")))
    except ValueError:
        return ""


def rule_parameters(rule: RuleConfig) -> dict[str, Any]:
    """``kibana.alert.rule.parameters``: the rule's parameters in snake case."""
    params = rule.parameters()
    threshold = params.get("anomaly_threshold")
    if isinstance(threshold, float) and threshold.is_integer():
        params["anomaly_threshold"] = int(threshold)  # Kibana's schema: an integer
    params.setdefault("related_integrations", [])
    params.setdefault("required_fields", [])
    return params


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
) -> Alert:
    """The alert Kibana's ML rule writes for one anomaly record at ``executed_at``."""
    alert_id = alert_id_for(record_id, identity)
    source = anomaly_to_ecs(record.to_doc())
    original_time = source["@timestamp"]
    severity = severity_from_mapping(rule, source)
    risk = risk_score_from_mapping(rule, source)
    now = iso(executed_at)
    execution_uuid = execution_uuid or execution_uuid_for(identity, executed_at)
    meta = rule.metadata or {}
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
        "kibana.alert.rule.created_at": _date_or_empty(meta.get("creation_date")),
        "kibana.alert.rule.created_by": "rarebird",
        "kibana.alert.rule.description": rule.description,
        "kibana.alert.rule.enabled": rule.enabled,
        "kibana.alert.rule.exceptions_list": rule.parameters()["exceptions_list"],
        "kibana.alert.rule.false_positives": list(rule.false_positives),
        "kibana.alert.rule.from": rule.from_,
        "kibana.alert.rule.immutable": False,
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
        "kibana.alert.rule.updated_at": _date_or_empty(meta.get("updated_date")),
        "kibana.alert.rule.updated_by": "rarebird",
        "kibana.alert.rule.uuid": identity.rule_uuid,
        "kibana.alert.rule.version": rule.version,
        "kibana.alert.uuid": alert_id,
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "kibana.alert.rule.risk_score": rule.risk_score,
        "kibana.alert.rule.severity": rule.severity,
        "kibana.alert.intended_timestamp": now,
        "kibana.alert.rule.execution.type": "scheduled",
        # added by the alerting framework (alerts client) around the security fields
        "kibana.alert.rule.category": ML_RULE_TYPE_NAME,
        "kibana.alert.rule.producer": SERVER_APP_ID,
        "kibana.alert.rule.rule_type_id": ML_RULE_TYPE_ID,
        "kibana.alert.rule.revision": 0,
        "kibana.alert.rule.execution.uuid": execution_uuid,
        "kibana.alert.start": now,
        "kibana.alert.last_detected": now,
        "kibana.alert.action_group": "default",
        "kibana.alert.flapping": False,
        "kibana.alert.instance.id": alert_id,
    }
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
    return Alert(alert_id, doc)


def _format_interval(rule: RuleConfig) -> str:
    return format_duration(rule.interval)


# --------------------------------------------------------------------------------------------
# the alert value


@dataclass(frozen=True)
class Alert:
    """One alert: its id and its document (as indexed into Elastic). ``revision`` counts
    changes after creation (suppressed duplicates counted, workflow status)."""

    id: str
    doc: dict[str, Any] = field(compare=False)
    revision: int = 0

    def get(self, path: str) -> list[Any]:
        return field_values(self.doc, path)

    def first(self, path: str) -> Any:
        values = self.get(path)
        return values[0] if values else None

    @property
    def record_id(self) -> str:
        return str(self.doc["kibana.alert.ancestors"][0]["id"])

    @property
    def rule_uuid(self) -> str:
        return str(self.doc["kibana.alert.rule.uuid"])

    @property
    def timestamp(self) -> datetime:
        return parse_timestamp(self.doc["@timestamp"])

    @property
    def original_time(self) -> datetime:
        return parse_timestamp(self.doc["kibana.alert.original_time"])

    @property
    def record_score(self) -> float:
        return float(self.doc.get("record_score", 0.0))

    @property
    def severity(self) -> str:
        return str(self.doc.get("kibana.alert.severity", ""))

    @property
    def workflow_status(self) -> str:
        return str(self.doc.get("kibana.alert.workflow_status", "open"))

    @property
    def instance_id(self) -> str:
        return str(self.doc.get("kibana.alert.instance.id", self.id))

    @property
    def suppressed_count(self) -> int:
        return int(self.doc.get("kibana.alert.suppression.docs_count", 0))

    @property
    def execution_uuid(self) -> str:
        return str(self.doc.get("kibana.alert.rule.execution.uuid", ""))

    def values(self, path: str) -> list[str]:
        return [str(v) for v in self.get(path)]

    def summary_row(self) -> list[Any]:
        """The columns ``alerts list`` and ``detect`` print."""
        return [
            self.id[:12],
            iso(self.original_time),
            ", ".join(self.values("user.name")),
            ", ".join(self.values("host.name")),
            ", ".join(self.values("process.name")),
            round(self.record_score, 2),
            self.severity,
            self.workflow_status,
            self.suppressed_count or None,
        ]


SUMMARY_HEADERS = ("alert", "anomaly time", "user", "host", "process", "score", "severity",
                   "status", "dups")  # fmt: skip


# --------------------------------------------------------------------------------------------
# the alerts table


def _row(alert: Alert) -> tuple[Any, ...]:
    d = alert.doc
    return (
        alert.id,
        alert.rule_uuid,
        d["kibana.alert.rule.rule_id"],
        alert.record_id,
        d.get("job_id", ""),
        alert.execution_uuid,
        to_epoch_ms(alert.timestamp),
        to_epoch_ms(alert.original_time),
        ",".join(alert.values("user.name")),
        ",".join(alert.values("host.name")),
        alert.record_score,
        alert.severity,
        alert.workflow_status,
        alert.instance_id,
        alert.revision,
        orjson.dumps(d).decode(),
    )


def insert_alerts(store: Store, alerts: Iterable[Alert]) -> int:
    """Create alerts; an id that exists already is left alone (Kibana's bulk ``create`` and its
    409 conflicts). Returns how many were created."""
    n = 0
    with store.transaction() as conn:
        for alert in alerts:
            cur = conn.execute(
                "INSERT OR IGNORE INTO alerts (id, rule_uuid, rule_id, record_id, job_id, "
                "execution_uuid, created_ms, original_time_ms, user_names, host_names, "
                "record_score, severity, workflow_status, instance_id, revision, doc) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _row(alert),
            )
            n += cur.rowcount
    return n


def update_alerts(store: Store, alerts: Iterable[Alert]) -> None:
    """Replace stored alerts' documents (suppression counts, workflow status)."""
    with store.transaction() as conn:
        for alert in alerts:
            conn.execute(
                "UPDATE alerts SET workflow_status = ?, revision = ?, doc = ? WHERE id = ?",
                (alert.workflow_status, alert.revision, orjson.dumps(alert.doc).decode(), alert.id),
            )


def existing_alert_ids(store: Store, ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        out.update(r[0] for r in store.conn.execute(f"SELECT id FROM alerts WHERE id IN ({marks})", chunk))  # fmt: skip
    return out


def suppressed_record_ids(store: Store, rule_uuid: str, record_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(record_ids), 500):
        chunk = list(record_ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        out.update(
            r[0]
            for r in store.conn.execute(
                f"SELECT record_id FROM alert_suppressed WHERE rule_uuid = ? AND record_id IN ({marks})",
                [rule_uuid, *chunk],
            )
        )
    return out


def record_suppressed(store: Store, rule_uuid: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Remember (record_id, kept alert id) pairs so a duplicate is counted once."""
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO alert_suppressed (rule_uuid, record_id, alert_id) VALUES (?,?,?)",
            [(rule_uuid, r, a) for r, a in pairs],
        )


def _from_row(doc: str, revision: int) -> Alert:
    d = orjson.loads(doc)
    return Alert(d["kibana.alert.uuid"], d, revision)


def get_alert(store: Store, id_or_prefix: str) -> Alert:
    """An alert by full id or unique prefix (at least 6 characters)."""
    key = id_or_prefix.strip().lower()
    if len(key) < 6:
        raise AlertLookupError(f"alert id {id_or_prefix!r}: give at least 6 characters")
    rows = store.conn.execute(
        "SELECT doc, revision FROM alerts WHERE id >= ? AND id < ? LIMIT 2",
        (key, key + "\uffff"),
    ).fetchall()
    if not rows:
        raise AlertLookupError(f"no alert with id {id_or_prefix!r}")
    if len(rows) > 1:
        raise AlertLookupError(f"alert id {id_or_prefix!r} is ambiguous: give more characters")
    return _from_row(*rows[0])


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Filters of ``alerts list``; None means "any"."""

    statuses: tuple[str, ...] = ()
    user: str | None = None
    host: str | None = None
    rule_id: str | None = None
    since: datetime | None = None  # anomaly time >=
    until: datetime | None = None  # anomaly time <
    min_score: float | None = None
    severity: str | None = None
    limit: int | None = None


def list_alerts(store: Store, flt: AlertFilter = AlertFilter()) -> list[Alert]:
    """Alerts, newest anomaly first."""
    where: list[str] = []
    args: list[Any] = []
    if flt.statuses:
        where.append(f"workflow_status IN ({','.join('?' * len(flt.statuses))})")
        args.extend(flt.statuses)
    if flt.user is not None:
        where.append("instr(',' || user_names || ',', ',' || ? || ',') > 0")
        args.append(flt.user)
    if flt.host is not None:
        where.append("instr(',' || host_names || ',', ',' || ? || ',') > 0")
        args.append(flt.host)
    if flt.rule_id is not None:
        where.append("rule_id = ?")
        args.append(flt.rule_id)
    if flt.since is not None:
        where.append("original_time_ms >= ?")
        args.append(to_epoch_ms(flt.since))
    if flt.until is not None:
        where.append("original_time_ms < ?")
        args.append(to_epoch_ms(flt.until))
    if flt.min_score is not None:
        where.append("record_score >= ?")
        args.append(flt.min_score)
    if flt.severity is not None:
        where.append("severity = ?")
        args.append(flt.severity)
    sql = "SELECT doc, revision FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY original_time_ms DESC, record_score DESC, id ASC"
    if flt.limit is not None:
        sql += f" LIMIT {int(flt.limit)}"
    return [_from_row(d, r) for d, r in store.conn.execute(sql, args)]


def set_workflow_status(
    store: Store,
    ids: Sequence[str],
    status: str,
    *,
    now: datetime,
    user: str | None = None,
    reason: str | None = None,
) -> list[Alert]:
    """Kibana's "mark as open / acknowledged / closed" on alerts given by id or prefix."""
    if status not in WORKFLOW_STATUSES:
        raise AlertLookupError(f"unknown workflow status {status!r}")
    alerts = [get_alert(store, i) for i in ids]
    changed: list[Alert] = []
    for alert in alerts:
        doc = dict(alert.doc)
        doc["kibana.alert.workflow_status"] = status
        doc["kibana.alert.workflow_status_updated_at"] = iso(now)
        if user:
            doc["kibana.alert.workflow_user"] = user
        if status == "closed" and reason:
            doc["kibana.alert.workflow_reason"] = reason
        elif status != "closed":
            doc.pop("kibana.alert.workflow_reason", None)
        changed.append(Alert(alert.id, doc, alert.revision + 1))
    update_alerts(store, changed)
    return changed
