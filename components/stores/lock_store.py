"""Kefu's lock store: Rasa's Redis ticket locks, reading `REDIS_URL`, degrading gracefully.

The locks serialise the messages of one conversation across server processes. With
`REDIS_URL` unset they live in process (Rasa's in-memory lock store), so more than one Sanic
worker (`SANIC_WORKERS`) is refused: each would hold its own locks. While Redis is
unreachable, a conversation's lock moves into process memory until its last ticket is
served, so a message is processed rather than failing with a lock error.
"""

from __future__ import annotations

import os
from typing import Any

from rasa.constants import ENV_SANIC_WORKERS
from rasa.core.lock import TicketLock
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.lock_store import RedisLockStore as RasaRedisLockStore
from rasa.utils.endpoints import EndpointConfig

from components.stores.connection import OUTAGE, REDIS_ERRORS, connect, describe, redis_url


def sanic_workers() -> int:
    """`SANIC_WORKERS` as Rasa reads it: a number, anything else one worker."""
    try:
        return int(os.environ.get(ENV_SANIC_WORKERS) or 1)
    except ValueError:
        return 1


class RedisLockStore(RasaRedisLockStore):
    """Configured in endpoints.yml as `lock_store: {type: components.stores.RedisLockStore}`,
    with optional `key_prefix` (default kefu), `socket_timeout`, `connect_timeout` and, for
    `rediss://`, `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, url: str | None = None,
                 **settings: Any) -> None:
        settings = {**(endpoint_config.kwargs if endpoint_config else {}), **settings}
        url = url or redis_url()
        if not url and sanic_workers() > 1:
            raise ValueError(f"{ENV_SANIC_WORKERS}={os.environ[ENV_SANIC_WORKERS]} needs REDIS_URL: without "
                             "Redis each worker would keep its own conversation locks, and two messages of "
                             "one conversation could be answered at once")
        self.memory = InMemoryLockStore()
        self._in_memory: set[str] = set()  # conversations whose lock lives in `memory`
        self.key_prefix = f"{settings.get('key_prefix') or 'kefu'}:lock:"
        self.where = describe(url) if url else "nowhere (REDIS_URL is unset)"
        self.red = connect(url, float(settings.get("socket_timeout", 2.0)), float(settings.get("connect_timeout", 2.0)),
                           ssl_ca_certs=settings.get("ssl_ca_certs"), ssl_certfile=settings.get("ssl_certfile"),
                           ssl_keyfile=settings.get("ssl_keyfile")) if url else None

    def _use_memory(self, conversation_id: str) -> bool:
        return self.red is None or conversation_id in self._in_memory or not OUTAGE.should_try()

    def _fall_back(self, conversation_id: str, error: Exception) -> None:
        OUTAGE.failed(self.where, error)
        self._in_memory.add(conversation_id)

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        if not self._use_memory(conversation_id):
            try:
                lock = super().get_lock(conversation_id)
                OUTAGE.recovered(self.where)
                return lock
            except REDIS_ERRORS as error:
                self._fall_back(conversation_id, error)
        elif self.red is not None:
            self._in_memory.add(conversation_id)
        return self.memory.get_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        if not self._use_memory(lock.conversation_id):
            try:
                super().save_lock(lock)
                return
            except REDIS_ERRORS as error:
                self._fall_back(lock.conversation_id, error)
        self.memory.save_lock(lock)

    def delete_lock(self, conversation_id: str) -> None:
        if conversation_id in self._in_memory or self.red is None:
            self._in_memory.discard(conversation_id)
            self.memory.delete_lock(conversation_id)
            return
        try:
            super().delete_lock(conversation_id)
        except REDIS_ERRORS as error:
            OUTAGE.failed(self.where, error)  # the lock expires by itself
