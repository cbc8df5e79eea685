"""Every file of a folder whose name matches a pattern, each tracked by identity, so renames
continue where they were and compressed copies of files already read are recognised."""

from __future__ import annotations

import fnmatch
import os
import stat
from typing import Any

from rarebird.serve.follow.base import Chunk, Framer, LogFn, line_framer
from rarebird.serve.follow.positions import (
    MIN_HEAD_MATCH,
    TrackedFile,
    bytes_left,
    find_copy,
    locate,
    mtime,
    read_head,
    reopen,
    take_chunk,
)


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
                where = locate(tf, listing)
                if where is None:
                    self.log("info", "file_gone", source=self.label, path=tf.path,
                             offset=tf.offset)  # fmt: skip
                    self._remember(tf)
                    continue
                opened = reopen(tf, where)
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
                tf = reopen(match, path)
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
        order = sorted(self.files.values(), key=lambda t: (mtime(t.path), t.path))
        for tf in order:
            if stream_id is not None and tf.id != stream_id:
                continue
            if tf.done and not tf.partial:
                tf.close()  # a compressed file read to its end
                continue
            if tf.truncated():
                others = [p for p in self._listing() if p != tf.path]
                copy = find_copy(tf, others)
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
        return sum(bytes_left(tf) for tf in self.files.values())

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "folder",
            "files": [tf.to_state() for tf in self.files.values()],
            "finished": self.finished,
        }

    def close(self) -> None:
        for tf in self.files.values():
            tf.close()
