"""Schedule windows (rarebird's addition): weekdays and a wall-clock time range in a named time
zone, in which an exception item holds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rarebird.errors import DefinitionError

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class ScheduleWindow:
    """Weekdays + a wall-clock time range in a named time zone. ``days`` are the days a window
    *starts* on (0 = Monday). ``end <= start`` crosses midnight; ``start == end`` is 24 hours."""

    days: frozenset[int]
    start: time
    end: time
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        _zone(self.time_zone)  # validate early

    def contains(self, when: datetime) -> bool:
        local = when.astimezone(_zone(self.time_zone))
        t = local.time().replace(tzinfo=None, fold=0)
        wd = local.weekday()
        if self.start < self.end:
            return wd in self.days and self.start <= t < self.end
        # crosses midnight (or 24 h when start == end)
        return (wd in self.days and t >= self.start) or ((wd - 1) % 7 in self.days and t < self.end)

    def __str__(self) -> str:
        days = _format_days(self.days)
        end = "24:00" if self.end == time(0) and self.start == time(0) else _hm(self.end)
        return f"{days} {_hm(self.start)}-{end} {self.time_zone}"

    def to_json(self) -> dict[str, Any]:
        return {
            "days": [_DAY_NAMES[d] for d in sorted(self.days)],
            "start": _hm(self.start),
            "end": _hm(self.end),
            "time_zone": self.time_zone,
        }

    @classmethod
    def from_json(cls, data: Any, where: str, path: str) -> ScheduleWindow:
        if not isinstance(data, Mapping):
            raise DefinitionError(path, where, "a schedule window must be an object")
        days_raw = data.get("days") or list(_DAY_NAMES)
        if not isinstance(days_raw, list) or not all(isinstance(d, str) for d in days_raw):
            raise DefinitionError(path, f"{where}.days", "expected a list of weekday names")
        try:
            days = frozenset(_parse_days(",".join(days_raw)))
            start = _parse_hm(str(data.get("start", "")))
            end = _parse_hm(str(data.get("end", "")))
            return cls(days, start, end, str(data.get("time_zone") or "UTC"))
        except ValueError as exc:
            raise DefinitionError(path, where, str(exc)) from None

    @classmethod
    def parse(cls, text: str) -> ScheduleWindow:
        """``"Mon-Fri 22:00-06:00 Europe/Berlin"``; days may be ``Sat,Sun``, ``daily`` or
        omitted; the zone defaults to UTC.

        >>> str(ScheduleWindow.parse("Fri-Mon 22:00-06:00 Europe/Berlin"))
        'Mon,Fri,Sat,Sun 22:00-06:00 Europe/Berlin'
        """
        parts = text.split()
        if not parts:
            raise ValueError("empty schedule window")
        days = frozenset(range(7))
        if not parts[0][:1].isdigit():
            days = frozenset(_parse_days(parts.pop(0)))
        if not parts:
            raise ValueError(f"no time range in {text!r} (expected e.g. 'Sat,Sun 02:00-04:00')")
        rng = parts.pop(0)
        if "-" not in rng:
            raise ValueError(f"expected a time range such as 02:00-04:00, got {rng!r}")
        a, b = rng.split("-", 1)
        zone = parts.pop(0) if parts else "UTC"
        if parts:
            raise ValueError(f"unexpected text after the time zone: {' '.join(parts)!r}")
        return cls(days, _parse_hm(a), _parse_hm(b), zone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as "
                         "'Europe/Berlin')") from None  # fmt: skip


def _hm(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _parse_hm(text: str) -> time:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not m:
        raise ValueError(f"expected a time of day HH:MM, got {text!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    if (h, mi) == (24, 0):
        return time(0)
    if not (0 <= h <= 23 and 0 <= mi <= 59):
        raise ValueError(f"not a time of day: {text!r}")
    return time(h, mi)


def _parse_days(text: str) -> set[int]:
    text = text.strip()
    if text.lower() in ("daily", "*", "all", "every"):
        return set(range(7))
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = (_day(p) for p in part.split("-", 1))
            d = a
            while True:
                days.add(d)
                if d == b:
                    break
                d = (d + 1) % 7
        else:
            days.add(_day(part))
    if not days:
        raise ValueError(f"no weekdays in {text!r}")
    return days


def _day(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in _DAY_NAMES:
        raise ValueError(f"not a weekday: {text!r} (expected Mon, Tue, ... Sun)")
    return _DAY_NAMES.index(key)


def _format_days(days: frozenset[int]) -> str:
    if days == frozenset(range(7)):
        return "daily"
    return ",".join(_DAY_NAMES[d].capitalize() for d in sorted(days))
