"""Rule executions in the store: when each rule ran, and what it found (Kibana's event log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from rarebird.store.sqlite import Store
from rarebird.timeutil import from_epoch_ms, to_epoch_ms


def record_rule_run(
    store: Store,
    *,
    rule_uuid: str,
    started_at: datetime,
    execution_uuid: str,
    rule_id: str,
    summary: dict[str, Any],
) -> None:
    with store.transaction():
        store.execute(
            "INSERT OR REPLACE INTO rule_runs (rule_uuid, started_ms, execution_uuid, rule_id, "
            "summary) VALUES (?,?,?,?,?)",
            (rule_uuid, to_epoch_ms(started_at), execution_uuid, rule_id,
             orjson.dumps(summary).decode()),
        )  # fmt: skip


def last_run_at(store: Store, rule_uuid: str, *, before: datetime | None = None) -> datetime | None:
    """When the rule last ran (before ``before``, when given)."""
    if before is None:
        value = store.scalar(
            "SELECT max(started_ms) FROM rule_runs WHERE rule_uuid = ?", (rule_uuid,)
        )
    else:
        value = store.scalar(
            "SELECT max(started_ms) FROM rule_runs WHERE rule_uuid = ? AND started_ms < ?",
            (rule_uuid, to_epoch_ms(before)),
        )
    return None if value is None else from_epoch_ms(int(value))


def recent_runs(
    store: Store, rule_uuid: str | None = None, limit: int = 20
) -> list[tuple[datetime, str, dict[str, Any]]]:
    """The latest runs, newest first: (started at, rule id, summary)."""
    sql = "SELECT started_ms, rule_id, summary FROM rule_runs"
    args: list[Any] = []
    if rule_uuid is not None:
        sql += " WHERE rule_uuid = ?"
        args.append(rule_uuid)
    sql += " ORDER BY started_ms DESC LIMIT ?"
    args.append(limit)
    return [
        (from_epoch_ms(int(ms)), str(rid), orjson.loads(s)) for ms, rid, s in store.all(sql, args)
    ]


def delete_rule_runs_since(store: Store, rule_uuid: str, since_ms: int | None) -> int:
    """Delete the rule's runs at or after ``since_ms`` (all when None)."""
    if not rule_uuid:
        return 0
    with store.transaction():
        n = store.execute(
            "DELETE FROM rule_runs WHERE rule_uuid = ? AND started_ms >= ?",
            (rule_uuid, since_ms if since_ms is not None else -(2**62)),
        ).rowcount
    return int(n)
