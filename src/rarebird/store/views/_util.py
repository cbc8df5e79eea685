"""Small conversions shared by the views."""

from __future__ import annotations

from typing import Any

import orjson


def split(text: str | None) -> tuple[str, ...]:
    return tuple(t for t in (text or "").split(",") if t)


def json_strings(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    value = orjson.loads(raw) if raw.startswith("[") else raw
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)
