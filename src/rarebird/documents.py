"""Field access on JSON documents the way Elasticsearch sees them.

A document may spell the same field as a dotted key (``{"user.name": ["alice"]}``, as anomaly
records copy their input fields), as nested objects (``{"user": {"name": "alice"}}``, as ECS
events and alerts do), or a mix of both; arrays of objects are flattened (Elasticsearch's
``object`` mapping). :func:`field_values` returns every leaf value a query on the field would
see; :func:`field_objects` the objects under a path, for ``nested`` exception entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def field_values(doc: Mapping[str, Any], path: str) -> list[Any]:
    """Every non-null leaf value of ``path`` in ``doc``, arrays flattened.

    >>> field_values({"user": {"name": ["alice"]}, "host.name": "h1"}, "user.name")
    ['alice']
    >>> field_values({"a": [{"b": 1}, {"b": [2, None]}]}, "a.b")
    [1, 2]
    """
    out: list[Any] = []
    _collect(doc, path.split("."), out, leaves=True)
    return out


def field_objects(doc: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    """The objects found at ``path`` (an array of objects gives each element).

    >>> field_objects({"influencers": [{"n": "a"}, {"n": "b"}]}, "influencers")
    [{'n': 'a'}, {'n': 'b'}]
    """
    out: list[Any] = []
    _collect(doc, path.split("."), out, leaves=False)
    return [o for o in out if isinstance(o, Mapping)]


def first_value(doc: Mapping[str, Any], path: str) -> Any:
    values = field_values(doc, path)
    return values[0] if values else None


def _collect(node: Any, parts: list[str], out: list[Any], *, leaves: bool) -> None:
    if isinstance(node, list | tuple):
        for item in node:
            _collect(item, parts, out, leaves=leaves)
        return
    if not parts:
        if node is None:
            return
        if leaves and isinstance(node, Mapping):
            return
        out.append(node)
        return
    if not isinstance(node, Mapping):
        return
    # try the longest dotted key first: {"a.b": {"c": 1}} and {"a": {"b.c": 1}} both hold a.b.c
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            _collect(node[key], parts[i:], out, leaves=leaves)


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating the intermediate objects."""
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
