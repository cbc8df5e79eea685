"""The datafeed query as a SQL ``WHERE``, pushed down to columnar inputs (DuckDB, Spark SQL).

:func:`compile_sql` reads the same query DSL as :func:`~rarebird.datafeed.query.compile_query`
into a small tree, and :meth:`SqlQuery.render` writes it for the columns an input actually has
(:class:`~rarebird.sources.base.SqlColumn`: an expression, list or scalar, strings or not).

The rendered condition is a **superset** of the query: every row the query matches passes it.
What SQL says exactly (keyword ``term`` / ``terms`` / ``match`` / ``prefix``, ``exists``,
``bool`` of those, ``match_all`` / ``match_none``) is written as such; what it cannot say the
same way Elasticsearch does (``range``, ``match`` on text fields, case-insensitive terms, numeric
fields, a field stored as a number) becomes ``TRUE``, and a ``must_not`` over such a clause is
dropped rather than inverted. ``wildcard`` is written as ``LIKE`` where it only narrows. The
datafeed's own check runs on every event the source yields, so results never depend on how much
of the query reached SQL: :attr:`SqlQuery.exact` only says whether SQL did all of it.

Keyword semantics as in :mod:`rarebird.datafeed.query`: a list column matches when any element
does; a missing column matches nothing (and so its negation everything); ``NULL`` is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rarebird.datafeed.dsl import (
    NUMERIC_FIELDS,
    clauses,
    field_body,
    is_text_field,
    keyword,
    minimum_should_match,
    one_key,
    term_value,
)
from rarebird.errors import QueryError
from rarebird.sources.base import SqlColumn

# --- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    """``TRUE`` / ``FALSE``; ``exact=False`` for a ``TRUE`` standing in for an unsaid clause."""

    value: bool
    exact: bool = True


@dataclass(frozen=True, slots=True)
class Terms:
    """The field has one of ``values`` (exact strings)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prefix:
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Like:
    """An Elasticsearch wildcard as ``LIKE`` (``*`` → ``%``, ``?`` → ``_``, escapes kept)."""

    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Exists:
    field: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Const | Terms | Prefix | Like | Exists | And | Or | Not

_LOOSE = Const(True, exact=False)


@dataclass(frozen=True)
class SqlQuery:
    """A datafeed query ready to write as SQL for an input's columns."""

    tree: Node
    #: the fields the query reads
    fields: frozenset[str]

    def render(
        self, columns: Mapping[str, SqlColumn], dialect: str = "duckdb"
    ) -> tuple[str, list[object]]:
        """The ``WHERE`` condition and its parameters: for DuckDB with ``?`` placeholders; for
        Spark SQL (``dialect="spark"``, for ``DataFrame.where``, which takes no parameters)
        with the values written as escaped literals and no parameters."""
        if dialect not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r} (expected one of {DIALECTS})")
        sql, _, params = _render(self.tree, columns, dialect == "spark")
        return sql, params

    def exact(self, columns: Mapping[str, SqlColumn]) -> bool:
        """Whether the rendered condition is the query itself (nothing left to Python)."""
        return _render(self.tree, columns, False)[1]


def compile_sql(query: dict[str, Any] | None) -> SqlQuery:
    """Compile a datafeed query DSL object (as :func:`compile_query` accepts it).

    >>> q = compile_sql({"bool": {"filter": [{"term": {"event.type": "start"}}],
    ...                  "must_not": [{"terms": {"user.name": ["root"]}}]}})
    >>> q.render({"event.type": SqlColumn('"event"."type"', is_list=True),
    ...           "user.name": SqlColumn('"user"."name"')})
    ('(coalesce(list_has_any("event"."type", ?::VARCHAR[]), FALSE) AND NOT coalesce("user"."name" IN (?), FALSE))', [['start'], 'root'])
    """
    if not query:
        return SqlQuery(Const(True), frozenset())
    fields: set[str] = set()
    return SqlQuery(_compile(query, "query", fields), frozenset(fields))


def union_sql(queries: list[SqlQuery]) -> SqlQuery:
    """One pushdown for a pass that feeds several datafeeds: a row any of them keeps."""
    if len(queries) == 1:
        return queries[0]
    fields = frozenset().union(*(q.fields for q in queries))
    return SqlQuery(Or(tuple(q.tree for q in queries)), fields)


def _compile(node: Any, where: str, fields: set[str]) -> Node:
    kind, body = one_key(node, where)
    here = f"{where}.{kind}"
    if kind == "bool":
        return _compile_bool(body, here, fields)
    if kind in ("match_all", "match_none"):
        return Const(kind == "match_all")
    if kind == "exists":
        if not isinstance(body, dict) or not isinstance(body.get("field"), str):
            raise QueryError(f"{here}: expected {{'field': name}}")
        fields.add(body["field"])
        return Exists(body["field"])
    if kind not in ("term", "terms", "match", "match_phrase", "range", "wildcard", "prefix"):
        raise QueryError(f"{here}: query type {kind!r} is not supported by rarebird")
    name, spec = field_body(body, here)
    fields.add(name)
    if name in NUMERIC_FIELDS or name == "@timestamp" or kind == "range":
        return _LOOSE  # numbers and dates compare as numbers and dates: left to Python
    if kind == "term":
        value, case_insensitive = term_value(spec, here)
        return _LOOSE if case_insensitive else Terms(name, (value,))
    if kind == "terms":
        if not isinstance(spec, list):
            raise QueryError(f"{here}: expected a list of values")
        return Terms(name, tuple(keyword(v, here) for v in spec))
    if kind in ("match", "match_phrase"):
        if is_text_field(name):
            return _LOOSE  # analysed text: tokenised in Python
        text = spec.get("query") if isinstance(spec, dict) else spec
        return Terms(name, (keyword(text, here),))
    raw = spec.get("value", spec.get(kind)) if isinstance(spec, dict) else spec
    if not isinstance(raw, str):
        raise QueryError(f"{here}: expected a string pattern")
    if isinstance(spec, dict) and spec.get("case_insensitive"):
        return _LOOSE
    return Prefix(name, raw) if kind == "prefix" else Like(name, _like_pattern(raw))


def _compile_bool(body: Any, where: str, fields: set[str]) -> Node:
    if not isinstance(body, dict):
        raise QueryError(f"{where}: expected an object")
    items: list[Node] = [
        _compile(c, f"{where}.{key}[{i}]", fields)
        for key in ("must", "filter")
        for i, c in enumerate(clauses(body, key, where))
    ]
    required = bool(items)  # must / filter: then should clauses are optional, as in ES
    items += [
        Not(_compile(c, f"{where}.must_not[{i}]", fields))
        for i, c in enumerate(clauses(body, "must_not", where))
    ]
    should = [
        _compile(c, f"{where}.should[{i}]", fields)
        for i, c in enumerate(clauses(body, "should", where))
    ]
    if "minimum_should_match" in body:
        msm = minimum_should_match(body["minimum_should_match"], len(should), where)
    else:
        msm = 0 if required or not should else 1
    if msm == 1:
        items.append(Or(tuple(should)))
    elif msm > 1:
        # n of m: written exactly only when all are needed; otherwise left to Python
        items.append(And(tuple(should)) if msm == len(should) else _LOOSE)
    return And(tuple(items))


def _like_pattern(wildcard: str) -> str:
    r"""An Elasticsearch wildcard as a ``LIKE`` pattern with ``\`` as its escape.

    >>> _like_pattern("net*"), _like_pattern("a?c"), _like_pattern(r"100%\*")
    ('net%', 'a_c', '100\\%\\*')
    """
    out: list[str] = []
    i = 0
    while i < len(wildcard):
        ch = wildcard[i]
        if ch == "\\" and i + 1 < len(wildcard):
            nxt = wildcard[i + 1]
            out.append("\\" + nxt if nxt in "%_\\*?" else nxt)
            i += 2
            continue
        out.append({"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}.get(ch, ch))
        i += 1
    return "".join(out)


# --- writing it --------------------------------------------------------------------------------


Rendered = tuple[str, bool, list[object]]
#: The SQL dialects :meth:`SqlQuery.render` writes.
DIALECTS = ("duckdb", "spark")


def spark_literal(text: str) -> str:
    r"""A Spark SQL string literal (backslash escapes are on by default in Spark's parser).

    >>> print(spark_literal("it's"), spark_literal(r"a\b"))
    'it\'s' 'a\\b'
    """
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _render(node: Node, cols: Mapping[str, SqlColumn], spark: bool) -> Rendered:
    """(SQL, exact, parameters) of one node; ``spark``: Spark SQL, values inline."""
    if isinstance(node, Const):
        return ("TRUE" if node.value else "FALSE"), node.exact, []
    if isinstance(node, And | Or):
        return _combine(node, [_render(item, cols, spark) for item in node.items])
    if spark:
        return _render_spark(node, cols)
    if isinstance(node, Not):
        inner, exact, params = _render(node.item, cols, spark)
        if not exact:
            return "TRUE", False, []  # the negation of a superset is no superset: say nothing
        if inner in ("TRUE", "FALSE"):
            return ("FALSE" if inner == "TRUE" else "TRUE"), True, []
        return f"NOT {inner}", True, params
    column = cols.get(node.field)
    if isinstance(node, Exists):
        if column is None:
            prefix = node.field + "."
            if any(name.startswith(prefix) for name in cols):
                return "TRUE", False, []  # an object field: any field under it
            return "FALSE", True, []
        if column.is_list:
            test = f"len(list_filter({column.expr}, lambda x: x IS NOT NULL)) > 0"
        else:
            test = f"{column.expr} IS NOT NULL"
        return f"coalesce({test}, FALSE)", True, []
    if column is None:
        return "FALSE", True, []
    if not column.is_text:
        return "TRUE", False, []
    if isinstance(node, Terms):
        if column.is_list:
            sql = f"coalesce(list_has_any({column.expr}, ?::VARCHAR[]), FALSE)"
            return sql, True, [list(node.values)]
        marks = ", ".join("?" for _ in node.values)
        return f"coalesce({column.expr} IN ({marks}), FALSE)", True, list(node.values)
    if isinstance(node, Prefix):
        test, exact, value = "starts_with({}, ?)", True, node.value
    else:
        # LIKE and Lucene may disagree at the edges: only ever narrow with it
        test, exact, value = "{} LIKE ? ESCAPE '\\'", False, node.pattern
    if column.is_list:
        inner = test.format("x")
        sql = f"coalesce(len(list_filter({column.expr}, lambda x: {inner})) > 0, FALSE)"
    else:
        sql = f"coalesce({test.format(column.expr)}, FALSE)"
    return sql, exact, [value]


def _render_spark(
    node: Terms | Prefix | Like | Exists | Not, cols: Mapping[str, SqlColumn]
) -> Rendered:
    """As :func:`_render` in Spark SQL: ``exists(array, x -> ...)`` for a list column's "any
    element", ``startswith``, ``LIKE ... ESCAPE``; the same exactness and missing-column rules."""
    if isinstance(node, Not):
        inner, exact, _ = _render(node.item, cols, True)
        if not exact:
            return "TRUE", False, []
        if inner in ("TRUE", "FALSE"):
            return ("FALSE" if inner == "TRUE" else "TRUE"), True, []
        return f"NOT {inner}", True, []
    column = cols.get(node.field)
    if isinstance(node, Exists):
        if column is None:
            prefix = node.field + "."
            if any(name.startswith(prefix) for name in cols):
                return "TRUE", False, []
            return "FALSE", True, []
        if column.is_list:
            test = f"exists({column.expr}, x -> x IS NOT NULL)"
        else:
            test = f"{column.expr} IS NOT NULL"
        return f"coalesce({test}, FALSE)", True, []
    if column is None:
        return "FALSE", True, []
    if not column.is_text:
        return "TRUE", False, []
    if isinstance(node, Terms):
        tail, exact = " IN (" + ", ".join(spark_literal(v) for v in node.values) + ")", True
        head = ""
    elif isinstance(node, Prefix):
        head, tail, exact = "startswith(", ", " + spark_literal(node.value) + ")", True
    else:
        head, exact = "", False  # LIKE only ever narrows (see _render)
        tail = " LIKE " + spark_literal(node.pattern) + " ESCAPE " + spark_literal("\\")
    if column.is_list:
        sql = f"coalesce(exists({column.expr}, x -> {head}x{tail}), FALSE)"
    else:
        sql = f"coalesce({head}{column.expr}{tail}, FALSE)"
    return sql, exact, []


def _combine(node: And | Or, parts: list[Rendered]) -> Rendered:
    exact = all(e for _, e, _ in parts)
    neutral, absorbing = ("TRUE", "FALSE") if isinstance(node, And) else ("FALSE", "TRUE")
    if any(sql == absorbing for sql, _, _ in parts):
        return absorbing, exact, []
    kept = [(sql, params) for sql, _, params in parts if sql != neutral]
    if not kept:
        return neutral, exact, []
    if len(kept) == 1:
        return kept[0][0], exact, kept[0][1]
    joiner = " AND " if isinstance(node, And) else " OR "
    params = [p for _, ps in kept for p in ps]
    return "(" + joiner.join(sql for sql, _ in kept) + ")", exact, params
