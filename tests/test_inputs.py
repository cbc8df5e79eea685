"""Input plumbing: expanding specs, opening (gzip, stdin, FIFOs), sniffing formats, merging."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from rarebird.errors import InputError, RarebirdError
from rarebird.events import ProcessEvent
from rarebird.sources import (
    BUILTIN_FORMATS,
    SourceOptions,
    expand_inputs,
    merge_by_time,
    open_source,
    register_format,
    registered_formats,
)
from rarebird.sources.base import Source
from rarebird.sources.ecs import EcsSource
from rarebird.sources.sniff import Detection, detect_format, first_lines, gunzip_head, is_gzip

ROOT = Path(__file__).resolve().parent.parent


def line(user: str, minute: int, host: str = "web-01") -> bytes:
    doc = {
        "@timestamp": f"2026-01-05T10:{minute:02d}:00Z",
        "event": {"type": ["start"]},
        "host": {"name": host, "os": {"type": "linux"}},
        "process": {"name": "ss"},
        "user": {"name": user},
    }
    return orjson.dumps(doc) + b"\n"


def touch(path: Path, data: bytes = b"") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


# --- expand_inputs --------------------------------------------------------------------------------


def test_folders_are_walked_recursively_sorted_without_hidden_files(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    expected = [
        touch(logs / "audit.log"),
        touch(logs / "audit.log.1"),
        touch(logs / "audit.log.2.gz"),
        touch(logs / "hosts" / "db-01.ndjson"),
        touch(logs / "hosts" / "web-01.ndjson"),
    ]
    touch(logs / ".hidden")
    touch(logs / ".git" / "config")
    assert expand_inputs([str(logs)]) == expected


def test_globs_are_expanded_here_and_duplicates_read_once(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.ndjson")
    b = touch(tmp_path / "sub" / "b.ndjson")
    touch(tmp_path / "c.txt")
    assert expand_inputs([str(tmp_path / "*.ndjson")]) == [a]
    assert expand_inputs([str(tmp_path / "**" / "*.ndjson")]) == [a, b]
    assert expand_inputs([a, str(tmp_path / "*.ndjson"), "-"]) == [a, "-"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.ndjson", "no such file or directory"),
        ("nothing-*.ndjson", "no file matches this pattern"),
        ("empty", "the folder holds no files"),
    ],
)
def test_specs_that_match_nothing_raise_input_error(
    tmp_path: Path, spec: str, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message) as info:
        expand_inputs([str(tmp_path / spec)])
    assert info.value.path == str(tmp_path / spec)


def test_stdin_only_once() -> None:
    assert expand_inputs(["-"]) == ["-"]
    with pytest.raises(InputError, match="only once"):
        expand_inputs(["-", "-"])


# --- formats ---------------------------------------------------------------------------------------


def test_builtin_formats_load_and_missing_modules_are_skipped() -> None:
    assert BUILTIN_FORMATS[0] == "ecs"
    formats = registered_formats()
    assert "ecs" in formats
    # each built-in module registers its format; rarebird.sources.columnar registers "csv"
    assert set(formats) <= set(BUILTIN_FORMATS) | {"testmagic", "csv"}


def test_auto_sniffs_and_says_what_it_chose(tmp_path: Path) -> None:
    plain = touch(tmp_path / "events.ndjson", line("alice", 1))
    packed = touch(tmp_path / "events.bin", gzip.compress(line("bob", 2)))
    source = open_source(plain)
    assert source.describe() == f"{plain}: ecs (auto)"
    assert source.detection == Detection("ecs", 1.0)
    assert [e.user_name for e in source] == ["alice"]
    source = open_source(packed)
    assert source.describe() == f"{packed}: ecs (auto)"
    assert [e.user_name for e in source] == ["bob"]
    named = open_source(plain, "ecs")
    assert named.describe() == f"{plain}: ecs"
    assert named.auto is False
    assert isinstance(named.source, EcsSource)


def test_undetectable_unknown_and_empty_inputs(tmp_path: Path) -> None:
    garbage = touch(tmp_path / "garbage.txt", b"hello world\n")
    with pytest.raises(InputError, match="cannot tell the input format"):
        open_source(garbage)
    with pytest.raises(RarebirdError, match="unknown input format 'nope'"):
        open_source(garbage, "nope")
    empty = touch(tmp_path / "empty.log")
    source = open_source(empty)
    assert source.format == "ecs"
    assert list(source) == []
    assert source.stats.lines == 0


class _Magic:
    """A format of its own, registered the way other modules register theirs."""

    def __init__(self, path: str, options: SourceOptions) -> None:
        from rarebird.errors import ReadStats

        self.path = path
        self._stats = ReadStats()

    @property
    def name(self) -> str:
        return self.path

    @property
    def stats(self) -> Any:
        return self._stats

    def __iter__(self) -> Any:
        yield ProcessEvent(timestamp=datetime(2026, 1, 5, tzinfo=UTC), user_name="magic")


def test_register_format_and_sniffer(tmp_path: Path) -> None:
    register_format("testmagic", _Magic, lambda head: 0.99 if head.startswith(b"MAGIC") else 0.0)
    path = touch(tmp_path / "x.log", b"MAGIC 1\n")
    source = open_source(path)
    assert source.describe() == f"{path}: testmagic (auto)"
    assert [e.user_name for e in source] == ["magic"]
    with pytest.raises(ValueError, match="invalid format name"):
        register_format("auto", _Magic, lambda head: 0.0)


def test_sniff_helpers() -> None:
    data = b'{"a": 1}\n{"b": 2}\n'
    assert is_gzip(gzip.compress(data))
    assert not is_gzip(data)
    assert gunzip_head(gzip.compress(data) + gzip.compress(b"more\n")) == data + b"more\n"
    cut = gunzip_head(gzip.compress(data)[:15])  # what there is of a cut-off stream
    assert data.startswith(cut)
    assert gunzip_head(b"\x1f\x8bnot really") == b""
    assert first_lines(b"\xef\xbb\xbf\n x \n\ny\nz-cut") == [b"x", b"y"]

    def broken(head: bytes) -> float:
        raise zlib.error("boom")

    assert detect_format(b"x", {"broken": broken, "one": lambda h: 0.3}) == Detection("one", 0.3)
    assert detect_format(b"x", {"zero": lambda h: 0.0}) is None


# --- merging ---------------------------------------------------------------------------------------


def test_merge_by_time_keeps_each_input_order_and_adds_up_stats(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.ndjson", line("a1", 1) + line("a3", 3) + b"junk\n" + line("a5", 5))
    b = touch(tmp_path / "b.ndjson", line("b2", 2) + line("b4", 4) + line("b6", 6))
    c = touch(tmp_path / "c.ndjson", line("c9", 9) + line("c0", 0))  # itself out of order
    sources: list[Source] = [open_source(p) for p in (a, b, c)]
    merged = merge_by_time(sources)
    assert [e.user_name for e in merged] == ["a1", "b2", "a3", "b4", "a5", "b6", "c9", "c0"]
    stats = merged.stats
    assert (stats.lines, stats.events, stats.skipped_total) == (9, 8, 1)
    assert [(name, s.events) for name, s in merged.per_source] == [(a, 3), (b, 3), (c, 2)]
    assert merged.name == f"{a}, {b}, {c}"


def test_merge_of_one_source_is_that_source(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.ndjson", line("x", 5) + line("y", 1))
    assert [e.user_name for e in merge_by_time([open_source(a)])] == ["x", "y"]


# --- stdin and FIFOs -------------------------------------------------------------------------------

READ_STDIN = (
    "from rarebird.sources import open_source\n"
    "s = open_source('-')\n"
    "print(s.describe(), ','.join(e.user_name or '' for e in s), s.stats.lines)\n"
)


@pytest.mark.parametrize("compress", [False, True])
def test_stdin_plain_and_gzip(compress: bool) -> None:
    data = b"".join(line(f"u{i}", i) for i in range(5))
    proc = subprocess.run(
        [sys.executable, "-c", READ_STDIN],
        input=gzip.compress(data) if compress else data,
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    assert proc.stdout.decode().strip() == "-: ecs (auto) u0,u1,u2,u3,u4 5"


@pytest.mark.parametrize("compress", [False, True])
def test_fifo(tmp_path: Path, compress: bool) -> None:
    data = b"".join(line(f"u{i}", i) for i in range(3))
    src = touch(tmp_path / "data", gzip.compress(data) if compress else data)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{src}' > '{fifo}'"])
    try:
        assert expand_inputs([str(fifo)]) == [str(fifo)]
        source = open_source(str(fifo))
        assert source.describe() == f"{fifo}: ecs (auto)"
        assert [e.user_name for e in source] == ["u0", "u1", "u2"]
    finally:
        assert writer.wait(timeout=10) == 0
