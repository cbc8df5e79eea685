"""The one place rarebird reads the wall clock.

Everything else takes a :class:`Clock` so tests and replays can fix or drive time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, UTC-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards (for rates and timeouts)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A clock that only moves when told to (tests, replays)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a UTC-aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        self._mono += delta.total_seconds()

    def set(self, when: datetime) -> None:
        when = when.astimezone(UTC)
        self._mono += max(0.0, (when - self._now).total_seconds())
        self._now = when


SYSTEM_CLOCK = SystemClock()
