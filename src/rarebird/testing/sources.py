"""Fakes and the contract of a source, for rarebird's own tests and for anyone adding a format.

- :class:`ListSource`: a :class:`~rarebird.sources.base.Source` over events held in a list, for
  testing the stages after the sources without writing files.
- :func:`check_source`: the contract every registered input format keeps, checked on a small
  sample of that format (:class:`SourceSample`): ``auto`` recognises it; it yields typed events
  with UTC times and their file:line; lines and bad lines are counted consistently, and a bad
  line is reported at its line without costing its neighbours; a prefilter never drops an event
  that satisfies it; gzip reads the same; the login identity models the person behind ``sudo``;
  and the chunk parser of ``serve`` gives what file reading gives.

A violation raises :class:`ContractViolation` (an ``AssertionError``, so pytest shows it as a
failed check) saying which part of the contract and what was found.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from rarebird.errors import ReadStats
from rarebird.events import ProcessEvent, SourceLocation
from rarebird.sources import (
    ChunkParser,
    FieldCondition,
    Prefilter,
    SourceOptions,
    open_source,
)
from rarebird.sources.registry import detect


class ContractViolation(AssertionError):
    """A source broke its contract."""


class ListSource:
    """Events from a list, as a source yields them: counted in :attr:`stats` as they go.

    >>> from datetime import UTC, datetime
    >>> src = ListSource([ProcessEvent(timestamp=datetime(2026, 1, 5, tzinfo=UTC))])
    >>> len(list(src)), src.stats.events, src.name
    (1, 1, 'list')
    """

    def __init__(self, events: Iterable[ProcessEvent], name: str = "list") -> None:
        self._events = tuple(events)
        self._name = name
        self._stats = ReadStats()

    @property
    def name(self) -> str:
        return self._name

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def __iter__(self) -> Iterator[ProcessEvent]:
        for event in self._events:
            self._stats.lines += 1
            self._stats.events += 1
            yield event


@dataclass(frozen=True)
class SourceSample:
    """A small, clean input in one format, written from that format's specification."""

    #: the registered format's name
    format: str
    data: bytes
    #: a ``process.name`` some (not all) of the sample's events have
    process_name: str
    #: a line the format reports as bad (not a record of it at all)
    bad_line: bytes
    #: where the bad line is put: before this 0-based line (after a header, say)
    bad_at: int = 0
    #: ``(account, login user)`` of an event run through ``sudo``; None when the format
    #: cannot tell who logged in
    sudo: tuple[str, str] | None = None
    #: a passwd(5) file for formats that write numeric ids only
    passwd: bytes | None = None
    #: the file name the sample is written to
    file_name: str = "sample.log"


def check_source(sample: SourceSample, workdir: Path) -> list[ProcessEvent]:
    """Check the contract of ``sample.format`` on ``sample``; files go to ``workdir``.

    Returns the sample's events (read with the account identity and no prefilter).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / sample.file_name
    path.write_bytes(sample.data)
    options = SourceOptions()
    if sample.passwd is not None:
        (workdir / "passwd").write_bytes(sample.passwd)
        options = SourceOptions(passwd=str(workdir / "passwd"))
    lines = _line_count(sample.data)

    found = detect(sample.data)
    _check(found is not None and found.format == sample.format, "auto", f"detected {found}")
    events, stats = _read(path, "auto", options)
    _check(bool(events), "events", "the sample gives no event")
    for event in events:
        _check_event(event, str(path), lines)
    _check(stats.events == len(events), "counts", f"{stats.events} counted, {len(events)} read")
    _check(stats.lines == lines, "counts", f"{stats.lines} lines counted for {lines}")
    _check(not stats.skipped and not stats.issues, "clean", f"{stats.skipped} {stats.issues}")

    _check_bad_line(sample, workdir, options, events, lines)
    _check_prefilter(sample, path, options, events)
    _check_gzip(sample, workdir, options, events)
    _check_identity(sample, path, options)
    return events


def _check(ok: bool, part: str, found: str) -> None:
    if not ok:
        raise ContractViolation(f"{part}: {found}")


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _read(path: Path, fmt: str, options: SourceOptions) -> tuple[list[ProcessEvent], ReadStats]:
    source = open_source(str(path), fmt, options)
    events = list(source)
    return events, source.stats


def _check_event(event: ProcessEvent, path: str, lines: int) -> None:
    _check(isinstance(event, ProcessEvent), "typed", repr(event)[:80])
    offset = event.timestamp.utcoffset()
    _check(offset == timedelta(0), "UTC", f"{event.timestamp!r}")
    origin = event.origin
    _check(
        origin is not None and origin.path == path and 1 <= origin.line <= lines,
        "file:line",
        f"origin {origin} for a file of {lines} lines",
    )


def _relocated(
    events: list[ProcessEvent], path: Path, after: int | None = None
) -> list[ProcessEvent]:
    """The events as read from ``path``, where (with ``after``) one line was put in before
    0-based line ``after``."""
    out = []
    for event in events:
        line = event.origin.line if event.origin is not None else 0
        if after is not None and line > after:
            line += 1
        out.append(event.with_origin(SourceLocation(str(path), line)))
    return out


def _check_bad_line(
    sample: SourceSample,
    workdir: Path,
    options: SourceOptions,
    events: list[ProcessEvent],
    lines: int,
) -> None:
    parts = sample.data.split(b"\n")
    at = sample.bad_at
    path = workdir / f"bad-{sample.file_name}"
    path.write_bytes(b"\n".join([*parts[:at], sample.bad_line, *parts[at:]]))
    got, stats = _read(path, sample.format, options)
    expected = _relocated(events, path, after=at)
    _check(got == expected, "bad line", "the events around a bad line changed")
    _check(stats.lines == lines + 1, "counts", f"{stats.lines} lines counted for {lines + 1}")
    _check(stats.skipped_total == 1, "bad line", f"skipped {dict(stats.skipped)}")
    where = [issue.location for issue in stats.issues]
    _check(
        where == [SourceLocation(str(path), at + 1)], "file:line", f"bad line reported at {where}"
    )


def _check_prefilter(
    sample: SourceSample, path: Path, options: SourceOptions, events: list[ProcessEvent]
) -> None:
    lines = _line_count(sample.data)
    names = {e.process_name for e in events}
    _check(
        sample.process_name in names and len(names) > 1,
        "sample",
        f"process.name {sample.process_name!r} must name some events, not all: {names}",
    )
    for name in (sample.process_name, "no-such-program"):
        prefilter = Prefilter((FieldCondition("process.name", frozenset({name})),))
        wanted = [e for e in events if prefilter.holds(e)]
        got, stats = _read(path, sample.format, _with(options, prefilter))
        kept = [e for e in got if prefilter.holds(e)]  # a prefilter may keep too much
        _check(kept == wanted, "prefilter", f"{name!r}: {len(kept)} kept for {len(wanted)}")
        _check(not stats.skipped, "prefilter", f"{name!r}: skipped {dict(stats.skipped)}")
        _check(stats.lines == lines, "counts", f"{name!r}: {stats.lines} lines for {lines}")
        _check(stats.events == len(got), "counts", f"{name!r}: {stats.events} for {len(got)}")


def _check_gzip(
    sample: SourceSample, workdir: Path, options: SourceOptions, events: list[ProcessEvent]
) -> None:
    path = workdir / f"{sample.file_name}.gz"
    path.write_bytes(gzip.compress(sample.data))
    got, _stats = _read(path, "auto", options)
    _check(got == _relocated(events, path), "gzip", "a gzip file reads otherwise")


def _check_identity(sample: SourceSample, path: Path, options: SourceOptions) -> None:
    for identity in ("user", "login"):
        opts = SourceOptions(passwd=options.passwd, identity=identity)
        read, _stats = _read(path, sample.format, opts)
        parser = ChunkParser(sample.format, sample.file_name, opts)
        parsed = parser.parse(_Chunk(str(path), sample.data)).events
        _check(parsed == read, "chunks", f"identity {identity}: serve's parser reads otherwise")
        if sample.sudo is None:
            continue
        account, login = sample.sudo
        via_sudo = [e for e in read if e.user_audit_name == login]
        _check(bool(via_sudo), "sample", f"no event with user.audit.name {login!r}")
        for event in via_sudo:
            user = event.user_name, event.get("process.real_user.name")
            expected = (account, ()) if identity == "user" else (login, (account,))
            _check(user == expected, "identity", f"{identity}: {user}, expected {expected}")


def _with(options: SourceOptions, prefilter: Prefilter) -> SourceOptions:
    return SourceOptions(prefilter=prefilter, passwd=options.passwd, identity=options.identity)


@dataclass(frozen=True)
class _Chunk:
    path: str
    data: bytes
    first_line: int = 1


__all__ = ["ContractViolation", "ListSource", "SourceSample", "check_source"]
