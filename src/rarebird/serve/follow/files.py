"""A file followed by name, as ``tail -F`` does, across rename and ``copytruncate`` rotation,
truncation and restarts (see :mod:`rarebird.serve.follow`)."""

from __future__ import annotations

import os
import re
from typing import Any

from rarebird.serve.follow.base import Chunk, Framer, LogFn, line_framer
from rarebird.serve.follow.positions import (
    TrackedFile,
    bytes_left,
    find_copy,
    locate,
    mtime,
    read_head,
    reopen,
    take_chunk,
)

_ROTATED_SUFFIX = re.compile(r"^[.-]\d[\w.-]*$")


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
            for sib in sorted(_siblings(self.path), key=mtime):
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
            tf = reopen(saved, self.path)
            if tf is not None:
                self.current = tf
                return
        # rotated while rarebird was down: finish the old file, then whatever came after it
        found = self._restore_one(saved, rotated_ok=True)
        if found is not None and found is self.current:
            return
        if found is not None:
            since = mtime(found.path)
            newer = [
                p for p in _siblings(self.path)
                if p != found.path and mtime(p) >= since and not found.is_at(p)
                and not found.matches_head(read_head(p, found.head_len))
            ]  # fmt: skip
            for p in sorted(newer, key=mtime):
                tf = TrackedFile.open_path(p)
                if tf is not None:
                    self.draining.append(tf)
                    self.log("info", "rotated_while_down", source=self.label, path=p)
        self.current = TrackedFile.open_path(self.path)

    def _restore_one(self, saved: TrackedFile, *, rotated_ok: bool) -> TrackedFile | None:
        where = locate(saved, [self.path, *_siblings(self.path)] if rotated_ok else [self.path])
        if where is None:
            self.log("warning", "file_lost", source=self.label, path=saved.path,
                     offset=saved.offset,
                     message="a file being read is gone; what it held after this offset "
                             "was not read")  # fmt: skip
            return None
        tf = reopen(saved, where)
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
        new_name = locate(cur, _siblings(self.path))
        if new_name is not None:
            cur.path = new_name
        self.draining.append(cur)
        self.log("info", event, source=self.label, path=cur.path, offset=cur.offset)

    def _truncated(self, cur: TrackedFile) -> None:
        copy = find_copy(cur, _siblings(self.path))
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
        return sum(bytes_left(tf) for tf in files)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "current": self.current.to_state() if self.current else None,
            "draining": [tf.to_state() for tf in self.draining],
        }

    def close(self) -> None:
        for tf in [*self.draining, *([self.current] if self.current else [])]:
            tf.close()
