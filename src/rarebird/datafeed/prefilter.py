"""The prefilter derived from a datafeed query: conditions every matching event satisfies
(``process.name`` in a set of values...), which sources turn into byte searches so that records
that cannot match are never parsed. The query itself is still checked after parsing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rarebird.datafeed.dsl import NUMERIC_FIELDS, clauses, exact_terms, minimum_should_match
from rarebird.sources.base import FieldCondition, Prefilter


def derive_prefilter(query: dict[str, Any] | None) -> Prefilter:
    """The conditions every event matching ``query`` (a valid, compiled query) satisfies."""
    return Prefilter(tuple(_necessary(query))) if query else Prefilter()


def _necessary(node: Any) -> list[FieldCondition]:
    """Conditions (field in values) that every event matching ``node`` satisfies.

    A :class:`FieldCondition` is exact string equality, so fields compared as numbers
    (:data:`NUMERIC_FIELDS`) give none.
    """
    return [c for c in _necessary_all(node) if c.field not in NUMERIC_FIELDS]


def _necessary_all(node: Any) -> list[FieldCondition]:
    kind, body = next(iter(node.items()))
    if kind != "bool":
        terms = exact_terms(node)
        return [FieldCondition(terms[0], frozenset(terms[1]))] if terms else []
    out: list[FieldCondition] = []
    for key in ("must", "filter"):
        for clause in clauses(body, key, ""):
            out.extend(_necessary_all(clause))
    should = clauses(body, "should", "")
    required = clauses(body, "must", "") + clauses(body, "filter", "")
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


def union_prefilters(prefilters: Sequence[Prefilter]) -> Prefilter:
    """A prefilter every event matching ANY of ``prefilters`` satisfies: what one pass over the
    input that feeds several datafeeds may skip. Conditions on a field that all of them test
    are kept, with the union of their values; a field only some test cannot be relied on."""
    if not prefilters:
        return Prefilter()
    if len(prefilters) == 1:
        return prefilters[0]
    common = set.intersection(*({c.field for c in p.conditions} for p in prefilters))
    out: list[FieldCondition] = []
    for cond in prefilters[0].conditions:  # in the first one's order: its most selective first
        if cond.field not in common:
            continue
        values: set[str] = set()
        for p in prefilters:
            found = p.condition_for(cond.field)
            assert found is not None
            values |= found.values
        out.append(FieldCondition(cond.field, frozenset(values)))
    return Prefilter(tuple(out))
