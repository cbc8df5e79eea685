"""Rule exceptions with Elastic's exception-list semantics, plus rarebird's schedule windows and
parent-process / script allow-lists.

**Elastic's model** (``@kbn/securitysolution-io-ts-list-types``; filter building in Kibana's
``build_exceptions_filter.ts``): an exception *list* holds *items*; an item holds *entries*.
An item matches a document when ALL its entries match (AND); the rule drops a document when ANY
item of its lists matches (OR), i.e. the items become a ``must_not`` of the anomaly query.
Entry types and what rarebird evaluates for each, on the anomaly record document (the same one
Elastic's query runs on, ``AnomalyRecord.to_doc()``):

============ ========================================================================
``match``      ``match_phrase``: some value of the field equals ``value``
``match_any``  some value equals one of ``value[]``
``exists``     the field has at least one non-null value
``wildcard``   Elasticsearch ``wildcard`` query: ``*`` any run, ``?`` one character,
               ``\\`` escapes; case-sensitive; on any value of the field
``list``       some value is in a value list (``keyword``/``ip``: exact; ``ip_range``:
               CIDR or ``a-b``; ``text``: every token of a list value in the field)
``nested``     one object under ``field`` satisfies all the sub-entries together
============ ========================================================================

``operator: excluded`` negates an entry (``bool.must_not``), so ``excluded`` also holds when the
field is missing, exactly as in Elasticsearch. Fields may be dotted keys or nested objects, and
arrays hold when any element matches (:mod:`rarebird.documents`). Items past ``expire_time``
are not applied (Kibana 8.7+). ``os_types`` adds ``host.os.type`` (or
``host.os.name.caseless``) equal to one of them, as Kibana's ``transformOsType`` does; anomaly
records carry no such field, so such items never match ML alerts -- in Elastic as here.

**Differences, on purpose**: every item (value lists included) is applied before the
``max_signals`` cut, as current Kibana does for value lists up to its "small list" size; a value
list that does not exist makes its entry not match and a warning (Kibana fails the whole run).

**rarebird's additions**, kept in the item's free-form ``meta.rarebird`` so an item still
round-trips through Kibana's NDJSON (Kibana ignores ``meta``; the extra conditions then do not
apply there):

- ``windows``: schedule windows (maintenance): weekdays and a wall-clock time range in a named
  time zone; the item holds only when the anomaly's bucket start falls in one of them. A range
  whose end is not after its start crosses midnight (``Fri 22:00-06:00`` ends Saturday 06:00).
  Times are wall-clock times: on a spring-forward day a window over the skipped hour is shorter,
  on a fall-back day a window over the repeated hour is longer.
- ``allow``: parent-process and script allow-lists (``fnmatch`` patterns). The item holds only
  when the job kept the events behind the anomaly and *every* one of them was started by an
  allowed parent (``process.parent.name`` / ``process.parent.executable``) or by an allowed
  script (an element of ``process.parent.args``, or the parent's name/executable; a pattern
  without ``/`` also matches an argument's base name).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from rarebird.datafeed.wildcard import wildcard_regex
from rarebird.documents import field_objects, field_values
from rarebird.errors import DefinitionError
from rarebird.timeutil import iso, parse_timestamp

OPERATORS = ("included", "excluded")
ENTRY_TYPES = ("match", "match_any", "exists", "wildcard", "list", "nested")
NESTED_ENTRY_TYPES = ("match", "match_any", "exists")
LIST_TYPES = (
    "keyword", "ip", "ip_range", "text", "binary", "boolean", "byte", "date", "date_nanos",
    "date_range", "double", "double_range", "float", "float_range", "geo_point", "geo_shape",
    "half_float", "integer", "integer_range", "long", "long_range", "short", "shape",
)  # fmt: skip
#: Kibana's exception list types (``exceptionListType``)
LIST_KINDS = (
    "detection", "rule_default", "endpoint", "endpoint_trusted_apps", "endpoint_events",
    "endpoint_host_isolation_exceptions", "endpoint_blocklists", "endpoint_trusted_devices",
)  # fmt: skip
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

EventsProvider: TypeAlias = Callable[[], Sequence[Mapping[str, Any]]]

# --------------------------------------------------------------------------------------------
# value comparison, Elasticsearch-style


def _scalar_equals(actual: Any, expected: str) -> bool:
    """``match_phrase`` of a string against one indexed value (keyword, number or boolean)."""
    if isinstance(actual, bool):
        return expected.strip().lower() == ("true" if actual else "false")
    if isinstance(actual, int | float):
        try:
            return float(expected) == float(actual)
        except ValueError:
            return False
    if isinstance(actual, str):
        return actual == expected
    return False


def as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


_TOKEN = re.compile(r"\w+", re.UNICODE)


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN.findall(text)}


# --------------------------------------------------------------------------------------------
# value lists


@dataclass(frozen=True, slots=True)
class ValueList:
    """An Elastic value list (``/api/lists``): a named set of values of one type."""

    id: str
    type: str
    values: frozenset[str]
    name: str = ""
    description: str = ""

    def contains(self, value: Any) -> bool:
        text = as_text(value)
        if text is None:
            return False
        if self.type == "ip":
            ip = _parse_ip(text)
            return ip is not None and any(_parse_ip(v) == ip for v in self.values)
        if self.type == "ip_range":
            ip = _parse_ip(text)
            return ip is not None and any(_in_ip_range(ip, v) for v in self.values)
        if self.type == "text":
            have = _tokens(text)
            return any(_tokens(v) and _tokens(v) <= have for v in self.values)
        if self.type in ("long", "integer", "short", "byte", "double", "float", "half_float"):
            return any(_scalar_equals(value, v) for v in self.values) or text in self.values
        return text in self.values


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in_ip_range(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, spec: str) -> bool:
    spec = spec.strip()
    if "-" in spec:
        lo_text, hi_text = spec.split("-", 1)
        lo, hi = _parse_ip(lo_text), _parse_ip(hi_text)
        if lo is None or hi is None or lo.version != ip.version or hi.version != ip.version:
            return False
        return int(lo) <= int(ip) <= int(hi)
    try:
        return ip in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def read_value_list_file(path: str) -> list[str]:
    """Values from a value-list file as Kibana imports them: one per line, blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise DefinitionError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip()]


# --------------------------------------------------------------------------------------------
# entries


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
        hit = any(_scalar_equals(v, self.value) for v in field_values(doc, self.field))
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
        hit = any(_scalar_equals(v, want) for v in have for want in self.values)
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


# --------------------------------------------------------------------------------------------
# rarebird's additions: schedule windows, allow-lists


@dataclass(frozen=True, slots=True)
class ScheduleWindow:
    """Weekdays + a wall-clock time range in a named time zone. ``days`` are the days a window
    *starts* on (0 = Monday). ``end <= start`` crosses midnight; ``start == end`` is 24 hours."""

    days: frozenset[int]
    start: time
    end: time
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        _zone(self.time_zone)  # validate early

    def contains(self, when: datetime) -> bool:
        local = when.astimezone(_zone(self.time_zone))
        t = local.time().replace(tzinfo=None, fold=0)
        wd = local.weekday()
        if self.start < self.end:
            return wd in self.days and self.start <= t < self.end
        # crosses midnight (or 24 h when start == end)
        return (wd in self.days and t >= self.start) or ((wd - 1) % 7 in self.days and t < self.end)

    def __str__(self) -> str:
        days = _format_days(self.days)
        end = "24:00" if self.end == time(0) and self.start == time(0) else _hm(self.end)
        return f"{days} {_hm(self.start)}-{end} {self.time_zone}"

    def to_json(self) -> dict[str, Any]:
        return {
            "days": [_DAY_NAMES[d] for d in sorted(self.days)],
            "start": _hm(self.start),
            "end": _hm(self.end),
            "time_zone": self.time_zone,
        }

    @classmethod
    def from_json(cls, data: Any, where: str, path: str) -> ScheduleWindow:
        if not isinstance(data, Mapping):
            raise DefinitionError(path, where, "a schedule window must be an object")
        days_raw = data.get("days") or list(_DAY_NAMES)
        if not isinstance(days_raw, list) or not all(isinstance(d, str) for d in days_raw):
            raise DefinitionError(path, f"{where}.days", "expected a list of weekday names")
        try:
            days = frozenset(_parse_days(",".join(days_raw)))
            start = _parse_hm(str(data.get("start", "")))
            end = _parse_hm(str(data.get("end", "")))
            return cls(days, start, end, str(data.get("time_zone") or "UTC"))
        except ValueError as exc:
            raise DefinitionError(path, where, str(exc)) from None

    @classmethod
    def parse(cls, text: str) -> ScheduleWindow:
        """``"Mon-Fri 22:00-06:00 Europe/Berlin"``; days may be ``Sat,Sun``, ``daily`` or
        omitted; the zone defaults to UTC.

        >>> str(ScheduleWindow.parse("Fri-Mon 22:00-06:00 Europe/Berlin"))
        'Mon,Fri,Sat,Sun 22:00-06:00 Europe/Berlin'
        """
        parts = text.split()
        if not parts:
            raise ValueError("empty schedule window")
        days = frozenset(range(7))
        if not parts[0][:1].isdigit():
            days = frozenset(_parse_days(parts.pop(0)))
        if not parts:
            raise ValueError(f"no time range in {text!r} (expected e.g. 'Sat,Sun 02:00-04:00')")
        rng = parts.pop(0)
        if "-" not in rng:
            raise ValueError(f"expected a time range such as 02:00-04:00, got {rng!r}")
        a, b = rng.split("-", 1)
        zone = parts.pop(0) if parts else "UTC"
        if parts:
            raise ValueError(f"unexpected text after the time zone: {' '.join(parts)!r}")
        return cls(days, _parse_hm(a), _parse_hm(b), zone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as "
                         "'Europe/Berlin')") from None  # fmt: skip


def _hm(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _parse_hm(text: str) -> time:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not m:
        raise ValueError(f"expected a time of day HH:MM, got {text!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    if (h, mi) == (24, 0):
        return time(0)
    if not (0 <= h <= 23 and 0 <= mi <= 59):
        raise ValueError(f"not a time of day: {text!r}")
    return time(h, mi)


def _parse_days(text: str) -> set[int]:
    text = text.strip()
    if text.lower() in ("daily", "*", "all", "every"):
        return set(range(7))
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = (_day(p) for p in part.split("-", 1))
            d = a
            while True:
                days.add(d)
                if d == b:
                    break
                d = (d + 1) % 7
        else:
            days.add(_day(part))
    if not days:
        raise ValueError(f"no weekdays in {text!r}")
    return days


def _day(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in _DAY_NAMES:
        raise ValueError(f"not a weekday: {text!r} (expected Mon, Tue, ... Sun)")
    return _DAY_NAMES.index(key)


def _format_days(days: frozenset[int]) -> str:
    if days == frozenset(range(7)):
        return "daily"
    return ",".join(_DAY_NAMES[d].capitalize() for d in sorted(days))


@dataclass(frozen=True, slots=True)
class AllowList:
    """Parent processes and scripts whose children are expected to run the discovery tools."""

    parents: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    def allows(self, event: Mapping[str, Any]) -> bool:
        names = [as_text(v) or "" for v in field_values(event, "process.parent.name")]
        exes = [as_text(v) or "" for v in field_values(event, "process.parent.executable")]
        args = [as_text(v) or "" for v in field_values(event, "process.parent.args")]
        if any(_glob(c, pat) for pat in self.parents for c in names + exes):
            return True
        return any(_glob(c, pat) for pat in self.scripts for c in args + names + exes)

    def to_json(self) -> dict[str, Any]:
        return {"parents": list(self.parents), "scripts": list(self.scripts)}


def _glob(candidate: str, pattern: str) -> bool:
    if not candidate:
        return False
    if fnmatch.fnmatchcase(candidate, pattern):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(candidate.rsplit("/", 1)[-1], pattern)


# --------------------------------------------------------------------------------------------
# items and lists


@dataclass(frozen=True)
class ExceptionItem:
    """One exception item (Elastic ``exception_list_item``), with rarebird's extra conditions."""

    item_id: str
    list_id: str
    name: str
    entries: tuple[Entry, ...]
    description: str = ""
    id: str = ""
    namespace_type: str = "single"
    os_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    comments: tuple[dict[str, Any], ...] = ()
    expire_time: datetime | None = None
    windows: tuple[ScheduleWindow, ...] = ()
    allow: AllowList | None = None
    created_at: str = ""
    created_by: str = "rarebird"
    updated_at: str = ""
    updated_by: str = "rarebird"
    #: keys of the Elastic document rarebird does not model, kept for round-trips
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_elastic_only(self) -> bool:
        """True when Kibana would apply this item exactly as rarebird does."""
        return not self.windows and self.allow is None

    def expired(self, now: datetime) -> bool:
        return self.expire_time is not None and self.expire_time <= now

    def matches(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        if not self.entries and not self.windows and self.allow is None:
            return False
        for entry in self.entries:
            if not entry.holds(doc, ctx):
                return False
        if self.os_types and not any(
            _scalar_equals(v, os) or (isinstance(v, str) and v.lower() == os.lower())
            for os in self.os_types
            for f in ("host.os.type", "host.os.name.caseless")
            for v in field_values(doc, f)
        ):
            return False
        if self.windows and (
            ctx.when is None or not any(w.contains(ctx.when) for w in self.windows)
        ):
            return False
        if self.allow is not None:
            events = ctx.events() if ctx.events is not None else ()
            if not events or not all(self.allow.allows(ev) for ev in events):
                return False
        return True

    def to_elastic(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        meta = dict(doc.get("meta") or {})
        extension: dict[str, Any] = {}
        if self.windows:
            extension["windows"] = [w.to_json() for w in self.windows]
        if self.allow is not None:
            extension["allow"] = self.allow.to_json()
        if extension:
            meta["rarebird"] = extension
        else:
            meta.pop("rarebird", None)
        doc.update(
            {
                "comments": list(self.comments),
                "created_at": self.created_at,
                "created_by": self.created_by,
                "description": self.description,
                "entries": [e.to_elastic() for e in self.entries],
                "id": self.id or self.item_id,
                "item_id": self.item_id,
                "list_id": self.list_id,
                "meta": meta,
                "name": self.name,
                "namespace_type": self.namespace_type,
                "os_types": list(self.os_types),
                "tags": list(self.tags),
                "type": "simple",
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
            }
        )
        if self.expire_time is not None:
            doc["expire_time"] = iso(self.expire_time)
        return doc

    @classmethod
    def from_elastic(cls, data: Mapping[str, Any], where: str = "item", path: str = "<exceptions>") -> ExceptionItem:  # fmt: skip
        def fail(key: str, message: str) -> DefinitionError:
            return DefinitionError(path, f"{where}.{key}", message)

        for key in ("item_id", "list_id", "name"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise fail(key, "is required (a non-empty string)")
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, list):
            raise fail("entries", "expected a list")
        entries = tuple(
            entry_from_elastic(e, f"{where}.entries[{i}]", path) for i, e in enumerate(raw_entries)
        )
        meta = data.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise fail("meta", "expected an object")
        ext = meta.get("rarebird") or {}
        if not isinstance(ext, Mapping):
            raise fail("meta.rarebird", "expected an object")
        windows_raw = ext.get("windows") or []
        if not isinstance(windows_raw, list):
            raise fail("meta.rarebird.windows", "expected a list")
        windows = tuple(
            ScheduleWindow.from_json(w, f"{where}.meta.rarebird.windows[{i}]", path)
            for i, w in enumerate(windows_raw)
        )
        allow = None
        allow_raw = ext.get("allow")
        if allow_raw is not None:
            if not isinstance(allow_raw, Mapping):
                raise fail("meta.rarebird.allow", "expected an object")
            parents = allow_raw.get("parents") or []
            scripts = allow_raw.get("scripts") or []
            if not all(isinstance(p, str) for p in [*parents, *scripts]):
                raise fail("meta.rarebird.allow", "parents and scripts are lists of patterns")
            allow = AllowList(tuple(parents), tuple(scripts))
        if not entries and not windows and allow is None:
            raise fail("entries", "an item needs at least one entry")
        expire = None
        if data.get("expire_time"):
            try:
                expire = parse_timestamp(data["expire_time"])
            except ValueError as exc:
                raise fail("expire_time", str(exc)) from None
        os_types = data.get("os_types") or []
        if not isinstance(os_types, list) or not all(isinstance(o, str) for o in os_types):
            raise fail("os_types", "expected a list of strings")
        tags = data.get("tags") or []
        comments = data.get("comments") or []
        modelled = {
            "comments", "created_at", "created_by", "description", "entries", "id", "item_id",
            "list_id", "name", "namespace_type", "os_types", "tags", "type", "updated_at",
            "updated_by", "expire_time",
        }  # fmt: skip
        extra = {k: v for k, v in data.items() if k not in modelled}
        return cls(
            item_id=data["item_id"],
            list_id=data["list_id"],
            name=data["name"],
            entries=entries,
            description=str(data.get("description") or ""),
            id=str(data.get("id") or data["item_id"]),
            namespace_type=str(data.get("namespace_type") or "single"),
            os_types=tuple(os_types),
            tags=tuple(str(t) for t in tags),
            comments=tuple(c for c in comments if isinstance(c, dict)),
            expire_time=expire,
            windows=windows,
            allow=allow,
            created_at=str(data.get("created_at") or ""),
            created_by=str(data.get("created_by") or "rarebird"),
            updated_at=str(data.get("updated_at") or ""),
            updated_by=str(data.get("updated_by") or "rarebird"),
            extra=extra,
        )

    def describe(self) -> str:
        """A one-line human summary of the conditions."""
        parts = [_describe_entry(e) for e in self.entries]
        parts.extend(f"during {w}" for w in self.windows)
        if self.allow is not None:
            if self.allow.parents:
                parts.append(f"parent in [{', '.join(self.allow.parents)}]")
            if self.allow.scripts:
                parts.append(f"script in [{', '.join(self.allow.scripts)}]")
        if self.os_types:
            parts.append(f"os in [{', '.join(self.os_types)}]")
        return " AND ".join(parts) or "(nothing)"


_OP_WORDS = {
    ("match", "included"): "is", ("match", "excluded"): "is not",
    ("match_any", "included"): "is one of", ("match_any", "excluded"): "is not one of",
    ("exists", "included"): "exists", ("exists", "excluded"): "does not exist",
    ("wildcard", "included"): "matches", ("wildcard", "excluded"): "does not match",
    ("list", "included"): "is in list", ("list", "excluded"): "is not in list",
}  # fmt: skip


def _describe_entry(e: Entry) -> str:
    if isinstance(e, NestedEntry):
        return f"{e.field} {{{' AND '.join(_describe_entry(s) for s in e.entries)}}}"
    words = _OP_WORDS[(e.type, e.operator)]
    if isinstance(e, MatchEntry | WildcardEntry):
        return f"{e.field} {words} {e.value}"
    if isinstance(e, MatchAnyEntry):
        return f"{e.field} {words} [{', '.join(e.values)}]"
    if isinstance(e, ListEntry):
        return f"{e.field} {words} {e.list_id}"
    return f"{e.field} {words}"


_ENTRY_WORDS: dict[str, tuple[str, str]] = {
    "is": ("match", "included"), "is-not": ("match", "excluded"),
    "is-one-of": ("match_any", "included"), "is-not-one-of": ("match_any", "excluded"),
    "exists": ("exists", "included"), "does-not-exist": ("exists", "excluded"),
    "matches": ("wildcard", "included"), "does-not-match": ("wildcard", "excluded"),
    "in-list": ("list", "included"), "not-in-list": ("list", "excluded"),
}  # fmt: skip
ENTRY_OPERATOR_WORDS = tuple(_ENTRY_WORDS)


def parse_entry_text(text: str, value_lists: Mapping[str, ValueList] | None = None) -> Entry:
    """Kibana's exception-builder wording as one string: ``FIELD OPERATOR [VALUE]``.

    Operators: ``is``, ``is-not``, ``is-one-of``/``is-not-one-of`` (comma-separated values),
    ``exists``, ``does-not-exist``, ``matches``/``does-not-match`` (wildcards),
    ``in-list``/``not-in-list`` (a value list id).

    >>> parse_entry_text("user.name is-one-of alice,bob")
    MatchAnyEntry(field='user.name', values=('alice', 'bob'), operator='included', type='match_any')
    """
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError(f"expected 'FIELD OPERATOR [VALUE]', got {text!r}")
    fname, word = parts[0], parts[1].lower().replace("_", "-")
    if word not in _ENTRY_WORDS:
        raise ValueError(f"unknown operator {parts[1]!r} (use one of: {', '.join(_ENTRY_WORDS)})")
    etype, operator = _ENTRY_WORDS[word]
    value = parts[2].strip() if len(parts) > 2 else ""
    if etype == "exists":
        if value:
            raise ValueError(f"'{word}' takes no value")
        return ExistsEntry(fname, operator)
    if not value:
        raise ValueError(f"'{word}' needs a value")
    if etype == "match":
        return MatchEntry(fname, value, operator)
    if etype == "wildcard":
        return WildcardEntry(fname, value, operator)
    if etype == "match_any":
        values = tuple(v.strip() for v in value.split(",") if v.strip())
        if not values:
            raise ValueError(f"'{word}' needs at least one value")
        return MatchAnyEntry(fname, values, operator)
    vl = (value_lists or {}).get(value)
    return ListEntry(fname, value, vl.type if vl else "keyword", operator)


@dataclass(frozen=True)
class ExceptionList:
    """An exception list container (Elastic ``exception_list``)."""

    list_id: str
    name: str
    type: str = "detection"
    description: str = ""
    id: str = ""
    namespace_type: str = "single"
    tags: tuple[str, ...] = ()
    os_types: tuple[str, ...] = ()
    immutable: bool = False
    version: int = 1
    created_at: str = ""
    created_by: str = "rarebird"
    updated_at: str = ""
    updated_by: str = "rarebird"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_elastic(self) -> dict[str, Any]:
        doc = dict(self.extra)
        doc.update(
            {
                "created_at": self.created_at,
                "created_by": self.created_by,
                "description": self.description,
                "id": self.id or self.list_id,
                "immutable": self.immutable,
                "list_id": self.list_id,
                "name": self.name,
                "namespace_type": self.namespace_type,
                "os_types": list(self.os_types),
                "tags": list(self.tags),
                "type": self.type,
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
                "version": self.version,
            }
        )
        return doc

    @classmethod
    def from_elastic(cls, data: Mapping[str, Any], where: str = "list", path: str = "<exceptions>") -> ExceptionList:  # fmt: skip
        for key in ("list_id", "name"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise DefinitionError(path, f"{where}.{key}", "is required (a non-empty string)")
        ltype = data.get("type") or "detection"
        if ltype not in LIST_KINDS:
            raise DefinitionError(path, f"{where}.type", f"unknown exception list type {ltype!r}")
        modelled = {
            "created_at", "created_by", "description", "id", "immutable", "list_id", "name",
            "namespace_type", "os_types", "tags", "type", "updated_at", "updated_by", "version",
        }  # fmt: skip
        version = data.get("version", 1)
        return cls(
            list_id=data["list_id"],
            name=data["name"],
            type=ltype,
            description=str(data.get("description") or ""),
            id=str(data.get("id") or data["list_id"]),
            namespace_type=str(data.get("namespace_type") or "single"),
            tags=tuple(str(t) for t in data.get("tags") or ()),
            os_types=tuple(str(t) for t in data.get("os_types") or ()),
            immutable=bool(data.get("immutable", False)),
            version=version if isinstance(version, int) else 1,
            created_at=str(data.get("created_at") or ""),
            created_by=str(data.get("created_by") or "rarebird"),
            updated_at=str(data.get("updated_at") or ""),
            updated_by=str(data.get("updated_by") or "rarebird"),
            extra={k: v for k, v in data.items() if k not in modelled},
        )


# --------------------------------------------------------------------------------------------
# the set applied by one rule


@dataclass(frozen=True)
class ExceptionSet:
    """The exception items a rule applies, and the value lists they may reference."""

    items: tuple[ExceptionItem, ...] = ()
    value_lists: Mapping[str, ValueList] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def needs_events(self) -> bool:
        return any(i.allow is not None for i in self.items)

    def active(self, now: datetime) -> ExceptionSet:
        """Without the items that expired by ``now``."""
        return replace(self, items=tuple(i for i in self.items if not i.expired(now)))

    def first_match(
        self,
        doc: Mapping[str, Any],
        *,
        when: datetime | None = None,
        events: EventsProvider | None = None,
        missing_lists: set[str] | None = None,
    ) -> ExceptionItem | None:
        """The first item that matches ``doc`` (so the document is dropped), or None."""
        cached: list[Sequence[Mapping[str, Any]]] = []

        def lazy_events() -> Sequence[Mapping[str, Any]]:
            if not cached:
                cached.append(events() if events is not None else ())
            return cached[0]

        ctx = MatchContext(self.value_lists, when, lazy_events, set())
        found = None
        for item in self.items:
            if item.matches(doc, ctx):
                found = item
                break
        if missing_lists is not None:
            missing_lists |= ctx.missing_lists
        return found


# --------------------------------------------------------------------------------------------
# NDJSON import / export (Kibana's /api/exception_lists/_export and _import format)


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
