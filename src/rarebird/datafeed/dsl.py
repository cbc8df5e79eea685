"""Reading the Elasticsearch query DSL: clause shapes, keyword values, ``bool`` clauses and the
ECS field types that decide how a value compares. Shared by the compiler
(:mod:`rarebird.datafeed.query`) and the prefilter derivation (:mod:`rarebird.datafeed.prefilter`).
"""

from __future__ import annotations

from typing import Any

from rarebird.errors import QueryError

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


def is_text_field(name: str) -> bool:
    """Indexed as text (analysed), not as a keyword."""
    return name in TEXT_FIELDS or name.endswith(".text")


def one_key(node: Any, where: str) -> tuple[str, Any]:
    if not isinstance(node, dict) or len(node) != 1:
        raise QueryError(f"{where}: expected an object with exactly one query type")
    ((kind, body),) = node.items()
    return kind, body


def field_body(body: Any, where: str) -> tuple[str, Any]:
    """``{"field": value}`` or ``{"field": {...}, "boost": ...}`` -> (field, value)."""
    if not isinstance(body, dict):
        raise QueryError(f"{where}: expected an object")
    items = [(k, v) for k, v in body.items() if k not in ("boost", "_name")]
    if len(items) != 1:
        raise QueryError(f"{where}: expected exactly one field")
    return items[0]


def keyword(value: Any, where: str) -> str:
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


def term_value(spec: Any, where: str) -> tuple[str, bool]:
    if isinstance(spec, dict):
        if "value" not in spec:
            raise QueryError(f"{where}: expected {{'value': ...}}")
        return keyword(spec["value"], where), bool(spec.get("case_insensitive", False))
    return keyword(spec, where), False


def clauses(body: dict[str, Any], key: str, where: str) -> list[Any]:
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


def exact_terms(clause: Any) -> tuple[str, list[str]] | None:
    """(field, values) when ``clause`` is an exact, case-sensitive term test; else None."""
    kind, body = next(iter(clause.items()))
    if kind == "term":
        name, spec = field_body(body, "")
        value, ci = term_value(spec, "")
        return None if ci else (name, [value])
    if kind == "terms":
        name, spec = field_body(body, "")
        return name, [keyword(v, "") for v in spec]
    if kind in ("match", "match_phrase"):
        name, spec = field_body(body, "")
        if is_text_field(name):
            return None
        return name, [keyword(spec["query"] if isinstance(spec, dict) else spec, "")]
    return None
