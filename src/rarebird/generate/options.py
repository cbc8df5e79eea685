"""What to generate: the profile, its size and its seed (:class:`GeneratorOptions`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PROFILES = ("fleet", "bench", "labelled")
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


@dataclass(frozen=True, slots=True)
class GeneratorOptions:
    """What to generate. ``events`` is used by the ``bench`` profile only."""

    profile: str = "fleet"
    days: int = 14
    start: datetime = DEFAULT_START
    hosts: int = 6
    users: int = 5
    discovery_fraction: float | None = None
    events: int = 1_000_000
    seed: int = 7

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if self.start.tzinfo is None:
            raise ValueError("start must be a UTC-aware datetime")
        if self.days < 1 or self.hosts < 1 or self.users < 0 or self.events < 0:
            raise ValueError("days and hosts must be at least 1, users and events at least 0")
        fraction = self.fraction
        if not 0 < fraction <= 1:
            raise ValueError(f"discovery fraction must be in (0, 1], not {fraction}")

    @property
    def fraction(self) -> float:
        if self.discovery_fraction is not None:
            return self.discovery_fraction
        return 0.5 if self.profile == "fleet" else 0.02


def parse_start(text: str) -> datetime:
    """A start date for ``--start``: ``2026-01-05`` or a full ISO timestamp (UTC if naive)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date (expected e.g. 2026-01-05): {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
