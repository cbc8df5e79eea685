"""Stage 1 contract: bytes in, :class:`~rarebird.events.ProcessEvent` out.

A source reads one input (a file, or stdin) in one format and yields typed events, in file
order. It never raises on a bad line: it counts it in :attr:`Source.stats` with the file and
line, and goes on. It may use a :class:`Prefilter` (derived from the datafeed query) to skip,
without parsing, records that cannot possibly match; a prefilter may only ever over-approximate:
skipping a record the datafeed would keep is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent


@dataclass(frozen=True, slots=True)
class FieldCondition:
    """``field`` must have (at least one element equal to) one of ``values``, exactly."""

    field: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class Prefilter:
    """Necessary conditions for an event to match the datafeed: ALL of ``conditions`` hold.

    A source may check any subset of them (typically the most selective one it can test on raw
    bytes), as long as it never drops an event that satisfies them all. An empty prefilter keeps
    everything.
    """

    conditions: tuple[FieldCondition, ...] = ()

    def condition_for(self, field_name: str) -> FieldCondition | None:
        for cond in self.conditions:
            if cond.field == field_name:
                return cond
        return None

    def process_names(self) -> set[str] | None:
        """The names a process must have: the ``process.name`` condition's values, else the
        basenames of the ``process.executable`` one; None without either (what a text scan for
        the names of an executable can look for)."""
        cond = self.condition_for("process.name")
        if cond is not None:
            return set(cond.values)
        cond = self.condition_for("process.executable")
        if cond is None:
            return None
        return {v.rsplit("/", 1)[-1] for v in cond.values}

    def admits(self, field_name: str, value: str | None) -> bool:
        """False when ``field_name``'s condition rules ``value`` out: an event whose only value
        of that field is ``value`` cannot hold, so a reader need not build it."""
        cond = self.condition_for(field_name)
        return cond is None or value in cond.values

    def holds(self, event: ProcessEvent) -> bool:
        """True when the parsed event satisfies every condition, exactly (keyword semantics)."""
        return all(any(v in cond.values for v in event.get(cond.field)) for cond in self.conditions)

    def without(self, fields: frozenset[str]) -> Prefilter:
        """The prefilter less its conditions on ``fields`` (still a superset of the matches)."""
        kept = tuple(c for c in self.conditions if c.field not in fields)
        return self if len(kept) == len(self.conditions) else Prefilter(kept)


KEEP_ALL = Prefilter()


@dataclass(frozen=True, slots=True)
class SqlColumn:
    """How a columnar source reads one ECS field: a SQL expression, and its shape."""

    #: the SQL expression (``"process"."name"`` for a nested struct, ``"process.name"`` flat)
    expr: str
    #: a list column (``VARCHAR[]``): Elasticsearch's "any element" semantics apply
    is_list: bool = False
    #: strings (``VARCHAR`` / ``VARCHAR[]``); other types are compared only in Python
    is_text: bool = True


class SqlFilter(Protocol):
    """The datafeed query as a SQL ``WHERE`` (:mod:`rarebird.datafeed.sql`), for columnar sources.

    ``render(columns, dialect)`` gives the condition and its parameters for the columns an input
    has (a field it lacks is missing), in DuckDB's SQL or Spark's (``"spark"``: no parameters). The condition keeps every row the query matches and may keep
    more (what SQL cannot say is left to the datafeed's own check after parsing).
    """

    @property
    def fields(self) -> frozenset[str]: ...

    def render(
        self, columns: Mapping[str, SqlColumn], dialect: str = "duckdb"
    ) -> tuple[str, list[object]]: ...

    def exact(self, columns: Mapping[str, SqlColumn]) -> bool:
        """Whether the condition is the whole query (nothing left to the datafeed's check)."""
        ...


#: Values of :attr:`SourceOptions.identity`: Elastic's ``user.name`` (the real user), or the
#: login user behind ``sudo`` (see :mod:`rarebird.sources.identity`).
IDENTITIES = ("user", "login")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Options every source factory receives; each format uses the ones that apply to it."""

    prefilter: Prefilter = KEEP_ALL
    #: host.name for formats that do not carry one (raw auditd without node=)
    host_name: str | None = None
    #: passwd(5) file used to resolve numeric uids/gids (raw auditd)
    passwd: str | None = None
    #: group(5) file used to resolve numeric gids (raw auditd)
    group: str | None = None
    #: "user" (Elastic's user.name, the default) or "login" (the audit/login user behind sudo);
    #: applied by the sources layer (:func:`~rarebird.sources.registry.open_format`) to every
    #: format alike, never by a format's reader
    identity: str = "user"
    #: lines longer than this are reported and skipped
    max_line_bytes: int = 16 * 1024 * 1024
    #: fields the consumer needs besides the typed ones (datafeed query, by-field,
    #: influencers); None keeps every field. Sources may skip the rest while parsing.
    fields: frozenset[str] | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: the datafeed query as SQL, for columnar sources to push down (None: read every row)
    pushdown: SqlFilter | None = None

    def __post_init__(self) -> None:
        if self.identity not in IDENTITIES:
            raise ValueError(f"unknown identity {self.identity!r} (expected one of {IDENTITIES})")


class Source(Protocol):
    """An iterable of events from one input, with counts of what was read and skipped.

    A source may also say how it read its input, once it has: ``reading() -> str | None``
    (shown after the input's name and format, :meth:`~rarebird.sources.inputs.OpenedSource.describe`).
    """

    @property
    def name(self) -> str:
        """The input's path (or ``-`` for stdin), for messages."""
        ...

    @property
    def stats(self) -> ReadStats:
        """Counts so far; complete once iteration has finished."""
        ...

    def __iter__(self) -> Iterator[ProcessEvent]: ...


class SourceFactory(Protocol):
    def __call__(self, path: str, options: SourceOptions) -> Source: ...


#: ``sniffer(first_bytes) -> confidence`` in ``[0, 1]``: how sure a format is that an input
#: starting with these (decompressed) bytes is written in it.
Sniffer = Callable[[bytes], float]

#: ``framer(data, final, idle) -> n``: how many leading bytes of ``data`` are complete records
#: that can be parsed on their own (``final``: the input has ended; ``idle``: nothing was
#: written for a while, so a last event that looks unfinished is complete after all).
Framer = Callable[[bytes, bool, bool], int]

#: A JSON object as orjson parses it. Documents are walked with ``type(value) is ...`` checks
#: (the fast idiom for what orjson returns), so their values stay ``Any`` rather than a
#: recursive JSON union that every access would have to narrow; whatever a document holds is
#: checked where it is read, and turned into typed :class:`~rarebird.events.ProcessEvent`
#: attributes there.
JsonObject = dict[str, Any]
