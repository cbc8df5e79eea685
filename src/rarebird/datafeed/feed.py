"""The datafeed as it runs: which events reach the job, and when.

Elastic's datafeed searches the source indices with the datafeed query, in time order, up to
``now - query_delay``; what it has searched past is never searched again. Two ways of feeding a
job follow from that, and both live here:

- **replay** (``job run``, ``detect``): the input is already in time order, so every event the
  query matches goes to the job as it comes (:class:`rarebird.run.engine.Replay` counts what it
  kept);
- **live** (``serve``): matched events wait in :class:`PendingEvents` until the *frontier* (how
  far the datafeed has searched) passes their time; then they go to the job in time order (ties:
  arrival order). An event that arrives with a time before the frontier is *late* -- missed "due
  to ingest latency", as Elastic says -- and is counted per source and bucket
  (:class:`LateEvents`), never modelled.

**Event time sanity.** An event dated far in the future (by default more than a day after
the wall clock -- replays of history are normal, events from tomorrow are not) or before 1990
is *quarantined* (:class:`TimeLimits`): counted with the file and line it came from, never given
to the job and so never moving its clock. Without it one event dated 2100 makes the job build
millions of empty buckets and drop every later real event as out of order.

Nothing here does I/O: the engine persists the pending set and the late counts with everything
else of a turn (:meth:`PendingEvents.changes`).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rarebird.events import ProcessEvent
from rarebird.timeutil import from_epoch_ms, iso, to_epoch_ms

FUTURE, PAST = "dated_in_the_future", "dated_before_min_time"


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """Which event times are plausible: at most ``max_future`` after now, not before
    ``min_time``."""

    max_future: timedelta = timedelta(days=1)
    min_time: datetime = datetime(1990, 1, 1, tzinfo=UTC)


@dataclass
class Quarantine:
    """Events whose time is not plausible: counts by reason and the first few, with where they
    came from."""

    limits: TimeLimits
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 20

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def check(self, event: ProcessEvent, now: datetime) -> str | None:
        """The reason ``event`` is quarantined (and counted), or None when it is plausible."""
        ts = event.timestamp
        if ts > now + self.limits.max_future:
            reason = FUTURE
        elif ts < self.limits.min_time:
            reason = PAST
        else:
            return None
        self.counts[reason] += 1
        if len(self.examples) < self.max_examples:
            where = f"{event.origin}: " if event.origin is not None else ""
            self.examples.append(f"{where}{iso(ts)} ({reason.replace('_', ' ')})")
        return reason

    def describe(self, now: datetime) -> list[str]:
        """One line per reason, for summaries."""
        lines = []
        if self.counts[FUTURE]:
            lines.append(f"{self.counts[FUTURE]:,} event(s) dated more than "
                         f"{self.limits.max_future} after {iso(now)} were quarantined "
                         "(not modelled)")  # fmt: skip
        if self.counts[PAST]:
            lines.append(f"{self.counts[PAST]:,} event(s) dated before "
                         f"{iso(self.limits.min_time)} were quarantined (not modelled)")  # fmt: skip
        return lines


@dataclass(order=True)
class Pending:
    """A matched event waiting for the frontier."""

    ts_ms: int
    seq: int
    event: ProcessEvent = field(compare=False)
    source: str = field(compare=False)
    persisted: bool = field(compare=False, default=False)


@dataclass(frozen=True)
class PendingChanges:
    """What changed in the pending set since the last :meth:`PendingEvents.changes`."""

    added: tuple[Pending, ...] = ()
    removed: tuple[int, ...] = ()


class PendingEvents:
    """Matched events not yet given to the job, in time order (ties: arrival order).

    ``seq`` numbers the events in arrival order across restarts (the caller keeps the next
    number in its state). Events restored from the store are marked ``persisted``, so that only
    the difference is written at the next commit.
    """

    def __init__(self, next_seq: int = 0) -> None:
        self._heap: list[Pending] = []
        self._added: dict[int, Pending] = {}
        self._removed: list[int] = []
        self.next_seq = next_seq

    def restore(self, entries: Iterable[Pending]) -> None:
        for entry in entries:
            entry.persisted = True
            self._heap.append(entry)
        heapq.heapify(self._heap)

    def push(self, event: ProcessEvent, ts_ms: int, source: str) -> Pending:
        """Add a matched event (its time truncated to the millisecond, as stored)."""
        seq = self.next_seq
        self.next_seq += 1
        event = replace(event, timestamp=from_epoch_ms(ts_ms), origin=None)
        entry = Pending(ts_ms, seq, event, source)
        heapq.heappush(self._heap, entry)
        self._added[seq] = entry
        return entry

    def pop_before(self, to_ms: int) -> Iterator[ProcessEvent]:
        """Take, in order, every event with a time before ``to_ms``."""
        heap = self._heap
        while heap and heap[0].ts_ms < to_ms:
            entry = heapq.heappop(heap)
            if entry.persisted:
                self._removed.append(entry.seq)
            else:
                self._added.pop(entry.seq, None)
            yield entry.event

    def in_bucket(self, index: int, span_ms: int) -> list[Pending]:
        """The waiting events of one bucket, in time order."""
        return sorted(p for p in self._heap if p.ts_ms // span_ms == index)

    def earliest_ms(self) -> int | None:
        return self._heap[0].ts_ms if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[Pending]:
        return iter(sorted(self._heap))

    def changes(self) -> PendingChanges:
        """What to write: events added since the last call (now marked persisted) and the
        sequence numbers of persisted events given to the job since."""
        added = tuple(self._added.values())
        for entry in added:
            entry.persisted = True
        out = PendingChanges(added, tuple(self._removed))
        self._added = {}
        self._removed = []
        return out


class LateEvents:
    """Late events counted per (source, bucket start in epoch ms), until taken."""

    def __init__(self, span_ms: int) -> None:
        self.span_ms = span_ms
        self._counts: Counter[tuple[str, int]] = Counter()

    def add(self, source: str, ts_ms: int) -> None:
        self._counts[(source, ts_ms - ts_ms % self.span_ms)] += 1

    def take(self) -> Counter[tuple[str, int]]:
        counts, self._counts = self._counts, Counter()
        return counts


@dataclass(frozen=True)
class IngestOutcome:
    """What became of a batch of events given to the live datafeed."""

    received: int = 0
    kept: int = 0
    not_matched: int = 0
    late: int = 0
    older_than_backfill: int = 0
    #: dated implausibly far in the future or in the past (:class:`TimeLimits`)
    quarantined: int = 0

    def to_doc(self) -> dict[str, int]:
        return dict(self.__dict__)


def event_ms(event: ProcessEvent) -> int:
    return to_epoch_ms(event.timestamp)
