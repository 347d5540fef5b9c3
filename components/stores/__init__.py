"""Where conversations and locks live: Redis when `REDIS_URL` is set, else a SQLite file.

The store classes import Rasa, which is slow to import, so they load on first use: the
`kefu` command's feedback tools need only `connection` and `spool`."""

from typing import Any

__all__ = ["RedisLockStore", "RedisTrackerStore"]


def __getattr__(name: str) -> Any:
    if name == "RedisTrackerStore":
        from components.stores.tracker_store import RedisTrackerStore

        return RedisTrackerStore
    if name == "RedisLockStore":
        from components.stores.lock_store import RedisLockStore

        return RedisLockStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
