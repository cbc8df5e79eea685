"""Exception lists in the store: lists, items, value lists, which lists a rule applies, and
Kibana NDJSON import/export (the lists' semantics are :mod:`rarebird.rules.exceptions`).

A rule applies the lists its definition references (``exceptions_list``), the lists attached to
it in the store (``exceptions import`` attaches what it imports), and its own default list
(``rule_default_<rule_id>``, Kibana's ``rule_default`` list), where ``exceptions add`` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from rarebird.definitions.rule import RuleConfig
from rarebird.errors import DefinitionError
from rarebird.rules.exception_items import rule_default_list_id
from rarebird.rules.exceptions import (
    LIST_TYPES,
    ExceptionItem,
    ExceptionList,
    ExceptionSet,
    ExceptionsFile,
    ValueList,
    exceptions_to_ndjson,
)
from rarebird.store.sqlite import Store
from rarebird.timeutil import iso


def save_list(store: Store, lst: ExceptionList) -> None:
    with store.transaction():
        store.execute(
            "INSERT INTO exception_lists (list_id, doc) VALUES (?, ?) "
            "ON CONFLICT(list_id) DO UPDATE SET doc = excluded.doc",
            (lst.list_id, orjson.dumps(lst.to_elastic()).decode()),
        )


def list_exists(store: Store, list_id: str) -> bool:
    return store.one("SELECT 1 FROM exception_lists WHERE list_id = ?", (list_id,)) is not None


def save_item(store: Store, item: ExceptionItem) -> None:
    with store.transaction():
        if (
            store.execute(
                "SELECT 1 FROM exception_lists WHERE list_id = ?", (item.list_id,)
            ).fetchone()
            is None
        ):
            raise DefinitionError("<store>", item.list_id, "no such exception list")
        store.execute(
            "INSERT INTO exception_items (item_id, list_id, id, doc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(item_id) DO UPDATE SET list_id = excluded.list_id, id = excluded.id, "
            "doc = excluded.doc",
            (item.item_id, item.list_id, item.id or item.item_id,
             orjson.dumps(item.to_elastic()).decode()),
        )  # fmt: skip


def delete_item(store: Store, item_or_id: str) -> ExceptionItem | None:
    """Remove an item by ``item_id`` or ``id``; returns what was removed."""
    row = store.execute(
        "SELECT item_id, doc FROM exception_items WHERE item_id = ? OR id = ?",
        (item_or_id, item_or_id),
    ).fetchone()
    if row is None:
        return None
    with store.transaction():
        store.execute("DELETE FROM exception_items WHERE item_id = ?", (row[0],))
    return ExceptionItem.from_elastic(orjson.loads(row[1]), "item", "<store>")


def load_lists(store: Store, list_ids: Iterable[str] | None = None) -> list[ExceptionList]:
    rows = store.execute("SELECT list_id, doc FROM exception_lists ORDER BY list_id")
    wanted = set(list_ids) if list_ids is not None else None
    return [
        ExceptionList.from_elastic(orjson.loads(doc), "list", "<store>")
        for lid, doc in rows
        if wanted is None or lid in wanted
    ]


def load_items(store: Store, list_ids: Iterable[str] | None = None) -> list[ExceptionItem]:
    rows = store.execute(
        "SELECT list_id, doc FROM exception_items ORDER BY list_id, rowid"
    ).fetchall()
    wanted = set(list_ids) if list_ids is not None else None
    return [
        ExceptionItem.from_elastic(orjson.loads(doc), "item", "<store>")
        for lid, doc in rows
        if wanted is None or lid in wanted
    ]


def attach_list(store: Store, list_id: str, rule_id: str) -> None:
    with store.transaction():
        store.execute(
            "INSERT OR IGNORE INTO exception_list_rules (list_id, rule_id) VALUES (?, ?)",
            (list_id, rule_id),
        )


def list_ids_for_rule(store: Store, rule: RuleConfig) -> list[str]:
    """Lists a rule applies: those its definition references, those attached to it in the
    store, and its default list."""
    ids = [ref.list_id for ref in rule.exceptions_list]
    for (lid,) in store.execute(
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
    if not store.execute("SELECT 1 FROM exception_lists WHERE list_id = ?", (list_id,)).fetchone():
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
    with store.transaction():
        store.execute(
            "INSERT INTO value_lists (id, type, name, description, created_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET type = excluded.type, name = excluded.name, "
            "description = excluded.description",
            (vl.id, vl.type, vl.name or vl.id, vl.description, iso(now)),
        )
        if replace_values:
            store.execute("DELETE FROM value_list_items WHERE list_id = ?", (vl.id,))
        store.executemany(
            "INSERT OR IGNORE INTO value_list_items (list_id, value) VALUES (?, ?)",
            [(vl.id, v) for v in sorted(vl.values)],
        )


def load_value_lists(store: Store) -> dict[str, ValueList]:
    values: dict[str, set[str]] = {}
    for lid, value in store.execute("SELECT list_id, value FROM value_list_items"):
        values.setdefault(lid, set()).add(value)
    out = {}
    for lid, ltype, name, desc in store.execute(
        "SELECT id, type, name, description FROM value_lists ORDER BY id"
    ):
        out[lid] = ValueList(lid, ltype, frozenset(values.get(lid, ())), name, desc)
    return out


def delete_value_list(store: Store, list_id: str) -> bool:
    with store.transaction():
        n = store.execute("DELETE FROM value_lists WHERE id = ?", (list_id,)).rowcount
        store.execute("DELETE FROM value_list_items WHERE list_id = ?", (list_id,))
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
    known = {row[0] for row in store.execute("SELECT list_id FROM exception_lists")}
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
        have_items = {row[0] for row in store.execute("SELECT item_id FROM exception_items")}
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
