"""The exceptions one rule applies: its items and the value lists they may reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from rarebird.rules.exceptions.entries import EventsProvider, MatchContext
from rarebird.rules.exceptions.items import ExceptionItem
from rarebird.rules.exceptions.value_lists import ValueList


@dataclass(frozen=True)
class ExceptionSet:
    """The exception items a rule applies, and the value lists they may reference."""

    items: tuple[ExceptionItem, ...] = ()
    value_lists: Mapping[str, ValueList] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def needs_events(self) -> bool:
        return any(i.allow is not None for i in self.items)

    def active(self, now: datetime) -> ExceptionSet:
        """Without the items that expired by ``now``."""
        return replace(self, items=tuple(i for i in self.items if not i.expired(now)))

    def first_match(
        self,
        doc: Mapping[str, Any],
        *,
        when: datetime | None = None,
        events: EventsProvider | None = None,
        missing_lists: set[str] | None = None,
    ) -> ExceptionItem | None:
        """The first item that matches ``doc`` (so the document is dropped), or None."""
        cached: list[Sequence[Mapping[str, Any]]] = []

        def lazy_events() -> Sequence[Mapping[str, Any]]:
            if not cached:
                cached.append(events() if events is not None else ())
            return cached[0]

        ctx = MatchContext(self.value_lists, when, lazy_events, set())
        found = None
        for item in self.items:
            if item.matches(doc, ctx):
                found = item
                break
        if missing_lists is not None:
            missing_lists |= ctx.missing_lists
        return found
