"""Helpers for the rule, alert, suppression and sink tests: anomaly records written into a real
SQLite store the way the job writes them (``write_bucket_results``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rarebird.definitions.rule import RuleConfig, load_rule
from rarebird.results import AnomalyRecord, BucketResult, BucketResults, Influence
from rarebird.store.results import update_scores, write_bucket_results
from rarebird.store.sqlite import Store, open_store

JOB = "v3_linux_network_connection_discovery"
SPAN = 900
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_store(tmp_path: Path, name: str = "store.db") -> Store:
    return open_store(str(tmp_path / name))


def rule(**changes: Any) -> RuleConfig:
    return replace(load_rule(), **changes)


def record(
    when: datetime,
    user: str,
    score: float,
    *,
    hosts: tuple[str, ...] = ("h1",),
    procs: tuple[str, ...] = ("ss",),
    args: tuple[str, ...] = ("-tunap,ss",),
    interim: bool = False,
    job: str = JOB,
) -> AnomalyRecord:
    return AnomalyRecord(
        job_id=job,
        timestamp=when,
        bucket_span=SPAN,
        by_field_name="user.name",
        by_field_value=user,
        probability=0.001,
        record_score=score,
        initial_record_score=score,
        typical=(0.05,),
        actual=(1.0,),
        influencers=(
            Influence("host.name", hosts),
            Influence("process.args", args),
            Influence("process.name", procs),
            Influence("user.name", (user,)),
        ),
        is_interim=interim,
        first_occurrence=True,
    )


def write(store: Store, *records: AnomalyRecord) -> None:
    """Write records grouped by bucket (one bucket result per timestamp)."""
    by_ts: dict[datetime, list[AnomalyRecord]] = {}
    for r in records:
        by_ts.setdefault(r.timestamp, []).append(r)
    for ts, recs in sorted(by_ts.items()):
        top = max(r.record_score for r in recs)
        bucket = BucketResult(
            job_id=recs[0].job_id, timestamp=ts, bucket_span=SPAN, anomaly_score=top,
            initial_anomaly_score=top, event_count=len(recs), is_interim=recs[0].is_interim,
        )  # fmt: skip
        write_bucket_results(store, BucketResults(bucket=bucket, records=tuple(recs)))


def rescore(store: Store, rec: AnomalyRecord, score: float) -> None:
    update_scores(store, [(rec.doc_id, score)])


def alert_count(store: Store) -> int:
    return int(store.execute("SELECT count(*) FROM alerts").fetchone()[0])


# --- a constructed ECS scenario for end-to-end tests ------------------------------------------
# Constructed (no public corpus has a non-root user running these tools): three days in which
# "monitor" runs ss every 15 minutes on web-1, "nagios" runs netstat hourly and "backup" runs
# ss on db-1 every 105 minutes; then "mallory" runs ss once on web-2, started by cron.

SCENARIO_START = datetime(2026, 3, 1, tzinfo=UTC)
MALLORY_AT = datetime(2026, 3, 4, 0, 5, tzinfo=UTC)  # bucket 2026-03-04T00:00
MALLORY_BUCKET = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)


def ecs_event(when: datetime, user: str, host: str = "web-1", proc: str = "ss",
              parent: str = "bash") -> dict[str, Any]:  # fmt: skip
    return {
        "@timestamp": when.isoformat().replace("+00:00", "Z"),
        "event": {"kind": "event", "category": ["process"], "type": ["start"]},
        "user": {"name": user},
        "host": {"name": host, "os": {"type": "linux"}},
        "process": {"name": proc, "args": [proc, "-tunap"], "parent": {"name": parent}},
    }


def scenario_events(days: int = 3, tail_buckets: int = 8) -> list[dict[str, Any]]:
    out = []
    n = 4 * 24 * days
    for b in range(n + tail_buckets):
        t = SCENARIO_START + timedelta(minutes=15 * b)
        out.append(ecs_event(t + timedelta(seconds=10), "monitor"))
        if b >= n:
            continue
        if b % 4 == 0:
            out.append(ecs_event(t + timedelta(seconds=20), "nagios", proc="netstat"))
        if b % 7 == 0:
            out.append(ecs_event(t + timedelta(seconds=30), "backup", host="db-1"))
    out.append(ecs_event(MALLORY_AT, "mallory", host="web-2", parent="cron"))
    out.sort(key=lambda e: str(e["@timestamp"]))
    return out


def write_ndjson(path: Path, docs: list[dict[str, Any]]) -> Path:
    import json

    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path
