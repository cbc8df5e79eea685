"""``job run --aggregate``: the per-bucket, per-user counting done where Parquet is scanned.

The same replay as :func:`~rarebird.run.replay.replay_inputs` -- one engine, its job, its store
-- fed with :class:`~rarebird.events.EventGroup` s from DuckDB
(:mod:`rarebird.sources.parquet_groups`) or Spark (:mod:`rarebird.sources.spark_groups`)
instead of one event at a time. The records are the per-event replay's; what is not there is
what needs the events themselves: the events kept for ``triage``, the rule (``detect``) and the
quiet profile. Every refusal says why in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rarebird.errors import InputError, RarebirdError
from rarebird.events import EventGroup
from rarebird.job.anomaly import IDENTITY_FIELDS
from rarebird.run.engine import Engine
from rarebird.run.replay import InputOptions, Progress, RunSummary
from rarebird.sources import expand_inputs, open_source
from rarebird.sources.parquet_groups import GroupSpec, ParquetGroups
from rarebird.store.runs import record_counted_run


class NotAggregable(RarebirdError):
    """``--aggregate`` asked for where it cannot give the per-event replay's results."""


def group_spec(engine: Engine, lo_us: int, hi_us: int) -> GroupSpec:
    """What the engine's job keeps per user and bucket."""
    job = engine.config
    by = job.detectors[0].by_field_name if len(job.detectors) == 1 else None
    if by is None:
        raise NotAggregable("--aggregate needs a job with one detector split by a field")
    fields = tuple(dict.fromkeys([*job.influencers, *(f for f in IDENTITY_FIELDS if f != by)]))
    return GroupSpec(by, fields, job.bucket_span_s, lo_us, hi_us)


def replay_aggregated(
    engine: Engine,
    specs: Sequence[str],
    options: InputOptions,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 0.5,
) -> RunSummary:
    """Replay Parquet ``specs`` through ``engine`` (a job without rule or profile) as groups."""
    if engine.rule is not None or engine.profile is not None:
        raise NotAggregable("--aggregate runs a job alone: no rule, no --profile quiet")
    if options.identity != "user":
        raise NotAggregable("--aggregate models user.name as it is: not with --identity login")
    paths = expand_inputs(specs)
    opts = options.source_options(engine.config, engine.datafeed, inputs=len(paths))
    for path in paths:
        opened = open_source(path, options.format, opts)
        if opened.format != "parquet":
            raise InputError(path, f"--aggregate reads Parquet inputs; this one is "
                             f"{opened.format} (rarebird export parquet writes it as Parquet)")  # fmt: skip
    scanner = "Spark" if options.engine == "spark" else "DuckDB"
    replay = engine.replayer()
    spec = group_spec(engine, *replay.plausible_us())
    if options.engine == "spark":
        from rarebird.sources.spark_groups import SparkGroups

        source: ParquetGroups = SparkGroups(paths, opts, spec)
    else:
        source = ParquetGroups(paths, opts, spec)
    clock = engine.clock
    start = last = clock.monotonic()
    started = clock.now()
    first_seen: EventGroup | None = None

    def progress(*, final: bool = False) -> None:
        if on_progress is not None:
            st = source.stats
            on_progress(Progress(st.lines, st.bytes, st.events, replay.matched,
                                 clock.monotonic() - start, final))  # fmt: skip

    for item in source:
        if isinstance(item, EventGroup):
            replay.offer_group(item)
            first_seen = first_seen or item
        else:
            replay.quarantine(item)
        if on_progress is not None and clock.monotonic() - last >= progress_every:
            last = clock.monotonic()
            progress()
    report = replay.finish()
    # what triage and the alert pages must say is missing: this run's events were not kept
    record_counted_run(
        engine.store, engine.config.job_id, started=started, finished=clock.now(),
        inputs=list(paths), counted_by=scanner, events=replay.matched,
        first=first_seen.first if first_seen else None, last=replay.last_event,
    )  # fmt: skip
    seconds = clock.monotonic() - start
    progress(final=True)
    return RunSummary(
        inputs=[f"{source.name}: parquet, counted by {scanner}"],
        read=source.stats,
        per_source=[(source.name, source.stats)],
        report=report,
        seconds=seconds,
    )
