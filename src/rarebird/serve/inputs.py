"""The service's inputs: each followed file, folder or stream with its chunk parser."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rarebird.definitions.service import FollowConfig
from rarebird.serve.follow import FileFollower, FolderFollower, Follower, StreamFollower
from rarebird.sources import ChunkParser, Prefilter, SourceOptions


@dataclass
class FollowedInput:
    """One configured input: how it is followed and parsed, and how far its data has got."""

    follower: Follower
    parser: ChunkParser
    #: newest event time read, per file (epoch ms)
    watermarks: dict[str, int] = field(default_factory=dict)
    broken: bool = False


@dataclass
class Activity:
    """When a source (an input, or an HTTP sender) last sent data, and since when it is quiet."""

    last_data: float
    quiet_since_ms: int | None = None


def open_input(
    fc: FollowConfig,
    prefilter: Prefilter,
    saved: dict[str, Any] | None,
    *,
    backfill: bool,
    rotate_grace: timedelta,
    log: Callable[..., None],
) -> FollowedInput:
    """Follow ``fc`` from its ``saved`` position (None: from its start with ``backfill``, else
    from its end)."""
    options = SourceOptions(prefilter=prefilter, host_name=fc.host_name, passwd=fc.passwd,
                            group=fc.group, identity=fc.identity)  # fmt: skip
    parser = ChunkParser(fc.format, fc.label, options)
    grace = rotate_grace.total_seconds()
    path = fc.path
    follower: Follower
    kind = path_kind(path)
    if kind == "stream":
        follower = StreamFollower(path, label=fc.label, framer=parser.frame, log=log)
    elif kind == "folder":
        follower = FolderFollower(path, pattern=fc.pattern, label=fc.label, framer=parser.frame,
                                  state=saved, backfill=backfill, rotate_grace=grace,
                                  log=log)  # fmt: skip
    else:
        if kind == "missing":
            log("warning", "waiting_for_file", source=fc.label, path=path)
        follower = FileFollower(path, label=fc.label, framer=parser.frame, state=saved,
                                backfill=backfill, rotate_grace=grace, log=log)  # fmt: skip
    return FollowedInput(follower, parser)


def path_kind(path: str) -> str:
    """``stream`` (stdin, FIFO, character device), ``folder``, ``file`` or ``missing``."""
    if path == "-":
        return "stream"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return "stream"
    return "file"
