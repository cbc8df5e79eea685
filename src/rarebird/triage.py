"""Triage: what an analyst needs to decide fast about one anomaly record or alert.

For a record (or an alert, through the record it came from): the anomaly itself; why it scored
as it did (the model's view of the user, the normaliser's ceilings, which one bound the score);
the user's history (earlier discovery commands, earlier anomalies); and the other discovery
commands around it on the same host or by the same user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rarebird.errors import RarebirdError
from rarebird.explain import Explanation
from rarebird.store import Store
from rarebird.store.events import search_events
from rarebird.store.results import get_record_details, get_result, search_results
from rarebird.store.runs import CountedRun, counted_runs
from rarebird.store.views import FleetCache, explain_record
from rarebird.timeutil import from_epoch_ms, iso, parse_timestamp


class TriageError(RarebirdError):
    """The record or alert asked for is not in the store."""


@dataclass(frozen=True)
class UserHistory:
    events: int
    first_seen: str | None
    last_seen_before: str | None
    hosts: tuple[str, ...]
    earlier_records: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Triage:
    record_id: str
    record: dict[str, Any]
    alert: dict[str, Any] | None
    details: dict[str, Any] | None
    history: UserHistory
    around: list[dict[str, Any]] = field(default_factory=list)
    explanation: Explanation | None = None
    #: runs of the job whose events were counted in the scan and not kept (``--aggregate``)
    counted: tuple[CountedRun, ...] = ()

    @property
    def events_missing(self) -> str | None:
        """Why the history and the commands around may lack events, or None when they do not."""
        if not self.counted:
            return None
        spans = "; ".join(f"{r.first} to {r.last}" for r in self.counted[-3:] if r.first)
        return (
            f"{len(self.counted)} run(s) of this job counted their events in the scan "
            f"(job run --aggregate) and did not keep them"
            + (f" (data from {spans})" if spans else "")
            + ": the history and the commands shown miss those events"
        )

    @property
    def by_user(self) -> list[dict[str, Any]]:
        """The commands around the anomaly run by the anomalous user."""
        user = self.record["by_field_value"]
        return [e for e in self.around if user in _values(e, "user", "name")]

    @property
    def others(self) -> list[tuple[str, int, str, str, str]]:
        """Other users' commands on the same host(s): (user, count, commands, first, last)."""
        user = self.record["by_field_value"]
        groups: dict[str, list[dict[str, Any]]] = {}
        for e in self.around:
            names = _values(e, "user", "name")
            if user in names:
                continue
            groups.setdefault(", ".join(names) or "-", []).append(e)
        out = []
        for name, events in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            commands = sorted({" ".join(_values(e, "process", "args")) or
                               ", ".join(_values(e, "process", "name")) for e in events})  # fmt: skip
            out.append((name, len(events), "; ".join(commands[:4]) + (" ..." if len(commands) > 4 else ""),
                        events[0]["@timestamp"], events[-1]["@timestamp"]))  # fmt: skip
        return out

    @property
    def why(self) -> list[str]:
        """The score explained in a few sentences (:mod:`rarebird.explain`, as the web pages
        and the ``results`` table say it)."""
        return list(self.explanation.lines) if self.explanation else []


def resolve_record_id(store: Store, ident: str) -> tuple[str, dict[str, Any] | None]:
    """A record id, ``USER@TIME`` (the user's record in the bucket holding TIME), or an alert
    id (or unique prefix) whose record is wanted."""
    if get_result(store, ident) is not None:
        return ident, None
    if "@" in ident:
        user, _, when_text = ident.rpartition("@")
        try:
            when = parse_timestamp(when_text)
        except ValueError:
            raise TriageError(f"{ident!r}: expected USER@TIME with an ISO-8601 time") from None
        page = search_results(store, "record", entity=user, end=when, order="score")
        candidates = [
            (doc_id, doc) for doc_id, doc in page.hits
            if int(doc["timestamp"]) <= when.timestamp() * 1000
            < int(doc["timestamp"]) + int(doc["bucket_span"]) * 1000
        ]  # fmt: skip
        if not candidates:
            raise TriageError(f"no anomaly record of {user!r} in the bucket holding {when_text}")
        return candidates[0][0], None
    try:
        from rarebird.store.alerts import get_alert

        alert = get_alert(store, ident)
    except RarebirdError:
        raise TriageError(f"no anomaly record or alert {ident!r} in {store.path}") from None
    return alert.record_id, alert.doc


def triage(store: Store, ident: str, *, window: timedelta = timedelta(hours=1)) -> Triage:
    record_id, alert = resolve_record_id(store, ident)
    record = get_result(store, record_id)
    if (
        record is None
        and alert is not None
        and alert.get("rarebird.profile.reason") == "host_first"
    ):
        record = dict(alert)  # the quiet profile's own record (never stored) is on its alert
    if record is None:
        raise TriageError(f"the record {record_id!r} of that alert is no longer in {store.path}")
    job_id = record["job_id"]
    user = record["by_field_value"]
    when = from_epoch_ms(int(record["timestamp"]))
    span = timedelta(seconds=int(record["bucket_span"]))
    user_events = search_events(store, job_id, user=user, end=when, limit=100_000)
    hosts = sorted({h for e in user_events for h in _values(e, "host", "name")})
    earlier = search_results(store, "record", job_ids=[job_id], entity=user, end=when - span,
                             order="time")  # fmt: skip
    history = UserHistory(
        events=len(user_events),
        first_seen=user_events[0]["@timestamp"] if user_events else None,
        last_seen_before=user_events[-1]["@timestamp"] if user_events else None,
        hosts=tuple(hosts),
        earlier_records=tuple(
            (iso(from_epoch_ms(int(doc["timestamp"]))), float(doc["record_score"]))
            for _, doc in earlier.hits
        ),
    )
    record_hosts = set(record.get("host.name", []))
    around = [
        e
        for e in search_events(
            store, job_id, start=when - window, end=when + span + window, limit=1000
        )  # fmt: skip
        if user in _values(e, "user", "name") or record_hosts & set(_values(e, "host", "name"))
    ]
    details = get_record_details(store, record_id)
    # the quiet profile's reason travels on the alert, not on the job's record
    profile = {k: v for k, v in (alert or {}).items() if k.startswith("rarebird.profile.")}
    explanation = explain_record(store, {**record, **profile}, details, FleetCache())
    counted = tuple(counted_runs(store, job_id))
    return Triage(record_id, record, alert, details, history, around, explanation, counted)


def _values(doc: dict[str, Any], *path: str) -> list[str]:
    node: Any = doc
    for part in path:
        if not isinstance(node, dict):
            return []
        node = node.get(part)
    if node is None:
        return []
    return [str(v) for v in node] if isinstance(node, list) else [str(node)]


def event_time(doc: dict[str, Any]) -> datetime:
    return parse_timestamp(doc["@timestamp"])
