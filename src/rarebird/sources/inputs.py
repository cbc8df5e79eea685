"""Input plumbing: which files to read, how to open them, in which format, and in what order.

- :func:`expand_inputs` turns command-line specs (files, folders, globs, ``-``) into a list of
  paths. Folders are walked **recursively**; every regular file inside is taken, sorted by path,
  except hidden ones (a name starting with ``.``, file or folder): rotated logs (``audit.log.1``)
  and compressed ones (``.gz``) are included. Globs are expanded here (``**`` recurses), so a
  quoted glob works the same as one the shell expanded. A spec that matches nothing or cannot be
  read raises :class:`~rarebird.errors.InputError`. The same file named twice is read once.
- :func:`open_binary` opens one input as a binary stream: a regular file, a FIFO, a character
  device or ``-`` (stdin). gzip is recognised by its magic bytes, not by the ``.gz`` suffix, and
  works on stdin and FIFOs too. Nothing is ever seeked: the first bytes that
  :func:`read_head` looks at on a pipe are peeked, not consumed, so sniffing the format and then
  reading the input work on stdin.
- :func:`open_source` opens an input in a named format (:mod:`rarebird.sources.registry`), or
  ``auto``: it sniffs the first lines (after gunzip) and records what it chose
  (:meth:`OpenedSource.describe` -> ``"file X: ecs (auto)"``).
- :func:`merge_by_time` merges several inputs (say one file per host) into one time order, as
  a datafeed's sorted search delivers them: a heap merge on ``@timestamp``, ties kept in input
  order. An input that is itself out of order stays as it is (the job counts such events).
"""

from __future__ import annotations

import glob
import gzip
import heapq
import io
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from operator import attrgetter

from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.base import Source, SourceOptions
from rarebird.sources.gunzip import GzipInput
from rarebird.sources.registry import detect, format_names, open_format, undetected_format
from rarebird.sources.sniff import SNIFF_BYTES, Detection, gunzip_head, is_gzip

#: The spec that means standard input.
STDIN = "-"

#: Buffer of the stream kept for a pipe (stdin, FIFO): the most that can be peeked.
PIPE_BUFFER = 1024 * 1024

_GLOB_CHARS = frozenset("*?[")


# --- which inputs ------------------------------------------------------------------------------


def expand_inputs(specs: Sequence[str]) -> list[str]:
    """Expand files, folders, globs and ``-`` into the list of inputs to read, in order.

    Raises :class:`InputError` for a spec that matches nothing or cannot be read.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = path if path == STDIN else os.path.realpath(path)
        if key in seen:
            if path == STDIN:
                raise InputError(STDIN, "standard input can be read only once")
            return
        seen.add(key)
        out.append(path)

    for spec in specs:
        if spec == STDIN:
            add(STDIN)
            continue
        if os.path.lexists(spec) or not _GLOB_CHARS & set(spec):
            for path in _expand_path(spec):
                add(path)
            continue
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise InputError(spec, "no file matches this pattern")
        found = False
        for match in matches:
            if os.path.isdir(match):
                paths = _walk(match)
            elif _is_readable_input(match):
                paths = [match]
            else:
                continue
            for path in paths:
                found = True
                add(path)
        if not found:
            raise InputError(spec, "the pattern matches no readable file")
    return out


def _expand_path(path: str) -> list[str]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "no such file or directory") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise InputError(path, "permission denied")
        files = _walk(path)
        if not files:
            raise InputError(path, "the folder holds no files")
        return files
    if not _is_readable_input(path):
        if not os.access(path, os.R_OK):
            raise InputError(path, "permission denied")
        raise InputError(path, "not a regular file, FIFO or character device")
    return [path]


def _is_readable_input(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        return False
    return os.access(path, os.R_OK)


def _walk(folder: str) -> list[str]:
    """Every non-hidden regular file under ``folder``, recursively, sorted by path.

    A file inside that cannot be read raises :class:`InputError` rather than being left out.
    """
    found: list[str] = []
    for root, dirs, files in os.walk(folder, onerror=None):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue  # sockets, broken links
            if not os.access(path, os.R_OK):
                raise InputError(path, "permission denied")
            found.append(path)
    return sorted(found)


# --- opening -----------------------------------------------------------------------------------

#: Streams opened for pipes (stdin, FIFOs) that were peeked but not yet handed to a reader.
_PIPES: dict[str, io.BufferedReader] = {}


def is_pipe(path: str) -> bool:
    """True for inputs that can be read only once, front to back (stdin, FIFOs, devices)."""
    if path == STDIN:
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _pipe_stream(path: str) -> io.BufferedReader:
    stream = _PIPES.get(path)
    if stream is not None:
        return stream
    try:
        if path == STDIN:
            try:
                fd = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):
                fd = -1
            if fd >= 0:
                raw: io.RawIOBase = io.FileIO(fd, "rb", closefd=False)
                stream = io.BufferedReader(raw, buffer_size=PIPE_BUFFER)
            else:  # an in-memory stdin (tests, embedding): wrap what there is
                base = getattr(sys.stdin, "buffer", None)
                if base is None:
                    raise InputError(STDIN, "standard input is not available")
                stream = io.BufferedReader(base, buffer_size=PIPE_BUFFER)
        else:
            stream = io.BufferedReader(io.FileIO(path, "rb"), buffer_size=PIPE_BUFFER)
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    _PIPES[path] = stream
    return stream


def _open_raw(path: str) -> io.BufferedReader:
    if is_pipe(path):
        return _pipe_stream(path)
    try:
        return open(path, "rb")  # the caller owns and closes the stream
    except IsADirectoryError:
        raise InputError(path, "is a folder") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


def open_binary(path: str) -> io.BufferedIOBase:
    """Open an input for reading: decompressed if it is gzip (by magic bytes).

    The caller closes the stream. For ``-`` and FIFOs the stream is the one
    :func:`read_head` peeked at, so nothing is lost.
    """
    stream = _open_raw(path)
    _PIPES.pop(path, None)
    try:
        magic = stream.peek(2)[:2]
    except OSError as exc:
        stream.close()
        raise InputError(path, exc.strerror or str(exc)) from None
    if is_gzip(magic):
        return GzipInput(stream)
    return stream


def read_head(path: str, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of an input (decompressed), without consuming a pipe."""
    if is_pipe(path):
        stream = _pipe_stream(path)
        try:
            head = stream.peek(size)[:size]
        except OSError as exc:
            raise InputError(path, exc.strerror or str(exc)) from None
        return gunzip_head(head, size) if is_gzip(head) else head
    with _open_raw(path) as f:
        try:
            head = f.read(size)
        except OSError as exc:
            raise InputError(path, exc.strerror or str(exc)) from None
        if not is_gzip(head):
            return head
        f.seek(0)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                return gz.read(size)
        except (OSError, EOFError):
            return gunzip_head(head, size)


# --- one input in its format ---------------------------------------------------------------------


class OpenedSource:
    """A :class:`~rarebird.sources.base.Source` with the format it is read as."""

    def __init__(self, source: Source, fmt: str, detection: Detection | None) -> None:
        self.source = source
        self.format = fmt
        #: how ``auto`` chose the format; None when the format was named
        self.detection = detection

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def stats(self) -> ReadStats:
        return self.source.stats

    @property
    def auto(self) -> bool:
        return self.detection is not None

    def __iter__(self) -> Iterator[ProcessEvent]:
        return iter(self.source)

    def describe(self) -> str:
        """``"events.ndjson: ecs (auto)"`` or ``"events.ndjson: ecs"``; once the input has been
        read, followed by how, where the source says (its ``reading()``: the search that found
        the candidate lines, the processes that read them), as in ``"audit.log: auditd (auto);
        exe= fields found by Hyperscan, 2 processes"``."""
        text = f"{self.name}: {self.format}{' (auto)' if self.auto else ''}"
        reading = getattr(self.source, "reading", None)
        how = reading() if callable(reading) else None
        return f"{text}; {how}" if how else text


def open_source(path: str, fmt: str = "auto", options: SourceOptions | None = None) -> OpenedSource:
    """Open one input as a Source, in format ``fmt`` or the one sniffed (``auto``), with the
    identity of ``options`` applied (:func:`~rarebird.sources.registry.open_format`).

    An empty input is given to the first format (it yields nothing either way).
    """
    options = options or SourceOptions()
    detection: Detection | None = None
    if fmt == "auto":
        head = read_head(path)
        if not head.strip():
            detection = Detection(format_names()[0], 0.0)
        else:
            detection = detect(head)
            if detection is None:
                raise InputError(path, undetected_format())
        fmt = detection.format
    return OpenedSource(open_format(fmt, path, options), fmt, detection)


# --- several inputs, one time order ------------------------------------------------------------


class MergedSource:
    """Several sources merged into one time order; an iterator of events, and a Source."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources: tuple[Source, ...] = tuple(sources)
        self._it: Iterator[ProcessEvent] | None = None

    @property
    def name(self) -> str:
        return ", ".join(s.name for s in self.sources)

    @property
    def stats(self) -> ReadStats:
        """Counts added up over every source (first issues of each, up to the limit)."""
        total = ReadStats()
        for source in self.sources:
            total.merge(source.stats)
        return total

    @property
    def per_source(self) -> list[tuple[str, ReadStats]]:
        return [(s.name, s.stats) for s in self.sources]

    def __iter__(self) -> MergedSource:
        return self

    def __next__(self) -> ProcessEvent:
        if self._it is None:
            if len(self.sources) == 1:
                self._it = iter(self.sources[0])
            else:
                self._it = heapq.merge(*self.sources, key=attrgetter("timestamp"))
        return next(self._it)


def merge_by_time(sources: Sequence[Source]) -> MergedSource:
    """Events of every source in one time order (heap merge; ties in input order)."""
    return MergedSource(sources)
