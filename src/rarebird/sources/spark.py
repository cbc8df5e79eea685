"""Parquet read by Apache Spark (``--engine spark``): the datafeed's filter and projection run in
Spark, the matching rows come back to the driver in time order.

The scan is the Parquet source's (:mod:`rarebird.sources.parquet`) with Spark in DuckDB's place:
the datafeed query compiled to Spark SQL (:meth:`~rarebird.datafeed.sql.SqlQuery.render` with
``dialect="spark"``: ``exists(array, x -> ...)`` for list fields such as ``event.type``, binary
(case-sensitive) string comparison, ``LIKE`` only where it narrows) is the ``where``; only the
fields the job and the datafeed read are selected; rows are sorted by event time, ties in input
order then file order (``_metadata.row_index``), and streamed with ``toLocalIterator`` (one
partition at a time). Several files are one query (:func:`scan_rows`). Each row becomes the same
:class:`~rarebird.events.ProcessEvent` DuckDB's row would
(:class:`~rarebird.sources.parquet.SparkParquetSource`), so the job, the rule and the store
downstream are the local engine's own.

This module brings the matching events to the driver: the job needs each of them for what it
keeps beside the model (the events ``triage`` shows, the rule's alerts, the quiet profile).
``job run --aggregate --engine spark`` (:mod:`rarebird.sources.spark_groups`) has Spark count
each user's events per bucket as well, and only those groups come back.

Java and PySpark are optional: :func:`check_spark` says in one line what is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rarebird.errors import InputError, RarebirdError, ReadStats
from rarebird.events import FIELD_ATTRS
from rarebird.sources.base import SourceOptions, SqlColumn

#: Spark's settings for rarebird's one session (local mode by default): small, quiet, UTC,
#: column names compared with their case (ECS names are lower case; a ``User.Name`` column is
#: another field, as in Elasticsearch).
SESSION_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.memory": "1g",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.caseSensitive": "true",
    "spark.ui.showConsoleProgress": "false",
}
DEFAULT_MASTER = "local[2]"

_NUMBERS = {"byte", "short", "integer", "long", "float", "double", "decimal"}


class SparkUnavailable(RarebirdError):
    """``--engine spark`` asked for without PySpark or Java."""


def check_spark() -> None:
    """Raise :class:`SparkUnavailable` (one line) unless PySpark is installed and Java found."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailable(
            "--engine spark needs PySpark: pip install 'rarebird[spark]' (and Java 17 or later)"
        )
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"no bin/java in JAVA_HOME ({home})" if home else "no java on PATH"
        raise SparkUnavailable(
            f"--engine spark needs Java 17 or later: {where} "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )


def spark_session(master: str | None = None) -> Any:
    """The process's SparkSession: the active one if any (a test's, an application's), else one
    started on ``master`` (``local[2]`` by default) with :data:`SESSION_CONF`."""
    check_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._active_spark_context is not None:  # a context without a session: reuse it
        return SparkSession.builder.getOrCreate()
    conf = SparkConf().setMaster(master or DEFAULT_MASTER).setAppName("rarebird")
    conf.setAll(list(SESSION_CONF.items()))
    logging = Path(__file__).with_name("spark-log4j2.properties").as_uri()
    conf.set("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={logging}")
    # the JVM's stderr through a filter: its start-up notice about incubator modules (Spark 4
    # adds jdk.incubator.vector) is not for the analyst; everything else passes unchanged
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})  # type: ignore[no-untyped-call]  # PySpark has no annotations here
    threading.Thread(
        target=_forward_stderr, args=(gateway.proc.stderr,), name="spark-stderr", daemon=True
    ).start()
    session = SparkSession(SparkContext(conf=conf, gateway=gateway))
    session.sparkContext.setLogLevel("ERROR")
    return session


#: lines of the JVM's stderr that :func:`spark_session` drops
_JVM_NOTICES = (b"WARNING: Using incubator modules",)


def _forward_stderr(stream: Any) -> None:
    for line in iter(stream.readline, b""):
        if not line.startswith(_JVM_NOTICES):
            sys.stderr.write(line.decode("utf-8", "replace"))
            sys.stderr.flush()


def quote(name: str) -> str:
    """A Spark SQL identifier, quoted.

    >>> quote('process.name'), quote('a`b')
    ('`process.name`', '`a``b`')
    """
    return "`" + name.replace("`", "``") + "`"


def leaf_columns(
    schema: Any, duplicates: set[str] | None = None
) -> dict[str, tuple[SqlColumn, str]]:
    """Every field of a Spark schema as (column, kind) by dotted ECS name, as
    :func:`rarebird.sources.parquet.leaf_columns` does for DuckDB: struct members walked,
    dotted column names taken as they are (first one wins, the others named in
    ``duplicates``); kinds are Spark's type names."""
    out: dict[str, tuple[SqlColumn, str]] = {}
    seen = duplicates if duplicates is not None else set()
    for field in schema.fields:
        _walk(field.name, quote(field.name), field.dataType, out, seen)
    return out


def _walk(
    name: str, expr: str, dtype: Any, out: dict[str, tuple[SqlColumn, str]], dup: set[str]
) -> None:
    kind = dtype.typeName()
    if kind == "struct":
        for child in dtype.fields:
            _walk(f"{name}.{child.name}", f"{expr}.{quote(child.name)}", child.dataType, out, dup)
        return
    if name in out:
        dup.add(name)
        return
    if kind == "map":
        return
    if kind == "array":
        element = dtype.elementType.typeName()
        if element in ("struct", "array", "map"):
            return
        out[name] = (SqlColumn(expr, is_list=True, is_text=element == "string"), element)
        return
    out[name] = (SqlColumn(expr, is_text=kind == "string"), kind)


def time_key(column: SqlColumn, kind: str) -> str | None:
    """A Spark SQL expression of the event time in epoch microseconds, or None when the column
    is text (parsed in Python, as in NDJSON and the DuckDB scan)."""
    if kind in ("timestamp", "timestamp_ntz", "date"):
        return f"unix_micros(CAST({column.expr} AS TIMESTAMP))"  # the session's zone is UTC
    if kind in _NUMBERS or kind.startswith("decimal"):
        return f"CAST({column.expr} * 1000 AS BIGINT)"  # epoch milliseconds, as ES reads numbers
    return None


class NotOneScan(Exception):
    """Several files that one Spark scan cannot read as one table (their schemas do not merge,
    or a field is both a struct member in some and a dotted column in others)."""


def scan_frames(
    paths: Sequence[str], options: SourceOptions, stats: ReadStats
) -> tuple[list[Any], dict[str, tuple[SqlColumn, str]], str | None]:
    """The Spark frames of ``paths`` (one per input, in input order, on one merged schema),
    the ECS fields by dotted name and the datafeed's condition in Spark SQL (None: keep every
    row); ``stats.lines`` gets the rows read. Raises :class:`NotOneScan` for several files that
    do not read as one table."""
    from pyspark.errors import PySparkException

    spark = spark_session(options.extra.get("spark_master") or None)
    where_ = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"
    try:
        if len(paths) == 1:
            frames = [spark.read.parquet(paths[0])]
            schema = frames[0].schema
        else:
            schema = spark.read.option("mergeSchema", "true").parquet(*paths).schema
            frames = [spark.read.schema(schema).parquet(p) for p in paths]
        duplicates: set[str] = set()
        columns = leaf_columns(schema, duplicates)
        if duplicates and len(paths) > 1:
            raise NotOneScan(f"both nested and dotted: {sorted(duplicates)[:3]}")
        total = frames[0].count() if len(frames) == 1 else _union(frames).count()
    except PySparkException as exc:
        if len(paths) > 1:
            raise NotOneScan(str(exc).strip().splitlines()[0]) from None
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise InputError(where_, f"Spark cannot read it as Parquet: {first}") from None
    if "@timestamp" not in columns and "class_uid" in columns and "time" in columns:
        raise InputError(
            where_, "OCSF Parquet is read by the local engine only, not --engine spark"
        )
    if "@timestamp" not in columns:
        raise InputError(where_, "no @timestamp column: not ECS")
    stats.lines = int(total)
    where = None
    if options.pushdown is not None:
        where, _ = options.pushdown.render({n: c for n, (c, _) in columns.items()}, "spark")
    return frames, columns, where


def scan_rows(
    paths: Sequence[str],
    options: SourceOptions,
    stats: ReadStats,
    *,
    strays: tuple[int, int] | None = None,
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """The rows of ``paths`` (files or globs, in input order) the datafeed can match, in ONE
    Spark query, in time order -- ties by input order, then file order, as the local engine's
    time merge of one scan per file orders them: the names of the fields selected, and the
    rows as ``(time_us | None, row_index, raw_time | None, file, *values)``. ``stats`` gets the
    rows read (``lines``) now and the rows left in Spark (``prefiltered``) when the rows are
    done. ``strays`` (epoch microseconds): only rows timed outside that range or not at all.
    Raises :class:`NotOneScan` for several files that do not read as one table."""
    from pyspark.sql import functions as F

    frames, columns, where = scan_frames(paths, options, stats)
    stamp = columns["@timestamp"]
    need = options.fields
    keep = None if need is None else set(need) | set(FIELD_ATTRS)
    wanted = [n for n in columns if n != "@timestamp" and (keep is None or n in keep)]
    key = time_key(*stamp)
    # text times are parsed in Python (as NDJSON's are); Spark orders by its own parse of them
    order = key or f"unix_micros(try_cast({stamp[0].expr} AS TIMESTAMP))"
    if strays is not None and key is not None:
        outside = f"({key} IS NULL OR {key} NOT BETWEEN {int(strays[0])} AND {int(strays[1])})"
        where = outside if where is None else f"({where}) AND {outside}"

    def selected(index: int, frame: Any) -> Any:
        scan = frame if where is None else frame.where(where)
        return scan.select(
            F.expr(key or "CAST(NULL AS BIGINT)").alias("__t"),
            F.col("_metadata.row_index").alias("__row"),
            F.expr("CAST(NULL AS STRING)" if key else stamp[0].expr).alias("__raw"),
            F.lit(index).alias("__file"),
            *(F.expr(columns[n][0].expr).alias(f"__f{i}") for i, n in enumerate(wanted)),
            F.expr(order).alias("__order"),
        )

    scans = _union([selected(i, f) for i, f in enumerate(frames)])
    rows = scans.orderBy(F.col("__order").asc_nulls_last(), F.col("__file"), F.col("__row")).drop(
        "__order"
    )

    def stream() -> Iterator[tuple[Any, ...]]:
        returned = 0
        for row in rows.toLocalIterator(prefetchPartitions=True):
            returned += 1
            yield tuple(row)
        stats.prefiltered = stats.lines - returned

    return wanted, stream()


def _union(frames: list[Any]) -> Any:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out
