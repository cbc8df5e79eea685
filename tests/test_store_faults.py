"""Store faults, with the real CLI in child processes: disk full (a real 1 MB tmpfs when root,
else ``RLIMIT_FSIZE``), a store locked by another process, a second writer on the same store
(also through a symlink and a hard link), truncated and corrupted files. Each ends in a clear
message naming the store, exit code 2 (1 for a store in use), no traceback, and no partial
commit; ``rarebird store check`` tells a whole store from a damaged one."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rarebird.store import open_store
from tests.serve_support import (
    RAREBIRD,
    event,
    history,
    log_events,
    serve_env,
    start_serve,
    stop_serve,
    wait_for,
    write_definitions,
    write_lines,
)


def rarebird(
    *args: str, timeout: float = 120, preexec_fn: Any = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAREBIRD, *args], capture_output=True, text=True, env=serve_env(),
                          timeout=timeout, preexec_fn=preexec_fn, cwd=cwd)  # fmt: skip


def events_file(path: Path, n: int, users: int = 50) -> Path:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    docs = []
    for i in range(n):
        doc = event(start + timedelta(seconds=i), f"user{i % users}")
        doc["process"]["pid"] = 10_000 + i
        doc["process"]["args"] = ["ss", "-tunap", f"--filter={'x' * 60}{i}"]
        docs.append(doc)
    write_lines(path, docs, "w")
    return path


def test_durable_is_chosen_per_commit(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    try:
        assert store.synchronous == 1  # NORMAL
        with store.durable(), store.transaction():
            assert store.synchronous == 2  # FULL: the WAL is fsynced at this commit
        assert store.synchronous == 1
        with store.durable(False), store.transaction():
            assert store.synchronous == 1
    finally:
        store.close()


@contextlib.contextmanager
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    """A folder on a 1 MB file system (root), or a child-process file size limit."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                              capture_output=True, check=False)  # fmt: skip
        if done.returncode == 0:
            try:
                yield mount, None
            finally:
                subprocess.run(["umount", "-l", str(mount)], check=False)
            return

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    yield mount, limit


def test_disk_full_in_job_run_is_a_clear_error_and_commits_nothing_partial(
    tmp_path: Path,
) -> None:
    events = events_file(tmp_path / "events.ndjson", 30_000)
    with small_disk(tmp_path) as (folder, limit):
        store = folder / "rarebird.db"
        out = rarebird("job", "run", "--store", str(store), "--quiet", str(events),
                       preexec_fn=limit)  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr
        assert out.stderr.startswith(f"rarebird: error: {store}: ")
        if limit is None:
            assert "the disk is full" in out.stderr
        # whatever was committed is whole: the store checks clean, and its counts agree
        check = rarebird("store", "check", "--store", str(store), "--format", "json")
        assert check.returncode == 0, check.stdout
        assert json.loads(check.stdout)["ok"] is True
        conn = sqlite3.connect(store)
        try:
            rows = conn.execute("SELECT state FROM job_state").fetchall()
            kept = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()
        processed = json.loads(rows[0][0])["stats"]["processed_record_count"] if rows else 0
        assert kept <= processed  # no events of a commit that did not happen


def test_a_store_locked_by_another_process(tmp_path: Path) -> None:
    store = tmp_path / "rarebird.db"
    open_store(str(store)).close()
    events = events_file(tmp_path / "events.ndjson", 50)
    holder = sqlite3.connect(store)
    holder.execute("BEGIN IMMEDIATE")
    try:
        env = {**serve_env(), "RAREBIRD_STORE_BUSY_TIMEOUT": "1"}
        out = subprocess.run([*RAREBIRD, "job", "run", "--store", str(store), "--quiet",
                              str(events)], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    finally:
        holder.rollback()
        holder.close()
    assert out.returncode == 2
    assert out.stderr == (
        f"rarebird: error: {store}: another process kept the store locked for too long (is "
        "another rarebird or a sqlite3 shell writing it?)\n"
    )
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT count(*) FROM job_state").fetchone()[0] == 0
    conn.close()
    # and once the lock is gone, the same command works
    assert rarebird("job", "run", "--store", str(store), "--quiet", str(events)).returncode == 0


@pytest.mark.slow
def test_one_writer_per_store_whatever_the_path(tmp_path: Path) -> None:
    defs = write_definitions(tmp_path / "defs")
    live = tmp_path / "events.ndjson"
    write_lines(live, history(datetime.now(UTC), buckets=20), "w")
    store = tmp_path / "data" / "serve.db"
    store.parent.mkdir()
    err = tmp_path / "serve.log"
    proc = start_serve(["--store", str(store), *defs.flags(), "--follow", str(live)], err)
    try:
        wait_for(lambda: log_events(err, "live"), 30, what="live")
        symlink = tmp_path / "elsewhere.db"
        symlink.symlink_to(store)
        hardlink = tmp_path / "data" / "same-inode.db"
        os.link(store, hardlink)
        relative = os.path.relpath(store, tmp_path)
        holder = f"rarebird serve (pid {proc.pid})"
        # (the holder is named beside the real file: a hard link elsewhere cannot name it)
        for path, who in ((str(symlink), holder), (str(hardlink), "another rarebird process"),
                          (relative, holder)):  # fmt: skip
            out = rarebird("serve", "--store", path, *defs.flags(), "--follow", str(live),
                           timeout=60, cwd=str(tmp_path))  # fmt: skip
            assert out.returncode == 1
            assert out.stderr == (
                f"rarebird: error: {path}: {who} is using this store; serve needs it to "
                "itself (stop the other first, or use another --store)\n"
            )
        for command in ("job run", "detect"):
            out = rarebird(*command.split(), "--store", str(symlink), *defs.flags()[:4],
                           "--quiet", str(live))  # fmt: skip
            assert out.returncode == 1
            assert f"{holder} is using this store; {command} needs it" in out.stderr
        assert proc.poll() is None  # the service never noticed
    finally:
        assert stop_serve(proc) == 0
    # stopped: the store is free again
    out = rarebird("job", "run", "--store", str(store), *defs.flags()[:4], "--quiet", str(live))
    assert out.returncode == 0, out.stderr


def test_corrupted_and_truncated_stores(tmp_path: Path) -> None:
    events = events_file(tmp_path / "events.ndjson", 3000)
    good = tmp_path / "good.db"
    assert rarebird("job", "run", "--store", str(good), "--quiet", str(events)).returncode == 0
    out = rarebird("store", "check", "--store", str(good))
    assert out.returncode == 0
    assert out.stdout.endswith(
        f"{good}: ok (checked: integrity, schema, job_state, serve_state, orphans:record_details, "
        "orphans:serve_outbox, orphans:serve_interim, orphans:results)\n"
    )

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + uuid.uuid4().bytes * 4096)
    truncated = tmp_path / "truncated.db"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    for bad in (garbage, truncated):
        for command in (["job", "run", "--store", str(bad), "--quiet", str(events)],
                        ["serve", "--store", str(bad), "--follow", str(events)]):  # fmt: skip
            out = rarebird(*command, timeout=60)
            assert out.returncode == 2, (command, out.stderr)
            assert out.stderr.startswith(f"rarebird: error: {bad}: "), out.stderr
            assert "Traceback" not in out.stderr
        out = rarebird("store", "check", "--store", str(bad))
        assert out.returncode == 2
        assert out.stdout.splitlines()[-1].startswith(f"{bad}: DAMAGED")

    conn = sqlite3.connect(good)
    conn.execute('UPDATE job_state SET state = \'{"version": 1, "mod\'')
    conn.commit()
    conn.close()
    out = rarebird("store", "check", "--store", str(good), "--format", "json")
    assert out.returncode == 2
    report = json.loads(out.stdout)
    assert report["ok"] is False
    assert [p["check"] for p in report["problems"]] == ["job_state"]
    assert report["problems"][0]["message"].startswith(
        "job v3_linux_network_connection_discovery: the state is not JSON"
    )
