"""The alerts table: filters, sort, paging (SQL of the alerts page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rarebird.store.sqlite import Store
from rarebird.store.views._util import json_strings, split
from rarebird.timeutil import from_epoch_ms, to_epoch_ms

# --------------------------------------------------------------------------------------------
# alerts


ALERT_SORTS = {
    "time": "original_time_ms",
    "score": "record_score",
    "user": "user_names",
    "status": "workflow_status",
}


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """The alerts table's filters, sort and page; None and () mean "any"."""

    statuses: tuple[str, ...] = ()
    user: str | None = None
    host: str | None = None
    since: datetime | None = None  # anomaly time >=
    until: datetime | None = None  # anomaly time <
    sort: str = "time"
    descending: bool = True
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: str
    time: datetime
    users: tuple[str, ...]
    hosts: tuple[str, ...]
    processes: tuple[str, ...]
    score: float
    status: str


@dataclass(frozen=True, slots=True)
class AlertPage:
    total: int
    rows: tuple[AlertRow, ...]


def alerts_page(store: Store, q: AlertQuery) -> AlertPage:
    """One page of alerts and how many match in all."""
    where: list[str] = []
    args: list[Any] = []
    if q.statuses:
        where.append(f"workflow_status IN ({','.join('?' * len(q.statuses))})")
        args.extend(q.statuses)
    if q.user:
        # the rule's alerts carry one user.name (the job's by-field value): an exact, indexed
        # match (alerts_by_user)
        where.append("user_names = ?")
        args.append(q.user)
    if q.host:
        where.append("instr(',' || host_names || ',', ',' || ? || ',') > 0")
        args.append(q.host)
    if q.since is not None:
        where.append("original_time_ms >= ?")
        args.append(to_epoch_ms(q.since))
    if q.until is not None:
        where.append("original_time_ms < ?")
        args.append(to_epoch_ms(q.until))
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    if q.host and not q.user:
        clause = " INDEXED BY alerts_by_host" + clause
    total = store.execute(f"SELECT count(*) FROM alerts{clause}", args).fetchone()[0]
    column = ALERT_SORTS.get(q.sort, "original_time_ms")
    direction = "DESC" if q.descending else "ASC"
    order = f"{column} {direction}, rowid {direction}"
    if column != "original_time_ms":
        order = f"{column} {direction}, original_time_ms DESC, rowid DESC"
    rows = store.execute(
        "SELECT id, original_time_ms, user_names, host_names, json_extract(doc, '$.process.name'), "
        f"record_score, workflow_status FROM alerts{clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, q.limit, q.offset],
    )
    return AlertPage(
        total,
        tuple(
            AlertRow(
                aid,
                from_epoch_ms(t),
                split(users),
                split(hosts),
                json_strings(procs),
                float(score),
                status,
            )  # fmt: skip
            for aid, t, users, hosts, procs, score, status in rows
        ),
    )


def alert_status_counts(store: Store) -> dict[str, int]:
    """How many alerts have each workflow status."""
    rows = store.execute("SELECT workflow_status, count(*) FROM alerts GROUP BY workflow_status")
    return {str(s): int(n) for s, n in rows}
