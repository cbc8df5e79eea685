"""``job run --aggregate --engine spark``: the groups of :mod:`rarebird.sources.parquet_groups`
counted by Spark (DataFrame API, no Python UDF).

The datafeed's filter and the projection are :mod:`rarebird.sources.spark`'s; then Spark groups
the plausibly timed rows by (bucket, by-field value) in one grouping -- count, first position
(time, input, row index), first and last time and, for each influencer and identity field, its
distinct values in the order their first rows came (``collect_list`` of (position, value)
sorted, then ``array_distinct``, which keeps first occurrences) and the first one's position.
Only the groups, in the order of their first rows, reach the driver (``toLocalIterator``): on
the bench fleet about a quarter of the matching rows (docs/SCALE.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rarebird.events import ProcessEvent
from rarebird.sources.parquet import SparkParquetSource, file_size
from rarebird.sources.parquet_groups import AggregateRefused, ParquetGroups
from rarebird.sources.spark import NotOneScan, scan_frames, time_key


class SparkGroups(ParquetGroups):
    """The groups (and the stray events) of Parquet inputs, counted by Spark in one query."""

    def _strays(self) -> Iterator[ProcessEvent]:
        source = SparkParquetSource(self.paths, self.options, strays=(self.spec.lo_us,
                                                                      self.spec.hi_us))  # fmt: skip
        yield from source
        self._take_strays(source.stats)

    def __iter__(self) -> Iterator[Any]:
        yield from self._strays()
        try:
            yield from self._spark_groups()
        except NotOneScan as exc:
            raise AggregateRefused(
                self.name, f"the files do not read as one table in Spark ({exc}): give them "
                "one run each, or run without --aggregate"
            ) from None  # fmt: skip

    def _spark_groups(self) -> Iterator[Any]:
        from pyspark.sql import functions as F

        spec, stats = self.spec, self._stats
        frames, columns, where = scan_frames(self.paths, self.options, stats)
        stats.bytes = sum(file_size(p) for p in self.paths)
        key = time_key(*columns["@timestamp"])
        if key is None:
            raise AggregateRefused(
                self.name, "--aggregate needs a typed time column (this one is text, parsed "
                "per event): run without --aggregate"
            )  # fmt: skip
        if self.options.pushdown is not None and not self.options.pushdown.exact(
            {n: c for n, (c, _) in columns.items()}
        ):
            raise AggregateRefused(
                self.name, "--aggregate needs the datafeed's whole query in SQL, and part of "
                "it is checked per event: run without --aggregate"
            )  # fmt: skip
        missing = "CAST(NULL AS STRING)"

        def pick(name: str) -> Any:
            return F.expr(columns[name][0].expr if name in columns else missing)

        def selected(index: int, frame: Any) -> Any:
            scan = frame if where is None else frame.where(where)
            return scan.select(
                F.expr(key).alias("__t"),
                F.lit(index).alias("__f"),
                F.col("_metadata.row_index").alias("__r"),
                pick(spec.by).alias("__by"),
                *(pick(f).alias(f"__v{i}") for i, f in enumerate(spec.fields)),
            )

        rows = selected(0, frames[0])
        for i, frame in enumerate(frames[1:], 1):
            rows = rows.unionByName(selected(i, frame))
        k = (
            rows.where(F.col("__t").between(spec.lo_us, spec.hi_us))
            .withColumn("__b", F.expr(f"__t div {spec.span_s * 1_000_000}"))
            .withColumn("__p", F.struct("__t", "__f", "__r"))
        )
        # one grouping: per field, the values present (a list: some element not null) as
        # (position, value) structs sorted by position, their distinct values in that order
        # (array_distinct keeps first occurrences) and the first one's position
        per_field = []
        for i, f in enumerate(spec.fields):
            v = F.col(f"__v{i}")
            listed = f in columns and columns[f][0].is_list
            present = F.exists(v, lambda x: x.isNotNull()) if listed else v.isNotNull()
            pairs = F.sort_array(F.collect_list(F.when(present, F.struct("__p", v.alias("v")))))
            per_field += [
                F.min(F.when(present, F.col("__p"))).alias(f"__f{i}"),
                F.array_distinct(F.transform(pairs, lambda x: x["v"])).alias(f"__l{i}"),
            ]
        groups = k.groupBy("__b", "__by").agg(
            F.count(F.lit(1)).alias("__n"),
            F.min("__p").alias("__first"),
            F.min("__t").alias("__t0"),
            F.max("__t").alias("__last"),
            *per_field,
        )
        picked = [c for i in range(len(spec.fields)) for c in (f"__f{i}", f"__l{i}")]
        ordered = groups.orderBy("__first").select("__t0", "__last", "__n", "__by", *picked)
        matched = 0
        for row in ordered.toLocalIterator(prefetchPartitions=True):
            group = self._group(tuple(row))
            matched += group.count
            yield group
        stats.events += matched
        stats.prefiltered = stats.lines - matched - self._stray_rows
