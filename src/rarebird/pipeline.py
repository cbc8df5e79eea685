"""The stages composed: inputs → sources → datafeed → job → store. The CLI calls this.

:func:`replay` reads every input (merged into one time order), keeps the events the datafeed
query matches, feeds them to the job, finalises the buckets at the end of the input (as a
datafeed with an end time does) and commits results and model state. It reports progress
through a callback and returns a :class:`RunSummary` of what was read, kept and skipped, and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from rarebird.definitions import DatafeedConfig
from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob, JobStats
from rarebird.results import BucketResults
from rarebird.sources import SourceOptions, expand_inputs, merge_by_time, open_source
from rarebird.sources.inputs import OpenedSource

#: Commit results and model state at least this often (wall-clock seconds) on long inputs.
CHECKPOINT_SECONDS = 30.0
#: Write results and kept events once this many are held, to bound memory.
FLUSH_PENDING = 20_000


@dataclass(frozen=True)
class Progress:
    """Where a replay is: lines and bytes read, events kept, seconds elapsed."""

    lines: int
    bytes: int
    events: int
    kept: int
    seconds: float
    final: bool = False


@dataclass
class RunSummary:
    inputs: list[str]
    read: ReadStats
    per_source: list[tuple[str, ReadStats]]
    matched: int = 0
    not_matched: int = 0
    buckets: int = 0
    records: int = 0
    seconds: float = 0.0
    job: JobStats = field(default_factory=JobStats)

    @property
    def events_per_second(self) -> float:
        total = self.read.lines or self.read.events
        return total / self.seconds if self.seconds > 0 else 0.0


class Datafeed:
    """Stage 2: keeps the events the datafeed query matches, counting the rest."""

    def __init__(self, config: DatafeedConfig) -> None:
        self.config = config
        self.matched = 0
        self.not_matched = 0

    def filter(self, events: Iterator[ProcessEvent]) -> Iterator[ProcessEvent]:
        matches = self.config.query.matches
        for event in events:
            if matches(event):
                self.matched += 1
                yield event
            else:
                self.not_matched += 1


def open_inputs(specs: Sequence[str], fmt: str, options: SourceOptions) -> list[OpenedSource]:
    """Expand files / folders / globs / ``-`` and open each in its format."""
    return [open_source(path, fmt, options) for path in expand_inputs(specs)]


def replay(
    job: AnomalyJob,
    datafeed: DatafeedConfig,
    specs: Sequence[str],
    *,
    input_format: str = "auto",
    options: SourceOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_results: Callable[[BucketResults], None] | None = None,
    progress_every: float = 0.5,
) -> RunSummary:
    """Replay inputs through the datafeed and the job; commit; summarise."""
    base = options or SourceOptions()
    config = job.config
    needed = set(datafeed.query.fields) | set(config.influencers) | {config.time_field}
    needed |= {d.by_field_name for d in config.detectors}
    opts = SourceOptions(
        prefilter=datafeed.query.prefilter,
        fields=frozenset(needed) if base.fields is None else base.fields,
        host_name=base.host_name,
        passwd=base.passwd,
        group=base.group,
        identity=base.identity,
        max_line_bytes=base.max_line_bytes,
        extra=base.extra,
    )
    sources = open_inputs(specs, input_format, opts)  # the sources apply opts.identity
    merged_source = merge_by_time(sources)
    merged: Iterator[ProcessEvent] = iter(merged_source)
    feed = Datafeed(datafeed)
    start = time.monotonic()
    last_report = start
    last_checkpoint = start
    buckets = 0
    records = 0
    for event in feed.filter(merged):
        for results in job.feed(event):
            buckets += 1
            records += len(results.records)
            if on_results:
                on_results(results)
        now = time.monotonic()
        if on_progress and now - last_report >= progress_every:
            last_report = now
            st = merged_source.stats
            on_progress(Progress(st.lines, st.bytes, st.events, feed.matched, now - start))
        if now - last_checkpoint >= CHECKPOINT_SECONDS:
            last_checkpoint = now
            job.save()
        elif job.pending >= FLUSH_PENDING:
            job.flush()
    for results in job.finish():
        buckets += 1
        records += len(results.records)
        if on_results:
            on_results(results)
    job.save()
    seconds = time.monotonic() - start
    if on_progress:
        st = merged_source.stats
        on_progress(Progress(st.lines, st.bytes, st.events, feed.matched, seconds, final=True))
    return RunSummary(
        inputs=[s.describe() for s in sources],
        read=merged_source.stats,
        per_source=merged_source.per_source,
        matched=feed.matched,
        not_matched=feed.not_matched,
        buckets=buckets,
        records=records,
        seconds=seconds,
        job=job.stats,
    )
