"""OCSF Process Activity (``class_uid`` 1007) as ECS: NDJSON here, Parquet through the same mapping in SQL.

``--input-format ocsf`` (``auto`` recognises lines with ``class_uid`` and ``activity_id``) reads
one OCSF event per line, as AWS Security Lake and other OCSF producers write them; Parquet files
in OCSF shape are read by :mod:`rarebird.sources.parquet` with :func:`ocsf_sql_columns`, the same
mapping written as SQL expressions (so the datafeed query is pushed down to OCSF columns too).
Events of other classes are counted (``not OCSF Process Activity``) and skipped.

The mapping (docs/FORMATS.md has it as a table, with the schema files it follows):

============================  ==================================================================
ECS                           OCSF
============================  ==================================================================
``@timestamp``                ``time`` (epoch milliseconds)
``event.type``                ``activity_id``: 1 Launch → ``start``, 2 Terminate → ``end``,
                              5 Set User ID → ``change``; other activities have none
``event.category`` / ``kind``  ``process`` / ``event``; ``event.action`` = ``activity_name``
``process.name``              ``process.name``, else ``process.file.name``
``process.executable``        ``process.file.path``
``process.pid``               ``process.pid``
``process.command_line``      ``process.cmd_line``
``process.args``              ``process.cmd_line`` split on single spaces (OCSF has no argv)
``process.parent.*``          ``process.parent_process``: ``pid``, ``name`` (else
                              ``file.name``), ``executable`` = ``file.path``
``user.name`` / ``user.id``   ``process.user.name`` / ``uid`` (the user the process runs as,
                              Elastic's ``user.name``), else ``actor.user.name`` / ``uid``
``user.audit.name`` / ``id``  ``actor.user.name`` / ``uid``: the user the launch was initiated
                              from, the login identity behind ``sudo`` (``--identity login``)
``host.name``                 ``device.hostname``, else ``device.name``; ``host.hostname`` =
                              ``device.hostname``, ``host.id`` = ``device.uid``
``host.os.type``              ``linux`` when ``device.os.type_id`` is 200 (Linux) or
                              ``device.os.type`` is ``Linux``; ``host.os.name`` = ``device.os.name``
``process.session_leader.entity_id``  ``actor.session.uid`` (OCSF's session names no user)
============================  ==================================================================
"""

from __future__ import annotations

from typing import Any

from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.base import JsonObject, SourceOptions, SqlColumn
from rarebird.sources.ecs.documents import DocumentError, event_from_document, keyword
from rarebird.sources.lines import LineError, LineSource, json_object
from rarebird.sources.sniff import json_lines_score

PROCESS_ACTIVITY = 1007
#: activity_id → ECS event.type
EVENT_TYPES = {1: "start", 2: "end", 5: "change"}
LINUX_TYPE_ID = 200


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _text(doc: JsonObject, *paths: str) -> str | None:
    for path in paths:
        value = keyword(_at(doc, path))
        if value is not None:
            return value
    return None


def ecs_document(doc: JsonObject) -> dict[str, Any]:
    """The ECS document (dotted keys) of one OCSF Process Activity event."""
    out: dict[str, Any] = {"@timestamp": doc.get("time")}
    activity = doc.get("activity_id")
    kind = EVENT_TYPES.get(activity) if type(activity) is int else None
    cmd_line = _text(doc, "process.cmd_line")
    os_type = _text(doc, "device.os.type")
    linux = _at(doc, "device.os.type_id") == LINUX_TYPE_ID or (
        os_type is not None and os_type.lower() == "linux"
    )
    fields: dict[str, Any] = {
        "event.kind": "event",
        "event.category": ["process"],
        "event.type": [kind] if kind else None,
        "event.action": _text(doc, "activity_name"),
        "process.name": _text(doc, "process.name", "process.file.name"),
        "process.executable": _text(doc, "process.file.path"),
        "process.pid": _at(doc, "process.pid"),
        "process.command_line": cmd_line,
        "process.args": cmd_line.split(" ") if cmd_line else None,
        "process.parent.pid": _at(doc, "process.parent_process.pid"),
        "process.parent.name": _text(
            doc, "process.parent_process.name", "process.parent_process.file.name"
        ),
        "process.parent.executable": _text(doc, "process.parent_process.file.path"),
        "user.name": _text(doc, "process.user.name", "actor.user.name"),
        "user.id": _text(doc, "process.user.uid", "actor.user.uid"),
        "user.audit.name": _text(doc, "actor.user.name"),
        "user.audit.id": _text(doc, "actor.user.uid"),
        "host.name": _text(doc, "device.hostname", "device.name"),
        "host.hostname": _text(doc, "device.hostname"),
        "host.id": _text(doc, "device.uid"),
        "host.os.type": "linux" if linux else None,
        "host.os.name": _text(doc, "device.os.name"),
        "process.session_leader.entity_id": _text(doc, "actor.session.uid"),
    }
    out.update((k, v) for k, v in fields.items() if v is not None)
    return out


class OcsfSource(LineSource):
    """Process events from OCSF NDJSON (one event per line)."""

    format_name = "ocsf"

    def parse_line(self, line: bytes, where: SourceLocation) -> list[ProcessEvent]:
        doc = json_object(line, "ocsf")
        if doc.get("class_uid") != PROCESS_ACTIVITY:
            raise LineError(f"not OCSF Process Activity (class_uid {doc.get('class_uid')!r})")
        if type(doc.get("time")) not in (int, float):
            raise LineError("ocsf: no time (epoch milliseconds)")
        try:
            return [event_from_document(ecs_document(doc), where)]
        except DocumentError as exc:
            raise LineError(f"ocsf: {exc.reason}") from None


def sniff_ocsf(head: bytes) -> float:
    """Confidence that ``head`` starts OCSF NDJSON."""
    return json_lines_score(head, "class_uid", ("activity_id", "type_uid"))


def open_ocsf(path: str, options: SourceOptions) -> OcsfSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``ocsf`` format."""
    return OcsfSource(path, options)


# --- the same mapping as SQL, for Parquet ---------------------------------------------------------

Columns = dict[str, tuple[SqlColumn, str]]


def ocsf_sql_columns(leaves: Columns) -> tuple[Columns, str]:
    """The ECS fields of an OCSF table as SQL expressions over its columns (as
    :func:`ecs_document` maps them), and the condition its rows must meet (class 1007)."""

    def col(*names: str, text: bool = True) -> str:
        found = [leaves[n][0].expr for n in names if n in leaves]
        if text:
            found = [f"CAST({e} AS VARCHAR)" for e in found]
        if not found:
            return "NULL"
        return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

    activity = col("activity_id", text=False)
    cmd = col("process.cmd_line")
    os_type = col("device.os.type")
    cases = " ".join(f"WHEN {k} THEN ['{v}']" for k, v in EVENT_TYPES.items())
    text: dict[str, str] = {
        "event.kind": "'event'",
        "event.action": col("activity_name"),
        "process.name": col("process.name", "process.file.name"),
        "process.executable": col("process.file.path"),
        "process.command_line": cmd,
        "process.parent.name": col(
            "process.parent_process.name", "process.parent_process.file.name"
        ),
        "process.parent.executable": col("process.parent_process.file.path"),
        "user.name": col("process.user.name", "actor.user.name"),
        "user.id": col("process.user.uid", "actor.user.uid"),
        "user.audit.name": col("actor.user.name"),
        "user.audit.id": col("actor.user.uid"),
        "host.name": col("device.hostname", "device.name"),
        "host.hostname": col("device.hostname"),
        "host.id": col("device.uid"),
        "host.os.type": (
            f"CASE WHEN {col('device.os.type_id', text=False)} = {LINUX_TYPE_ID} "
            f"OR lower({os_type}) = 'linux' THEN 'linux' END"
        ),
        "host.os.name": col("device.os.name"),
        "process.session_leader.entity_id": col("actor.session.uid"),
    }
    out: Columns = {"@timestamp": leaves["time"]}
    out.update((name, (SqlColumn(f"({expr})"), "varchar")) for name, expr in text.items())
    lists = {
        "event.category": "['process']",
        "event.type": f"CASE {activity} {cases} END",
        "process.args": f"CASE WHEN {cmd} <> '' THEN string_split({cmd}, ' ') END",
    }
    out.update(
        (name, (SqlColumn(f"({expr})", is_list=True), "list")) for name, expr in lists.items()
    )
    for name, source in (("process.pid", "process.pid"),
                         ("process.parent.pid", "process.parent_process.pid")):  # fmt: skip
        if source in leaves:
            out[name] = leaves[source]
    return out, f"{leaves['class_uid'][0].expr} = {PROCESS_ACTIVITY}"
