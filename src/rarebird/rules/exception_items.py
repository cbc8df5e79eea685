"""New exception items: made by hand (``exceptions add``) or proposed from an alert.

A rule's own default list is ``rule_default_<rule_id>`` (Kibana's ``rule_default`` list): where
``exceptions add`` writes unless told otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rarebird.documents import field_values
from rarebird.rules.exceptions import (
    AllowList,
    Entry,
    ExceptionItem,
    MatchAnyEntry,
    MatchEntry,
    ScheduleWindow,
    as_text,
)
from rarebird.timeutil import iso


def rule_default_list_id(rule_id: str) -> str:
    """The list ``exceptions add`` writes to unless told otherwise (Kibana's ``rule_default``)."""
    return f"rule_default_{rule_id}"


def new_item(
    *,
    list_id: str,
    name: str,
    entries: Sequence[Entry],
    now: datetime,
    description: str = "",
    windows: Sequence[ScheduleWindow] = (),
    allow: AllowList | None = None,
    expire_time: datetime | None = None,
    comments: Sequence[str] = (),
    item_id: str | None = None,
    created_by: str = "rarebird",
) -> ExceptionItem:
    """A fresh item (random ``item_id`` unless given), validated like an imported one."""
    item_id = item_id or str(uuid.uuid4())
    stamp = iso(now)
    item = ExceptionItem(
        item_id=item_id,
        list_id=list_id,
        name=name,
        entries=tuple(entries),
        description=description,
        id=item_id,
        windows=tuple(windows),
        allow=allow,
        expire_time=expire_time,
        comments=tuple(
            {"comment": c, "created_at": stamp, "created_by": created_by, "id": str(uuid.uuid4())}
            for c in comments
        ),
        created_at=stamp,
        created_by=created_by,
        updated_at=stamp,
        updated_by=created_by,
    )
    # the same validation as an import
    return ExceptionItem.from_elastic(item.to_elastic(), "item", "<new item>")


#: Fields an item proposed from an alert uses by default: who, and where.
DEFAULT_PROPOSAL_FIELDS = ("user.name", "host.name")


def propose_item(
    alert_doc: Mapping[str, Any],
    *,
    list_id: str,
    now: datetime,
    fields: Sequence[str] = DEFAULT_PROPOSAL_FIELDS,
    parents: Sequence[str] = (),
    name: str | None = None,
) -> ExceptionItem:
    """An item that would have excepted this alert: ``is`` (one value) or ``is one of`` (several)
    on each of ``fields`` the alert has, plus an allow-list of ``parents`` if given."""
    entries: list[Entry] = []
    for fname in fields:
        values = sorted({t for v in field_values(alert_doc, fname) if (t := as_text(v))})
        if not values:
            continue
        if len(values) == 1:
            entries.append(MatchEntry(fname, values[0]))
        else:
            entries.append(MatchAnyEntry(fname, tuple(values)))
    if not entries and not parents:
        raise ValueError(f"the alert has none of the fields {', '.join(fields)}")
    who = ", ".join(
        f"{e.field}={e.value if isinstance(e, MatchEntry) else '|'.join(e.values)}"
        for e in entries
        if isinstance(e, MatchEntry | MatchAnyEntry)
    )
    alert_id = next(iter(field_values(alert_doc, "kibana.alert.uuid")), "")
    return new_item(
        list_id=list_id,
        name=name or f"Exception for {who or 'allowed parents'}",
        description=f"Proposed from alert {alert_id}" if alert_id else "",
        entries=entries,
        allow=AllowList(tuple(parents)) if parents else None,
        now=now,
    )
