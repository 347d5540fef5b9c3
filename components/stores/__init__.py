"""Where conversations and locks live: Redis when `REDIS_URL` is set, else a SQLite file."""

from components.stores.lock_store import RedisLockStore
from components.stores.tracker_store import RedisTrackerStore

__all__ = ["RedisLockStore", "RedisTrackerStore"]
