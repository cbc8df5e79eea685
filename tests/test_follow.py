"""Following inputs: real files appended to, rotated (rename, copytruncate, compression),
truncated, followed across restarts; folders of rotated logs; FIFOs. Every line exactly once."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from rarebird.serve.follow import FileFollower, FolderFollower, Follower, StreamFollower


def lines(follower: Follower, now: float = 0.0, rounds: int = 3) -> list[str]:
    """Poll until nothing more comes; the lines read."""
    out: list[str] = []
    for _ in range(rounds):
        for chunk in follower.poll(1 << 20, now):
            out.extend(chunk.data.decode().splitlines())
    return out


def append(path: Path, *texts: str) -> None:
    with open(path, "a") as f:
        f.write("".join(texts))


def numbered(prefix: str, a: int, b: int) -> str:
    return "".join(f"{prefix}-{i:04d} padding to make the head long enough to identify\n"
                   for i in range(a, b))  # fmt: skip


def names(prefix: str, a: int, b: int) -> list[str]:
    return numbered(prefix, a, b).splitlines()


def restarted(follower: FileFollower | FolderFollower, **kw: Any) -> Any:
    state = follower.to_state()
    follower.close()
    cls = type(follower)
    if isinstance(follower, FileFollower):
        return cls(follower.path, state=state, **kw)
    return cls(follower.folder, state=state, **kw)


def test_appended_lines_are_read_once_and_a_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, "one\ntwo\nthr")
    f = FileFollower(str(path))
    assert lines(f) == ["one", "two"]
    append(path, "ee\nfour\n")
    assert lines(f) == ["three", "four"]
    assert lines(f) == []
    assert f.to_state()["current"]["offset"] == path.stat().st_size
    f.close()


def test_without_backfill_a_first_start_begins_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, "old-1\nold-2\npartial")
    f = FileFollower(str(path), backfill=False)
    assert lines(f) == []
    append(path, " end\nnew\n")
    assert lines(f) == ["partial end", "new"]


def test_a_first_start_with_backfill_reads_the_rotated_siblings_oldest_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.log"
    with gzip.open(tmp_path / "audit.log.2.gz", "wt") as g:
        g.write("a\nb\n")
    (tmp_path / "audit.log.1").write_text("c\nd\n")
    (tmp_path / "audit.log.bak-notes").write_text("not a rotation\n")
    path.write_text("e\n")
    os.utime(tmp_path / "audit.log.2.gz", (1000, 1000))
    os.utime(tmp_path / "audit.log.1", (2000, 2000))
    f = FileFollower(str(path), rotate_grace=0.0)
    assert lines(f, now=10.0) == ["a", "b", "c", "d", "e"]


def test_rotation_by_rename_reads_the_old_file_to_its_end_then_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 3))
    f = FileFollower(str(path), rotate_grace=2.0)
    assert lines(f, now=0.0) == names("a", 0, 3)
    os.rename(path, tmp_path / "events.log.1")
    # the writer still has the old file open for a moment, then reopens by name
    append(tmp_path / "events.log.1", numbered("a", 3, 5))
    append(path, numbered("b", 0, 2))
    assert lines(f, now=1.0) == names("a", 3, 5) + names("b", 0, 2)
    assert [tf.path for tf in f.draining] == [str(tmp_path / "events.log.1")]
    lines(f, now=5.0)  # quiet for longer than rotate_grace: finished
    assert f.draining == []
    append(path, numbered("b", 2, 3))
    assert lines(f, now=6.0) == names("b", 2, 3)


def test_copytruncate_reads_the_rest_from_the_copy_then_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 3))
    f = FileFollower(str(path), rotate_grace=0.0)
    assert lines(f, now=0.0) == names("a", 0, 3)
    append(path, numbered("a", 3, 6))  # written, not yet read, when logrotate copies
    shutil.copyfile(path, tmp_path / "events.log.1")
    with open(path, "r+") as fh:
        fh.truncate(0)
    append(path, numbered("b", 0, 2))
    assert lines(f, now=1.0) == names("a", 3, 6) + names("b", 0, 2)


def test_a_file_rewritten_in_place_is_read_again_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 2))
    f = FileFollower(str(path))
    assert lines(f) == names("a", 0, 2)
    # truncated and rewritten longer than before between two polls: the first bytes tell
    path.write_text(numbered("z", 0, 5))
    assert lines(f) == names("z", 0, 5)


def test_a_restart_resumes_at_the_saved_offset(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 3), "part")
    f = FileFollower(str(path))
    assert lines(f) == names("a", 0, 3)
    append(path, "ial\n", numbered("a", 3, 4))
    g = restarted(f)
    assert lines(g) == ["partial", *names("a", 3, 4)]


def test_rotated_twice_while_down_the_old_file_is_found_and_the_newer_ones_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 3))
    f = FileFollower(str(path))
    assert lines(f) == names("a", 0, 3)
    state = f.to_state()
    f.close()
    # while rarebird is down: more lines, a rotation, a second file, another rotation
    append(path, numbered("a", 3, 5))
    os.rename(path, tmp_path / "events.log.1")
    append(path, numbered("b", 0, 2))
    os.rename(tmp_path / "events.log.1", tmp_path / "events.log.2")
    os.rename(path, tmp_path / "events.log.1")
    append(path, numbered("c", 0, 2))
    logged: list[tuple[str, dict[str, Any]]] = []
    g = FileFollower(str(path), state=state, rotate_grace=0.0,
                     log=lambda level, event, **kw: logged.append((event, kw)))  # fmt: skip
    assert lines(g, now=1.0) == names("a", 3, 5) + names("b", 0, 2) + names("c", 0, 2)
    assert [e for e, _ in logged][:2] == ["file_found_rotated", "rotated_while_down"]


def test_a_rotated_file_compressed_while_down_is_continued_inside_the_gz(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 3))
    f = FileFollower(str(path))
    assert lines(f) == names("a", 0, 3)
    state = f.to_state()
    f.close()
    append(path, numbered("a", 3, 5))
    with open(path, "rb") as src, gzip.open(tmp_path / "events.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    append(path, numbered("b", 0, 1))
    g = FileFollower(str(path), state=state)
    assert lines(g, now=1.0) == names("a", 3, 5) + names("b", 0, 1)


def test_a_file_lost_while_down_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    append(path, numbered("a", 0, 3))
    f = FileFollower(str(path))
    lines(f)
    state = f.to_state()
    f.close()
    path.unlink()
    append(path, "new\n")
    logged: list[tuple[str, str, dict[str, Any]]] = []
    g = FileFollower(str(path), state=state, log=lambda lv, ev, **kw: logged.append((lv, ev, kw)))
    assert lines(g) == ["new"]
    assert logged[0][:2] == ("warning", "file_lost")
    assert logged[0][2]["offset"] == len(numbered("a", 0, 3))


def test_a_folder_of_rotated_logs_reads_each_line_once(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "audit.log").write_text(numbered("a", 0, 3))
    (folder / "other.txt").write_text("not followed\n")
    f = FolderFollower(str(folder), pattern="audit.log*")
    assert lines(f) == names("a", 0, 3)
    append(folder / "audit.log", numbered("a", 3, 4))
    os.rename(folder / "audit.log", folder / "audit.log.1")
    (folder / "audit.log").write_text(numbered("b", 0, 2))
    assert sorted(lines(f)) == sorted(names("a", 3, 4) + names("b", 0, 2))
    # logrotate compresses the rotated file: a copy of what was read, not read again
    with (
        open(folder / "audit.log.1", "rb") as src,
        gzip.open(folder / "audit.log.1.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    assert lines(f) == []
    (folder / "audit.log.1").unlink()
    assert lines(f) == []
    g = restarted(f, pattern="audit.log*")
    append(folder / "audit.log", numbered("b", 2, 3))
    assert lines(g) == names("b", 2, 3)


def test_a_fifo_is_read_as_writers_come_and_go(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    f = StreamFollower(str(fifo))
    got: list[str] = []

    def writer(text: str) -> None:
        with open(fifo, "w") as w:
            w.write(text)

    for text in ("one\ntwo\n", "three\n"):
        t = threading.Thread(target=writer, args=(text,))
        t.start()
        t.join(timeout=5)
        deadline = time.monotonic() + 5
        want = len(got) + text.count("\n")
        while len(got) < want and time.monotonic() < deadline:
            for chunk in f.poll(65536, 0.0):
                got.extend(chunk.data.decode().splitlines())
            time.sleep(0.01)
    assert got == ["one", "two", "three"]
    assert not f.finished  # no end-of-file between writers
    assert f.behind() == []
    f.close()


def test_raw_auditd_followed_in_small_chunks_gives_the_events_of_a_whole_file_read(
    tmp_path: Path,
) -> None:
    from rarebird.sources import ChunkParser, SourceOptions, load_builtin_formats, open_source
    from tests.conftest import shared_path

    load_builtin_formats()
    source = shared_path("corpora", "audit-userspace", "auparse", "test", "test4.log")
    path = tmp_path / "audit.log"
    options = SourceOptions(host_name="h1")
    whole = [(e.timestamp, e.user_name, e.process_name, e.process_args)
             for e in open_source(str(source), "auditd", options)]  # fmt: skip
    parser = ChunkParser("auto", str(path), options)
    f = FileFollower(str(path), framer=parser.frame)
    got = []
    data = source.read_bytes()
    # written a few hundred bytes at a time, records cut anywhere
    for i, start in enumerate(range(0, len(data), 700)):
        append_bytes(path, data[start : start + 700])
        for chunk in f.poll(4096, float(i)):
            got += [(e.timestamp, e.user_name, e.process_name, e.process_args)
                    for e in parser.parse(chunk).events]  # fmt: skip
    for chunk in f.poll(4096, 1000.0):  # idle: the last event is complete
        got += [(e.timestamp, e.user_name, e.process_name, e.process_args)
                for e in parser.parse(chunk).events]  # fmt: skip
    assert parser.format == "auditd"
    assert len(whole) == 2
    assert got == whole


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
