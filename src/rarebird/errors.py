"""Errors rarebird raises, and the record of input problems it counts instead of raising.

The tree::

    RarebirdError                  every error rarebird raises on purpose
     ├── DefinitionError           a job / datafeed / rule / exception definition is unknown or malformed
     │                             (names the file and the key); CLI exit code 1
     ├── InputError                an input cannot be opened or read at all; CLI exit code 2
     ├── QueryError                a datafeed or filter query uses DSL rarebird does not evaluate
     ├── StateError                stored model state is missing, corrupt or of an unknown version
     └── StoreError                the results store cannot be used
          └── StoreFault           its file failed: disk full, I/O error, corrupt, locked too long
                                   (CLI exit code 2, as an unreadable input)

A single bad *line* of input is never an exception: sources record an :class:`InputIssue`
(with its :class:`~rarebird.events.SourceLocation`) in their :class:`ReadStats` and go on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rarebird.events import SourceLocation


class RarebirdError(Exception):
    """Root of every error rarebird raises on purpose."""


class DefinitionError(RarebirdError):
    """A definition file (job, datafeed, rule, exception list, config) is unknown or malformed."""

    def __init__(self, path: str, key: str | None, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class InputError(RarebirdError):
    """An input cannot be opened or read at all (as opposed to one bad line in it)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class QueryError(RarebirdError):
    """A query uses Elasticsearch DSL that rarebird does not evaluate, or is malformed."""


class StateError(RarebirdError):
    """Stored model state is corrupt, or written by an incompatible version."""


class StoreError(RarebirdError):
    """The results store cannot be opened or used."""


class StoreFault(StoreError):
    """The store's file failed under rarebird: the disk is full, an I/O error, the file is
    corrupt, or another process held it locked for too long. Nothing of the transaction in
    progress was committed."""


@dataclass(frozen=True, slots=True)
class InputIssue:
    """One input line (or event) that was skipped, and why."""

    location: SourceLocation
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.location}: {self.reason}{tail}"


@dataclass
class ReadStats:
    """What a source read, produced and skipped. Shared by every source.

    ``skipped`` counts skipped lines/events by reason; ``issues`` keeps the first
    ``max_issues`` of them with their file:line so they can be reported.
    """

    lines: int = 0
    bytes: int = 0
    events: int = 0
    prefiltered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    issues: list[InputIssue] = field(default_factory=list)
    max_issues: int = 100

    def skip(self, location: SourceLocation, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.issues) < self.max_issues:
            self.issues.append(InputIssue(location, reason, detail[:200]))

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: ReadStats) -> None:
        self.lines += other.lines
        self.bytes += other.bytes
        self.events += other.events
        self.prefiltered += other.prefiltered
        self.skipped.update(other.skipped)
        room = self.max_issues - len(self.issues)
        if room > 0:
            self.issues.extend(other.issues[:room])
