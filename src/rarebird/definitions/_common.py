"""Shared helpers for reading definition files and reporting their errors by file and key."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from rarebird.errors import DefinitionError
from rarebird.timeutil import parse_duration

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


class Reader:
    """Typed access to one object of a definition, with errors naming file and key path."""

    def __init__(self, path: str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path = path
        self.data = data
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str | None, message: str) -> DefinitionError:
        return DefinitionError(self.path, self.key(name) if name else self.prefix or None, message)

    def check_keys(
        self, known: frozenset[str], unsupported: Mapping[str, str] | None = None
    ) -> None:
        for name in self.data:
            if unsupported and name in unsupported:
                raise self.fail(name, unsupported[name])
            if name not in known:
                hint = _closest(name, known)
                extra = f" (did you mean '{hint}'?)" if hint else ""
                raise self.fail(name, f"unknown key{extra}")

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def string(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return default
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {type(value).__name__}")
        return value

    def req_string(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {value!r}")
        return value

    def number(
        self, name: str, default: float | None = None, *, required: bool = False
    ) -> float | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number, got {value!r}")
        return float(value)

    def integer(
        self, name: str, default: int | None = None, *, required: bool = False
    ) -> int | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected an integer, got {value!r}")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "expected a list of strings")
        return tuple(value)

    def duration(
        self, name: str, default: timedelta | None = None, *, allow_zero: bool = False
    ) -> timedelta | None:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise self.fail(name, f"expected a time value such as '15m', got {value!r}")
        try:
            delta = parse_duration(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None
        if delta.total_seconds() < 0 or (delta.total_seconds() == 0 and not allow_zero):
            raise self.fail(name, "must be positive")
        return delta

    def obj(self, name: str) -> Reader | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(name, "expected an object")
        return Reader(self.path, value, f"{self.key(name)}.")

    def obj_list(self, name: str) -> list[Reader]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(name, "expected a list")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise DefinitionError(self.path, f"{self.key(name)}[{i}]", "expected an object")
            out.append(Reader(self.path, item, f"{self.key(name)}[{i}]."))
        return out

    def raw(self, name: str) -> Any:
        return self.data.get(name)


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


def _closest(name: str, known: Sequence[str] | frozenset[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None
