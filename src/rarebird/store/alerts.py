"""Alerts in the store: the alerts table, suppressed duplicates, and the workflow.

New alerts are created with Kibana's bulk ``create`` semantics (an id that exists is left
alone); changed alerts (suppression counts, workflow status, interim to final) replace the
stored document with a higher ``revision``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.alerts.model import WORKFLOW_STATUSES, Alert, AlertLookupError
from rarebird.store.sqlite import Store, in_chunks
from rarebird.timeutil import to_epoch_ms


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
    with store.transaction():
        for alert in alerts:
            cur = store.execute(
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
    with store.transaction():
        for alert in alerts:
            store.execute(
                "UPDATE alerts SET workflow_status = ?, revision = ?, doc = ? WHERE id = ?",
                (alert.workflow_status, alert.revision, orjson.dumps(alert.doc).decode(), alert.id),
            )


def existing_alert_ids(store: Store, ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for chunk in in_chunks(ids):
        marks = ",".join("?" * len(chunk))
        out.update(r[0] for r in store.all(f"SELECT id FROM alerts WHERE id IN ({marks})", chunk))
    return out


def suppressed_record_ids(store: Store, rule_uuid: str, record_ids: Sequence[str]) -> set[str]:
    """Records already counted as duplicates of a kept alert of the rule."""
    out: set[str] = set()
    for chunk in in_chunks(record_ids):
        marks = ",".join("?" * len(chunk))
        rows = store.all(
            f"SELECT record_id FROM alert_suppressed WHERE rule_uuid = ? AND record_id IN ({marks})",
            [rule_uuid, *chunk],
        )
        out.update(r[0] for r in rows)
    return out


def record_suppressed(store: Store, rule_uuid: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Remember (record_id, kept alert id) pairs so a duplicate is counted once."""
    with store.transaction():
        store.executemany(
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
    rows = store.execute(
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
    #: ``time`` (newest anomaly first) or ``score`` (highest record_score first)
    order: str = "time"


def list_alerts(store: Store, flt: AlertFilter = AlertFilter()) -> list[Alert]:
    """Alerts, newest anomaly first (or highest score first)."""
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
    if flt.order == "score":
        sql += " ORDER BY record_score DESC, original_time_ms DESC, id ASC"
    else:
        sql += " ORDER BY original_time_ms DESC, record_score DESC, id ASC"
    if flt.limit is not None:
        sql += f" LIMIT {int(flt.limit)}"
    return [_from_row(d, r) for d, r in store.execute(sql, args)]


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
    changed = [a.with_workflow_status(status, now=now, user=user, reason=reason) for a in alerts]
    update_alerts(store, changed)
    return changed


def open_alert_of_instance(
    store: Store, rule_uuid: str, instance_id: str, created_since: datetime
) -> Alert | None:
    """The newest alert of a suppression group not closed and created since ``created_since``
    (the one a duplicate is counted on)."""
    row = store.one(
        "SELECT doc, revision FROM alerts WHERE rule_uuid = ? AND instance_id = ? "
        "AND workflow_status != 'closed' AND created_ms >= ? "
        "ORDER BY created_ms DESC, id DESC LIMIT 1",
        (rule_uuid, instance_id, to_epoch_ms(created_since)),
    )
    return None if row is None else _from_row(str(row[0]), int(row[1]))
