"""Time values as Elastic writes them: durations ("15m"), date math ("now-45m") and dates.

All datetimes are UTC-aware. Nothing here reads the clock: "now" is always passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {
    "nanos": 1e-9,
    "micros": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_DURATION = re.compile(r"^\s*(\d+)\s*(nanos|micros|ms|s|m|h|d|w)\s*$")
_DATE_MATH = re.compile(r"^\s*now\s*(?:([+-])\s*(\d+)\s*(ms|s|m|h|d|w))?\s*$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse an Elasticsearch time value such as ``"15m"``, ``"900s"`` or ``"30d"``.

    A bare number is taken as seconds.

    >>> parse_duration("15m")
    datetime.timedelta(seconds=900)
    >>> parse_duration("30d").days
    30
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration (expected e.g. '15m', '900s', '30d'): {text!r}")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_date_math_offset(text: str) -> timedelta:
    """Offset of a relative date expression from now: ``"now-45m"`` -> -45 minutes.

    >>> parse_date_math_offset("now-45m")
    datetime.timedelta(days=-1, seconds=83700)
    >>> parse_date_math_offset("now")
    datetime.timedelta(0)
    """
    m = _DATE_MATH.match(text)
    if not m:
        raise ValueError(f"not a relative date (expected e.g. 'now-45m'): {text!r}")
    if m.group(1) is None:
        return timedelta(0)
    delta = timedelta(seconds=int(m.group(2)) * _UNITS[m.group(3)])
    return -delta if m.group(1) == "-" else delta


def parse_timestamp(value: object) -> datetime:
    """Parse an ``@timestamp`` as Elasticsearch's default date format does.

    ``strict_date_optional_time||epoch_millis``: ISO-8601 strings (naive ones are UTC),
    or epoch milliseconds as a number or numeric string.

    >>> parse_timestamp("2026-01-05T00:00:00Z").isoformat()
    '2026-01-05T00:00:00+00:00'
    >>> parse_timestamp(1767571200000).isoformat()
    '2026-01-05T00:00:00+00:00'
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return EPOCH + timedelta(milliseconds=value)
    if isinstance(value, str):
        text = value.strip()
        if text and (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
            return EPOCH + timedelta(milliseconds=int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 date or epoch millis: {value!r}") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def parse_time(text: str, now: datetime) -> datetime:
    """A time as a person gives it (a command-line option): an ISO-8601 date or time (naive ones
    are UTC), epoch milliseconds, Elastic date math from ``now`` (``now``, ``now-45m``), or a
    duration meaning that long before ``now`` (``7d``, ``24h``).

    >>> now = parse_timestamp("2026-01-08T12:00:00Z")
    >>> [iso(parse_time(t, now)) for t in ("2026-01-05", "7d", "now-30m", "1767571200000")]
    ['2026-01-05T00:00:00.000Z', '2026-01-01T12:00:00.000Z', '2026-01-08T11:30:00.000Z', '2026-01-05T00:00:00.000Z']
    """
    stripped = text.strip()
    if stripped.startswith("now"):
        return now + parse_date_math_offset(stripped)
    if _DURATION.match(stripped):
        return now - parse_duration(stripped)
    try:
        return parse_timestamp(stripped)
    except ValueError:
        raise ValueError(
            f"not a time (expected ISO-8601, epoch millis, now-24h or 7d): {text!r}"
        ) from None


def to_epoch_ms(when: datetime) -> int:
    """UTC-aware datetime to integer epoch milliseconds (floor)."""
    delta = when - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_epoch_s(when: datetime) -> float:
    return (when - EPOCH).total_seconds()


#: The last second a ``datetime`` holds (9999-12-31T23:59:59Z): a record's time past it is not
#: a time (an input may claim any number of seconds; ``timedelta`` overflows on it)
LAST_EPOCH_S = 253_402_300_799
#: The first second a ``datetime`` holds (0001-01-01T00:00:00Z)
FIRST_EPOCH_S = -62_135_596_800


def from_epoch_s(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def from_epoch_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def iso(when: datetime) -> str:
    """ISO-8601 with milliseconds and a ``Z``, as Elasticsearch prints dates."""
    text = when.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def format_duration(delta: timedelta) -> str:
    """Shortest Elastic-style form: 900 s -> '15m'.

    >>> format_duration(timedelta(minutes=15))
    '15m'
    """
    seconds = delta.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"
