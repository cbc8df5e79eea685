"""One service per store: the store's lock (:mod:`rarebird.store.lock`), taken as ``serve``."""

from __future__ import annotations

from rarebird.store.lock import StoreLock, locked


class ServeLock(StoreLock):
    """The store lock taken by ``rarebird serve`` (also refused to ``job run``, ``detect`` and a
    snapshot revert while held)."""

    def __init__(self, store_path: str) -> None:
        super().__init__(store_path, "serve")

    @classmethod
    def held(cls, store_path: str) -> bool:
        """True while a service (or any rarebird writer) holds the store."""
        return locked(store_path)
