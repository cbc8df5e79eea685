"""Stage 7: alert outputs. :func:`open_sink` builds one from a command-line spec.

============================== ================================================================
``sqlite:PATH``                the alerts table of another rarebird store (the run's own store
                               always has them)
``ndjson:PATH`` / ``ndjson:-`` one alert document per line, appended to a file, or stdout
``es-bulk:PATH``               an Elasticsearch ``_bulk`` body: ``create`` (``require_alias``) new
                               alerts, partial ``update`` of changed ones, in each alert's space's
                               ``.alerts-security.alerts-<space>``
``elasticsearch+https://HOST``  the same actions sent to a live cluster with the official client
(or ``es+https://HOST``)       (:mod:`rarebird.sinks.elasticsearch`; credentials from the
                               environment or a config file, never the command line)
``http://...`` / ``https://``  webhook: one JSON POST per alert (authentication from the
                               environment, see :mod:`.webhook`, or ``headers=``)
``syslog+udp://HOST:PORT``     RFC 5424 over UDP (RFC 5426)
``syslog+tcp://HOST:PORT``     RFC 5424 over TCP with octet-counting framing (RFC 6587)
============================== ================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from rarebird.sinks.base import Sink, SinkError
from rarebird.sinks.elasticsearch import ElasticsearchSink
from rarebird.sinks.files import EsBulkSink, NdjsonSink, SqliteSink
from rarebird.sinks.syslog import SyslogSink
from rarebird.sinks.webhook import WebhookSink, auth_from_env
from rarebird.sources.es_client import ElasticError, is_elastic_spec, parse_target

__all__ = [
    "ElasticsearchSink",
    "EsBulkSink",
    "NdjsonSink",
    "Sink",
    "SinkError",
    "SqliteSink",
    "SyslogSink",
    "WebhookSink",
    "open_sink",
]


def open_sink(
    spec: str, *, hostname: str | None = None, headers: Mapping[str, str] | None = None
) -> Sink:
    """A sink from its spec (see the module docstring); a sink's ``name`` is its spec, so it
    can be opened again from it. ``hostname``: the syslog HOSTNAME field; ``headers``: the
    webhook's extra headers (authentication), by default from the environment."""
    if spec.startswith(("http://", "https://")):
        return WebhookSink(spec, headers=auth_from_env() if headers is None else headers)
    if is_elastic_spec(spec):
        try:
            return ElasticsearchSink(parse_target(spec))
        except ElasticError as exc:
            raise SinkError(str(exc)) from None
    if spec.startswith(("syslog+udp://", "syslog+tcp://")):
        parts = urlsplit(spec)
        if not parts.hostname or not parts.port:
            raise SinkError(f"{spec}: expected syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT")
        protocol = parts.scheme.split("+", 1)[1]
        return SyslogSink(parts.hostname, parts.port, protocol=protocol, hostname=hostname)
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise SinkError(
            f"unknown output {spec!r} (expected ndjson:PATH, ndjson:-, es-bulk:PATH, sqlite:PATH, "
            "http(s)://URL, elasticsearch+https://HOST:9200, syslog+udp://HOST:PORT or "
            "syslog+tcp://HOST:PORT)"
        )
    if kind == "ndjson":
        return NdjsonSink(target)
    if kind in ("es-bulk", "bulk"):
        return EsBulkSink(target)
    if kind == "sqlite":
        return SqliteSink.open(target)
    raise SinkError(f"unknown output kind {kind!r} in {spec!r}")
