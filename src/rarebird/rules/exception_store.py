"""Exception lists in the store: lists, items, value lists, which lists a rule applies, and
Kibana NDJSON import/export.

A rule applies the lists its definition references (``exceptions_list``), the lists attached to
it in the store (``exceptions import`` attaches what it imports), and its own default list
(``rule_default_<rule_id>``, Kibana's ``rule_default`` list), where ``exceptions add`` writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rarebird.definitions.rule import RuleConfig
from rarebird.documents import field_values
from rarebird.errors import DefinitionError
from rarebird.rules.exceptions import (
    LIST_TYPES,
    AllowList,
    Entry,
    ExceptionItem,
    ExceptionList,
    ExceptionSet,
    ExceptionsFile,
    MatchAnyEntry,
    MatchEntry,
    ScheduleWindow,
    ValueList,
    as_text,
    exceptions_to_ndjson,
)
from rarebird.store.sqlite import Store, register_migrations
from rarebird.timeutil import iso

register_migrations(
    "exceptions",
    [
        """
        CREATE TABLE exception_lists (
            list_id  TEXT PRIMARY KEY,
            doc      TEXT NOT NULL
        );
        CREATE TABLE exception_items (
            item_id  TEXT PRIMARY KEY,
            list_id  TEXT NOT NULL,
            id       TEXT NOT NULL,
            doc      TEXT NOT NULL
        );
        CREATE INDEX exception_items_by_list ON exception_items (list_id);
        CREATE TABLE exception_list_rules (
            list_id  TEXT NOT NULL,
            rule_id  TEXT NOT NULL,
            PRIMARY KEY (list_id, rule_id)
        );
        CREATE TABLE value_lists (
            id           TEXT PRIMARY KEY,
            type         TEXT NOT NULL,
            name         TEXT NOT NULL,
            description  TEXT NOT NULL,
            created_at   TEXT NOT NULL
        );
        CREATE TABLE value_list_items (
            list_id  TEXT NOT NULL,
            value    TEXT NOT NULL,
            PRIMARY KEY (list_id, value)
        );
        """,
    ],
)


def rule_default_list_id(rule_id: str) -> str:
    """The list ``exceptions add`` writes to unless told otherwise (Kibana's ``rule_default``)."""
    return f"rule_default_{rule_id}"


def save_list(store: Store, lst: ExceptionList) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO exception_lists (list_id, doc) VALUES (?, ?) "
            "ON CONFLICT(list_id) DO UPDATE SET doc = excluded.doc",
            (lst.list_id, orjson.dumps(lst.to_elastic()).decode()),
        )


def save_item(store: Store, item: ExceptionItem) -> None:
    with store.transaction() as conn:
        if (
            conn.execute(
                "SELECT 1 FROM exception_lists WHERE list_id = ?", (item.list_id,)
            ).fetchone()
            is None
        ):
            raise DefinitionError("<store>", item.list_id, "no such exception list")
        conn.execute(
            "INSERT INTO exception_items (item_id, list_id, id, doc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(item_id) DO UPDATE SET list_id = excluded.list_id, id = excluded.id, "
            "doc = excluded.doc",
            (item.item_id, item.list_id, item.id or item.item_id,
             orjson.dumps(item.to_elastic()).decode()),
        )  # fmt: skip


def delete_item(store: Store, item_or_id: str) -> ExceptionItem | None:
    """Remove an item by ``item_id`` or ``id``; returns what was removed."""
    row = store.conn.execute(
        "SELECT item_id, doc FROM exception_items WHERE item_id = ? OR id = ?",
        (item_or_id, item_or_id),
    ).fetchone()
    if row is None:
        return None
    with store.transaction() as conn:
        conn.execute("DELETE FROM exception_items WHERE item_id = ?", (row[0],))
    return ExceptionItem.from_elastic(orjson.loads(row[1]), "item", "<store>")


def load_lists(store: Store, list_ids: Iterable[str] | None = None) -> list[ExceptionList]:
    rows = store.conn.execute("SELECT list_id, doc FROM exception_lists ORDER BY list_id")
    wanted = set(list_ids) if list_ids is not None else None
    return [
        ExceptionList.from_elastic(orjson.loads(doc), "list", "<store>")
        for lid, doc in rows
        if wanted is None or lid in wanted
    ]


def load_items(store: Store, list_ids: Iterable[str] | None = None) -> list[ExceptionItem]:
    rows = store.conn.execute(
        "SELECT list_id, doc FROM exception_items ORDER BY list_id, rowid"
    ).fetchall()
    wanted = set(list_ids) if list_ids is not None else None
    return [
        ExceptionItem.from_elastic(orjson.loads(doc), "item", "<store>")
        for lid, doc in rows
        if wanted is None or lid in wanted
    ]


def attach_list(store: Store, list_id: str, rule_id: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO exception_list_rules (list_id, rule_id) VALUES (?, ?)",
            (list_id, rule_id),
        )


def list_ids_for_rule(store: Store, rule: RuleConfig) -> list[str]:
    """Lists a rule applies: those its definition references, those attached to it in the
    store, and its default list."""
    ids = [ref.list_id for ref in rule.exceptions_list]
    for (lid,) in store.conn.execute(
        "SELECT list_id FROM exception_list_rules WHERE rule_id = ? ORDER BY list_id",
        (rule.rule_id,),
    ):
        if lid not in ids:
            ids.append(lid)
    default = rule_default_list_id(rule.rule_id)
    if default not in ids:
        ids.append(default)
    return ids


def ensure_rule_default_list(store: Store, rule: RuleConfig, now: datetime) -> str:
    list_id = rule_default_list_id(rule.rule_id)
    if not store.conn.execute(
        "SELECT 1 FROM exception_lists WHERE list_id = ?", (list_id,)
    ).fetchone():
        save_list(
            store,
            ExceptionList(
                list_id=list_id,
                name=f"Exceptions for rule - {rule.name}",
                type="rule_default",
                description=f"Exception list containing exceptions for rule {rule.rule_id}",
                created_at=iso(now),
                updated_at=iso(now),
            ),
        )
    attach_list(store, list_id, rule.rule_id)
    return list_id


def save_value_list(store: Store, vl: ValueList, now: datetime, *, replace_values: bool = True) -> None:  # fmt: skip
    if vl.type not in LIST_TYPES:
        raise DefinitionError("<value list>", vl.id, f"unknown value list type {vl.type!r}")
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO value_lists (id, type, name, description, created_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET type = excluded.type, name = excluded.name, "
            "description = excluded.description",
            (vl.id, vl.type, vl.name or vl.id, vl.description, iso(now)),
        )
        if replace_values:
            conn.execute("DELETE FROM value_list_items WHERE list_id = ?", (vl.id,))
        conn.executemany(
            "INSERT OR IGNORE INTO value_list_items (list_id, value) VALUES (?, ?)",
            [(vl.id, v) for v in sorted(vl.values)],
        )


def load_value_lists(store: Store) -> dict[str, ValueList]:
    values: dict[str, set[str]] = {}
    for lid, value in store.conn.execute("SELECT list_id, value FROM value_list_items"):
        values.setdefault(lid, set()).add(value)
    out = {}
    for lid, ltype, name, desc in store.conn.execute(
        "SELECT id, type, name, description FROM value_lists ORDER BY id"
    ):
        out[lid] = ValueList(lid, ltype, frozenset(values.get(lid, ())), name, desc)
    return out


def delete_value_list(store: Store, list_id: str) -> bool:
    with store.transaction() as conn:
        n = conn.execute("DELETE FROM value_lists WHERE id = ?", (list_id,)).rowcount
        conn.execute("DELETE FROM value_list_items WHERE list_id = ?", (list_id,))
    return n > 0


def load_rule_exceptions(store: Store, rule: RuleConfig) -> ExceptionSet:
    """The exception items (not yet filtered for expiry) and value lists a rule applies."""
    return ExceptionSet(tuple(load_items(store, list_ids_for_rule(store, rule))),
                        load_value_lists(store))  # fmt: skip


@dataclass(frozen=True)
class ImportSummary:
    lists_created: int
    lists_updated: int
    items_created: int
    items_updated: int
    items_skipped: int
    errors: tuple[str, ...] = ()


def import_exceptions(
    store: Store,
    parsed: ExceptionsFile,
    *,
    overwrite: bool = False,
    attach_rule_id: str | None = None,
) -> ImportSummary:
    """Store lists and items read from Kibana NDJSON. Existing lists/items are kept unless
    ``overwrite`` (Kibana's ``overwrite`` query parameter); items whose list is neither in the
    file nor in the store are reported as errors."""
    lists_created = lists_updated = items_created = items_updated = items_skipped = 0
    errors: list[str] = []
    known = {row[0] for row in store.conn.execute("SELECT list_id FROM exception_lists")}
    with store.transaction():
        for lst in parsed.lists:
            if lst.list_id in known and not overwrite:
                pass
            else:
                if lst.list_id in known:
                    lists_updated += 1
                else:
                    lists_created += 1
                save_list(store, lst)
                known.add(lst.list_id)
            if attach_rule_id is not None:
                attach_list(store, lst.list_id, attach_rule_id)
        have_items = {row[0] for row in store.conn.execute("SELECT item_id FROM exception_items")}
        for item in parsed.items:
            if item.list_id not in known:
                errors.append(f"item {item.item_id}: exception list {item.list_id} not found")
                continue
            if item.item_id in have_items:
                if not overwrite:
                    items_skipped += 1
                    continue
                items_updated += 1
            else:
                items_created += 1
            save_item(store, item)
            have_items.add(item.item_id)
    return ImportSummary(lists_created, lists_updated, items_created, items_updated,
                         items_skipped, tuple(errors))  # fmt: skip


def export_exceptions(store: Store, list_ids: Sequence[str] | None = None) -> str:
    lists = load_lists(store, list_ids)
    return exceptions_to_ndjson(lists, load_items(store, [lst.list_id for lst in lists]))


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
