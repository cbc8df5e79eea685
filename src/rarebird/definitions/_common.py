"""Shared helpers of the definitions: packaged files, reading a JSON file, byte sizes (the typed
reader is :mod:`rarebird.definitions.reader`)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from rarebird.errors import DefinitionError

T = TypeVar("T")

DATA_PACKAGE = "rarebird.definitions.data"


def packaged_path(name: str) -> str:
    """Filesystem path of a definition shipped inside the package."""
    return str(resources.files(DATA_PACKAGE).joinpath(name))


def read_json_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            path, None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise DefinitionError(path, None, "expected a JSON object at the top level")
    return doc


_BYTE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}
_BYTE_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b)?\s*$", re.IGNORECASE)


def parse_byte_size(value: str | int, *, bare_unit: str = "mb") -> int:
    """Elasticsearch byte sizes: ``"64mb"`` -> 67108864. A bare number is in ``bare_unit``.

    >>> parse_byte_size("64mb"), parse_byte_size(64), parse_byte_size("1gb")
    (67108864, 67108864, 1073741824)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value * _BYTE_UNITS[bare_unit]
    m = _BYTE_SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a byte size (expected e.g. '64mb'): {value!r}")
    unit = (m.group(2) or bare_unit).lower()
    return int(float(m.group(1)) * _BYTE_UNITS[unit])
