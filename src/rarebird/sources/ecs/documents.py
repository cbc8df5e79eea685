"""ECS documents to typed events: envelopes, keys, values, time.

A parsed JSON value (:data:`~rarebird.sources.base.JsonObject`) is unwrapped into the ECS
documents it holds (:func:`documents_in`), a document is flattened into dotted field names
(:func:`flatten_document`, nested and dotted keys alike), and its fields fill the typed
attributes of :class:`~rarebird.events.ProcessEvent` or its ``extra``
(:func:`event_from_document`). See :mod:`rarebird.sources.ecs` for what is read.

Events share their field-name strings and one-value tuples (bounded caches,
:func:`shared_single`), which halves the memory an event from a rich Elastic Defend document
holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rarebird.events import ARRAY_FIELDS, FIELD_ATTRS, INT_FIELDS, ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject
from rarebird.timeutil import parse_timestamp

#: What a reader's quick lane returns for a document failing the prefilter's exact check.
PREFILTERED = ProcessEvent(timestamp=datetime(1970, 1, 1, tzinfo=UTC))


class DocumentError(Exception):
    """A document that cannot become an event: why (a short reason) and a detail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def keyword(value: object) -> str | None:
    """A JSON scalar as the keyword string Elasticsearch indexes; None for null.

    >>> keyword("ss"), keyword(42), keyword(1.5), keyword(True), keyword(None)
    ('ss', '42', '1.5', 'true', None)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return None


def flatten_document(doc: JsonObject, wanted: Wanted | None = None) -> dict[str, str | list[str]]:
    """Every leaf of a document under its dotted name, as keyword strings.

    Nested and dotted keys alike; a field with one value maps to a string, one with several
    (an array, or the same name reached twice) to a list.

    >>> flatten_document({"process": {"name": "ss", "args": ["ss", "-t"]}, "process.pid": 7})
    {'process.name': 'ss', 'process.args': ['ss', '-t'], 'process.pid': '7'}
    """
    out: dict[str, str | list[str]] = {}
    if wanted is None:
        _flatten(doc, "", out)
    else:
        _flatten_wanted(doc, "", out, wanted)
    return out


class Wanted:
    """The dotted field names to keep, and every prefix leading to them (``a.``, ``a.b.``)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        prefixes = set()
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts)):
                prefixes.add(".".join(parts[:i]) + ".")
        self.prefixes = frozenset(prefixes)

    @classmethod
    def for_fields(cls, fields: frozenset[str] | None) -> Wanted | None:
        if fields is None:
            return None
        return cls(frozenset(fields) | frozenset(FIELD_ATTRS) | {"@timestamp"})


def _flatten_wanted(
    obj: JsonObject, prefix: str, out: dict[str, str | list[str]], wanted: Wanted
) -> None:
    """:func:`_flatten` that only keeps wanted fields and skips subtrees leading nowhere."""
    names = _names(prefix)
    for key, value in obj.items():
        name = names.get(key)
        if name is None:
            name = prefix + key
            if len(names) < _MAX_NAMES:
                names[key] = name
        kind = type(value)
        if kind is dict:
            if name + "." in wanted.prefixes:
                _flatten_wanted(value, name + ".", out, wanted)
        elif name not in wanted.names:
            if kind is list and value and name + "." in wanted.prefixes:
                for item in value:
                    if type(item) is dict:
                        _flatten_wanted(item, name + ".", out, wanted)
        elif kind is str:
            if name in out:
                _add(out, name, value)
            else:
                out[name] = value
        elif kind is list:
            if value:
                _flatten_list(value, name, out)
        elif value is not None:
            _add(out, name, keyword(value) or "")


def _add(out: dict[str, str | list[str]], name: str, value: str) -> None:
    have = out.get(name)
    if have is None:
        out[name] = value
    elif isinstance(have, list):
        have.append(value)
    else:
        out[name] = [have, value]


#: Dotted names already built, per prefix: the same field names recur in every document, so
#: events share one string per name instead of each holding its own copy.
_NAMES: dict[str, dict[str, str]] = {}
_MAX_NAMES = 50_000


def _names(prefix: str) -> dict[str, str]:
    names = _NAMES.get(prefix)
    if names is None:
        names = {}
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[prefix] = names
    return names


#: One-value tuples of values seen before (host names, agent versions...), shared likewise.
_SINGLES: dict[str, tuple[str]] = {}
_MAX_SINGLES = 20_000


def shared_single(value: str) -> tuple[str]:
    one = _SINGLES.get(value)
    if one is None:
        one = (value,)
        if len(_SINGLES) < _MAX_SINGLES and len(value) <= 64:
            _SINGLES[value] = one
    return one


def _flatten(obj: JsonObject, prefix: str, out: dict[str, str | list[str]]) -> None:
    names = _names(prefix)
    for key, value in obj.items():
        name = names.get(key)
        if name is None:
            name = prefix + key
            if len(names) < _MAX_NAMES:
                names[key] = name
        kind = type(value)
        if kind is str:
            if name in out:
                _add(out, name, value)
            else:
                out[name] = value
        elif kind is dict:
            _flatten(value, name + ".", out)
        elif kind is list:
            if value:
                _flatten_list(value, name, out)
        elif value is not None:
            _add(out, name, keyword(value) or "")


def _flatten_list(values: list[Any], name: str, out: dict[str, str | list[str]]) -> None:
    if all(type(v) is str for v in values):
        have = out.get(name)
        if have is None:
            out[name] = values if len(values) > 1 else values[0]
        elif isinstance(have, list):
            have.extend(values)
        else:
            out[name] = [have, *values]
        return
    for value in values:
        kind = type(value)
        if kind is dict:
            _flatten(value, name + ".", out)
        elif kind is list:
            _flatten_list(value, name, out)
        elif value is not None:
            _add(out, name, keyword(value) or "")


def documents_in(obj: object) -> list[JsonObject]:
    """The ECS documents a parsed JSON value holds, envelopes removed.

    >>> documents_in({"hits": {"hits": [{"_source": {"a": 1}}, {"_source": {"a": 2}}]}})
    [{'a': 1}, {'a': 2}]
    """
    if isinstance(obj, list):
        docs: list[JsonObject] = []
        for item in obj:
            if not isinstance(item, dict):
                raise DocumentError("not a JSON object", f"array element {_short(item)}")
            docs.extend(documents_in(item))
        return docs
    if not isinstance(obj, dict):
        raise DocumentError("not a JSON object", _short(obj))
    source = obj.get("_source")
    if isinstance(source, dict):
        return [source]
    hits = obj.get("hits")
    if isinstance(hits, dict) and isinstance(hits.get("hits"), list):
        return documents_in(hits["hits"])
    value = obj.get("value")
    if isinstance(value, dict) and "@timestamp" not in obj:
        kind = obj.get("type")
        if kind == "doc" and isinstance(value.get("source"), dict):
            return [value["source"]]
        if kind in ("index", "data_stream", "index_template", "component_template"):
            return []  # es_archive mappings: not events
    return [obj]


def _short(value: object) -> str:
    return repr(value)[:80]


def int_value(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def event_from_document(
    doc: JsonObject, origin: SourceLocation | None = None, wanted: Wanted | None = None
) -> ProcessEvent:
    """Build the typed event of one ECS document (envelope already removed); with ``wanted``,
    only those fields (and the typed ones) are kept.

    Raises :class:`DocumentError` (``missing @timestamp`` / ``bad @timestamp``).
    """
    flat = flatten_document(doc, wanted)
    stamp = flat.pop("@timestamp", None)
    if stamp is None:
        raise DocumentError("missing @timestamp")
    raw_stamp = doc.get("@timestamp")
    if type(raw_stamp) not in (str, int, float):
        raw_stamp = _raw_timestamp(doc)
    if type(stamp) is list or raw_stamp is None:
        raise DocumentError("bad @timestamp", _short(stamp))
    timestamp = timestamp_of(raw_stamp)
    typed: dict[str, Any] = {}
    extra: dict[str, tuple[str, ...]] = {}
    field_attrs = FIELD_ATTRS
    single = shared_single
    for name, value in flat.items():
        attr = field_attrs.get(name)
        if attr is None:
            extra[name] = single(value) if type(value) is str else tuple(value)
        elif name in ARRAY_FIELDS:
            typed[attr] = (value,) if type(value) is str else tuple(value)
        elif name in INT_FIELDS:
            typed[attr] = int_value(value if type(value) is str else value[0])
        else:
            typed[attr] = value if type(value) is str else value[0]
    return ProcessEvent(timestamp=timestamp, extra=extra, origin=origin, **typed)


def timestamp_of(raw_stamp: str | int | float) -> datetime:
    """The time of a document's one ``@timestamp`` value, or ``bad @timestamp``."""
    try:
        return parse_timestamp(raw_stamp)
    except (ValueError, OverflowError, TypeError):
        raise DocumentError("bad @timestamp", _short(raw_stamp)) from None


def _raw_timestamp(doc: JsonObject) -> str | int | float | None:
    """The one ``@timestamp`` value as written (a number stays a number: epoch millis)."""
    found: list[Any] = []
    values_at(doc, ["@timestamp"], 0, found)
    if len(found) != 1 or isinstance(found[0], bool):
        return None
    value = found[0]
    return value if isinstance(value, str | int | float) else None


def values_at(obj: Any, parts: list[str], start: int, out: list[Any]) -> None:
    """Append the leaves found under dotted ``parts[start:]`` of ``obj``, as flatten sees them."""
    if type(obj) is list:
        for item in obj:
            values_at(item, parts, start, out)
        return
    if type(obj) is not dict:
        return
    key = ""
    for end in range(start, len(parts)):
        key = parts[end] if end == start else key + "." + parts[end]
        if key in obj:
            value = obj[key]
            if end + 1 == len(parts):
                _leaves(value, out)
            else:
                values_at(value, parts, end + 1, out)


def _leaves(value: Any, out: list[Any]) -> None:
    if type(value) is list:
        for item in value:
            _leaves(item, out)
    elif value is not None and type(value) is not dict:
        out.append(value)
