"""Columnar text input: CSV / TSV with ECS field names as column headers.

The header names the columns by ECS dotted names (``@timestamp,user.name,process.name,...``),
as exports from Elastic (Discover's CSV reports), SQL queries and the autodetect input files of
the oracle write them. Each row is one event:

- ``@timestamp`` is ISO-8601, or epoch seconds (a number below 10^11) or milliseconds;
- array fields of ECS (``process.args``, ``event.type``, ``tags`` ...) are split on commas;
  every other value is kept as one keyword string; empty cells are absent fields;
- a column named ``.`` is autodetect's control field: rows with a value there (time advances,
  flushes) are control messages, not events, and are counted as such.

A row with the wrong number of cells or a bad timestamp is reported with file and line and
skipped; the rows around it are read as usual.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any, cast

from rarebird.errors import ReadStats
from rarebird.events import ARRAY_FIELDS, FIELD_ATTRS, INT_FIELDS, ProcessEvent, SourceLocation
from rarebird.sources.base import SourceOptions
from rarebird.sources.inputs import open_binary
from rarebird.sources.sniff import first_lines
from rarebird.timeutil import from_epoch_ms, from_epoch_s, parse_timestamp

CONTROL_COLUMN = "."


class CsvSource:
    """Events from a CSV / TSV file whose header names ECS fields."""

    def __init__(self, path: str, options: SourceOptions) -> None:
        self._path = path
        self.options = options
        self._stats = ReadStats()

    @property
    def name(self) -> str:
        return self._path

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def __iter__(self) -> Iterator[ProcessEvent]:
        stats = self._stats
        with open_binary(self._path) as raw:
            text = io.TextIOWrapper(
                cast(IO[bytes], raw), encoding="utf-8", errors="replace", newline=""
            )
            first = text.readline()
            stats.lines += 1
            stats.bytes += len(first.encode())
            delimiter = "\t" if first.count("\t") > first.count(",") else ","
            header = next(csv.reader([first], delimiter=delimiter), [])
            header = [h.strip().lstrip("\ufeff") for h in header]
            if "@timestamp" not in header:
                stats.skip(SourceLocation(self._path, 1), "bad header", "no @timestamp column")
                return
            reader = csv.reader(text, delimiter=delimiter)
            lineno = 1
            for row in reader:
                lineno = reader.line_num + 1
                stats.lines += 1
                stats.bytes += sum(len(cell) for cell in row) + len(row)
                if not row or not any(cell.strip() for cell in row):
                    continue
                location = SourceLocation(self._path, lineno)
                if len(row) != len(header):
                    stats.skip(location, "wrong number of columns",
                               f"{len(row)} cells for {len(header)} columns")  # fmt: skip
                    continue
                record = dict(zip(header, row, strict=True))
                if record.pop(CONTROL_COLUMN, "").strip():
                    stats.skip(location, "control row")
                    continue
                event = self._event(record, location)
                if event is not None:
                    stats.events += 1
                    yield event

    def _event(self, record: dict[str, str], location: SourceLocation) -> ProcessEvent | None:
        stamp = record.pop("@timestamp", "").strip()
        try:
            if not stamp:
                raise ValueError("empty")
            if stamp.replace(".", "", 1).isdigit():
                number = float(stamp)
                timestamp = from_epoch_s(number) if number < 1e11 else from_epoch_ms(int(number))
            else:
                timestamp = parse_timestamp(stamp)
        except (ValueError, OverflowError):
            self._stats.skip(location, "bad @timestamp", repr(stamp)[:60])
            return None
        typed: dict[str, Any] = {}
        extra: dict[str, tuple[str, ...]] = {}
        for name, value in record.items():
            if value == "":
                continue
            values = tuple(v for v in value.split(",")) if name in ARRAY_FIELDS else (value,)
            attr = FIELD_ATTRS.get(name)
            if attr is None:
                extra[name] = values
            elif name in ARRAY_FIELDS:
                typed[attr] = values
            elif name in INT_FIELDS:
                try:
                    typed[attr] = int(value)
                except ValueError:
                    extra[name] = values
            else:
                typed[attr] = value
        return ProcessEvent(timestamp=timestamp, extra=extra, origin=location, **typed)


def sniff_csv(head: bytes) -> float:
    """Confident when the first line is a delimited header naming ``@timestamp``."""
    lines = first_lines(head, 2)
    if not lines or lines[0][:1] in (b"{", b"["):
        return 0.0
    header = lines[0]
    if b"@timestamp" in header and (b"," in header or b"\t" in header):
        return 0.95
    return 0.0


def open_csv(path: str, options: SourceOptions) -> CsvSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``csv`` format."""
    return CsvSource(path, options)
