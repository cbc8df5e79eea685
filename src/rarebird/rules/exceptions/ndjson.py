"""Kibana's exception-list NDJSON (``/api/exception_lists/_export`` and ``_import``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from rarebird.errors import DefinitionError
from rarebird.rules.exceptions.items import ExceptionItem, ExceptionList


@dataclass(frozen=True)
class ExceptionsFile:
    lists: tuple[ExceptionList, ...]
    items: tuple[ExceptionItem, ...]


def parse_exceptions_ndjson(text: str, path: str = "<exceptions>") -> ExceptionsFile:
    """Read Kibana's exception-list NDJSON: list objects, item objects and (ignored) the
    trailing export-details line, in any order."""
    lists: list[ExceptionList] = []
    items: list[ExceptionItem] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DefinitionError(path, f"line {n}", f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DefinitionError(path, f"line {n}", "expected a JSON object")
        if "exported_exception_list_count" in data or "exported_count" in data:
            continue
        if "entries" in data or "item_id" in data:
            items.append(ExceptionItem.from_elastic(data, f"line {n}", path))
        elif "list_id" in data:
            lists.append(ExceptionList.from_elastic(data, f"line {n}", path))
        else:
            raise DefinitionError(path, f"line {n}", "neither an exception list nor an item")
    return ExceptionsFile(tuple(lists), tuple(items))


def exceptions_to_ndjson(lists: Sequence[ExceptionList], items: Sequence[ExceptionItem]) -> str:
    """Kibana's export: each list followed by its items, then one export-details line."""
    out: list[bytes] = []
    exported_items = 0
    by_list: dict[str, list[ExceptionItem]] = {}
    for item in items:
        by_list.setdefault(item.list_id, []).append(item)
    for lst in lists:
        out.append(orjson.dumps(lst.to_elastic(), option=orjson.OPT_SORT_KEYS))
        for item in by_list.get(lst.list_id, ()):
            out.append(orjson.dumps(item.to_elastic(), option=orjson.OPT_SORT_KEYS))
            exported_items += 1
    details = {
        "exported_exception_list_count": len(lists),
        "exported_exception_list_item_count": exported_items,
        "missing_exception_list_item_count": 0,
        "missing_exception_list_items": [],
        "missing_exception_lists": [],
        "missing_exception_lists_count": 0,
    }
    out.append(orjson.dumps(details))
    return "".join(line.decode() + "\n" for line in out)
