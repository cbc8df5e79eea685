"""ECS JSON documents (the ``ecs`` format), as Elastic Defend, Auditbeat and Auditd Manager
write them.

What is read
------------
- **Layouts.** Newline-delimited JSON (one document per line; blank lines are ignored) and
  *document streams*: pretty-printed objects spanning several lines, one after the other (an
  es_archive ``data.json``, a single pretty-printed document, a pretty-printed ``_search``
  response). The layout is chosen from the first non-blank line: if it is not a whole JSON value
  and the next line is indented (or closes a bracket), the input is a document stream. In a
  stream, a record starts at every line whose first byte is ``{`` or ``[``; a record is limited
  to ``max_line_bytes`` like a line (a whole pretty-printed ``_search`` response is one record).
- **Envelopes.** A plain document; a ``_search`` hit (``{"_index":..., "_source": {...}}``); a
  whole ``_search`` response (``{"hits": {"hits": [...]}}``: every hit); an es_archive record
  (``{"type": "doc", "value": {"source": {...}}}``; ``"type": "index"`` records are ignored);
  a JSON array of any of these.
- **Keys.** Nested (``{"process": {"name": "ss"}}``), dotted (``{"process.name": "ss"}``) or a
  mix, at any depth, as Elasticsearch reads them. Arrays of objects contribute every element's
  fields, arrays of scalars become tuples, ``null`` and empty arrays are absent.
- **Values.** The typed attributes of :class:`~rarebird.events.ProcessEvent` are filled from
  their ECS fields (a scalar field given several values keeps the first; a pid that is not an
  integer is left out); every other leaf goes into ``extra`` under its dotted name, as keyword
  strings: numbers as their decimal text (``42``, ``1.5``), booleans ``true``/``false``.
- **Time.** ``@timestamp`` as ISO-8601 (naive means UTC) or epoch milliseconds. A document
  without one is skipped and counted (``missing @timestamp`` / ``bad @timestamp``).
- **Compression.** gzip by magic bytes, on files, FIFOs and stdin (see
  :mod:`rarebird.sources.inputs`).

A bad line (not JSON, not an object, truncated, NUL bytes, too long) is counted in
:attr:`EcsSource.stats` with its file:line and never costs its neighbours.

Modules
-------
- :mod:`.documents`: envelopes, keys and values of a parsed document, into a ProcessEvent;
- :mod:`.prefilter`: the datafeed's prefilter as byte patterns, found over whole chunks;
- :mod:`.lane`: the msgspec quick lane for a plain candidate line (only the wanted fields);
- :mod:`.layout`: NDJSON or document stream, the stream's records, the sniffer;
- :mod:`.reader`: :class:`EcsSource`, reading an input in chunks with all of the above.
"""

from __future__ import annotations

from rarebird.sources.ecs.documents import (
    PREFILTERED,
    DocumentError,
    documents_in,
    event_from_document,
    flatten_document,
    keyword,
)
from rarebird.sources.ecs.layout import detect_layout, sniff_ecs
from rarebird.sources.ecs.prefilter import ByteCondition, byte_conditions
from rarebird.sources.ecs.reader import EcsSource, open_ecs

__all__ = [
    "PREFILTERED",
    "ByteCondition",
    "DocumentError",
    "EcsSource",
    "byte_conditions",
    "detect_layout",
    "documents_in",
    "event_from_document",
    "flatten_document",
    "keyword",
    "open_ecs",
    "sniff_ecs",
]
