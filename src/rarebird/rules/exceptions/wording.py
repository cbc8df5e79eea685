"""Exception conditions in words, as Kibana's exception builder shows them: a one-line
description of an entry, and entries read from ``FIELD OPERATOR [VALUE]`` text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rarebird.rules.exceptions.entries import (
    Entry,
    ExistsEntry,
    ListEntry,
    MatchAnyEntry,
    MatchEntry,
    NestedEntry,
    WildcardEntry,
)
from rarebird.rules.exceptions.value_lists import ValueList

_OP_WORDS = {
    ("match", "included"): "is", ("match", "excluded"): "is not",
    ("match_any", "included"): "is one of", ("match_any", "excluded"): "is not one of",
    ("exists", "included"): "exists", ("exists", "excluded"): "does not exist",
    ("wildcard", "included"): "matches", ("wildcard", "excluded"): "does not match",
    ("list", "included"): "is in list", ("list", "excluded"): "is not in list",
}  # fmt: skip


def describe_entry(e: Entry) -> str:
    if isinstance(e, NestedEntry):
        return f"{e.field} {{{' AND '.join(describe_entry(s) for s in e.entries)}}}"
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


def parse_entries(texts: Sequence[str], value_lists: Mapping[str, ValueList] | None = None) -> list[Entry]:  # fmt: skip
    """Entries from :func:`parse_entry_text` strings; ``PARENT>FIELD OPERATOR [VALUE]`` is a
    condition on an object under ``PARENT``, and consecutive ones on the same parent make one
    ``nested`` entry.

    >>> [e.type for e in parse_entries(["user.name is bob", "a>b is 1", "a>c exists"])]
    ['match', 'nested']
    """
    out: list[Entry] = []
    for text in texts:
        parent = None
        body = text
        head = text.split(None, 1)[0] if text.strip() else ""
        if ">" in head:
            parent, _, rest = text.partition(">")
            body = rest
        entry = parse_entry_text(body, value_lists)
        if parent is None:
            out.append(entry)
            continue
        if not isinstance(entry, MatchEntry | MatchAnyEntry | ExistsEntry):
            raise ValueError("nested conditions may only use is, is-one-of, exists")
        last = out[-1] if out else None
        if isinstance(last, NestedEntry) and last.field == parent.strip():
            out[-1] = NestedEntry(last.field, (*last.entries, entry))
        else:
            out.append(NestedEntry(parent.strip(), (entry,)))
    return out
