"""The one typed reader of configuration: a JSON or TOML mapping read key by key, each mistake a
:class:`~rarebird.errors.DefinitionError` naming the file and the dotted key path
(``job.json: analysis_config.bucket_span: not a duration ...``), unknown keys refused.

Used for Elastic's definitions (job, datafeed, rule) and for ``rarebird serve``'s TOML
configuration. The two have always worded a few mistakes differently (an unknown key: the closest
known one, or all of them; a wrong string: its type, or the value); :class:`Wording` keeps those
texts as they were, since scripts and tests match them.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, overload

from rarebird.definitions._common import parse_byte_size
from rarebird.errors import DefinitionError
from rarebird.timeutil import parse_duration


@dataclass(frozen=True, slots=True)
class Wording:
    """How a reader words the mistakes its two kinds of files word differently."""

    #: an unknown key: list the known keys (else suggest the closest one, if any is close)
    list_known_keys: bool = False
    #: a string of the wrong type: show the value (else its type name)
    show_wrong_value: bool = False


#: Elastic's definitions: job, datafeed and rule
DEFINITION_WORDING = Wording()
#: rarebird's own configuration (``rarebird.toml``)
CONFIG_WORDING = Wording(list_known_keys=True, show_wrong_value=True)


class Reader:
    """Typed access to one object (table) of a configuration, with errors naming file and key."""

    def __init__(
        self,
        path: str,
        data: Mapping[str, Any],
        prefix: str = "",
        *,
        wording: Wording = DEFINITION_WORDING,
    ) -> None:
        self.path = path
        self.data = data
        self.prefix = prefix
        self.wording = wording

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
            if name in known:
                continue
            if self.wording.list_known_keys:
                raise self.fail(name, f"unknown key (known: {', '.join(sorted(known))})")
            hint = _closest(name, known)
            extra = f" (did you mean '{hint}'?)" if hint else ""
            raise self.fail(name, f"unknown key{extra}")

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def _typed(self, name: str, kinds: tuple[type, ...], what: str) -> Any:
        """The value if it is one of ``kinds`` (a bool only if ``bool`` is named), None if absent."""
        value = self.data.get(name)
        if value is None:
            return None
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.fail(name, f"expected {what}, got {value!r}")
        return value

    def string(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return default
        if not isinstance(value, str):
            got = repr(value) if self.wording.show_wrong_value else type(value).__name__
            raise self.fail(name, f"expected a string, got {got}")
        return value

    def req_string(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None
        return value

    def path_value(self, name: str) -> str | None:
        """A file path, relative to the configuration file's folder; ``-`` is kept as it is."""
        value = self.string(name)
        if value is None or value == "-":
            return value
        if not value:
            raise self.fail(name, "must not be empty")
        return relative_to_file(self.path, value)

    @overload
    def flag(self, name: str, default: bool) -> bool: ...

    @overload
    def flag(self, name: str, default: None = None) -> bool | None: ...

    def flag(self, name: str, default: bool | None = None) -> bool | None:
        value = self._typed(name, (bool,), "true or false")
        return default if value is None else bool(value)

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
        self,
        name: str,
        default: int | None = None,
        *,
        required: bool = False,
        minimum: int | None = None,
    ) -> int | None:
        value = self._typed(name, (int,), "an integer")
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return default
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum}")
        return int(value)

    def str_list(self, name: str, *, lone_string: bool = True) -> tuple[str, ...]:
        """A list of strings; with ``lone_string`` a single string is a list of one."""
        value = self.data.get(name)
        if value is None:
            return ()
        if lone_string and isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "expected a list of strings")
        return tuple(value)

    def duration(
        self,
        name: str,
        default: timedelta | None = None,
        *,
        allow_zero: bool = False,
        fractional: bool = False,
    ) -> timedelta | None:
        """An Elasticsearch time value (``"15m"``, or seconds); ``fractional`` also takes
        fractions of a second (``"250ms"``, ``0.25``)."""
        if fractional:
            value = self._typed(name, (str, int, float), "a duration such as '15m' or '250ms'")
        else:
            value = self._typed(name, (str, int), "a time value such as '15m'")
        if value is None:
            return default
        try:
            delta = parse_duration(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None
        if delta.total_seconds() < 0 or (delta.total_seconds() == 0 and not allow_zero):
            raise self.fail(name, "must be positive")
        return delta

    def byte_size(self, name: str) -> int | None:
        """``"64mb"``, or a number of bytes."""
        value = self._typed(name, (str, int), "a byte size such as '64mb'")
        if value is None:
            return None
        try:
            size = parse_byte_size(value, bare_unit="b")
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None
        if size < 1:
            raise self.fail(name, "must be positive")
        return size

    def obj(self, name: str) -> Reader | None:
        """A JSON object under ``name`` (None when absent)."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(name, "expected an object")
        return self._child(value, f"{self.key(name)}.")

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
            out.append(self._child(item, f"{self.key(name)}[{i}]."))
        return out

    def table(self, name: str, known: frozenset[str]) -> Reader:
        """A TOML table under ``name`` (empty when absent), its keys checked against ``known``."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, "expected a table")
        child = self._child(value, f"{self.key(name)}.")
        child.check_keys(known)
        return child

    def _child(self, data: Mapping[str, Any], prefix: str) -> Reader:
        return Reader(self.path, data, prefix, wording=self.wording)


def relative_to_file(config_path: str, value: str) -> str:
    """A path from a configuration file, relative to the file's folder (URLs -- ``https://``,
    ``es+https://`` ... -- and absolute paths as they are)."""
    if not config_path or os.path.isabs(value) or "://" in value:
        return value
    return str(Path(config_path).resolve().parent / value)


def _closest(name: str, known: Sequence[str] | frozenset[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None
