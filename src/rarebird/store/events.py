"""Kept events in the store: the events the datafeed passed to the job, for triage.

Only a small nested ECS document of each event is kept (what triage shows), keyed by its
content, so writing the same events again (a resumed replay) adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from rarebird.events import ProcessEvent
from rarebird.store.sqlite import Store
from rarebird.timeutil import iso, to_epoch_ms


def _dumps(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc).decode()


def write_events(store: Store, job_id: str, events: Iterable[ProcessEvent]) -> None:
    """Keep the events the datafeed passed to the job, for triage ("what else did they run")."""
    rows = []
    for ev in events:
        doc = _dumps(_triage_doc(ev))
        key = hashlib.blake2b(doc.encode(), digest_size=12).hexdigest()
        rows.append((job_id, to_epoch_ms(ev.timestamp), ev.user_name, ev.host_name,
                     ev.process_name, doc, key))  # fmt: skip
    if rows:
        # keyed by content, so writing the same events again (a resumed replay) adds nothing
        with store.transaction():
            store.executemany(
                "INSERT OR IGNORE INTO events (job_id, timestamp_ms, user_name, host_name, "
                "process_name, doc, key) VALUES (?,?,?,?,?,?,?)",
                rows,
            )


def _triage_doc(ev: ProcessEvent) -> dict[str, Any]:
    """The fields of a kept event that triage shows, as a small nested ECS document."""
    process: dict[str, Any] = {"name": ev.process_name}
    if ev.process_args:
        process["args"] = list(ev.process_args)
    if ev.process_executable:
        process["executable"] = ev.process_executable
    if ev.process_pid is not None:
        process["pid"] = ev.process_pid
    if ev.process_working_directory:
        process["working_directory"] = ev.process_working_directory
    if ev.process_parent_name or ev.process_parent_pid is not None:
        parent: dict[str, Any] = {}
        if ev.process_parent_name:
            parent["name"] = ev.process_parent_name
        if ev.process_parent_pid is not None:
            parent["pid"] = ev.process_parent_pid
        process["parent"] = parent
    user: dict[str, Any] = {}
    if ev.user_name is not None:
        user["name"] = ev.user_name
    if ev.user_id is not None:
        user["id"] = ev.user_id
    if ev.user_audit_name is not None:
        user["audit"] = {"name": ev.user_audit_name}
    doc: dict[str, Any] = {"@timestamp": iso(ev.timestamp), "process": process, "user": user}
    if ev.host_name is not None:
        doc["host"] = {"name": ev.host_name}
    if ev.event_action is not None:
        doc["event"] = {"action": ev.event_action}
    return doc


def search_events(
    store: Store,
    job_id: str,
    *,
    user: str | None = None,
    host: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    where = ["job_id = ?"]
    args: list[Any] = [job_id]
    if user is not None:
        where.append("user_name = ?")
        args.append(user)
    if host is not None:
        where.append("host_name = ?")
        args.append(host)
    if start is not None:
        where.append("timestamp_ms >= ?")
        args.append(to_epoch_ms(start))
    if end is not None:
        where.append("timestamp_ms < ?")
        args.append(to_epoch_ms(end))
    sql = (
        f"SELECT doc FROM events WHERE {' AND '.join(where)} ORDER BY timestamp_ms ASC "
        f"LIMIT {int(limit)}"
    )
    return [orjson.loads(d) for (d,) in store.execute(sql, args)]


def delete_events_since(store: Store, job_id: str, since_ms: int | None) -> int:
    """Delete the job's kept events from ``since_ms`` on (all when None)."""
    with store.transaction():
        n = store.execute(
            "DELETE FROM events WHERE job_id = ? AND timestamp_ms >= ?",
            (job_id, -(2**62) if since_ms is None else since_ms),
        ).rowcount
    return int(n)
