"""Replaying inputs: the sources opened with the options every command shares, merged into one
time order, and given to the :class:`~rarebird.run.engine.Engine`.

``job run`` and ``detect`` call :func:`replay_inputs` (with no rule / with the rule); ``serve``
builds its sources from the same :class:`InputOptions`. The options a source needs from the
definitions (the datafeed's prefilter, the fields the job reads) are derived here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from rarebird.datafeed.sql import compile_sql
from rarebird.definitions import DatafeedConfig, JobConfig
from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent
from rarebird.rules.executor import RuleRun
from rarebird.run.engine import Engine, ReplayReport
from rarebird.sources import SourceOptions, expand_inputs, merge_by_time, open_source
from rarebird.sources.inputs import OpenedSource


@dataclass(frozen=True)
class InputOptions:
    """How to read inputs: the same options for ``job run``, ``detect`` and ``serve``."""

    #: ``auto`` (sniffed) or a registered format name
    format: str = "auto"
    #: ``user`` (Elastic's user.name) or ``login`` (the login user behind sudo)
    identity: str = "user"
    passwd: str | None = None
    group: str | None = None
    #: host.name for inputs that carry none
    host_name: str | None = None
    #: processes reading one large file in parallel (formats that can)
    workers: int = 1

    def source_options(self, job: JobConfig, datafeed: DatafeedConfig) -> SourceOptions:
        """The options the sources get: these, plus the datafeed's prefilter and the fields the
        job and the datafeed read."""
        needed = set(datafeed.query.fields) | set(job.influencers) | {job.time_field}
        needed |= {d.by_field_name for d in job.detectors}
        return SourceOptions(
            prefilter=datafeed.query.prefilter,
            pushdown=compile_sql(datafeed.query.source),
            fields=frozenset(needed),
            host_name=self.host_name,
            passwd=self.passwd,
            group=self.group,
            identity=self.identity,
            extra={"workers": str(self.workers)} if self.workers > 1 else {},
        )


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
    """What a replay read and did."""

    inputs: list[str]
    read: ReadStats
    per_source: list[tuple[str, ReadStats]]
    report: ReplayReport
    seconds: float = 0.0

    @property
    def matched(self) -> int:
        return self.report.events

    @property
    def not_matched(self) -> int:
        return self.report.not_matched

    @property
    def events_per_second(self) -> float:
        total = self.read.lines or self.read.events
        return total / self.seconds if self.seconds > 0 else 0.0


def open_inputs(
    specs: Sequence[str], options: InputOptions, job: JobConfig, datafeed: DatafeedConfig
) -> list[OpenedSource]:
    """Expand files / folders / globs / ``-`` and open each in its format."""
    opts = options.source_options(job, datafeed)
    # -- Elasticsearch inputs (es+https://HOST:9200/INDEX-PATTERN): searched, not files -------
    from rarebird.run.elastic_inputs import open_elastic, split_specs

    elastic, specs = split_specs(specs)
    searched = [open_elastic(spec, job, datafeed, opts) for spec in elastic]
    # -- end of Elasticsearch inputs ------------------------------------------------------------
    return searched + [open_source(path, options.format, opts) for path in expand_inputs(specs)]


def replay_inputs(
    engine: Engine,
    specs: Sequence[str],
    options: InputOptions = InputOptions(),
    *,
    downtime: Sequence[tuple[datetime, datetime]] = (),
    on_run: Callable[[RuleRun], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 0.5,
) -> RunSummary:
    """Read ``specs`` and replay them through ``engine``; summarise."""
    sources = open_inputs(specs, options, engine.config, engine.datafeed)
    merged_source = merge_by_time(sources)
    events: Iterator[ProcessEvent] = iter(merged_source)
    clock = engine.clock
    start = clock.monotonic()

    def progress(kept: int, *, final: bool = False) -> None:
        if on_progress is not None:
            st = merged_source.stats
            on_progress(
                Progress(st.lines, st.bytes, st.events, kept, clock.monotonic() - start, final)
            )

    report = engine.replay(
        events, downtime=downtime, on_run=on_run, on_progress=progress,
        progress_every=progress_every,
    )  # fmt: skip
    seconds = clock.monotonic() - start
    progress(report.events, final=True)
    return RunSummary(
        inputs=[s.describe() for s in sources],
        read=merged_source.stats,
        per_source=merged_source.per_source,
        report=report,
        seconds=seconds,
    )
