"""Parquet counted where it is scanned (``job run --aggregate``): one group per (bucket, user).

The per-event Parquet path (:mod:`rarebird.sources.parquet`) brings every matching row to Python
and builds a :class:`~rarebird.events.ProcessEvent` of it. Here the scan engine -- DuckDB, or
Spark with ``--engine spark`` (:mod:`rarebird.sources.spark_groups`) -- also does the job's
per-bucket, per-user aggregation, and only the groups come back:

- the rows the datafeed matches (its query pushed down, and exact: nothing left to Python) whose
  time is plausible are grouped by (bucket, by-field value): the count, the first event's
  position (time, then input order, then row: the order the per-event path feeds them in) and
  the last event's time;
- for each influencer and identity field, the distinct values of the group's rows in the order
  their first rows came, and where the field's first value came (the fields' order);
- the groups come in the order of their first events, which is the order the job would first
  see each user of a bucket (the model's person ids and the order of its results).

The job feeds a group as its events one by one (:meth:`~rarebird.job.anomaly.AnomalyJob.
feed_group`), so the records are the per-event path's. Rows without a time or with an
implausible one (quarantined) still come as events, through the per-event path
(:class:`~rarebird.sources.parquet.ParquetSource` with ``strays``), so they are reported the
same way. The events themselves are not kept (``triage`` has no events to show for the run).

Values are converted to the job's keyword strings exactly as the per-event path converts them
(:func:`keyword_value`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rarebird.errors import InputError, ReadStats
from rarebird.events import INT_FIELDS, EventGroup, ProcessEvent, SourceLocation, value_getter
from rarebird.sources.base import SourceOptions, SqlColumn
from rarebird.sources.parquet import (
    ParquetSource,
    file_size,
    leaf_columns,
    raw_time,
    shape_columns,
    time_key,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GroupSpec:
    """What to group by and collect: the job's by-field, the fields whose values it keeps per
    user (influencers, identities), its bucket span, and the plausible time range (epoch
    microseconds; rows outside it are left to the per-event path and quarantined there)."""

    by: str
    fields: tuple[str, ...]
    span_s: int
    lo_us: int
    hi_us: int


class AggregateRefused(InputError):
    """``--aggregate`` cannot give the per-event path's results for this input (says why)."""


def keyword_value(name: str, raw: Any, source: ParquetSource) -> str | None:
    """The job's string for a raw column value of field ``name``: what
    :meth:`ProcessEvent.value` gives for the event the per-event path builds of that value."""
    event = source.event_of((0, 0, raw), [name], SourceLocation(source.name, 0))
    return None if event is None else value_getter(name)(event)


class ParquetGroups:
    """The groups (and the stray events) of Parquet inputs, scanned by DuckDB in ONE query."""

    def __init__(self, paths: Sequence[str], options: SourceOptions, spec: GroupSpec) -> None:
        self.paths = list(paths)
        self.options = options
        self.spec = spec
        self._stats = ReadStats()
        self._converter = ParquetSource(self.paths[0], options)
        self._cache: dict[tuple[str, Any], str | None] = {}
        self._stray_rows = 0

    @property
    def name(self) -> str:
        return self.paths[0] if len(self.paths) == 1 else f"{len(self.paths)} Parquet files"

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def __iter__(self) -> Iterator[EventGroup | ProcessEvent]:
        import duckdb

        threads = int(self.options.extra.get("workers", "1"))
        con = duckdb.connect(config={"threads": threads})
        try:
            yield from self._strays()
            yield from self._groups(con)
        finally:
            con.close()

    def _strays(self) -> Iterator[ProcessEvent]:
        """Rows the datafeed matches that have no time or an implausible one: as events."""
        for path in self.paths:
            source = ParquetSource(path, self.options, strays=(self.spec.lo_us, self.spec.hi_us))
            yield from source
            self._take_strays(source.stats)

    def _take_strays(self, part: ReadStats) -> None:
        """Count what a per-event scan of the strays read (its events, what it skipped)."""
        self._stray_rows += part.events + part.skipped_total
        self._stats.events += part.events
        self._stats.skipped.update(part.skipped)
        room = self._stats.max_issues - len(self._stats.issues)
        self._stats.issues.extend(part.issues[: max(room, 0)])

    def _groups(self, con: Any) -> Iterator[EventGroup]:
        import duckdb

        spec, stats = self.spec, self._stats
        try:
            rel = con.sql(f"{_quoted_scan(self.paths)} LIMIT 0")
            names, types = list(rel.columns), list(rel.types)
            total = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)",
                                [self.paths]).fetchone()  # fmt: skip
        except duckdb.Error as exc:
            raise InputError(self.name, f"not readable as one Parquet table: {exc}") from None
        columns, base = shape_columns(leaf_columns(names, types))
        stats.lines = int(total[0] or 0) if total else 0
        stats.bytes = sum(file_size(p) for p in self.paths)
        stamp = columns.get("@timestamp")
        if stamp is None:
            raise InputError(self.name, "no @timestamp column (nor OCSF time): not ECS or OCSF")
        if raw_time(stamp[1]):
            raise AggregateRefused(
                self.name, "--aggregate needs a typed time column (this one is text, parsed "
                "per event): run without --aggregate"
            )  # fmt: skip
        where, params = base, list[object]()
        pushdown = self.options.pushdown
        if pushdown is not None:
            plain = {name: col for name, (col, _) in columns.items()}
            if not pushdown.exact(plain):
                raise AggregateRefused(
                    self.name, "--aggregate needs the datafeed's whole query in SQL, and part "
                    "of it is checked per event: run without --aggregate"
                )  # fmt: skip
            query, params = pushdown.render(plain)
            where = f"({base}) AND {query}"
        sql = group_sql(columns, stamp, where, spec)
        matched = 0
        try:
            cursor = con.execute(sql, [self.paths, self.paths, *params, spec.lo_us, spec.hi_us])
            while rows := cursor.fetchmany(4096):
                for row in rows:
                    group = self._group(row)
                    matched += group.count
                    yield group
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise AggregateRefused(
                self.name, f"DuckDB cannot count these files as one table ({first}): give "
                "each its own run, or run without --aggregate"
            ) from None  # fmt: skip
        stats.events += matched
        stats.prefiltered = stats.lines - matched - self._stray_rows

    def _group(self, row: tuple[Any, ...]) -> EventGroup:
        """``(first time, last time, count, by value, then per field: the position of its
        first value and its distinct values in the order they came)``; positions compare
        (DuckDB's are row numbers, Spark's (time, input, row) structs)."""
        spec = self.spec
        convert = self._value
        values: list[tuple[Any, str, tuple[str, ...]]] = []
        for k, name in enumerate(spec.fields):
            first, raws = row[4 + 2 * k], row[5 + 2 * k]
            if not raws:
                continue
            got: list[str] = []
            for raw in raws:
                v = convert(name, raw)
                if v is not None and v not in got:
                    got.append(v)
            if got:
                values.append((first, name, tuple(got)))
        values.sort(key=lambda t: t[0])
        return EventGroup(
            value=convert(spec.by, row[3]) if row[3] is not None else None,
            count=int(row[2]),
            first=_EPOCH + timedelta(microseconds=int(row[0])),
            last=_EPOCH + timedelta(microseconds=int(row[1])),
            values={name: got for _, name, got in values},
        )

    def _value(self, name: str, raw: Any) -> str | None:
        if type(raw) is str and name not in INT_FIELDS:
            return raw  # a keyword as it is (the common case: no event to build)
        key = (name, _hashable(raw))
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = keyword_value(name, raw, self._converter)
        if len(self._cache) < 100_000:
            self._cache[key] = value
        return value


def group_sql(
    columns: Mapping[str, tuple[SqlColumn, str]],
    stamp: tuple[SqlColumn, str],
    where: str,
    spec: GroupSpec,
) -> str:
    """The DuckDB query of the groups. Parameters: the file list (twice), the ``where``'s, then
    the plausible range's bounds."""
    span_us = spec.span_s * 1_000_000
    missing = "CAST(NULL AS VARCHAR)"
    by = columns[spec.by][0].expr if spec.by in columns else missing
    picks = [columns[f][0].expr if f in columns else missing for f in spec.fields]
    select = ", ".join(f"{e} AS __v{i}" for i, e in enumerate(picks))
    scan = ("read_parquet(?, hive_partitioning = false, union_by_name = true, filename = true, "
            "file_row_number = true)")  # fmt: skip
    parts = [
        f"m AS (SELECT {time_key(*stamp)} AS __t, list_position(?, filename) AS __f, "
        f"file_row_number AS __r, {by} AS __by, {select} FROM {scan} WHERE {where})",
        f"k AS (SELECT *, __t // {span_us} AS __b, row_number() OVER (ORDER BY __t, __f, __r) "
        "AS __p FROM m WHERE __t BETWEEN ? AND ?)",
        "g AS (SELECT __b, __by, count(*) AS __n, min(__p) AS __first, min(__t) AS __t0, "
        "max(__t) AS __last FROM k GROUP BY __b, __by)",
    ]
    joins, lists = [], []
    for i, f in enumerate(spec.fields):
        present = _present(f"__v{i}", f in columns and columns[f][0].is_list)
        parts.append(
            f"a{i} AS (SELECT __b, __by, min(__p) AS __f, list(__v{i} ORDER BY __p) AS __l "
            f"FROM (SELECT __b, __by, __v{i}, min(__p) AS __p FROM k WHERE {present} "
            "GROUP BY ALL) GROUP BY ALL)"
        )
        joins.append(
            f"LEFT JOIN a{i} ON a{i}.__b = g.__b AND a{i}.__by IS NOT DISTINCT FROM g.__by"
        )
        lists.append(f"a{i}.__f, a{i}.__l")
    return (
        f"WITH {', '.join(parts)} SELECT g.__t0, g.__last, g.__n, g.__by"
        f"{''.join(', ' + x for x in lists)} FROM g {' '.join(joins)} ORDER BY g.__first"
    )


def _present(column: str, is_list: bool) -> str:
    """Whether a row has a value of the field (a list: some element that is not null), as
    the per-event path finds one."""
    if is_list:
        return f"coalesce(list_count({column}), 0) > 0"  # count: the elements not null
    return f"{column} IS NOT NULL"


def _quoted_scan(paths: Sequence[str]) -> str:
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return (
        f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"
    )


def _hashable(raw: Any) -> Any:
    if isinstance(raw, list):
        return tuple(_hashable(v) for v in raw)
    return raw
