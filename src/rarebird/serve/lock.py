"""One service per store: an exclusive lock file beside it (also checked by a snapshot revert)."""

from __future__ import annotations

import fcntl
import os

from rarebird.errors import StoreError


class ServeLock:
    """An exclusive lock beside the store: one service per store, and no revert under it."""

    def __init__(self, store_path: str) -> None:
        self.path = f"{store_path}.serve.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise StoreError(
                f"{self.path}: rarebird serve is already running on this store"
                + (f" (pid {holder})" if holder else "")
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @classmethod
    def held(cls, store_path: str) -> bool:
        """True while a service holds the store."""
        path = f"{store_path}.serve.lock"
        if not os.path.exists(path):
            return False
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
