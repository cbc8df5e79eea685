"""The Elasticsearch query DSL that datafeeds use, evaluated against one event.

Supported: ``bool`` (must / filter / should / must_not, ``minimum_should_match``), ``term``,
``terms``, ``match`` (and ``match_phrase``), ``exists``, ``range``, ``wildcard``, ``prefix``,
``match_all`` and ``match_none``. Semantics follow Elasticsearch on ``keyword`` fields, which is
what ECS uses for every field a datafeed filters on:

- a field holding an array matches when *any* element matches (``term``, ``terms``, ``match``,
  ``wildcard``, ``prefix``, ``range``);
- a missing field (or an empty array) matches nothing, except under ``must_not``;
- ``match`` on a keyword field compares the whole value (the keyword analyser does not split),
  so ``operator`` has no effect there; on ECS text fields (``message``, ``*.text``) the query and
  the value are tokenised like the standard analyser and ``operator`` (OR / AND) applies;
- ``bool`` with only ``should`` needs one ``should`` to match; with ``must``/``filter`` the
  ``should`` clauses are optional unless ``minimum_should_match`` says otherwise;
- ``term`` compares keyword fields as exact strings and the numeric ECS fields
  (:data:`NUMERIC_FIELDS`, e.g. ``process.pid``) as numbers (``42`` matches ``42.0``);
- ``exists`` on an object field (``host.os``) matches when any field under it has a value;
- ``range`` parses bounds as dates on ``@timestamp`` and the ECS date fields
  (:data:`DATE_FIELDS`), honouring ``format: epoch_second``; ``now`` is refused (a datafeed
  query must not depend on when it runs).

:func:`compile_query` also derives a :class:`~rarebird.sources.base.Prefilter`: conditions every
matching event must satisfy, which sources use to skip records without parsing them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from rarebird.errors import QueryError
from rarebird.events import ProcessEvent
from rarebird.sources.base import FieldCondition, Prefilter
from rarebird.timeutil import parse_timestamp

Predicate = Callable[[ProcessEvent], bool]

#: ECS fields indexed as text (analysed); everything else is treated as keyword.
TEXT_FIELDS = frozenset({"message", "error.message", "error.stack_trace"})

#: ECS fields of a numeric type (long): a term query compares them as numbers (``42`` matches
#: ``42.0``); every other field is a keyword and compares as an exact string.
NUMERIC_FIELDS = frozenset(
    {
        "process.pid", "process.parent.pid", "process.pgid", "process.parent.pgid",
        "process.args_count", "process.parent.args_count", "process.exit_code",
        "process.parent.exit_code", "process.thread.id", "process.uptime",
        "process.entry_leader.pid", "process.session_leader.pid", "process.group_leader.pid",
        "event.sequence", "event.severity", "event.risk_score", "event.duration",
        "source.port", "destination.port", "client.port", "server.port",
    }
)  # fmt: skip

#: ECS fields of the date type besides ``@timestamp`` (range bounds are parsed as dates).
DATE_FIELDS = frozenset(
    {
        "event.created", "event.ingested", "event.start", "event.end",
        "process.start", "process.end", "process.parent.start", "process.parent.end",
    }
)  # fmt: skip

#: ``match`` options that do not change the result on the fields rarebird evaluates.
_MATCH_OPTIONS = frozenset(
    {"query", "operator", "boost", "_name", "lenient", "auto_generate_synonyms_phrase_query"}
)

_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class CompiledQuery:
    """A query ready to evaluate: ``matches(event)``, plus its derived prefilter."""

    source: dict[str, Any]
    matches: Predicate
    prefilter: Prefilter
    fields: frozenset[str]


def compile_query(query: dict[str, Any] | None) -> CompiledQuery:
    """Compile a query DSL object. ``None`` or ``{}`` matches everything."""
    if not query:
        return CompiledQuery({}, _always, Prefilter(), frozenset())
    fields: set[str] = set()
    pred = _compile(query, "query", fields)
    conds = _necessary(query)
    return CompiledQuery(query, pred, Prefilter(tuple(conds)), frozenset(fields))


def _always(_: ProcessEvent) -> bool:
    return True


def _never(_: ProcessEvent) -> bool:
    return False


def _one_key(node: Any, where: str) -> tuple[str, Any]:
    if not isinstance(node, dict) or len(node) != 1:
        raise QueryError(f"{where}: expected an object with exactly one query type")
    ((kind, body),) = node.items()
    return kind, body


def _field_body(body: Any, where: str) -> tuple[str, Any]:
    """``{"field": value}`` or ``{"field": {...}, "boost": ...}`` -> (field, value)."""
    if not isinstance(body, dict):
        raise QueryError(f"{where}: expected an object")
    items = [(k, v) for k, v in body.items() if k not in ("boost", "_name")]
    if len(items) != 1:
        raise QueryError(f"{where}: expected exactly one field")
    return items[0]


def _compile(node: Any, where: str, fields: set[str]) -> Predicate:
    kind, body = _one_key(node, where)
    here = f"{where}.{kind}"
    if kind == "bool":
        return _compile_bool(body, here, fields)
    if kind == "match_all":
        return _always
    if kind == "match_none":
        return _never
    if kind == "exists":
        if not isinstance(body, dict) or not isinstance(body.get("field"), str):
            raise QueryError(f"{here}: expected {{'field': name}}")
        name = body["field"]
        fields.add(name)
        return lambda ev: _exists(ev, name)
    if kind == "term":
        name, spec = _field_body(body, here)
        fields.add(name)
        value, ci = _term_value(spec, here)
        return _term_pred(name, (value,), ci)
    if kind == "terms":
        name, spec = _field_body(body, here)
        if isinstance(spec, dict):
            raise QueryError(f"{here}: terms lookup is not supported")
        if not isinstance(spec, list):
            raise QueryError(f"{here}: expected a list of values")
        fields.add(name)
        return _term_pred(name, tuple(_keyword(v, here) for v in spec), False)
    if kind in ("match", "match_phrase"):
        name, spec = _field_body(body, here)
        fields.add(name)
        return _compile_match(name, spec, here, phrase=kind == "match_phrase")
    if kind == "range":
        name, spec = _field_body(body, here)
        fields.add(name)
        return _compile_range(name, spec, here)
    if kind in ("wildcard", "prefix"):
        name, spec = _field_body(body, here)
        fields.add(name)
        if isinstance(spec, dict):
            raw = spec.get("value", spec.get("wildcard" if kind == "wildcard" else "prefix"))
            ci = bool(spec.get("case_insensitive", False))
        else:
            raw, ci = spec, False
        if not isinstance(raw, str):
            raise QueryError(f"{here}: expected a string pattern")
        if kind == "prefix":
            pattern = re.compile(re.escape(raw) + ".*", re.DOTALL | (re.IGNORECASE if ci else 0))
        else:
            pattern = wildcard_regex(raw, case_insensitive=ci)
        return lambda ev: any(pattern.fullmatch(v) for v in ev.get(name))
    raise QueryError(f"{here}: query type {kind!r} is not supported by rarebird")


def _exists(ev: ProcessEvent, name: str) -> bool:
    """ES ``exists``: the field has a value; for an object field, any field under it does."""
    if ev.get(name):
        return True
    prefix = name + "."
    return any(values and field.startswith(prefix) for field, values in ev.iter_fields())


@lru_cache(maxsize=1024)
def wildcard_regex(pattern: str, *, case_insensitive: bool = False) -> re.Pattern[str]:
    """Elasticsearch wildcard syntax (``*``, ``?``, ``\\`` escapes) as an anchored regex
    (used by the datafeed query and by rule exceptions).

    >>> bool(wildcard_regex("net*").fullmatch("netstat")), bool(wildcard_regex("s?").fullmatch("ss"))
    (True, True)
    >>> bool(wildcard_regex(r"a\\*").fullmatch("ab"))
    False
    """
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _keyword(value: Any, where: str) -> str:
    """A query value as the keyword string Elasticsearch would compare against."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise QueryError(f"{where}: expected a string, number or boolean, got {value!r}")


def _term_value(spec: Any, where: str) -> tuple[str, bool]:
    if isinstance(spec, dict):
        if "value" not in spec:
            raise QueryError(f"{where}: expected {{'value': ...}}")
        return _keyword(spec["value"], where), bool(spec.get("case_insensitive", False))
    return _keyword(spec, where), False


def _term_pred(name: str, values: Sequence[str], case_insensitive: bool) -> Predicate:
    if case_insensitive:
        wanted = frozenset(v.casefold() for v in values)
        return lambda ev: any(v.casefold() in wanted for v in ev.get(name))
    wanted_exact = frozenset(values)
    numeric = (
        frozenset(n for n in map(_as_number, values) if n is not None)
        if name in NUMERIC_FIELDS
        else frozenset()
    )
    if not numeric:
        return lambda ev: any(v in wanted_exact for v in ev.get(name))

    def pred(ev: ProcessEvent) -> bool:
        for v in ev.get(name):
            if v in wanted_exact:
                return True
            n = _as_number(v)
            if n is not None and n in numeric:
                return True
        return False

    return pred


def _compile_match(name: str, spec: Any, where: str, *, phrase: bool) -> Predicate:
    operator = "or"
    if isinstance(spec, dict):
        if "query" not in spec:
            raise QueryError(f"{where}: expected {{'query': ...}}")
        unsupported = sorted(set(spec) - _MATCH_OPTIONS)
        if unsupported:
            raise QueryError(f"{where}: match options {unsupported} are not supported")
        text = _keyword(spec["query"], where)
        operator = str(spec.get("operator", "or")).lower()
        if operator not in ("or", "and"):
            raise QueryError(f"{where}.operator: expected OR or AND, got {spec.get('operator')!r}")
    else:
        text = _keyword(spec, where)
    if name in TEXT_FIELDS or name.endswith(".text"):
        tokens = [t.lower() for t in _TOKEN.findall(text)]
        if not tokens:
            return _never
        if phrase:
            joined = " ".join(tokens)
            return lambda ev: any(
                joined in " ".join(t.lower() for t in _TOKEN.findall(v)) for v in ev.get(name)
            )
        need_all = operator == "and"

        def text_pred(ev: ProcessEvent) -> bool:
            for v in ev.get(name):
                have = {t.lower() for t in _TOKEN.findall(v)}
                hits = [t in have for t in tokens]
                if all(hits) if need_all else any(hits):
                    return True
            return False

        return text_pred
    return _term_pred(name, (text,), False)


def _as_number(value: str) -> float | None:
    """A keyword as a JSON number would be read (no ``_`` separators, no ``nan``)."""
    if "_" in value:
        return None
    try:
        n = float(value)
    except ValueError:
        return None
    return n if math.isfinite(n) else None


def _compile_range(name: str, spec: Any, where: str) -> Predicate:
    if not isinstance(spec, dict):
        raise QueryError(f"{where}: expected an object of bounds")
    bounds: list[tuple[str, Any]] = []
    for op in ("gt", "gte", "lt", "lte", "from", "to"):
        if op in spec and spec[op] is not None:
            bounds.append((op, spec[op]))
    unknown = set(spec) - {"gt", "gte", "lt", "lte", "from", "to", "format", "boost",
                           "include_lower", "include_upper", "time_zone", "relation"}  # fmt: skip
    if unknown:
        raise QueryError(f"{where}: unsupported range options {sorted(unknown)}")
    if any(isinstance(v, str) and v.strip().startswith("now") for _, v in bounds):
        raise QueryError(f"{where}: relative dates ('now…') are not supported in datafeed queries")
    incl_lower = bool(spec.get("include_lower", True))
    incl_upper = bool(spec.get("include_upper", True))
    norm: list[tuple[str, Any]] = []
    for op, v in bounds:
        if op == "from":
            op = "gte" if incl_lower else "gt"
        elif op == "to":
            op = "lte" if incl_upper else "lt"
        norm.append((op, v))
    is_date = (
        name == "@timestamp"
        or name.endswith("timestamp")
        or name in DATE_FIELDS
        or "format" in spec
    )
    numeric_bounds = all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in norm)
    if is_date and "epoch_second" in str(spec.get("format", "")):
        norm = [(op, _seconds_to_millis(v, where)) for op, v in norm]

    def key(value: Any) -> Any:
        if is_date:
            return parse_timestamp(value)
        if numeric_bounds:
            return float(value)
        return str(value)

    try:
        keyed = [(op, key(v)) for op, v in norm]
    except (ValueError, TypeError) as exc:
        raise QueryError(f"{where}: {exc}") from None

    def in_range(raw: str) -> bool:
        try:
            v = key(raw)
        except (ValueError, TypeError):
            return False
        for op, b in keyed:
            if (
                (op == "gt" and not v > b)
                or (op == "gte" and not v >= b)
                or (op == "lt" and not v < b)
                or (op == "lte" and not v <= b)
            ):
                return False
        return True

    if name == "@timestamp":
        return lambda ev: in_range_dt(ev.timestamp, keyed)
    return lambda ev: any(in_range(v) for v in ev.get(name))


def _seconds_to_millis(value: Any, where: str) -> Any:
    """A bound in ``epoch_second`` format, as the epoch millis ``parse_timestamp`` reads."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value * 1000
    if isinstance(value, str):
        try:
            return float(value) * 1000
        except ValueError:
            return value  # an ISO date: the format allows both
    raise QueryError(f"{where}: invalid date bound {value!r}")


def in_range_dt(when: datetime, keyed: list[tuple[str, Any]]) -> bool:
    for op, b in keyed:
        if (
            (op == "gt" and not when > b)
            or (op == "gte" and not when >= b)
            or (op == "lt" and not when < b)
            or (op == "lte" and not when <= b)
        ):
            return False
    return True


def _clauses(body: dict[str, Any], key: str, where: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise QueryError(f"{where}.{key}: expected a query or a list of queries")


def minimum_should_match(spec: Any, n_should: int, where: str) -> int:
    """Resolve ``minimum_should_match`` (int, negative int, "75%", "-25%") to a count.

    >>> minimum_should_match("75%", 4, "q"), minimum_should_match(-1, 4, "q")
    (3, 3)
    """
    if isinstance(spec, bool):
        raise QueryError(f"{where}: invalid minimum_should_match {spec!r}")
    if isinstance(spec, int):
        n = spec if spec >= 0 else n_should + spec
    elif isinstance(spec, str):
        text = spec.strip()
        if text.endswith("%"):
            try:
                pct = float(text[:-1])
            except ValueError:
                raise QueryError(f"{where}: invalid minimum_should_match {spec!r}") from None
            n = int(n_should * pct / 100) if pct >= 0 else n_should - int(n_should * -pct / 100)
        else:
            try:
                return minimum_should_match(int(text), n_should, where)
            except ValueError:
                raise QueryError(
                    f"{where}: minimum_should_match combinations are not supported: {spec!r}"
                ) from None
    else:
        raise QueryError(f"{where}: invalid minimum_should_match {spec!r}")
    return max(0, min(n, n_should))


_BOOL_KEYS = frozenset({"must", "filter", "should", "must_not", "minimum_should_match",
                        "boost", "_name", "adjust_pure_negative"})  # fmt: skip


def _compile_bool(body: Any, where: str, fields: set[str]) -> Predicate:
    if not isinstance(body, dict):
        raise QueryError(f"{where}: expected an object")
    unknown = set(body) - _BOOL_KEYS
    if unknown:
        raise QueryError(f"{where}: unknown keys {sorted(unknown)}")
    required = [
        _compile(c, f"{where}.{k}[{i}]", fields)
        for k in ("must", "filter")
        for i, c in enumerate(_clauses(body, k, where))
    ]
    negated = [
        _compile(c, f"{where}.must_not[{i}]", fields)
        for i, c in enumerate(_clauses(body, "must_not", where))
    ]
    should_clauses = _clauses(body, "should", where)
    should = [_compile(c, f"{where}.should[{i}]", fields) for i, c in enumerate(should_clauses)]
    if "minimum_should_match" in body:
        msm = minimum_should_match(body["minimum_should_match"], len(should), where)
    else:
        msm = 0 if required or not should else 1
    if msm == 1 and len(should) > 1:
        # one of several exact terms: one set lookup per field instead of one test per clause
        should = _group_terms(should_clauses, should)

    def pred(ev: ProcessEvent) -> bool:
        for p in required:
            if not p(ev):
                return False
        for p in negated:
            if p(ev):
                return False
        if msm:
            hits = 0
            for p in should:
                if p(ev):
                    hits += 1
                    if hits >= msm:
                        return True
            return False
        return True

    return pred


def _group_terms(clauses: list[Any], compiled: list[Predicate]) -> list[Predicate]:
    """Merge should clauses that are exact term/terms/keyword-match tests on the same field."""
    by_field: dict[str, list[str]] = {}
    rest: list[Predicate] = []
    for clause, pred in zip(clauses, compiled, strict=True):
        simple = _exact_terms(clause)
        if simple is None:
            rest.append(pred)
        else:
            by_field.setdefault(simple[0], []).extend(simple[1])
    merged = [_term_pred(name, values, False) for name, values in by_field.items()]
    return merged + rest


def _exact_terms(clause: Any) -> tuple[str, list[str]] | None:
    """(field, values) when ``clause`` is an exact, case-sensitive term test; else None."""
    kind, body = next(iter(clause.items()))
    if kind == "term":
        name, spec = _field_body(body, "")
        value, ci = _term_value(spec, "")
        return None if ci else (name, [value])
    if kind == "terms":
        name, spec = _field_body(body, "")
        return name, [_keyword(v, "") for v in spec]
    if kind in ("match", "match_phrase"):
        name, spec = _field_body(body, "")
        if name in TEXT_FIELDS or name.endswith(".text"):
            return None
        return name, [_keyword(spec["query"] if isinstance(spec, dict) else spec, "")]
    return None


# --- prefilter derivation -------------------------------------------------------------------


def _necessary(node: Any) -> list[FieldCondition]:
    """Conditions (field in values) that every event matching ``node`` satisfies.

    A :class:`FieldCondition` is exact string equality, so fields compared as numbers
    (:data:`NUMERIC_FIELDS`) give none.
    """
    return [c for c in _necessary_all(node) if c.field not in NUMERIC_FIELDS]


def _necessary_all(node: Any) -> list[FieldCondition]:
    kind, body = next(iter(node.items()))
    if kind == "term":
        name, spec = _field_body(body, "")
        value, ci = _term_value(spec, "")
        return [] if ci else [FieldCondition(name, frozenset({value}))]
    if kind == "terms":
        name, spec = _field_body(body, "")
        return [FieldCondition(name, frozenset(_keyword(v, "") for v in spec))]
    if kind in ("match", "match_phrase"):
        name, spec = _field_body(body, "")
        if name in TEXT_FIELDS or name.endswith(".text"):
            return []
        text = _keyword(spec["query"] if isinstance(spec, dict) else spec, "")
        return [FieldCondition(name, frozenset({text}))]
    if kind != "bool":
        return []
    out: list[FieldCondition] = []
    for key in ("must", "filter"):
        for clause in _clauses(body, key, ""):
            out.extend(_necessary_all(clause))
    should = _clauses(body, "should", "")
    required = _clauses(body, "must", "") + _clauses(body, "filter", "")
    if "minimum_should_match" in body:
        msm = minimum_should_match(body["minimum_should_match"], len(should), "")
    else:
        msm = 0 if required or not should else 1
    if should and msm >= 1:
        # one of the should clauses holds: if each implies "field in S_i" for the same field,
        # the union of the S_i is necessary.
        per_clause = [_necessary_all(c) for c in should]
        common = set.intersection(*({c.field for c in conds} for conds in per_clause))
        for name in sorted(common):
            values: set[str] = set()
            for conds in per_clause:
                mine = [c.values for c in conds if c.field == name]
                values |= frozenset.intersection(*mine) if len(mine) > 1 else mine[0]
            out.append(FieldCondition(name, frozenset(values)))
    return out
