"""``serve`` following an Elasticsearch index pattern: the follower of
:mod:`rarebird.serve.follow.elastic` with its ECS chunk parser, built from the job's datafeed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rarebird.clock import Clock
from rarebird.definitions import DatafeedConfig, JobConfig
from rarebird.definitions.service import FollowConfig
from rarebird.errors import DefinitionError
from rarebird.run.elastic_inputs import search_plan
from rarebird.run.replay import InputOptions
from rarebird.serve.follow.elastic import ElasticFollower
from rarebird.serve.inputs import FollowedInput
from rarebird.sources import ChunkParser
from rarebird.sources.elasticsearch import ElasticSearcher
from rarebird.sources.es_client import ElasticError, is_elastic_spec, parse_target
from rarebird.timeutil import parse_duration

__all__ = ["is_elastic_spec", "open_elastic_input"]


def open_elastic_input(
    fc: FollowConfig,
    job: JobConfig,
    datafeed: DatafeedConfig,
    saved: dict[str, Any] | None,
    *,
    start_ms: int,
    clock: Clock,
    log: Callable[..., None],
) -> FollowedInput:
    """Follow the index pattern of ``fc`` from its ``saved`` position (None: from
    ``start_ms``, the backfill start or now - query_delay)."""
    options = InputOptions(identity=fc.identity, host_name=fc.host_name).source_options(
        job, datafeed
    )
    try:
        target = parse_target(fc.path)
        plan = search_plan(job, datafeed, options)
    except ElasticError as exc:
        raise DefinitionError(fc.path.split("?", 1)[0], None, str(exc)) from None
    check = dict(datafeed.raw.get("delayed_data_check_config") or {})
    if check.get("check_window"):
        try:
            check["check_window_ms"] = int(
                parse_duration(str(check["check_window"])).total_seconds() * 1000
            )
        except ValueError as exc:
            raise DefinitionError(
                datafeed.source, "delayed_data_check_config.check_window", str(exc)
            ) from None
    follower = ElasticFollower(
        fc.label, ElasticSearcher(target, plan), clock=clock,
        frequency_ms=_ms(datafeed.frequency_for(job.bucket_span)),
        query_delay_ms=_ms(datafeed.query_delay_for(job.job_id)),
        bucket_span_ms=job.bucket_span_s * 1000, start_ms=start_ms, state=saved,
        delayed_check=check, log=log,
    )  # fmt: skip
    return FollowedInput(follower, ChunkParser("ecs", fc.label, options))


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def start_for(
    now_ms: int, query_delay_ms: int, backfill_from_ms: int | None, backfill: bool
) -> int:
    """Where a first start searches from: the backfill window's start, else now - query_delay."""
    if backfill and backfill_from_ms is not None:
        return backfill_from_ms
    return now_ms - query_delay_ms
