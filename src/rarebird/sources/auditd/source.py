"""Raw Linux audit logs (``/var/log/audit/audit.log``, rotated, gzipped) as process-start events.

``--input-format auditd`` (also chosen by ``auto`` when the first lines are audit records).
Records are grouped into events and exec events are mapped to ECS as Elastic's normaliser does;
see :mod:`~rarebird.sources.auditd.records` (record syntax, ENRICHED fields, hex),
:mod:`~rarebird.sources.auditd.scan` (grouping, the full parse),
:mod:`~rarebird.sources.auditd.fast` (the prefiltered fast path) and
:mod:`~rarebird.sources.auditd.events` (the ECS mapping).

:class:`SourceOptions` fields read: ``prefilter`` (selects the fast path and is applied exactly
to every parsed event), ``host_name`` (``host.name`` of records without ``node=``), ``passwd``
and ``group`` (names for numeric ids when the log is not ENRICHED), ``max_line_bytes``
(capped at 4 MiB: kernel records are under 9 KB) and two ``extra`` keys: ``workers`` (worker
processes over byte ranges of one large regular file, default 1) and ``scan`` (``full``
forces the full parse, which reads and checks every line). ``identity`` is applied by the
sources layer, after this reader (:mod:`rarebird.sources.identity`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator

from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.auditd.events import BuildContext, build_context
from rarebird.sources.auditd.exe_search import ExeSearch, exe_needle
from rarebird.sources.auditd.fast import FastScan, fast_scan_for
from rarebird.sources.auditd.parallel import scan_parallel
from rarebird.sources.auditd.records import HEADER_RE
from rarebird.sources.auditd.scan import MAX_RECORD_LINE, scan_full
from rarebird.sources.base import SourceOptions
from rarebird.sources.identity import load_accounts
from rarebird.sources.inputs import open_binary
from rarebird.sources.sniff import first_lines, is_gzip

#: Below this size a file is read by one process whatever ``workers`` says.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024

_AUDIT_STAMP = re.compile(rb"msg=audit\(\d+\.\d+:\d+\)")
_EOE = re.compile(rb"(?:^|\s)type=EOE\s")


class AuditdSource:
    """Exec events from one raw audit log (file, rotated file, ``.gz``, FIFO or ``-``)."""

    def __init__(self, path: str, options: SourceOptions) -> None:
        self._path = path
        self._options = options
        self._stats = ReadStats()
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
        #: how the input is being read, once iteration has begun (:meth:`reading`)
        self._processes = 0
        self._search: ExeSearch | None = None

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

    def context(self) -> BuildContext:
        """What mapping an event of this input needs; problems are counted in :attr:`stats`."""
        return build_context(self._path, self._accounts, self._options.host_name, self._stats)

    def reading(self) -> str | None:
        """How the input was read, once iteration has begun: every line parsed, or the events
        whose ``exe=`` the prefilter wants and the search that found them (as this process
        chose it: ``auto`` times Hyperscan against the regular expression on the first
        large buffer); and the processes, when more than one."""
        if not self._processes:
            return None
        if self._needle is None:
            how = "every line parsed"
        elif self._search is not None and self._search.use_hyperscan:
            how = "exe= fields found by Hyperscan"
        else:
            how = "exe= fields found by the regular expression"
        return how if self._processes == 1 else f"{how}, {self._processes} processes"

    def __iter__(self) -> Iterator[ProcessEvent]:
        needle = self._needle
        if needle is not None and self._workers > 1 and self._parallel_ok():
            self._processes = self._workers
            events = scan_parallel(
                self._path, self._options, self._stats, self._workers, self.fast_scan
            )
        else:
            self._processes = 1
            events = self._scan(open_binary(self._path))
        for event in events:
            self._stats.events += 1
            yield event

    def _scan(self, stream: io.BufferedIOBase) -> Iterator[ProcessEvent]:
        with stream:
            if self._needle is None:
                yield from scan_full(
                    stream,
                    self._path,
                    self._stats,
                    self.context(),
                    self._options.prefilter.holds,
                    self._max_line,
                )
            else:
                yield from self.fast_scan().run(stream)

    def fast_scan(self, start: int = 0, stop: int | None = None) -> FastScan:
        """The fast pass over this input, or over its byte range ``start``..``stop``."""
        assert self._needle is not None
        scan = fast_scan_for(
            self._path,
            self._options,
            self._stats,
            self._needle,
            accounts=self._accounts,
            start=start,
            stop=stop,
        )
        self._search = scan.search
        return scan

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


def frame_audit(data: bytes, final: bool, idle: bool) -> int:
    """Complete audit events (the :data:`~rarebird.sources.base.Framer` of ``auditd``): up to
    an ``EOE`` record, or before the records of the last, maybe unfinished, event (which goes
    once the input has been idle).

    >>> a = b"type=SYSCALL msg=audit(1.0:7): x\\ntype=EXECVE msg=audit(1.0:7): y\\n"
    >>> b = b"type=SYSCALL msg=audit(1.0:8): x\\n"
    >>> frame_audit(a + b, False, False) == len(a), frame_audit(a + b, False, True)
    (True, 98)
    """
    end = len(data) if final else data.rfind(b"\n") + 1
    if final or idle or end == 0:
        return end
    last_start = data.rfind(b"\n", 0, end - 1) + 1
    last = data[last_start:end]
    if _EOE.search(last):
        return end
    stamp = _AUDIT_STAMP.search(last)
    if stamp is None:
        return end
    first = data.find(stamp.group(0))
    return data.rfind(b"\n", 0, first) + 1 if first >= 0 else end
