"""Any supported input as ECS Parquet, partitioned by day, for a data lake (``rarebird export parquet``).

Every event any source reads (ECS, raw auditd, Laurel, Sysmon, osquery, CSV, OCSF, Parquet) is
written as its ECS document (:meth:`~rarebird.events.ProcessEvent.to_ecs`: the typed fields and
every other field kept) into ``DIR/day=YYYY-MM-DD/part-N.parquet``, by the day (UTC) of its
``@timestamp``, in time order; DuckDB writes nested structs, as it and Spark do from JSON, which
:mod:`rarebird.sources.parquet` reads back. Nothing is filtered: the datafeed applies when the
folder is read. Bad input lines are skipped and counted as for every command.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import orjson

from rarebird.errors import ReadStats
from rarebird.run.replay import InputOptions
from rarebird.sources import SourceOptions, expand_inputs, merge_by_time, open_source
from rarebird.sources.parquet import portable_select


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: events per day file, and what the inputs skipped."""

    files: dict[str, int]
    read: ReadStats

    @property
    def events(self) -> int:
        return sum(self.files.values())


def export_parquet(specs: Sequence[str], out_dir: str, options: InputOptions) -> ExportReport:
    """Read ``specs`` (merged in time order) and write them to ``out_dir`` as day partitions."""
    import duckdb

    source_options = SourceOptions(
        host_name=options.host_name, passwd=options.passwd, group=options.group,
        identity=options.identity,
    )  # fmt: skip
    sources = [open_source(p, options.format, source_options) for p in expand_inputs(specs)]
    merged = merge_by_time(sources)
    files: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="rarebird-export-") as tmp:
        day: str | None = None
        sink: IO[bytes] | None = None
        staged: list[tuple[str, str]] = []
        counts: list[int] = []
        for event in merged:
            this_day = event.timestamp.strftime("%Y-%m-%d")
            if this_day != day or sink is None:
                if sink is not None:
                    sink.close()
                day = this_day
                staged.append((day, os.path.join(tmp, f"{len(staged)}.ndjson")))
                counts.append(0)
                sink = open(staged[-1][1], "wb")  # noqa: SIM115 - closed at the next day
            sink.write(orjson.dumps(event.to_ecs()) + b"\n")
            counts[-1] += 1
        if sink is not None:
            sink.close()
        con = duckdb.connect(config={"threads": 1})
        try:
            for (day, ndjson), count in zip(staged, counts, strict=True):
                folder = os.path.join(out_dir, f"day={day}")
                os.makedirs(folder, exist_ok=True)
                part = 0
                while os.path.exists(os.path.join(folder, f"part-{part}.parquet")):
                    part += 1
                target = os.path.join(folder, f"part-{part}.parquet")
                rel = con.read_json(ndjson, format="newline_delimited", sample_size=-1)
                # UUIDs as text: the lake is read by Spark too, which has no UUID type
                rel.project(portable_select(list(rel.columns), list(rel.types))).write_parquet(
                    target
                )
                files[target] = count
        finally:
            con.close()
    return ExportReport(files, merged.stats)
