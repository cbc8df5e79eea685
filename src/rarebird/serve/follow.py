"""Following inputs live: a file tailed by name, a folder of (rotated) logs, stdin or a FIFO.

A *follower* hands out :class:`Chunk` s of complete records (a framing function decides where a
record ends: a newline for NDJSON, the end of an audit event for raw auditd) and keeps, for
every file it reads, a *position* that survives restarts:

- ``dev`` + ``ino``: which file it is while it exists (a rename keeps them);
- ``offset``: the bytes consumed so far (decompressed bytes for ``.gz``); a partial last record
  is never consumed, so after a restart it is read again whole;
- ``head_len`` + ``head_hash``: SHA-256 of the file's first bytes (up to 1 KiB, decompressed).
  It tells a file that was truncated and rewritten, or whose inode was reused, from the file
  that was being read; and it recognises a rotated file that was compressed (``.1`` ->
  ``.2.gz``) or copied (``copytruncate``) as the same content, so it is continued, not re-read.

**A file** (``FileFollower``) is followed by name, as ``tail -F`` does. When the name points to
another file (rotation by rename), the old file is kept open and read until it has not grown for
``rotate_grace`` seconds, then the new one is read from its start. A file that shrinks or whose
first bytes change was truncated (``copytruncate``): if a sibling holds the old content (the
copy), the rest is read from there; the file is then read again from its start. After a restart
the saved file is looked for at the name, then among its rotated siblings (``name.1``,
``name-20260301``, ``name.2.gz`` ...) by inode or by content; siblings rotated in between (newer
than it) are read too. On the very first start with backfill the rotated siblings are read as
history, oldest first; without backfill reading starts at the end of the file.

**A folder** (``FolderFollower``) follows every file in it whose name matches ``pattern``:
each file is tracked by identity, so renames (rotation) continue where they were, and a
compressed copy of a file already read is recognised by its content.

**stdin and FIFOs** (``StreamFollower``) are read without blocking. A FIFO is also opened for
writing by rarebird itself, so writers may come and go. Nothing read from a pipe can be read
again: what was read but not yet committed is lost in a crash (files and the HTTP ingest do
not have this limit).

Followers never parse: see :mod:`rarebird.sources.chunks`.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import os
import re
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

#: Bytes of a file's start that identify its content.
HEAD_BYTES = 1024
#: A file is recognised by content alone (no inode match) only with at least this many bytes.
MIN_HEAD_MATCH = 64
#: A record longer than this is handed over as it is (the parser reports it as too long).
MAX_RECORD_BYTES = 16 * 1024 * 1024
_GZ_MAGIC = b"\x1f\x8b"
_ROTATED_SUFFIX = re.compile(r"^[.-]\d[\w.-]*$")

#: ``framer(data, final, idle) -> bytes`` of ``data`` that hold complete records. ``final``:
#: the file will not grow again; ``idle``: it has not grown for a while.
Framer = Callable[[bytes, bool, bool], int]
#: ``log(level, event, **fields)``
LogFn = Callable[..., None]


def line_framer(data: bytes, final: bool, idle: bool) -> int:
    """Complete lines; everything once the file is final.

    >>> line_framer(b'{"a": 1}\\n{"b"', False, False), line_framer(b'{"b"', True, False)
    (9, 4)
    """
    if final:
        return len(data)
    return data.rfind(b"\n") + 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete records read from one file (or pipe)."""

    #: the follower's name (the followed path, or the configured name)
    source: str
    #: the file read, as last seen (a rotated file has its new name)
    path: str
    #: stable id of the file while it exists: ``dev:ino`` (``-`` for stdin)
    stream_id: str
    data: bytes
    #: 1-based number of the chunk's first line in the file
    first_line: int


def _head_hash(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def _is_gz(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == _GZ_MAGIC
    except OSError:
        return False


def read_head(path: str, size: int = HEAD_BYTES) -> bytes | None:
    """The first ``size`` bytes of a file (decompressed when it is gzip); None if unreadable."""
    try:
        with open(path, "rb") as f:
            raw = f.read(size)
            if raw[:2] != _GZ_MAGIC:
                return raw
            f.seek(0)
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                out = bytearray()
                while len(out) < size:
                    piece = gz.read(size - len(out))
                    if not piece:
                        break
                    out += piece
                return bytes(out)
    except (OSError, EOFError, zlib.error):
        return None


class TrackedFile:
    """One file being read: its identity, position and open handle."""

    def __init__(
        self,
        path: str,
        dev: int,
        ino: int,
        *,
        offset: int = 0,
        line: int = 0,
        head_len: int = 0,
        head_hash: str = "",
        gz: bool = False,
    ) -> None:
        self.path = path
        self.dev = dev
        self.ino = ino
        self.offset = offset
        self.line = line
        self.head_len = head_len
        self.head_hash = head_hash or _head_hash(b"")
        self.gz = gz
        #: bytes read past ``offset`` that do not yet make a complete record
        self.partial = b""
        self.eof = False
        self.done = False
        self.last_growth = 0.0
        self.last_size = -1
        self._fd: int | None = None
        self._gzf: gzip.GzipFile | None = None

    @classmethod
    def open_path(cls, path: str, *, at_end: bool = False) -> TrackedFile | None:
        """Start tracking the file now at ``path`` (from its start, or its last line end)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        tf = cls(path, st.st_dev, st.st_ino, gz=_is_gz(path))
        if not tf.open():
            return None
        tf.refresh_head()
        if at_end and not tf.gz:
            tf.offset = tf._last_line_end(st.st_size)
        return tf

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrackedFile:
        return cls(
            str(state["path"]), int(state["dev"]), int(state["ino"]),
            offset=int(state["offset"]), line=int(state.get("line", 0)),
            head_len=int(state["head_len"]), head_hash=str(state["head_hash"]),
            gz=bool(state.get("gz", False)),
        )  # fmt: skip

    def to_state(self) -> dict[str, Any]:
        return {
            "path": self.path, "dev": self.dev, "ino": self.ino, "offset": self.offset,
            "line": self.line, "head_len": self.head_len, "head_hash": self.head_hash,
            "gz": self.gz,
        }  # fmt: skip

    @property
    def id(self) -> str:
        return f"{self.dev}:{self.ino}"

    @property
    def read_pos(self) -> int:
        return self.offset + len(self.partial)

    # -- identity ------------------------------------------------------------------------

    def matches_head(self, head: bytes | None) -> bool:
        """True when ``head`` (a file's first bytes) starts with this file's known head."""
        if head is None or len(head) < self.head_len:
            return False
        return _head_hash(head[: self.head_len]) == self.head_hash

    def is_at(self, path: str) -> bool:
        """True when the file now at ``path`` is this file (same inode, same first bytes)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return False
        return self.matches_head(read_head(path, max(self.head_len, 1)))

    # -- reading -------------------------------------------------------------------------

    def open(self) -> bool:
        """Open the file at ``self.path`` (it must be this file) and seek to ``offset``."""
        try:
            if self.gz:
                gzf = gzip.GzipFile(self.path, "rb")
                skip = self.offset
                while skip > 0:
                    piece = gzf.read(min(skip, 1 << 20))
                    if not piece:
                        break
                    skip -= len(piece)
                self._gzf = gzf
                return True
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, EOFError, zlib.error):
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _last_line_end(self, size: int) -> int:
        assert self._fd is not None
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            block = os.pread(self._fd, pos - start, start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
        return 0

    def size(self) -> int | None:
        if self._fd is None:
            return None
        try:
            return os.fstat(self._fd).st_size
        except OSError:
            return None

    def refresh_head(self) -> None:
        """Extend the known head while the file is shorter than :data:`HEAD_BYTES`."""
        if self.head_len >= HEAD_BYTES:
            return
        if self._fd is not None:
            head = os.pread(self._fd, HEAD_BYTES, 0)
        else:
            head = read_head(self.path) or b""
        if len(head) > self.head_len:
            self.head_len = len(head)
            self.head_hash = _head_hash(head)

    def head_still_matches(self) -> bool:
        if self._fd is None or self.head_len == 0:
            return True
        return _head_hash(os.pread(self._fd, self.head_len, 0)) == self.head_hash

    def read(self, budget: int) -> bytes:
        """Up to ``budget`` new bytes; sets :attr:`eof` when there was no more."""
        try:
            if self._gzf is not None:
                data = self._gzf.read(budget)
            elif self._fd is not None:
                data = os.pread(self._fd, budget, self.read_pos)
            else:
                data = b""
        except (OSError, EOFError, zlib.error):
            data = b""
            self.done = self.gz  # a corrupt or cut-off .gz ends here
        self.eof = len(data) < budget
        if self.gz and self.eof:
            self.done = True
        return data

    def truncated(self) -> bool:
        """True when the file shrank below what was read, or its first bytes changed."""
        if self.gz:
            return False
        size = self.size()
        if size is None or size == self.last_size:
            return False
        self.last_size = size
        if size < self.read_pos or not self.head_still_matches():
            return True
        self.refresh_head()
        return False

    def rewind(self) -> None:
        """Read again from the start (after truncation)."""
        self.offset = 0
        self.line = 0
        self.partial = b""
        self.head_len = 0
        self.head_hash = _head_hash(b"")
        self.refresh_head()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._gzf is not None:
            self._gzf.close()
            self._gzf = None


def take_chunk(
    tf: TrackedFile,
    source: str,
    framer: Framer,
    budget: int,
    now: float,
    *,
    final: bool = False,
    idle_after: float = 1.0,
) -> Chunk | None:
    """Read from ``tf`` and return its complete records (None when there are none)."""
    new = b"" if tf.done else tf.read(budget)
    if new:
        tf.last_growth = now
    data = tf.partial + new if tf.partial else new
    if not data:
        return None
    final = final or tf.done
    idle = tf.eof and now - tf.last_growth >= idle_after
    cut = framer(data, final and tf.eof, idle)
    if cut == 0 and len(data) > MAX_RECORD_BYTES:
        cut = len(data)
    tf.partial = data[cut:]
    if cut == 0:
        return None
    body = data[:cut]
    first = tf.line + 1
    tf.offset += cut
    tf.line += body.count(b"\n")
    return Chunk(source, tf.path, tf.id, body, first)


class Follower(Protocol):
    """What the service needs of a followed input."""

    @property
    def label(self) -> str: ...

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]: ...

    def behind(self) -> list[str]:
        """Ids of the files not yet read to their end since the start (catch-up)."""
        ...

    def remaining_bytes(self) -> int:
        """Bytes known to be waiting (for progress reports)."""
        ...

    def to_state(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _remaining(tf: TrackedFile) -> int:
    if tf.gz or tf.done:
        return 0
    size = tf.size()
    return max(0, (size or 0) - tf.read_pos)


def _siblings(path: str) -> list[str]:
    """Rotated siblings of ``path`` in its folder (``name.1``, ``name-20260301.gz`` ...)."""
    folder, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in names:
        if name != base and name.startswith(base) and _ROTATED_SUFFIX.match(name[len(base) :]):
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                out.append(full)
    return out


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _locate(saved: TrackedFile, candidates: list[str]) -> str | None:
    """Where the saved file is now: same inode and first bytes, else same first bytes (a
    compressed or copied rotation) when enough of them are known."""
    for path in candidates:
        if saved.is_at(path):
            return path
    if saved.head_len >= MIN_HEAD_MATCH:
        for path in candidates:
            if saved.matches_head(read_head(path, saved.head_len)):
                return path
    return None


def _reopen(saved: TrackedFile, path: str) -> TrackedFile | None:
    """The saved position, on the file found at ``path`` (maybe a compressed copy)."""
    st = os.stat(path)
    gz = _is_gz(path)
    tf = TrackedFile(
        path, st.st_dev, st.st_ino, offset=saved.offset, line=saved.line,
        head_len=saved.head_len, head_hash=saved.head_hash, gz=gz,
    )  # fmt: skip
    if not tf.open():
        return None
    tf.refresh_head()
    return tf


def _find_copy(cur: TrackedFile, candidates: list[str]) -> TrackedFile | None:
    """After ``copytruncate``: the copy holding what ``cur`` had, continued at its offset."""
    if cur.head_len < MIN_HEAD_MATCH:
        return None
    for path in candidates:
        if path == cur.path or not cur.matches_head(read_head(path, cur.head_len)):
            continue
        tf = _reopen(cur, path)
        if tf is None:
            continue
        if tf.gz or (tf.size() or 0) > cur.offset:
            return tf
        tf.close()
    return None


class FileFollower:
    """One file followed by name, across rotation and truncation (see the module doc)."""

    def __init__(
        self,
        path: str,
        *,
        label: str | None = None,
        framer: Framer = line_framer,
        state: dict[str, Any] | None = None,
        backfill: bool = True,
        rotate_grace: float = 5.0,
        log: LogFn | None = None,
    ) -> None:
        self.path = path
        self._label = label or path
        self.framer = framer
        self.rotate_grace = rotate_grace
        self.log: LogFn = log or (lambda *a, **k: None)
        self.current: TrackedFile | None = None
        #: rotated-away (or history) files still being read, oldest first
        self.draining: list[TrackedFile] = []
        if state is None:
            self._first_start(backfill)
        else:
            self._restore(state)

    @property
    def label(self) -> str:
        return self._label

    def _first_start(self, backfill: bool) -> None:
        if backfill:
            for sib in sorted(_siblings(self.path), key=_mtime):
                tf = TrackedFile.open_path(sib)
                if tf is not None:
                    self.draining.append(tf)
                    self.log("info", "history_file", source=self.label, path=sib)
        self.current = TrackedFile.open_path(self.path, at_end=not backfill)

    def _restore(self, state: dict[str, Any]) -> None:
        saved_current = state.get("current")
        for item in state.get("draining", []):
            self._restore_one(TrackedFile.from_state(item), rotated_ok=True)
        if saved_current is None:
            self.current = TrackedFile.open_path(self.path)
            return
        saved = TrackedFile.from_state(saved_current)
        if saved.is_at(self.path):
            tf = _reopen(saved, self.path)
            if tf is not None:
                self.current = tf
                return
        # rotated while rarebird was down: finish the old file, then whatever came after it
        found = self._restore_one(saved, rotated_ok=True)
        if found is not None and found is self.current:
            return
        if found is not None:
            since = _mtime(found.path)
            newer = [
                p for p in _siblings(self.path)
                if p != found.path and _mtime(p) >= since and not found.is_at(p)
                and not found.matches_head(read_head(p, found.head_len))
            ]  # fmt: skip
            for p in sorted(newer, key=_mtime):
                tf = TrackedFile.open_path(p)
                if tf is not None:
                    self.draining.append(tf)
                    self.log("info", "rotated_while_down", source=self.label, path=p)
        self.current = TrackedFile.open_path(self.path)

    def _restore_one(self, saved: TrackedFile, *, rotated_ok: bool) -> TrackedFile | None:
        where = _locate(saved, [self.path, *_siblings(self.path)] if rotated_ok else [self.path])
        if where is None:
            self.log("warning", "file_lost", source=self.label, path=saved.path,
                     offset=saved.offset,
                     message="a file being read is gone; what it held after this offset "
                             "was not read")  # fmt: skip
            return None
        tf = _reopen(saved, where)
        if tf is None:
            return None
        if where != self.path:
            self.draining.append(tf)
            if where != saved.path:
                self.log("info", "file_found_rotated", source=self.label, path=where,
                         was=saved.path, offset=saved.offset)  # fmt: skip
        else:
            self.current = tf
        return tf

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]:
        chunks: list[Chunk] = []
        if stream_id is None or (self.current is not None and self.current.id == stream_id):
            self._check_path(now)
        for tf in list(self.draining):
            if stream_id is not None and tf.id != stream_id:
                continue
            chunk = take_chunk(tf, self.label, self.framer, budget, now)
            if chunk is None and tf.eof and (tf.done or now - tf.last_growth >= self.rotate_grace):
                chunk = take_chunk(tf, self.label, self.framer, budget, now, final=True)
                tf.close()
                self.draining.remove(tf)
                self.log("info", "file_finished", source=self.label, path=tf.path,
                         bytes=tf.offset)  # fmt: skip
            if chunk is not None:
                chunks.append(chunk)
        cur = self.current
        if cur is not None and (stream_id is None or cur.id == stream_id):
            chunk = take_chunk(cur, self.label, self.framer, budget, now)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _check_path(self, now: float) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        cur = self.current
        if st is None:
            if cur is not None:
                self._retire(cur, now, "file_moved")
            return
        if cur is None:
            self.current = TrackedFile.open_path(self.path)
            if self.current is not None:
                self.current.last_growth = now
                self.log("info", "file_opened", source=self.label, path=self.path)
            return
        if (st.st_dev, st.st_ino) != (cur.dev, cur.ino):
            self._retire(cur, now, "file_rotated")
            self.current = TrackedFile.open_path(self.path)
            if self.current is not None:
                self.current.last_growth = now
            return
        if cur.truncated():
            self._truncated(cur)

    def _retire(self, cur: TrackedFile, now: float, event: str) -> None:
        """The name no longer points to ``cur``: finish reading it."""
        self.current = None
        cur.last_growth = now
        new_name = _locate(cur, _siblings(self.path))
        if new_name is not None:
            cur.path = new_name
        self.draining.append(cur)
        self.log("info", event, source=self.label, path=cur.path, offset=cur.offset)

    def _truncated(self, cur: TrackedFile) -> None:
        copy = _find_copy(cur, _siblings(self.path))
        if copy is not None:
            self.draining.append(copy)
        self.log("warning" if copy is None else "info", "file_truncated", source=self.label,
                 path=self.path, offset=cur.offset,
                 rest_read_from=copy.path if copy else None)  # fmt: skip
        cur.rewind()

    def behind(self) -> list[str]:
        files = [*self.draining, *([self.current] if self.current else [])]
        return [tf.id for tf in files if not tf.eof]

    def remaining_bytes(self) -> int:
        files = [*self.draining, *([self.current] if self.current else [])]
        return sum(_remaining(tf) for tf in files)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "current": self.current.to_state() if self.current else None,
            "draining": [tf.to_state() for tf in self.draining],
        }

    def close(self) -> None:
        for tf in [*self.draining, *([self.current] if self.current else [])]:
            tf.close()


class FolderFollower:
    """Every file of a folder whose name matches ``pattern``, each tracked by identity."""

    MAX_FINISHED = 1000

    def __init__(
        self,
        folder: str,
        *,
        pattern: str = "*",
        label: str | None = None,
        framer: Framer = line_framer,
        state: dict[str, Any] | None = None,
        backfill: bool = True,
        rotate_grace: float = 5.0,
        log: LogFn | None = None,
    ) -> None:
        self.folder = folder
        self.pattern = pattern
        self._label = label or folder
        self.framer = framer
        self.rotate_grace = rotate_grace
        self.log: LogFn = log or (lambda *a, **k: None)
        self.files: dict[str, TrackedFile] = {}
        #: positions of files no longer present, to recognise their compressed copies
        self.finished: list[dict[str, Any]] = []
        #: ids of files that are copies of a file being read (not read themselves)
        self.copies: set[str] = set()
        self._at_end = False
        if state is None:
            self._at_end = not backfill
        else:
            self.finished = list(state.get("finished", []))
            saved = [TrackedFile.from_state(s) for s in state.get("files", [])]
            listing = self._listing()
            for tf in saved:
                where = _locate(tf, listing)
                if where is None:
                    self.log("info", "file_gone", source=self.label, path=tf.path,
                             offset=tf.offset)  # fmt: skip
                    self._remember(tf)
                    continue
                opened = _reopen(tf, where)
                if opened is not None:
                    self.files[opened.id] = opened
        self._scan(0.0)
        self._at_end = False

    @property
    def label(self) -> str:
        return self._label

    def _listing(self) -> list[str]:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        out = []
        for name in sorted(names):
            if name.startswith(".") or not fnmatch.fnmatch(name, self.pattern):
                continue
            path = os.path.join(self.folder, name)
            try:
                if stat.S_ISREG(os.stat(path).st_mode):
                    out.append(path)
            except OSError:
                continue
        return out

    def _remember(self, tf: TrackedFile) -> None:
        if tf.head_len >= MIN_HEAD_MATCH:
            self.finished.append({"head_len": tf.head_len, "head_hash": tf.head_hash,
                                  "offset": tf.offset, "line": tf.line})  # fmt: skip
            del self.finished[: -self.MAX_FINISHED]

    def _scan(self, now: float) -> None:
        present: set[str] = set()
        for path in self._listing():
            try:
                st = os.stat(path)
            except OSError:
                continue
            fid = f"{st.st_dev}:{st.st_ino}"
            present.add(fid)
            known = self.files.get(fid)
            if known is not None:
                known.path = path
                continue
            if fid in self.copies:
                continue
            match = self._known_content(read_head(path))
            if match is not None and self.files.get(match.id) is match:
                # a copy (or compressed copy) of a file still being read: read the original
                self.copies.add(fid)
                continue
            if match is not None:
                # a compressed (or copied) version of a file already read: continue it there
                tf = _reopen(match, path)
                if tf is not None:
                    tf.last_growth = now
                    self.files[tf.id] = tf
                continue
            tf = TrackedFile.open_path(path, at_end=self._at_end)
            if tf is not None:
                tf.last_growth = now
                self.files[tf.id] = tf
                if not self._at_end:
                    self.log("info", "file_opened", source=self.label, path=path)
        self.copies &= present
        for fid, tf in list(self.files.items()):
            if fid not in present and not tf.partial and tf.eof:
                tf.close()
                del self.files[fid]
                self._remember(tf)

    def _known_content(self, head: bytes | None) -> TrackedFile | None:
        if head is None:
            return None
        for tf in self.files.values():
            if tf.head_len >= MIN_HEAD_MATCH and tf.matches_head(head):
                return tf
        for item in self.finished:
            saved = TrackedFile("", 0, 0, offset=int(item["offset"]), line=int(item["line"]),
                                head_len=int(item["head_len"]), head_hash=str(item["head_hash"]))  # fmt: skip
            if saved.matches_head(head):
                return saved
        return None

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]:
        if stream_id is None:
            self._scan(now)
        chunks: list[Chunk] = []
        order = sorted(self.files.values(), key=lambda t: (_mtime(t.path), t.path))
        for tf in order:
            if stream_id is not None and tf.id != stream_id:
                continue
            if tf.done and not tf.partial:
                tf.close()  # a compressed file read to its end
                continue
            if tf.truncated():
                others = [p for p in self._listing() if p != tf.path]
                copy = _find_copy(tf, others)
                if copy is not None:
                    self.copies.discard(copy.id)
                    self.files[copy.id] = copy
                    chunk = take_chunk(copy, self.label, self.framer, budget, now)
                    if chunk is not None:
                        chunks.append(chunk)
                self.log("warning" if copy is None else "info", "file_truncated",
                         source=self.label, path=tf.path, offset=tf.offset,
                         rest_read_from=copy.path if copy else None)  # fmt: skip
                tf.rewind()
            gone = not os.path.exists(tf.path)
            chunk = take_chunk(tf, self.label, self.framer, budget, now, final=gone)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def behind(self) -> list[str]:
        return [tf.id for tf in self.files.values() if not tf.eof and not tf.done]

    def remaining_bytes(self) -> int:
        return sum(_remaining(tf) for tf in self.files.values())

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "folder",
            "files": [tf.to_state() for tf in self.files.values()],
            "finished": self.finished,
        }

    def close(self) -> None:
        for tf in self.files.values():
            tf.close()


class StreamFollower:
    """stdin (``-``) or a FIFO, read without blocking."""

    def __init__(self, path: str, *, label: str | None = None, framer: Framer = line_framer,
                 log: LogFn | None = None) -> None:  # fmt: skip
        self.path = path
        self._label = label or path
        self.framer = framer
        self.log: LogFn = log or (lambda *a, **k: None)
        self.partial = b""
        self.line = 0
        self.finished = False
        self._behind = True
        self._keepalive: int | None = None
        if path == "-":
            self.fd = os.dup(0)
        else:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            if stat.S_ISFIFO(os.fstat(self.fd).st_mode):
                # our own writer end: the FIFO never reports end-of-file between writers
                self._keepalive = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
        if not self.regular:
            os.set_blocking(self.fd, False)

    @property
    def label(self) -> str:
        return self._label

    def poll(self, budget: int, now: float, stream_id: str | None = None) -> list[Chunk]:
        if self.finished:
            return []
        try:
            new = os.read(self.fd, budget)
        except BlockingIOError:
            self._behind = False
            return []
        except OSError as exc:
            self.log("error", "read_error", source=self.label, error=str(exc))
            new = b""
        eof = not new
        if eof:
            self.finished = True
            self._behind = False
            self.log("info", "stream_ended", source=self.label, lines=self.line)
        else:
            self._behind = len(new) == budget or self.regular
        data = self.partial + new
        cut = self.framer(data, eof, eof)
        self.partial = data[cut:]
        if cut == 0:
            return []
        body = data[:cut]
        first = self.line + 1
        self.line += body.count(b"\n")
        return [Chunk(self.label, self.path, self.path, body, first)]

    def behind(self) -> list[str]:
        return [self.path] if self._behind and not self.finished else []

    def remaining_bytes(self) -> int:
        return 0

    def to_state(self) -> dict[str, Any]:
        return {"kind": "stream", "line": self.line}

    def close(self) -> None:
        os.close(self.fd)
        if self._keepalive is not None:
            os.close(self._keepalive)
