"""The quick lane for a plain ECS line: decode only the wanted fields, in C.

A candidate line of the prefiltered NDJSON path (:mod:`.reader`) is usually a plain, nested
Elastic Defend document of a kilobyte or more, of which the job wants some thirty leaves. The
general path parses the whole line with orjson and walks the wanted subtrees in Python
(:func:`~rarebird.sources.ecs.documents.flatten_document`); this lane has msgspec decode the line
straight into nested structs holding only the wanted fields (every other key is skipped by the
decoder), then fills the event's attributes from their leaves with the same conversion rules,
and applies the prefilter's exact check to the same values.

The lane must give exactly what the general path gives, so it only takes lines whose
meaning it cannot get wrong, and hands every other line back (``None``) to the general path,
which also does all the error reporting:

- not ASCII: msgspec does not check the UTF-8 of skipped strings, orjson rejects the line;
- a backslash anywhere: escapes in keys are not seen by the check below;
- a dotted key (``"process.name":``, ``"os.type":``): the structs only know nested keys;
- an envelope (``_source``, ``hits``), no usable ``@timestamp``, an object where a wanted
  leaf should be, an array holding anything but strings in a wanted field, an integer outside
  64 bits in a wanted field (orjson makes it a float), or anything the structs cannot hold (a
  list or scalar where an object is expected, malformed JSON, a number overflowing a double in
  a wanted field, nesting too deep): sent back.

Most candidate lines fail the conditions (a parent named ``ss``, arguments naming ``route``,
the end event of ``netstat``): a gate decodes the condition fields alone first and turns those
lines away before the whole wanted tree is decoded and filled (on a file with 40 % near misses
the source's CPU time went from 3.7 s to 3.2 s). The gate also holds every dotted spelling of
those fields as a key (``"process.name"`` at the top; ``"host.os"`` and, under ``host``,
``"os.type"`` for ``host.os.type``): where one is present it leaves the line to the full
decoding, so a line it turns away needs no search for dotted keys (3.2 s -> 2.9 s there).

One difference is accepted rather than checked for, as the check would cost more than the
lane saves: a number that overflows a double (``1e400``) in a field the lane does not read (any
field the job never reads; for a line failing the conditions, any field but theirs) makes
orjson reject the whole line, while the lane, which skips that field, keeps the event or
counts the line as prefiltered.

The checks are conservative: a false alarm only costs the line the general path's speed.
Equivalence on random documents is tested in ``tests/test_ecs_lane.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from rarebird.events import ARRAY_FIELDS, FIELD_ATTRS, INT_FIELDS, ProcessEvent, SourceLocation
from rarebird.sources.ecs.documents import (
    PREFILTERED,
    int_value,
    keyword,
    shared_single,
    timestamp_of,
)
from rarebird.sources.ecs.prefilter import ByteCondition

#: A key holding a dot (the closing quote of a string followed by a colon, with a dot and no
#: quote or backslash before it since the opening quote).
_DOTTED_KEY = re.compile(rb'\.[^"\\]*"\s*:')
#: The integers orjson keeps as integers; it makes floats of the others.
_INT_MIN, _INT_END = -(2**63), 2**64
#: Top-level keys of the envelopes :func:`~rarebird.sources.ecs.documents.documents_in` unwraps.
_ENVELOPE_KEYS = ("_source", "hits")


class _Back(Exception):
    """The line goes back to the general path."""


# What a wanted leaf fills: a typed scalar, a typed array, a typed integer, or ``extra``.
_STR, _ARRAY, _INT, _EXTRA = range(4)
#: A key of the gate that spells part of a condition field with a dot (``"process.name"`` at
#: the top, ``"os.type"`` under ``host``): present, the line goes to the full decoding.
_DOTTED = 4
_DOTTED_MARK = "dotted"

#: One wanted key of a struct: (attribute, dotted name, child plan or None for a leaf,
#: ProcessEvent attribute, what it fills, whether a prefilter condition reads it).
_Plan = list[tuple[str, str, "_Plan | None", str, int, bool]]


class StructLane:
    """Builds the event of a plain document line as the general path would, or declines it."""

    def __init__(self, wanted_names: frozenset[str], conditions: Sequence[ByteCondition]) -> None:
        self.conditions = tuple(conditions)
        self._checked = frozenset(c.field for c in self.conditions)
        self._counter = 0
        root_type, self._plan = self._build(_tree(wanted_names - {"@timestamp"}), "", root=True)
        self._decoder = msgspec.json.Decoder(root_type)
        #: the generated filling code, for whoever wants to read it
        self._fill, self.fill_source = _compile(self._plan)
        # The gate: the same decoding for the condition fields alone. Most candidate lines
        # hold a datafeed value elsewhere (a parent named ss, args naming route, the end
        # event of netstat) and fail the conditions: the gate turns them away at the cost
        # of skipping the line once, before the whole wanted tree is decoded and filled.
        self._gate: tuple[msgspec.json.Decoder[Any], _Fill] | None = None
        if self.conditions:
            gate_type, gate_plan = self._build(_gate_tree(self._checked), "", root=True)
            self._gate = (msgspec.json.Decoder(gate_type), _compile(gate_plan)[0])

    def _build(self, tree: dict[str, Any], prefix: str, *, root: bool = False) -> tuple[Any, _Plan]:
        fields: list[tuple[str, Any, Any]] = []
        plan: _Plan = []
        for key, child in tree.items():
            self._counter += 1
            attr = f"f{self._counter}"
            name = prefix + key
            if child == _DOTTED_MARK:
                fields.append((attr, Any, msgspec.field(name=key, default=None)))
                plan.append((attr, name, None, "", _DOTTED, False))
            elif child is None:
                fields.append((attr, Any, msgspec.field(name=key, default=None)))
                target = FIELD_ATTRS.get(name, "")
                kind = (
                    _EXTRA if not target
                    else _ARRAY if name in ARRAY_FIELDS
                    else _INT if name in INT_FIELDS
                    else _STR
                )  # fmt: skip
                plan.append((attr, name, None, target, kind, name in self._checked))
            else:
                child_type, child_plan = self._build(child, name + ".")
                fields.append((attr, child_type | None, msgspec.field(name=key, default=None)))
                plan.append((attr, name, child_plan, "", _EXTRA, False))
        if root:
            fields.append(("stamp", Any, msgspec.field(name="@timestamp", default=None)))
            for key in _ENVELOPE_KEYS:
                if key not in tree:
                    fields.append((f"envelope_{key}", Any, msgspec.field(name=key, default=None)))
        self._counter += 1
        return msgspec.defstruct(f"Wanted{self._counter}", fields, kw_only=True), plan

    def event(self, line: bytes, origin: SourceLocation) -> ProcessEvent | None:
        """The event of a plain document line; ``PREFILTERED`` when the prefilter's exact
        check fails; None when the line must take the general path. Raises
        :class:`~rarebird.sources.ecs.documents.DocumentError` (``bad @timestamp``)."""
        if not line.isascii() or b"\\" in line:
            return None
        # the gate sees a dotted spelling of a condition field for itself: a line it turns
        # away is not searched for dotted keys (about 2 us a line, most of the near misses)
        if self._gate is not None and not self._passes_gate(self._gate, line):
            return PREFILTERED
        if _DOTTED_KEY.search(line) is not None:
            return None
        try:
            doc = self._decoder.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return None
        stamp = doc.stamp
        if type(stamp) not in (str, int, float):
            return None  # missing, or not one plain value: the general path says which
        for key in _ENVELOPE_KEYS:
            if getattr(doc, f"envelope_{key}", None) is not None:
                return None
        typed: dict[str, Any] = {}
        extra: dict[str, tuple[str, ...]] = {}
        seen: dict[str, Sequence[str]] = {}
        try:
            self._fill(doc, typed, extra, seen)
        except _Back:
            return None
        if not self._hold(seen):
            return PREFILTERED
        return ProcessEvent(timestamp=timestamp_of(stamp), extra=extra, origin=origin, **typed)

    def _passes_gate(self, gate: tuple[msgspec.json.Decoder[Any], _Fill], line: bytes) -> bool:
        """False when the line's condition fields, read as the full decoding reads them,
        fail a condition; True when they hold or the full decoding must decide (a line the
        lane may send back: the general path then applies the conditions itself)."""
        decoder, fill = gate
        try:
            doc = decoder.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return True
        for key in _ENVELOPE_KEYS:
            if getattr(doc, f"envelope_{key}", None) is not None:
                return True  # the general path looks inside the envelope
        seen: dict[str, Sequence[str]] = {}
        try:
            fill(doc, {}, {}, seen)
        except _Back:
            return True
        return self._hold(seen)

    def _hold(self, seen: dict[str, Sequence[str]]) -> bool:
        """Whether the conditions hold for the values their fields were read with."""
        for cond in self.conditions:
            values = cond.values
            if not any(v in values for v in seen.get(cond.field, ())):
                return False
        return True


def _gate_tree(names: frozenset[str]) -> dict[str, Any]:
    """:func:`_tree` of the condition fields, with a :data:`_DOTTED_MARK` key for each other
    spelling of each of them: ``a.b.c`` is also ``{"a.b.c"}``, ``{"a.b": {"c"}}`` and
    ``{"a": {"b.c"}}``, so the keys ``a.b.c`` and ``a.b`` at the top and ``b.c`` under ``a``."""
    tree = _tree(names)
    for name in sorted(names):
        parts = name.split(".")
        for i in range(len(parts) - 1):
            node: Any = tree
            for part in parts[:i]:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                continue  # under a wanted leaf: an object there goes back anyway
            for j in range(i + 2, len(parts) + 1):
                node.setdefault(".".join(parts[i:j]), _DOTTED_MARK)
    return tree


def _tree(names: frozenset[str]) -> dict[str, Any]:
    """Dotted names as nested keys (None at a leaf)."""
    tree: dict[str, Any] = {}
    for name in sorted(names):  # "a.b" before "a.b.c"
        parts = name.split(".")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is None:
                break  # a wanted leaf that is also a prefix: an object there goes back
            node = child
        else:
            node[parts[-1]] = None
    return tree


def _leaf(
    value: Any,
    name: str,
    target: str,
    kind: int,
    checked: bool,
    typed: dict[str, Any],
    extra: dict[str, tuple[str, ...]],
    seen: dict[str, Sequence[str]],
) -> None:
    """Fill the event from one wanted leaf's value (not None), with ``event_from_document``'s
    rules: a string or an array of strings as they are, a number or boolean as its keyword."""
    vtype = type(value)
    values: list[str] | None = None
    if vtype is str:
        one = value
    elif vtype is list:
        if not value:
            return
        for item in value:
            if type(item) is not str:
                raise _Back  # numbers, objects or arrays inside: the general path
        one = value[0]
        values = value
    elif vtype is dict:
        raise _Back
    else:
        if vtype is int and not _INT_MIN <= value < _INT_END:
            raise _Back
        one = keyword(value) or ""
    if checked:
        seen[name] = (one,) if values is None else values
    if kind == _STR:
        typed[target] = one
    elif kind == _ARRAY:
        typed[target] = (one,) if values is None else tuple(values)
    elif kind == _INT:
        typed[target] = int_value(one)
    else:
        extra[name] = shared_single(one) if values is None else tuple(values)


_Fill = Callable[[Any, dict[str, Any], dict[str, tuple[str, ...]], dict[str, Sequence[str]]], None]


def _compile(plan: _Plan) -> tuple[_Fill, str]:
    """The plan as straight-line Python: one attribute read per wanted key, a plain string
    handled inline, anything else by :func:`_leaf`. A loop over the plan costs twice as much,
    and the lane exists to be fast (``dataclasses`` builds its ``__init__`` the same way)."""
    lines = ["def fill(n0, typed, extra, seen):"]

    def emit(plan: _Plan, depth: int, indent: str) -> None:
        for attr, name, child, target, kind, checked in plan:
            lines.append(f"{indent}v = n{depth}.{attr}")
            lines.append(f"{indent}if v is not None:")
            inner = indent + "    "
            if kind == _DOTTED:
                lines.append(f"{inner}raise _Back")
                continue
            if child is not None:
                lines.append(f"{inner}n{depth + 1} = v")
                emit(child, depth + 1, inner)
                continue
            lines.append(f"{inner}if type(v) is str:")
            body = inner + "    "
            if checked:
                lines.append(f"{body}seen[{name!r}] = (v,)")
            if kind == _STR:
                lines.append(f"{body}typed[{target!r}] = v")
            elif kind == _ARRAY:
                lines.append(f"{body}typed[{target!r}] = (v,)")
            elif kind == _INT:
                lines.append(f"{body}typed[{target!r}] = int_value(v)")
            else:
                lines.append(f"{body}extra[{name!r}] = shared_single(v)")
            if kind == _INT:
                # a JSON integer: its keyword text parses back to itself
                lines.append(f"{inner}elif type(v) is int and _INT_MIN <= v < _INT_END:")
                if checked:
                    lines.append(f"{body}seen[{name!r}] = (repr(v),)")
                lines.append(f"{body}typed[{target!r}] = v")
            # an array of strings
            lines.append(f"{inner}elif type(v) is list and v:")
            lines.append(f"{body}for x in v:")
            lines.append(f"{body}    if type(x) is not str:")
            lines.append(f"{body}        raise _Back")
            if checked:
                lines.append(f"{body}seen[{name!r}] = v")
            if kind == _STR:
                lines.append(f"{body}typed[{target!r}] = v[0]")
            elif kind == _ARRAY:
                lines.append(f"{body}typed[{target!r}] = tuple(v)")
            elif kind == _INT:
                lines.append(f"{body}typed[{target!r}] = int_value(v[0])")
            else:
                lines.append(f"{body}extra[{name!r}] = tuple(v)")
            lines.append(f"{inner}else:")
            lines.append(
                f"{body}_leaf(v, {name!r}, {target!r}, {kind}, {checked}, typed, extra, seen)"
            )

    emit(plan, 0, "    ")
    lines.append("    return None")
    namespace: dict[str, Any] = {
        "_leaf": _leaf,
        "_Back": _Back,
        "int_value": int_value,
        "shared_single": shared_single,
        "_INT_MIN": _INT_MIN,
        "_INT_END": _INT_END,
    }
    source = "\n".join(lines)
    exec(source, namespace)  # our own code; names enter only through repr()
    fill: _Fill = namespace["fill"]
    return fill, source
