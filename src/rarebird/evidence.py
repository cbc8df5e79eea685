"""What an alert rests on, read from the store: the events the job kept behind it, their parent
processes, and the exception item that would have excepted it (``exceptions add --from-alert``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from rarebird.alerts import Alert
from rarebird.documents import field_values
from rarebird.rules.exception_items import propose_item
from rarebird.rules.exceptions import ExceptionItem
from rarebird.store.alerts import get_alert
from rarebird.store.events import search_events
from rarebird.store.sqlite import Store


def events_behind(store: Store, alert: Alert, limit: int = 50) -> list[dict[str, Any]]:
    """The events the job kept for the anomaly's by-field value in its bucket (at most ``limit``)."""
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


def parent_processes(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The parents (executable, else name) that started ``events``, each once, in order."""
    found: list[str] = []
    for ev in events:
        proc = ev.get("process") or {}
        parent = proc.get("parent") or {} if isinstance(proc, dict) else {}
        exe = parent.get("executable") or parent.get("name")
        if exe and exe not in found:
            found.append(str(exe))
    return found


def propose_from_alert(
    store: Store,
    alert_id: str,
    *,
    list_id: str,
    now: datetime,
    fields: Sequence[str],
    with_parents: bool = False,
    name: str | None = None,
) -> ExceptionItem:
    """The item that would have excepted the alert ``alert_id`` (an id or a unique prefix): its
    values of ``fields``, and with ``with_parents`` an allow-list of the parents of the events
    behind it."""
    alert = get_alert(store, alert_id)
    parents = parent_processes(events_behind(store, alert)) if with_parents else []
    return propose_item(alert.doc, list_id=list_id, now=now, fields=fields, parents=parents,
                        name=name)  # fmt: skip
