"""The entries of an exception item (``match``, ``match_any``, ``exists``, ``wildcard``, ``list``,
``nested``): what each holds on a document, and reading them from Elastic's format."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from rarebird.datafeed.wildcard import wildcard_regex
from rarebird.documents import field_objects, field_values
from rarebird.errors import DefinitionError
from rarebird.rules.exceptions.value_lists import LIST_TYPES, ValueList
from rarebird.rules.exceptions.values import as_text, scalar_equals

OPERATORS = ("included", "excluded")
ENTRY_TYPES = ("match", "match_any", "exists", "wildcard", "list", "nested")
NESTED_ENTRY_TYPES = ("match", "match_any", "exists")

EventsProvider: TypeAlias = Callable[[], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class MatchContext:
    """What an item may look at besides the anomaly document."""

    value_lists: Mapping[str, ValueList] = field(default_factory=dict)
    #: the anomaly's time (bucket start), for schedule windows
    when: datetime | None = None
    #: the kept events behind the anomaly, fetched only if an allow-list needs them
    events: EventsProvider | None = None
    #: value lists referenced but not found (filled while matching, reported as warnings)
    missing_lists: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class MatchEntry:
    field: str
    value: str
    operator: str = "included"
    type: str = "match"

    def holds(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        hit = any(scalar_equals(v, self.value) for v in field_values(doc, self.field))
        return hit if self.operator == "included" else not hit

    def to_elastic(self) -> dict[str, Any]:
        return {"field": self.field, "operator": self.operator, "type": "match",
                "value": self.value}  # fmt: skip


@dataclass(frozen=True, slots=True)
class MatchAnyEntry:
    field: str
    values: tuple[str, ...]
    operator: str = "included"
    type: str = "match_any"

    def holds(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        have = field_values(doc, self.field)
        hit = any(scalar_equals(v, want) for v in have for want in self.values)
        return hit if self.operator == "included" else not hit

    def to_elastic(self) -> dict[str, Any]:
        return {"field": self.field, "operator": self.operator, "type": "match_any",
                "value": list(self.values)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExistsEntry:
    field: str
    operator: str = "included"
    type: str = "exists"

    def holds(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        hit = bool(field_values(doc, self.field)) or bool(field_objects(doc, self.field))
        return hit if self.operator == "included" else not hit

    def to_elastic(self) -> dict[str, Any]:
        return {"field": self.field, "operator": self.operator, "type": "exists"}


@dataclass(frozen=True, slots=True)
class WildcardEntry:
    field: str
    value: str
    operator: str = "included"
    type: str = "wildcard"

    def holds(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        rx = wildcard_regex(self.value)
        hit = False
        for v in field_values(doc, self.field):
            text = as_text(v)
            if text is not None and rx.fullmatch(text):
                hit = True
                break
        return hit if self.operator == "included" else not hit

    def to_elastic(self) -> dict[str, Any]:
        return {"field": self.field, "operator": self.operator, "type": "wildcard",
                "value": self.value}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ListEntry:
    field: str
    list_id: str
    list_type: str = "keyword"
    operator: str = "included"
    type: str = "list"

    def holds(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        vl = ctx.value_lists.get(self.list_id)
        if vl is None:
            ctx.missing_lists.add(self.list_id)
            return False
        hit = any(vl.contains(v) for v in field_values(doc, self.field))
        return hit if self.operator == "included" else not hit

    def to_elastic(self) -> dict[str, Any]:
        return {"field": self.field, "operator": self.operator, "type": "list",
                "list": {"id": self.list_id, "type": self.list_type}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NestedEntry:
    """``nested``: one object under ``field`` satisfies every sub-entry (fields relative)."""

    field: str
    entries: tuple[MatchEntry | MatchAnyEntry | ExistsEntry, ...]
    type: str = "nested"

    def holds(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        objects = field_objects(doc, self.field)
        return any(all(e.holds(obj, ctx) for e in self.entries) for obj in objects)

    def to_elastic(self) -> dict[str, Any]:
        return {"field": self.field, "type": "nested",
                "entries": [e.to_elastic() for e in self.entries]}  # fmt: skip


Entry: TypeAlias = (
    MatchEntry | MatchAnyEntry | ExistsEntry | WildcardEntry | ListEntry | NestedEntry
)


def entry_from_elastic(
    data: Any, where: str, path: str = "<exceptions>", *, nested: bool = False
) -> Entry:
    """One entry of an Elastic exception item, validated as Kibana's schema does."""

    def fail(message: str) -> DefinitionError:
        return DefinitionError(path, where, message)

    if not isinstance(data, Mapping):
        raise fail("an entry must be an object")
    etype = data.get("type")
    allowed = NESTED_ENTRY_TYPES if nested else ENTRY_TYPES
    if etype not in allowed:
        raise fail(f"entry type must be one of {', '.join(allowed)}, got {etype!r}")
    fname = data.get("field")
    if not isinstance(fname, str) or not fname.strip():
        raise fail("entry 'field' must be a non-empty string")
    if etype == "nested":
        subs = data.get("entries")
        if not isinstance(subs, list) or not subs:
            raise fail("a nested entry needs a non-empty 'entries' list")
        parsed = []
        for i, sub in enumerate(subs):
            e = entry_from_elastic(sub, f"{where}.entries[{i}]", path, nested=True)
            assert isinstance(e, MatchEntry | MatchAnyEntry | ExistsEntry)
            parsed.append(e)
        return NestedEntry(fname, tuple(parsed))
    operator = data.get("operator")
    if operator not in OPERATORS:
        raise fail(f"entry 'operator' must be 'included' or 'excluded', got {operator!r}")
    value = data.get("value")
    if etype == "match" or etype == "wildcard":
        if not isinstance(value, str) or not value.strip():
            raise fail(f"a {etype} entry needs a non-empty string 'value'")
        return (MatchEntry if etype == "match" else WildcardEntry)(fname, value, operator)
    if etype == "match_any":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            raise fail("a match_any entry needs a non-empty list of strings as 'value'")
        return MatchAnyEntry(fname, tuple(value), operator)
    if etype == "exists":
        return ExistsEntry(fname, operator)
    lst = data.get("list")
    if not isinstance(lst, Mapping) or not isinstance(lst.get("id"), str) or not lst["id"]:
        raise fail("a list entry needs 'list': {'id': ..., 'type': ...}")
    ltype = lst.get("type", "keyword")
    if ltype not in LIST_TYPES:
        raise fail(f"unknown value list type {ltype!r}")
    return ListEntry(fname, lst["id"], ltype, operator)
