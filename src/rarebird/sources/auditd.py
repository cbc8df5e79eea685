"""Raw Linux audit logs (``/var/log/audit/audit.log``, rotated, gzipped) as process-start events.

``--input-format auditd`` (also chosen by ``auto`` when the first lines are audit records).
Records are grouped into events and exec events are mapped to ECS as Elastic's normaliser does;
see :mod:`~rarebird.sources.auditd_records` (record syntax, ENRICHED fields, hex),
:mod:`~rarebird.sources.auditd_scan` (grouping, the full parse),
:mod:`~rarebird.sources.auditd_fast` (the prefiltered fast path) and
:mod:`~rarebird.sources.auditd_events` (the ECS mapping).

:class:`SourceOptions` fields read: ``prefilter`` (selects the fast path and is applied exactly
to every parsed event), ``host_name`` (``host.name`` of records without ``node=``), ``passwd``
and ``group`` (names for numeric ids when the log is not ENRICHED), ``identity`` (``user`` or
``login``), ``max_line_bytes`` (capped at 4 MiB: kernel records are under 9 KB) and two
``extra`` keys: ``workers`` (worker processes over byte ranges of one large regular file,
default 1) and ``scan`` (``full`` forces the full parse, which reads and checks every line).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources.auditd_events import BuildContext
from rarebird.sources.auditd_fast import FastScan, exe_needle
from rarebird.sources.auditd_records import HEADER_RE
from rarebird.sources.auditd_scan import MAX_RECORD_LINE, prefilter_holds, scan_full
from rarebird.sources.base import SourceOptions
from rarebird.sources.identity import check_identity, load_accounts
from rarebird.sources.inputs import open_binary, register_format
from rarebird.sources.sniff import first_lines, is_gzip

#: Below this size a file is read by one process whatever ``workers`` says.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


class AuditdSource:
    """Exec events from one raw audit log (file, rotated file, ``.gz``, FIFO or ``-``)."""

    def __init__(self, path: str, options: SourceOptions) -> None:
        self._path = path
        self._options = options
        self._stats = ReadStats()
        check_identity(options.identity)
        self._accounts = load_accounts(options.passwd, options.group)
        self._max_line = min(options.max_line_bytes, MAX_RECORD_LINE)
        scan = options.extra.get("scan", "fast")
        if scan not in ("fast", "full"):
            raise ValueError(f"scan must be 'fast' or 'full', not {scan!r}")
        self._needle = exe_needle(options.prefilter) if scan == "fast" else None
        try:
            self._workers = max(1, int(options.extra.get("workers", "1")))
        except ValueError:
            raise ValueError(
                f"workers must be a number, not {options.extra['workers']!r}"
            ) from None

    @property
    def name(self) -> str:
        return self._path

    @property
    def stats(self) -> ReadStats:
        return self._stats

    @property
    def fast(self) -> bool:
        """True when the prefilter lets this source skip events without parsing them."""
        return self._needle is not None

    def context(self, report_offset: int = 0) -> BuildContext:
        def report(line: int, reason: str, detail: str) -> None:
            self._stats.skip(SourceLocation(self._path, line + report_offset), reason, detail)

        return BuildContext(
            path=self._path,
            accounts=self._accounts,
            identity=self._options.identity,
            host_name=self._options.host_name,
            report=report,
        )

    def keep(self, event: ProcessEvent) -> bool:
        return prefilter_holds(event, self._options.prefilter)

    def __iter__(self) -> Iterator[ProcessEvent]:
        if self._needle is not None and self._workers > 1 and self._parallel_ok():
            from rarebird.sources.auditd_parallel import scan_parallel

            events = scan_parallel(self, self._path, self._workers, self._needle)
        else:
            events = self._scan(open_binary(self._path))
        for event in events:
            self._stats.events += 1
            yield event

    def _scan(self, stream: io.BufferedIOBase) -> Iterator[ProcessEvent]:
        with stream:
            if self._needle is None:
                yield from scan_full(
                    stream, self._path, self._stats, self.context(), self.keep, self._max_line
                )
            else:
                yield from self.fast_scan().run(stream)

    def fast_scan(self, start: int = 0, stop: int | None = None) -> FastScan:
        assert self._needle is not None
        return FastScan(
            path=self._path,
            stats=self._stats,
            ctx=self.context(),
            keep=self.keep,
            needle=self._needle,
            max_line=self._max_line,
            start=start,
            stop=stop,
        )

    def _parallel_ok(self) -> bool:
        try:
            if os.path.getsize(self._path) < PARALLEL_MIN_BYTES or not os.path.isfile(self._path):
                return False
            with open(self._path, "rb") as f:
                return not is_gzip(f.read(2))
        except OSError as exc:
            raise InputError(self._path, exc.strerror or str(exc)) from None


def open_auditd(path: str, options: SourceOptions) -> AuditdSource:
    """The :class:`~rarebird.sources.base.SourceFactory` of the ``auditd`` format."""
    return AuditdSource(path, options)


def sniff_auditd(head: bytes) -> float:
    """Confidence that ``head`` starts a raw audit log: its first lines are audit records."""
    lines = first_lines(head, 5)
    if not lines:
        return 0.0
    hits = sum(1 for line in lines if HEADER_RE.match(line))
    if hits == len(lines):
        return 0.95
    return 0.5 * hits / len(lines)


register_format("auditd", open_auditd, sniff_auditd)
