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
  (:data:`~rarebird.datafeed.dsl.NUMERIC_FIELDS`, e.g. ``process.pid``) as numbers (``42`` matches ``42.0``);
- ``exists`` on an object field (``host.os``) matches when any field under it has a value;
- ``range`` parses bounds as dates on ``@timestamp`` and the ECS date fields
  (:data:`~rarebird.datafeed.dsl.DATE_FIELDS`), honouring ``format: epoch_second``; ``now`` is refused (a datafeed
  query must not depend on when it runs).

:func:`compile_query` also derives a :class:`~rarebird.sources.base.Prefilter`
(:mod:`rarebird.datafeed.prefilter`): conditions every matching event must satisfy, which
sources use to skip records without parsing them. Reading the DSL's shapes is
:mod:`rarebird.datafeed.dsl`; wildcard patterns are :mod:`rarebird.datafeed.wildcard`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rarebird.datafeed.dsl import (
    DATE_FIELDS,
    NUMERIC_FIELDS,
    clauses,
    exact_terms,
    field_body,
    is_text_field,
    keyword,
    minimum_should_match,
    one_key,
    term_value,
)
from rarebird.datafeed.prefilter import derive_prefilter
from rarebird.datafeed.wildcard import wildcard_regex
from rarebird.errors import QueryError
from rarebird.events import ProcessEvent
from rarebird.sources.base import Prefilter
from rarebird.timeutil import parse_timestamp

Predicate = Callable[[ProcessEvent], bool]

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
    return CompiledQuery(query, pred, derive_prefilter(query), frozenset(fields))


def _always(_: ProcessEvent) -> bool:
    return True


def _never(_: ProcessEvent) -> bool:
    return False


def _compile(node: Any, where: str, fields: set[str]) -> Predicate:
    kind, body = one_key(node, where)
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
        name, spec = field_body(body, here)
        fields.add(name)
        value, ci = term_value(spec, here)
        return _term_pred(name, (value,), ci)
    if kind == "terms":
        name, spec = field_body(body, here)
        if isinstance(spec, dict):
            raise QueryError(f"{here}: terms lookup is not supported")
        if not isinstance(spec, list):
            raise QueryError(f"{here}: expected a list of values")
        fields.add(name)
        return _term_pred(name, tuple(keyword(v, here) for v in spec), False)
    if kind in ("match", "match_phrase"):
        name, spec = field_body(body, here)
        fields.add(name)
        return _compile_match(name, spec, here, phrase=kind == "match_phrase")
    if kind == "range":
        name, spec = field_body(body, here)
        fields.add(name)
        return _compile_range(name, spec, here)
    if kind in ("wildcard", "prefix"):
        name, spec = field_body(body, here)
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
        text = keyword(spec["query"], where)
        operator = str(spec.get("operator", "or")).lower()
        if operator not in ("or", "and"):
            raise QueryError(f"{where}.operator: expected OR or AND, got {spec.get('operator')!r}")
    else:
        text = keyword(spec, where)
    if is_text_field(name):
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
        for i, c in enumerate(clauses(body, k, where))
    ]
    negated = [
        _compile(c, f"{where}.must_not[{i}]", fields)
        for i, c in enumerate(clauses(body, "must_not", where))
    ]
    should_clauses = clauses(body, "should", where)
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
        simple = exact_terms(clause)
        if simple is None:
            rest.append(pred)
        else:
            by_field.setdefault(simple[0], []).extend(simple[1])
    merged = [_term_pred(name, values, False) for name, values in by_field.items()]
    return merged + rest
