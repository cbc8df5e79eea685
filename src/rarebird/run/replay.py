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

from rarebird.datafeed.prefilter import union_prefilters
from rarebird.datafeed.sql import compile_sql, union_sql
from rarebird.definitions import DatafeedConfig, JobConfig
from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent
from rarebird.rules.executor import RuleRun
from rarebird.run.engine import Engine
from rarebird.run.readahead import READ_AHEAD, read_ahead
from rarebird.run.tally import ReplayReport
from rarebird.sources import KEEP_ALL, SourceOptions, expand_inputs, merge_by_time, open_source
from rarebird.sources.inputs import OpenedSource, is_pipe
from rarebird.sources.ranges import auto_workers

#: The engines that can scan the inputs (``--engine``).
ENGINES = ("local", "spark")
#: ``InputOptions.workers`` for ``--workers auto``
AUTO_WORKERS = 0


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
    #: processes reading one large file in parallel (formats that can; DuckDB's threads for
    #: Parquet); :data:`AUTO_WORKERS` shares the usable CPUs among the inputs
    #: (:func:`~rarebird.sources.ranges.auto_workers`)
    workers: int = 1
    #: read every event, not only those the datafeed could match (no prefilter, no pushdown):
    #: the quiet profile learns when each host was first seen from all of them
    every_event: bool = False
    #: what scans Parquet inputs: ``local`` (DuckDB in this process) or ``spark``
    #: (:mod:`rarebird.sources.spark`; the job, rule and store are the same either way)
    engine: str = "local"
    #: the Spark master (``local[2]`` when None); only with ``engine="spark"``
    spark_master: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r} (expected one of {ENGINES})")

    def source_options(
        self, job: JobConfig, datafeed: DatafeedConfig, *, inputs: int = 1
    ) -> SourceOptions:
        """The options the sources get: these, plus the datafeed's prefilter and the fields the
        job and the datafeed read (``inputs``: how many files are read at once)."""
        return self.source_options_for([(job, datafeed)], inputs=inputs)

    def source_options_for(
        self, definitions: Sequence[tuple[JobConfig, DatafeedConfig]], *, inputs: int = 1
    ) -> SourceOptions:
        """The options for one pass that feeds several jobs: a prefilter every event of ANY of
        the datafeeds satisfies (:func:`union_prefilters`), and every field any of them reads."""
        needed: set[str] = set()
        workers = auto_workers(inputs) if self.workers == AUTO_WORKERS else self.workers
        extra = {"workers": str(workers)} if workers > 1 else {}
        if self.engine == "spark":
            extra["engine"] = "spark"
            if self.spark_master:
                extra["spark_master"] = self.spark_master
        for job, datafeed in definitions:
            needed |= set(datafeed.query.fields) | set(job.influencers) | {job.time_field}
            needed |= {d.by_field_name for d in job.detectors}
        if self.every_event:
            needed |= {"host.name", "process.name", "user.id"}
        return SourceOptions(
            prefilter=(
                KEEP_ALL
                if self.every_event
                else union_prefilters([d.query.prefilter for _, d in definitions])
            ),
            pushdown=(
                None
                if self.every_event
                else union_sql([compile_sql(d.query.source) for _, d in definitions])
            ),
            fields=frozenset(needed),
            host_name=self.host_name,
            passwd=self.passwd,
            group=self.group,
            identity=self.identity,
            extra=extra,
        )

    def check_engine(self, sources: Sequence[OpenedSource]) -> None:
        """With ``engine="spark"``: PySpark and Java are there (:class:`SparkUnavailable`, one
        line) and every input is Parquet (an :class:`InputError` naming the first that is not)."""
        if self.engine != "spark":
            return
        from rarebird.sources.spark import check_spark

        check_spark()
        for source in sources:
            if source.format != "parquet":
                raise InputError(
                    source.name,
                    f"--engine spark reads Parquet inputs; this one is {source.format} "
                    "(use the local engine, or rarebird export parquet first)",
                )


def one_spark_scan(
    paths: Sequence[str], opened: list[OpenedSource], options: InputOptions, opts: SourceOptions
) -> list[OpenedSource]:
    """With ``engine="spark"``, several Parquet inputs become ONE Spark scan (one query, in the
    order the time merge of one scan per file would give); otherwise ``opened`` as it is."""
    options.check_engine(opened)
    if options.engine != "spark" or len(opened) < 2:
        return opened
    from rarebird.sources.identity import reader_options, with_identity
    from rarebird.sources.parquet import SparkParquetSource

    scan = SparkParquetSource(paths, reader_options(opts))
    return [OpenedSource(with_identity(scan, opts.identity), "parquet", None)]


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
    # -- Elasticsearch inputs (es+https://HOST:9200/INDEX-PATTERN): searched, not files -------
    from rarebird.run.elastic_inputs import open_elastic, split_specs

    elastic, specs = split_specs(specs)
    paths = expand_inputs(specs)
    opts = options.source_options(job, datafeed, inputs=len(paths))
    searched = [open_elastic(spec, job, datafeed, opts) for spec in elastic]
    # -- end of Elasticsearch inputs ------------------------------------------------------------
    opened = [open_source(path, options.format, opts) for path in paths]
    options.check_engine([*searched, *opened])
    return searched + one_spark_scan(paths, opened, options, opts)


def _ahead(sources: Sequence[OpenedSource]) -> int:
    """Events to read before any is offered: none ahead when an input is read as it is
    written (stdin, a FIFO), where they would wait for the host to write more."""
    return 1 if any(is_pipe(source.name) for source in sources) else READ_AHEAD


def replay_inputs(
    engine: Engine,
    specs: Sequence[str],
    options: InputOptions = InputOptions(),
    *,
    downtime: Sequence[tuple[datetime, datetime]] = (),
    on_run: Callable[[RuleRun], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 0.5,
    observe: Callable[[ProcessEvent, bool], None] | None = None,
) -> RunSummary:
    """Read ``specs`` and replay them through ``engine``; summarise. ``observe`` sees every
    event read, and whether the datafeed matched it."""
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
        progress_every=progress_every, observe=observe, ahead=_ahead(sources),
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


@dataclass
class ManyRunSummary:
    """What one pass over the inputs did for several jobs: read once, a report per job."""

    inputs: list[str]
    read: ReadStats
    per_source: list[tuple[str, ReadStats]]
    #: (job id, its replay's report), in the order the jobs were given
    reports: list[tuple[str, ReplayReport]]
    seconds: float = 0.0


def replay_inputs_many(
    engines: Sequence[Engine],
    specs: Sequence[str],
    options: InputOptions = InputOptions(),
    *,
    downtime: Sequence[tuple[datetime, datetime]] = (),
    on_run: Callable[[RuleRun], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 0.5,
) -> ManyRunSummary:
    """Read ``specs`` ONCE and give every event to each engine, whose own datafeed decides
    whether its job gets it (:meth:`Engine.replayer`): the sources skip only what none of the
    datafeeds could match. Each engine's job, rule runs and alerts are its own, as if it had
    replayed the inputs alone."""
    if not engines:
        raise ValueError("no engine to replay into")
    from rarebird.run.elastic_inputs import split_specs

    elastic, files = split_specs(specs)
    if elastic and len(engines) > 1:
        raise InputError(
            elastic[0].split("?", 1)[0],
            "an Elasticsearch input is searched with one datafeed's query: give one job "
            "(--job ID) per run",
        )
    if len(engines) == 1:
        one = replay_inputs(
            engines[0], specs, options, downtime=downtime, on_run=on_run,
            on_progress=on_progress, progress_every=progress_every,
        )  # fmt: skip
        return ManyRunSummary(
            one.inputs, one.read, one.per_source, [(engines[0].config.job_id, one.report)],
            one.seconds,
        )  # fmt: skip
    paths = expand_inputs(files)
    opts = options.source_options_for([(e.config, e.datafeed) for e in engines], inputs=len(paths))
    sources = one_spark_scan(
        paths, [open_source(path, options.format, opts) for path in paths], options, opts
    )
    merged_source = merge_by_time(sources)
    replays = [e.replayer(downtime=downtime, on_run=on_run) for e in engines]
    offers = [r.offer for r in replays]
    clock = engines[0].clock
    start = last_report = clock.monotonic()

    def progress(*, final: bool = False) -> None:
        if on_progress is not None:
            st = merged_source.stats
            kept = sum(r.matched for r in replays)
            on_progress(
                Progress(st.lines, st.bytes, st.events, kept, clock.monotonic() - start, final)
            )

    for batch in read_ahead(merged_source, _ahead(sources)):
        for ev in batch:
            for offer in offers:
                offer(ev)
            if on_progress is not None:
                now = clock.monotonic()
                if now - last_report >= progress_every:
                    last_report = now
                    progress()
    reports = [(e.config.job_id, r.finish()) for e, r in zip(engines, replays, strict=True)]
    seconds = clock.monotonic() - start
    progress(final=True)
    return ManyRunSummary(
        inputs=[s.describe() for s in sources],
        read=merged_source.stats,
        per_source=merged_source.per_source,
        reports=reports,
        seconds=seconds,
    )
