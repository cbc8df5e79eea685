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

The package: ``base`` (chunks, framing, the :class:`Follower` protocol), ``positions`` (a tracked
file and its position), ``files``, ``folders`` and ``streams`` (the three followers).
"""

from __future__ import annotations

from rarebird.serve.follow.base import MAX_RECORD_BYTES, Chunk, Follower, Framer, LogFn, line_framer
from rarebird.serve.follow.files import FileFollower
from rarebird.serve.follow.folders import FolderFollower
from rarebird.serve.follow.positions import (
    HEAD_BYTES,
    MIN_HEAD_MATCH,
    TrackedFile,
    read_head,
    take_chunk,
)
from rarebird.serve.follow.streams import StreamFollower

__all__ = [
    "HEAD_BYTES",
    "MAX_RECORD_BYTES",
    "MIN_HEAD_MATCH",
    "Chunk",
    "FileFollower",
    "FolderFollower",
    "Follower",
    "Framer",
    "LogFn",
    "StreamFollower",
    "TrackedFile",
    "line_framer",
    "read_head",
    "take_chunk",
]
