"""A user's timeline, and the job's and rule's health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from rarebird.store import serve as state
from rarebird.store import snapshots
from rarebird.store.sqlite import Store
from rarebird.store.views._util import text
from rarebird.store.views.records import DAY_MS
from rarebird.timeutil import from_epoch_ms, from_epoch_s, iso

# --------------------------------------------------------------------------------------------
# a user's timeline


@dataclass(frozen=True, slots=True)
class DayCount:
    day: datetime
    user_events: int
    fleet_events: int


def user_bounds(store: Store, job_id: str, user: str) -> tuple[int, int] | None:
    where = "FROM events WHERE job_id = ? AND user_name = ?"
    first = store.execute(f"SELECT min(timestamp_ms) {where}", (job_id, user)).fetchone()[0]
    last = store.execute(f"SELECT max(timestamp_ms) {where}", (job_id, user)).fetchone()[0]
    return None if first is None else (int(first), int(last))


def user_days(store: Store, job_id: str, user: str, start_ms: int, end_ms: int) -> list[DayCount]:
    """The user's discovery commands per UTC day against the fleet's (the buckets'
    ``event_count``), over whole days from ``start_ms`` to ``end_ms``."""
    first = start_ms // DAY_MS * DAY_MS
    mine = dict(
        store.execute(
            "SELECT (timestamp_ms - ?) / ?, count(*) FROM events WHERE job_id = ? AND "
            "user_name = ? AND timestamp_ms >= ? AND timestamp_ms < ? GROUP BY 1",
            (first, DAY_MS, job_id, user, first, end_ms),
        ).fetchall()
    )
    fleet = dict(
        store.execute(
            "SELECT (timestamp_ms - ?) / ?, sum(json_extract(doc, '$.event_count')) FROM results "
            "WHERE job_id = ? AND result_type = 'bucket' AND is_interim = 0 AND "
            "timestamp_ms >= ? AND timestamp_ms < ? GROUP BY 1",
            (first, DAY_MS, job_id, first, end_ms),
        ).fetchall()
    )
    days = max(1, -(-(end_ms - first) // DAY_MS))
    return [
        DayCount(from_epoch_ms(first + i * DAY_MS), int(mine.get(i, 0)), int(fleet.get(i) or 0))
        for i in range(days)
    ]


# --------------------------------------------------------------------------------------------
# job and rule health


#: job statistics kept as epoch seconds, shown as times (as ``job stats`` prints them)
_TIME_STATS = ("earliest_record_timestamp", "latest_record_timestamp", "last_finalised_bucket_end")


@dataclass(frozen=True, slots=True)
class JobHealth:
    job_id: str
    updated: str
    stats: tuple[tuple[str, str], ...]


def job_health(store: Store) -> list[JobHealth]:
    """Each job's data counts and model size stats, as last saved."""
    out = []
    for job_id, updated, stats in store.execute(
        "SELECT job_id, updated, json_extract(state, '$.stats') FROM job_state ORDER BY job_id"
    ):
        doc = orjson.loads(stats) if stats else {}
        for key in _TIME_STATS:
            if doc.get(key) is not None:
                doc[key] = iso(from_epoch_s(float(doc[key])))
        out.append(JobHealth(str(job_id), str(updated), tuple((k, text(v)) for k, v in doc.items())))  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class RunRow:
    rule_id: str
    started: str
    found: int
    created: int
    excepted: int
    truncated: int
    warnings: tuple[str, ...]


def rule_runs(store: Store, *, limit: int = 20, with_warnings: bool = False) -> tuple[int, list[RunRow]]:  # fmt: skip
    """How many rule runs there were, and the last ``limit`` (only those with warnings)."""
    total = int(store.execute("SELECT count(*) FROM rule_runs").fetchone()[0])
    where = " WHERE json_array_length(summary, '$.warnings') > 0" if with_warnings else ""
    rows = store.execute(
        f"SELECT rule_id, summary FROM rule_runs{where} ORDER BY started_ms DESC LIMIT ?",
        (limit,),
    )
    out = []
    for rule_id, raw in rows:
        s = orjson.loads(raw)
        out.append(
            RunRow(str(rule_id), str(s.get("started_at", "")), int(s.get("found", 0)),
                   int(s.get("created", 0)), int(s.get("excepted", 0)),
                   int(s.get("truncated", 0)), tuple(str(w) for w in s.get("warnings", ())))
        )  # fmt: skip
    return total, out


def late_and_gaps(store: Store, job_id: str) -> tuple[list[state.LateReport], list[state.Gap]]:
    return state.late_reports(store, job_id, 20), state.gaps(store, job_id, 20)


def last_snapshots(store: Store, job_id: str, limit: int = 10) -> list[snapshots.Snapshot]:
    return snapshots.list_snapshots(store, job_id)[-limit:][::-1]


def service_state(store: Store, job_id: str) -> str | None:
    """The live engine's saved position (JSON text; :class:`rarebird.run.state.EngineState`)."""
    return state.load_service_state(store, job_id)
