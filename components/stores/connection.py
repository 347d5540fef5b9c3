"""Where Kefu's Redis is (`REDIS_URL`), and whether it is reachable right now.

Both stores read `REDIS_URL` themselves: an unset `${VAR}` in endpoints.yml is an error in
Rasa, and Kefu must start without Redis. While Redis is unreachable the stores log one
error, not one per message, and try again at most every `retry_seconds`; the outage policy
reads `OUTAGE` to answer "temporarily unavailable".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

logger = logging.getLogger(__name__)

REDIS_URL_VARIABLE = "REDIS_URL"
# Connection failures, timeouts, a server still loading its AOF, a read-only replica.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError,
                redis.exceptions.ReadOnlyError, OSError)


def redis_url() -> str | None:
    """`REDIS_URL` when set and not blank."""
    return (os.environ.get(REDIS_URL_VARIABLE) or "").strip() or None


def connect(url: str, socket_timeout: float = 2.0, connect_timeout: float = 2.0,
            **tls: Any) -> redis.Redis:
    """A client for `redis://[user:password@]host:port/db` or `rediss://` (TLS).

    `tls` takes redis-py's `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` and `ssl_cert_reqs`
    for `rediss://` URLs."""
    options = {key: value for key, value in tls.items() if value is not None}
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
                                **options)


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if user else '***'}@{host}"


@dataclass
class Outage:
    """Whether Redis is down, shared by the stores of one process."""

    retry_seconds: float = 1.0
    down_since: float | None = None
    _last_attempt: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def should_try(self) -> bool:
        """While down, one attempt per `retry_seconds`, so a dead server costs no time per message."""
        return not self.is_down or time.monotonic() - self._last_attempt >= self.retry_seconds

    def failed(self, where: str, error: Exception) -> None:
        with self._lock:
            self._last_attempt = time.monotonic()
            if self.down_since is None:
                self.down_since = time.time()
                logger.error("Redis at %s is unreachable (%s: %s). Kefu answers 'temporarily unavailable' and keeps "
                             "every write in its local spool until Redis is back.", where, type(error).__name__, error)

    def recovered(self, where: str) -> None:
        with self._lock:
            if self.down_since is not None:
                logger.warning("Redis at %s is back after %.0f s.", where, time.time() - self.down_since)
                self.down_since = None


OUTAGE = Outage()
