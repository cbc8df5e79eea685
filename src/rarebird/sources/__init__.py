"""Stage 1: sources, bytes to typed :class:`~rarebird.events.ProcessEvent`.

- :mod:`.base`: the contract (:class:`Source`, :class:`SourceOptions`, :class:`Prefilter`);
- :mod:`.registry`: the one table of input formats, each imported on first use, and
  :func:`open_format`, through which every input is opened (the login identity is applied
  there, :mod:`.identity`);
- :mod:`.inputs`: which files to read, opening them (gzip, pipes), :func:`open_source`
  (``auto`` sniffs, :mod:`.sniff`), several inputs merged into one time order;
- :mod:`.chunks`: :class:`ChunkParser`, chunks of followed bytes to events (``serve``);
- the formats: :mod:`.ecs`, :mod:`.auditd`, :mod:`.laurel`, :mod:`.sysmon`, :mod:`.osquery`
  (the last three read by :mod:`.lines`) and :mod:`.columnar` (``csv``).

This package re-exports the small public surface; the formats' own names live in their
modules (``rarebird.sources.ecs.event_from_document``...).
"""

from __future__ import annotations

from rarebird.sources.base import (
    IDENTITIES,
    KEEP_ALL,
    FieldCondition,
    Framer,
    Prefilter,
    Sniffer,
    Source,
    SourceFactory,
    SourceOptions,
)
from rarebird.sources.chunks import ChunkParser, ParsedChunk
from rarebird.sources.identity import as_login_identity
from rarebird.sources.inputs import (
    STDIN,
    MergedSource,
    OpenedSource,
    expand_inputs,
    merge_by_time,
    open_binary,
    open_source,
)
from rarebird.sources.registry import (
    BUILTIN,
    BUILTIN_FORMATS,
    FormatSpec,
    InputFormat,
    format_names,
    load_builtin_formats,
    open_format,
    register_format,
    registered_formats,
)

__all__ = [
    "BUILTIN",
    "BUILTIN_FORMATS",
    "IDENTITIES",
    "KEEP_ALL",
    "STDIN",
    "ChunkParser",
    "FieldCondition",
    "FormatSpec",
    "Framer",
    "InputFormat",
    "MergedSource",
    "OpenedSource",
    "ParsedChunk",
    "Prefilter",
    "Sniffer",
    "Source",
    "SourceFactory",
    "SourceOptions",
    "as_login_identity",
    "expand_inputs",
    "format_names",
    "load_builtin_formats",
    "merge_by_time",
    "open_binary",
    "open_format",
    "open_source",
    "register_format",
    "registered_formats",
]
