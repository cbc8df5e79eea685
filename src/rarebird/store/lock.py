"""One writer per store: an exclusive ``flock`` on the store file itself.

The lock is on the file (its device and inode), not on a name, so a symlink, a hard link, a
bind mount or a relative path to the same store all meet the same lock: two ``rarebird serve``
can never run on one store, and ``job run`` / ``detect`` refuse a store a service (or another
replay) is writing. Who holds it is written beside the real file (``<store>.lock``: pid and
command) for the message. ``flock`` locks and SQLite's own (POSIX ``fcntl``) locks do not
interact on Linux; the locking descriptor stays open until the store is closed (closing another
descriptor of the file would drop SQLite's POSIX locks), so :meth:`StoreLock.release` comes
after the store's ``close``.
"""

from __future__ import annotations

import fcntl
import os

import orjson

from rarebird.errors import StoreError


class StoreLock:
    """An exclusive lock on the store file, taken by ``command`` (for the message)."""

    def __init__(self, store_path: str, command: str) -> None:
        self.store_path = store_path
        self.command = command
        self._fd: int | None = None

    @property
    def info_path(self) -> str:
        return f"{os.path.realpath(self.store_path)}.lock"

    def acquire(self) -> None:
        if self.store_path == ":memory:":
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.store_path)), exist_ok=True)
        try:
            fd = os.open(self.store_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"{self.store_path}: cannot open store: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"{self.store_path}: {holder(self.store_path) or 'another rarebird process'} is "
                f"using this store; {self.command} needs it to itself (stop the other first, or "
                "use another --store)"
            ) from None
        self._fd = fd
        try:
            with open(self.info_path, "wb") as fh:
                fh.write(orjson.dumps({"pid": os.getpid(), "command": self.command}))
        except OSError:
            pass  # only the message would lack the holder

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(store_path: str) -> str | None:
    """``rarebird serve (pid 123)``: who last took the lock, as written beside the store."""
    try:
        with open(f"{os.path.realpath(store_path)}.lock", "rb") as fh:
            doc = orjson.loads(fh.read())
        return f"rarebird {doc['command']} (pid {int(doc['pid'])})"
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def locked(store_path: str) -> bool:
    """True while a process holds the store's lock. Call it before opening the store in this
    process (see the module doc)."""
    if not os.path.exists(store_path):
        return False
    fd = os.open(store_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
