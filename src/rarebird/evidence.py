"""What an alert rests on, read from the store, and an exception proposed from an alert: the one logic behind ``exceptions add --from-alert``
and the alert page's "add an exception from this alert".

The item matches the alert's ``user.name`` and ``host.name`` (or other fields), as Kibana's
"Add rule exception" from an alert pre-fills them; ``with_parents`` adds an allow-list of the
parent processes of the events behind the anomaly (rarebird's allow-lists need every event
behind an anomaly to be allowed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rarebird.alerts import Alert
from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values
from rarebird.rules.exception_items import DEFAULT_PROPOSAL_FIELDS, propose_item
from rarebird.rules.exceptions import ExceptionItem
from rarebird.store.events import search_events
from rarebird.store.exceptions import ensure_rule_default_list
from rarebird.store.sqlite import Store


def events_behind(store: Store, alert: Alert, limit: int = 50) -> list[dict[str, Any]]:
    """The events the job kept for the anomaly's by-field value in its bucket."""
    start = alert.original_time
    end = start + timedelta(seconds=int(alert.doc.get("bucket_span", 900)))
    by_name = str(alert.doc.get("by_field_name", "user.name"))
    by_value = str(alert.doc.get("by_field_value", ""))
    job_id = str(alert.doc.get("job_id", ""))
    if by_name == "user.name":
        return search_events(store, job_id, user=by_value, start=start, end=end, limit=limit)
    return [
        ev
        for ev in search_events(store, job_id, start=start, end=end, limit=10_000)
        if by_value in [str(v) for v in field_values(ev, by_name)]
    ][:limit]


def parents_behind(store: Store, alert: Alert) -> list[str]:
    """The parent processes (executable, else name) of the events behind the alert."""
    allowed: list[str] = []
    for ev in events_behind(store, alert):
        proc = ev.get("process") or {}
        parent = (proc.get("parent") or {}) if isinstance(proc, dict) else {}
        exe = parent.get("executable") or parent.get("name")
        if exe and str(exe) not in allowed:
            allowed.append(str(exe))
    return allowed


def propose_from_alert(
    store: Store,
    alert: Alert,
    rule: RuleConfig,
    *,
    now: datetime,
    list_id: str | None = None,
    fields: Sequence[str] = DEFAULT_PROPOSAL_FIELDS,
    with_parents: bool = False,
    name: str | None = None,
) -> ExceptionItem:
    """The item that would have excepted ``alert``, for ``list_id`` (default: the rule's
    default list, created if needed). Not saved: the caller shows it, then saves it."""
    target = list_id or ensure_rule_default_list(store, rule, now)
    parents = parents_behind(store, alert) if with_parents else []
    return propose_item(
        alert.doc, list_id=target, now=now, fields=fields, parents=parents, name=name
    )
