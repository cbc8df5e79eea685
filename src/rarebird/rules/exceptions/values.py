"""Comparing an indexed value with an exception's value, as Elasticsearch does on keyword,
numeric and boolean fields."""

from __future__ import annotations

import re
from typing import Any


def scalar_equals(actual: Any, expected: str) -> bool:
    """``match_phrase`` of a string against one indexed value (keyword, number or boolean)."""
    if isinstance(actual, bool):
        return expected.strip().lower() == ("true" if actual else "false")
    if isinstance(actual, int | float):
        try:
            return float(expected) == float(actual)
        except ValueError:
            return False
    if isinstance(actual, str):
        return actual == expected
    return False


def as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN.findall(text)}
