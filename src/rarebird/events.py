"""The one typed event every source produces: a Linux process event in ECS terms.

Sources (ECS NDJSON, raw auditd, Laurel, Sysmon for Linux, osquery) parse their input once into
:class:`ProcessEvent`. The fields rarebird itself reasons about are typed attributes named after
their ECS field (``user.name`` -> ``user_name``); any other field a datafeed query or an
influencer may name is kept, flattened to dotted keys with keyword-string values, in ``extra``.
:meth:`ProcessEvent.get` looks up either by ECS name, with Elasticsearch keyword semantics
(every value a string, arrays as tuples).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

from rarebird.documents import set_path
from rarebird.timeutil import iso


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where an event or a bad line came from: file and 1-based line number."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessEvent:
    """A process event (normally a start/exec) in ECS terms. Time is UTC-aware."""

    timestamp: datetime
    # event.*
    event_kind: str | None = None
    event_type: tuple[str, ...] = ()
    event_category: tuple[str, ...] = ()
    event_action: str | None = None
    event_outcome: str | None = None
    event_module: str | None = None
    event_dataset: str | None = None
    # user.* (user.name is the job's by-field)
    user_name: str | None = None
    user_id: str | None = None
    user_audit_name: str | None = None
    user_audit_id: str | None = None
    user_effective_name: str | None = None
    user_effective_id: str | None = None
    group_name: str | None = None
    group_id: str | None = None
    # process.*
    process_name: str | None = None
    process_executable: str | None = None
    process_args: tuple[str, ...] = ()
    process_command_line: str | None = None
    process_title: str | None = None
    process_pid: int | None = None
    process_working_directory: str | None = None
    process_entity_id: str | None = None
    process_parent_pid: int | None = None
    process_parent_name: str | None = None
    process_parent_executable: str | None = None
    process_parent_args: tuple[str, ...] = ()
    # host.*
    host_name: str | None = None
    host_id: str | None = None
    host_hostname: str | None = None
    host_os_type: str | None = None
    host_os_family: str | None = None
    host_os_platform: str | None = None
    tags: tuple[str, ...] = ()
    #: every other field, flattened to dotted names, values as keyword strings
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: where the event was read from (None for constructed events)
    origin: SourceLocation | None = None

    def get(self, name: str) -> tuple[str, ...]:
        """Values of an ECS field with keyword semantics: () when absent.

        >>> from datetime import UTC, datetime
        >>> ev = ProcessEvent(timestamp=datetime(2026, 1, 5, tzinfo=UTC), user_name="alice",
        ...                   process_args=("ss", "-tunap"), process_pid=42)
        >>> ev.get("user.name"), ev.get("process.args"), ev.get("process.pid"), ev.get("nope")
        (('alice',), ('ss', '-tunap'), ('42',), ())
        """
        attr = FIELD_ATTRS.get(name)
        if attr is None:
            if name == "@timestamp":
                return (iso(self.timestamp),)
            return self.extra.get(name, ())
        value = getattr(self, attr)
        if value is None:
            return ()
        if isinstance(value, tuple):
            return value
        if isinstance(value, str):
            return (value,)
        return (str(value),)

    def value(self, name: str) -> str | None:
        """One string for the field, multi-valued fields joined with ',' as autodetect sees them.

        Elasticsearch hands an array to the anomaly detector as its scalar elements joined by
        commas (``XContentRecordReader``); an empty array or missing field gives None.
        """
        values = self.get(name)
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return ",".join(values)

    def with_origin(self, origin: SourceLocation) -> ProcessEvent:
        return replace(self, origin=origin)

    def iter_fields(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """Every non-empty field as (ECS name, values)."""
        yield "@timestamp", (iso(self.timestamp),)
        for name in FIELD_ATTRS:
            values = self.get(name)
            if values:
                yield name, values
        yield from self.extra.items()

    def to_ecs(self, *, extra: bool = True) -> dict[str, Any]:
        """The event as a nested ECS document (typed numbers kept as numbers); with
        ``extra=False`` only the typed fields."""
        doc: dict[str, Any] = {"@timestamp": iso(self.timestamp)}
        for attr, parts, is_array in _ECS_PATHS:
            value = getattr(self, attr)
            if value is None or value == ():
                continue
            node = doc
            for part in parts[:-1]:
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                node = child
            node[parts[-1]] = list(value) if is_array else value
        if extra:
            for name, values in self.extra.items():
                set_path(doc, name, values[0] if len(values) == 1 else list(values))
        return doc


@dataclass(frozen=True, slots=True)
class EventGroup:
    """The matching events of one by-field value in one bucket, counted where they were scanned
    (``job run --aggregate``: DuckDB or Spark groups the rows, only the groups reach Python).

    The job treats a group as its ``count`` events fed one after another
    (:meth:`~rarebird.job.anomaly.AnomalyJob.feed_group`): groups come in the order of their
    first events, and ``values`` holds, for each influencer and identity field, the distinct
    values of the group's events (as :meth:`ProcessEvent.value` gives them) in the order they
    first appeared. ``value`` is the by-field's value (None: the events lack it).
    """

    value: str | None
    count: int
    #: the times of the group's first and last events
    first: datetime
    last: datetime
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def value_getter(name: str) -> Callable[[ProcessEvent], str | None]:
    """A fast ``lambda event: event.value(name)`` for one field (used per event by the job)."""
    attr = FIELD_ATTRS.get(name)
    if attr is None:
        if name == "@timestamp":
            return lambda ev: iso(ev.timestamp)

        def from_extra(ev: ProcessEvent) -> str | None:
            values = ev.extra.get(name)
            if not values:
                return None
            return values[0] if len(values) == 1 else ",".join(values)

        return from_extra
    get = attrgetter(attr)
    if name in ARRAY_FIELDS:

        def from_array(ev: ProcessEvent) -> str | None:
            values = get(ev)
            if not values:
                return None
            return values[0] if len(values) == 1 else ",".join(values)

        return from_array
    if name in INT_FIELDS:

        def from_int(ev: ProcessEvent) -> str | None:
            value = get(ev)
            return None if value is None else str(value)

        return from_int
    return cast(Callable[[ProcessEvent], str | None], get)


#: ECS dotted name -> ProcessEvent attribute, for every typed attribute.
FIELD_ATTRS: dict[str, str] = {}
_SPECIAL = {
    "process_working_directory": "process.working_directory",
    "process_command_line": "process.command_line",
    "process_entity_id": "process.entity_id",
    "process_parent_pid": "process.parent.pid",
    "process_parent_name": "process.parent.name",
    "process_parent_executable": "process.parent.executable",
    "process_parent_args": "process.parent.args",
    "user_audit_name": "user.audit.name",
    "user_audit_id": "user.audit.id",
    "user_effective_name": "user.effective.name",
    "user_effective_id": "user.effective.id",
    "host_os_type": "host.os.type",
    "host_os_family": "host.os.family",
    "host_os_platform": "host.os.platform",
}
for _f in fields(ProcessEvent):
    if _f.name in ("timestamp", "extra", "origin"):
        continue
    FIELD_ATTRS[_SPECIAL.get(_f.name, _f.name.replace("_", "."))] = _f.name
del _f

#: Typed attributes that are arrays in ECS.
ARRAY_FIELDS = frozenset(
    {"event.type", "event.category", "process.args", "process.parent.args", "tags"}
)
#: Typed attributes that are integers in ECS.
INT_FIELDS = frozenset({"process.pid", "process.parent.pid"})
#: (attribute, nested path, is array) for building ECS documents quickly.
_ECS_PATHS = tuple(
    (attr, tuple(name.split(".")), name in ARRAY_FIELDS) for name, attr in FIELD_ATTRS.items()
)
