"""Parquet input (format ``parquet``): ECS or OCSF events read with DuckDB, the datafeed pushed down.

A Parquet file holds events in one of these shapes, told apart by its columns:

- **ECS, nested**: structs as DuckDB and Spark write them from ECS JSON (``process`` a
  ``STRUCT(name VARCHAR, args VARCHAR[], ...)``, read as ``"process"."name"``);
- **ECS, flat**: one column per dotted field name (``"process.name"``), as SQL exports write;
  the two may be mixed;
- **OCSF** Process Activity (a ``class_uid`` and a ``time`` column): each ECS field the job reads
  is a SQL expression over the OCSF columns (:mod:`rarebird.sources.ocsf`).

The datafeed query, compiled to SQL (:class:`~rarebird.sources.base.SqlFilter`, from
:mod:`rarebird.datafeed.sql`), is the scan's ``WHERE`` and only the fields the job and the
datafeed read are projected, so DuckDB decodes the matching rows' wanted columns and nothing
else; rows that cannot match are counted as prefiltered. The rows come back in time order (ties
in file order) and each becomes a :class:`~rarebird.events.ProcessEvent` exactly as the same
document in NDJSON would (:func:`~rarebird.sources.ecs.documents.event_from_document`). The
datafeed's own check still runs on every event, so a query SQL cannot fully say costs speed,
never results.

DuckDB runs on ``workers`` threads (one by default: the figures in docs/SCALE.md are per core).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from rarebird.errors import InputError, ReadStats
from rarebird.events import ARRAY_FIELDS, FIELD_ATTRS, INT_FIELDS, ProcessEvent, SourceLocation
from rarebird.sources.base import SourceOptions, SqlColumn
from rarebird.sources.ecs.documents import DocumentError, int_value, keyword, timestamp_of

#: The magic bytes a Parquet file starts (and ends) with.
PARQUET_MAGIC = b"PAR1"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATCH = 8192
_NUMBERS = frozenset({"bigint", "integer", "hugeint", "ubigint", "uinteger", "double", "float"})


def raw_time(kind: str) -> bool:
    """Whether a time column of this type is read as text (parsed in Python, as in NDJSON)."""
    return not (kind.startswith("timestamp") or kind == "date" or kind in _NUMBERS)


def quote(name: str) -> str:
    """A SQL identifier, quoted.

    >>> quote('process.name'), quote('a"b')
    ('"process.name"', '"a""b"')
    """
    return '"' + name.replace('"', '""') + '"'


def leaf_columns(names: list[str], types: list[Any]) -> dict[str, tuple[SqlColumn, str]]:
    """Every field of a table as (column, DuckDB type id), by dotted ECS name: struct members
    walked (``"process"."name"``), dotted column names taken as they are (first one wins)."""
    out: dict[str, tuple[SqlColumn, str]] = {}
    for name, dtype in zip(names, types, strict=True):
        _walk(name, quote(name), dtype, out)
    return out


def _walk(name: str, expr: str, dtype: Any, out: dict[str, tuple[SqlColumn, str]]) -> None:
    kind = dtype.id
    if kind == "struct":
        for child, child_type in dtype.children:
            _walk(f"{name}.{child}", f"{expr}.{quote(child)}", child_type, out)
        return
    if name in out:
        return
    if kind == "list":
        element = dtype.child.id
        if element in ("struct", "list", "map"):
            return  # arrays of objects: not fields rarebird reads
        out[name] = (SqlColumn(expr, is_list=True, is_text=element == "varchar"), element)
        return
    if kind == "map":
        return
    out[name] = (SqlColumn(expr, is_text=kind == "varchar"), kind)


def portable_select(names: list[str], types: list[Any]) -> str:
    """A ``SELECT`` list of every column with DuckDB's ``UUID`` (which JSON reading infers for
    ids such as ``agent.id``) cast to text, at any depth: Spark cannot read Parquet's UUID type,
    and a UUID column reads back as the same keyword string either way.

    >>> import duckdb
    >>> rel = duckdb.sql("SELECT {'id': uuid(), 'n': 1} AS agent, 'x' AS u")
    >>> portable_select(list(rel.columns), list(rel.types))
    '"agent"::STRUCT("id" VARCHAR, "n" INTEGER) AS "agent", "u"'
    """
    out = []
    for name, dtype in zip(names, types, strict=True):
        text = _no_uuid(dtype)
        out.append(quote(name) + (f"::{text} AS {quote(name)}" if text != str(dtype) else ""))
    return ", ".join(out)


def _no_uuid(dtype: Any) -> str:
    kind = dtype.id
    if kind == "uuid":
        return "VARCHAR"
    if kind == "struct":
        inner = ", ".join(f"{quote(n)} {_no_uuid(t)}" for n, t in dtype.children)
        return f"STRUCT({inner})"
    if kind == "list":
        return _no_uuid(dtype.child) + "[]"
    return str(dtype)


def time_key(column: SqlColumn, kind: str) -> str:
    """A SQL expression of the event time in epoch microseconds (for order and for the event)."""
    if kind.startswith("timestamp") or kind == "date":
        return f"epoch_us({column.expr})"
    if kind in _NUMBERS:
        return f"CAST({column.expr} * 1000 AS BIGINT)"  # epoch milliseconds, as ES reads numbers
    return f"epoch_us(TRY_CAST({column.expr} AS TIMESTAMPTZ))"


class ParquetSource:
    """Events from one Parquet file (or a glob of them), in time order."""

    def __init__(
        self, path: str, options: SourceOptions, *, strays: tuple[int, int] | None = None
    ) -> None:
        self._path = path
        self.options = options
        self._stats = ReadStats()
        #: (lo, hi) epoch microseconds: only the rows timed outside them or not at all (the
        #: rows ``job run --aggregate`` leaves to the per-event path: :mod:`.parquet_groups`)
        self._strays = strays

    @property
    def name(self) -> str:
        return self._path

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def __iter__(self) -> Iterator[ProcessEvent]:
        if self.options.extra.get("engine") == "spark":
            yield from self._read_spark()
            return
        import duckdb

        threads = int(self.options.extra.get("workers", "1"))
        con = duckdb.connect(config={"threads": threads})
        try:
            yield from self._read(con)
        finally:
            con.close()

    def _read(self, con: Any) -> Iterator[ProcessEvent]:
        import duckdb

        stats = self._stats
        scan = "read_parquet(?, hive_partitioning = false, file_row_number = true)"
        try:
            rel = con.sql(f"SELECT * FROM read_parquet({_literal(self._path)}) LIMIT 0")
            total = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)",
                                [self._path]).fetchone()  # fmt: skip
        except duckdb.Error as exc:
            raise InputError(self._path, f"not a readable Parquet file: {exc}") from None
        types = list(rel.types)
        columns, base = shape_columns(leaf_columns(list(rel.columns), types))
        stats.lines = int(total[0] or 0) if total else 0
        stats.bytes = file_size(self._path)
        stamp = columns.get("@timestamp")
        if stamp is None:
            raise InputError(self._path, "no @timestamp column (nor OCSF time): not ECS or OCSF")
        wanted = self._wanted(columns)
        where, params = base, list[object]()
        if self.options.pushdown is not None:
            plain = {name: col for name, (col, _) in columns.items()}
            query, params = self.options.pushdown.render(plain)
            where = f"({base}) AND {query}"
        if self._strays is not None:
            key = time_key(*stamp)
            where = f"({where}) AND ({key} IS NULL OR {key} NOT BETWEEN ? AND ?)"
            params = [*params, *self._strays]
        select = ", ".join(f"{col.expr} AS {quote(name)}" for name, (col, _) in wanted)
        text_time = raw_time(stamp[1])
        raw = f"{stamp[0].expr} AS __raw, " if text_time else ""
        sql = (
            f"SELECT {time_key(*stamp)} AS __t, file_row_number, {raw}{select} FROM {scan} "
            f"WHERE {where} ORDER BY __t NULLS LAST, file_row_number"
        )
        cursor = con.execute(sql, [self._path, *params])
        fields = [name for name, _ in wanted]
        returned = 0
        while rows := cursor.fetchmany(_BATCH):
            returned += len(rows)
            for row in rows:
                location = SourceLocation(self._path, int(row[1]) + 1)
                event = self._event(row, fields, location, text_time)
                if event is not None:
                    stats.events += 1
                    yield event
        stats.prefiltered = stats.lines - returned

    def _read_spark(self) -> Iterator[ProcessEvent]:
        """The same events, scanned by Spark (:mod:`rarebird.sources.spark`)."""
        yield from SparkParquetSource([self._path], self.options, self._stats)

    def _wanted(
        self, columns: Mapping[str, tuple[SqlColumn, str]]
    ) -> list[tuple[str, tuple[SqlColumn, str]]]:
        need = self.options.fields
        if need is None:
            return [(n, c) for n, c in columns.items() if n != "@timestamp"]
        keep = set(need) | set(FIELD_ATTRS)
        return [(n, c) for n, c in columns.items() if n in keep and n != "@timestamp"]

    def event_of(
        self, row: tuple[Any, ...], fields: list[str], location: SourceLocation
    ) -> ProcessEvent | None:
        """The event the per-event path builds of ``row`` = ``(time_us, row_number, *values)``
        (None, counted as skipped, when it cannot be one)."""
        return self._event(row, fields, location, False)

    def _event(
        self,
        row: tuple[Any, ...],
        fields: list[str],
        location: SourceLocation,
        raw_time: bool,
        raw: Any = None,
    ) -> ProcessEvent | None:
        """The typed event of one row: the values as :func:`event_from_document` reads the same
        document's (keyword strings; arrays as tuples; integers for the integer fields). The row
        is ``(time_us, row_number, [raw time when raw_time], *values)``; ``raw``: a text time
        given apart (Spark's rows), parsed instead of ``time_us``."""
        try:
            if raw_time:
                timestamp = timestamp_of(row[2])
            elif raw is not None:
                timestamp = timestamp_of(raw)
            elif row[0] is None:
                raise DocumentError("missing @timestamp")
            else:
                timestamp = _EPOCH + timedelta(microseconds=int(row[0]))
        except DocumentError as exc:
            self._stats.skip(location, exc.reason, exc.detail)
            return None
        typed: dict[str, Any] = {}
        extra: dict[str, tuple[str, ...]] = {}
        for name, value in zip(fields, row[3:] if raw_time else row[2:], strict=True):
            if value is None:
                continue
            if type(value) is list:
                values = tuple(_keyword(v) for v in value if v is not None)
                if not values:
                    continue
            else:
                values = (_keyword(value),)
            attr = FIELD_ATTRS.get(name)
            if attr is None:
                extra[name] = values
            elif name in ARRAY_FIELDS:
                typed[attr] = values
            elif name in INT_FIELDS:
                typed[attr] = int_value(values[0])
            else:
                typed[attr] = values[0]
        return ProcessEvent(timestamp=timestamp, extra=extra, origin=location, **typed)


class SparkParquetSource(ParquetSource):
    """Events of several Parquet files (in input order) scanned by Spark in ONE query, in the
    order the local engine's time merge of one scan per file gives (ties: input order, then
    file order). Files that do not read as one table (schemas that do not merge, nested and
    dotted shapes mixed) are scanned one query each and merged here, in the same order."""

    def __init__(
        self,
        paths: Sequence[str],
        options: SourceOptions,
        stats: ReadStats | None = None,
        *,
        strays: tuple[int, int] | None = None,
    ) -> None:
        name = paths[0] if len(paths) == 1 else f"{len(paths)} Parquet files"
        super().__init__(name, options, strays=strays)
        self._paths = list(paths)
        if stats is not None:
            self._stats = stats
        self._parts: list[ReadStats] = []

    @property
    def stats(self) -> ReadStats:
        if not self._parts:
            return self._stats
        total = ReadStats()
        for part in self._parts:
            total.merge(part)
        return total

    def __iter__(self) -> Iterator[ProcessEvent]:
        from rarebird.sources.spark import NotOneScan

        self._stats.bytes = sum(file_size(p) for p in self._paths)
        try:
            yield from self._scan(self._paths, self._stats)
        except NotOneScan:
            self._parts = [ReadStats() for _ in self._paths]
            scans = [
                self._scan([p], part) for p, part in zip(self._paths, self._parts, strict=True)
            ]
            yield from heapq.merge(*scans, key=attrgetter("timestamp"))

    def _scan(self, paths: list[str], stats: ReadStats) -> Iterator[ProcessEvent]:
        from rarebird.sources.spark import scan_rows

        if len(paths) == 1:
            stats.bytes = file_size(paths[0])
        fields, rows = scan_rows(paths, self.options, stats, strays=self._strays)
        for row in rows:
            location = SourceLocation(paths[row[3]], int(row[1]) + 1)
            event = self._event(row[:2] + row[4:], fields, location, False, row[2])
            if event is not None:
                stats.events += 1
                yield event


def _keyword(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, datetime):
        return _iso(value)
    return keyword(value) or str(value)


def shape_columns(
    leaves: dict[str, tuple[SqlColumn, str]],
) -> tuple[dict[str, tuple[SqlColumn, str]], str]:
    """The ECS fields of a table -- its own (ECS), or mapped from OCSF columns -- and the
    condition a row must meet to be an event at all."""
    if "@timestamp" not in leaves and "class_uid" in leaves and "time" in leaves:
        from rarebird.sources.ocsf import ocsf_sql_columns

        return ocsf_sql_columns(leaves)
    return leaves, "TRUE"


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def file_size(path: str) -> int:
    """The size of ``path`` in bytes (0 when it cannot be read)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def sniff_parquet(head: bytes) -> float:
    """Certain when the input starts with Parquet's magic bytes ``PAR1``."""
    return 1.0 if head[:4] == PARQUET_MAGIC else 0.0


def open_parquet(path: str, options: SourceOptions) -> ParquetSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``parquet`` format."""
    return ParquetSource(path, options)
