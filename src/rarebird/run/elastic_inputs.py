"""Elasticsearch inputs: ``es+https://HOST:9200/INDEX-PATTERN`` given to ``job run``,
``detect`` (and ``serve``) beside files. Not a file format: the spec is recognised where inputs
are expanded and opened (:func:`rarebird.run.replay.open_inputs`), and searched with the job's
datafeed (:mod:`rarebird.sources.elasticsearch`)."""

from __future__ import annotations

from collections.abc import Sequence

from rarebird.definitions import DatafeedConfig, JobConfig
from rarebird.errors import InputError
from rarebird.sources.base import SourceOptions
from rarebird.sources.elasticsearch import ElasticsearchSource, SearchPlan
from rarebird.sources.es_client import ElasticError, is_elastic_spec, parse_target
from rarebird.sources.identity import reader_options, with_identity
from rarebird.sources.inputs import OpenedSource

#: the format name an Elasticsearch input is described with
FORMAT = "elasticsearch"


def split_specs(specs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(Elasticsearch specs, the other specs), each in the order given."""
    return [s for s in specs if is_elastic_spec(s)], [s for s in specs if not is_elastic_spec(s)]


def search_plan(job: JobConfig, datafeed: DatafeedConfig, options: SourceOptions) -> SearchPlan:
    """The searches the job's datafeed makes."""
    return SearchPlan.from_datafeed(
        datafeed.raw, time_field=job.time_field,
        query_delay=datafeed.query_delay_for(job.job_id), fields=options.fields,
    )  # fmt: skip


def open_elastic(
    spec: str, job: JobConfig, datafeed: DatafeedConfig, options: SourceOptions
) -> OpenedSource:
    """An Elasticsearch input, opened (nothing is searched until it is iterated)."""
    try:
        target = parse_target(spec)
        plan = search_plan(job, datafeed, options)
    except ElasticError as exc:
        raise InputError(spec.split("?", 1)[0], str(exc)) from None
    source = ElasticsearchSource(target, plan, reader_options(options))
    return OpenedSource(with_identity(source, options.identity), FORMAT, None)
